package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"hull/internal/config"
	"hull/internal/errdefs"
	"hull/internal/nsutil"
)

func TestTwoPodsReachEachOther(t *testing.T) {
	requireCNI(t)
	n := newTestNet(t, "hulltest0", 7)
	if err := n.m.Status(); err != nil {
		t.Fatalf("Status with a valid conflist: %v", err)
	}
	_, subnet, _ := net.ParseCIDR(n.subnet)
	nsA, nsB := pinNetns(t), pinNetns(t)
	podA, podB := pod(1), pod(2)
	const hostPort = 38207
	ports := []PortMapping{{Protocol: "TCP", ContainerPort: 8080, HostPort: hostPort, HostIP: n.gateway}}
	resA := n.setup(t, podA, nsA, nil)
	resB := n.setup(t, podB, nsB, ports)

	for _, r := range []*Result{resA, resB} {
		if len(r.IPs) != 1 || !subnet.Contains(net.ParseIP(r.IPs[0])) || r.Interface != "eth0" || r.Network != n.name {
			t.Fatalf("result %+v: want one IP in %s on eth0 of %s", r, n.subnet, n.name)
		}
	}
	if resA.IPs[0] == resB.IPs[0] {
		t.Fatalf("both pods got %s", resA.IPs[0])
	}
	// Each netns really carries its address on eth0, and lo is up.
	for _, c := range []struct{ ns, ip string }{{nsA, resA.IPs[0]}, {nsB, resB.IPs[0]}} {
		inNetns(t, c.ns, func() error {
			ifc, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if strings.HasPrefix(a.String(), c.ip+"/") {
					return nil
				}
			}
			return fmt.Errorf("eth0 has %v, want %s", addrs, c.ip)
		})
		lo := listen(t, c.ns, "127.0.0.1:0")
		if got := exchange(t, c.ns, lo); got != "pong ping\n" {
			t.Fatalf("loopback in the pod answered %q", got)
		}
	}
	if got := n.leases(t); len(got) != 2 {
		t.Fatalf("host-local leases = %v, want 2", got)
	}
	// The cached lists (replayed at DEL) skip loopback, and portmap for the
	// pod without host ports.
	for _, c := range []struct {
		p    PodMeta
		want []string
	}{{podA, []string{"bridge"}}, {podB, []string{"bridge", "portmap"}}} {
		atts, err := n.m.cni.GetCachedAttachments(c.p.ID)
		if err != nil || len(atts) != 1 {
			t.Fatalf("cached attachments of %s = %v, %v", c.p.Name, atts, err)
		}
		l, err := libcni.NetworkConfFromBytes(atts[0].Config)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, pl := range l.Plugins {
			types = append(types, pl.Network.Type)
		}
		if !slices.Equal(types, c.want) || l.Name != n.name {
			t.Errorf("cached plugins of %s = %v in %q, want %v", c.p.Name, types, l.Name, c.want)
		}
	}
	if got := n.bridgePorts(t); len(got) != 2 {
		t.Fatalf("bridge %s ports = %v, want 2 veths", n.bridge, got)
	}

	// A reaches B by IP over the bridge.
	addrB := listen(t, nsB, net.JoinHostPort(resB.IPs[0], "8080"))
	if got := exchange(t, nsA, addrB); got != "pong ping\n" {
		t.Fatalf("pod A → pod B answered %q", got)
	}
	// portmap: the host reaches B through its hostPort on the bridge IP.
	if got := exchange(t, "", net.JoinHostPort(n.gateway, fmt.Sprint(hostPort))); got != "pong ping\n" {
		t.Fatalf("host → hostPort %d answered %q", hostPort, got)
	}
	if rules := natRulesMentioning(t, resB.IPs[0]); len(rules) == 0 {
		t.Fatal("no DNAT rule for pod B's hostPort")
	}

	// Teardown twice: the second finds nothing and still succeeds.
	for i := range 2 {
		for _, c := range []struct {
			p     PodMeta
			ns    string
			ports []PortMapping
		}{{podA, nsA, nil}, {podB, nsB, ports}} {
			if err := n.m.Teardown(context.Background(), c.p, c.ns, c.ports); err != nil {
				t.Fatalf("Teardown %d of %s: %v", i+1, c.p.Name, err)
			}
		}
	}
	if got := n.leases(t); len(got) != 0 {
		t.Errorf("leases after teardown = %v", got)
	}
	if got := n.bridgePorts(t); len(got) != 0 {
		t.Errorf("bridge ports after teardown = %v", got)
	}
	if got := n.cacheEntries(t); len(got) != 0 {
		t.Errorf("libcni cache after teardown = %v", got)
	}
	if rules := natRulesMentioning(t, resB.IPs[0]); len(rules) != 0 {
		t.Errorf("NAT rules left after teardown: %v", rules)
	}
	inNetns(t, nsA, func() error {
		if _, err := net.InterfaceByName("eth0"); err == nil {
			return errors.New("eth0 still in pod A's netns after teardown")
		}
		return nil
	})
}

// TestTeardownAfterConfChange is hulld restarting after the CNI conf was
// replaced: the new Manager tears the pod down with the configuration libcni
// cached at ADD time, and also when the netns is already gone.
func TestTeardownAfterConfChange(t *testing.T) {
	requireCNI(t)
	n := newTestNet(t, "hulltest1", 8)
	nsA, nsB := pinNetns(t), pinNetns(t)
	podA, podB := pod(11), pod(12)
	resA := n.setup(t, podA, nsA, nil)
	n.setup(t, podB, nsB, nil)
	if len(n.leases(t)) != 2 {
		t.Fatalf("leases = %v", n.leases(t))
	}

	// The network is replaced by one with another name and bridge.
	if err := os.Remove(filepath.Join(n.confDir, "10-hulltest.conflist")); err != nil {
		t.Fatal(err)
	}
	other := *n
	other.name, other.bridge, other.subnet = "hulltest-other", "hulltest2", "10.226.9.0/24"
	deleteLink(t, other.bridge)
	t.Cleanup(func() { deleteLink(t, other.bridge) })
	other.writeConf(t, "20-other.conflist")
	m2, err := New(config.CNI{ConfDir: n.confDir, BinDirs: []string{pluginDir}, CacheDir: n.cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	if name, err := m2.NetworkName(); err != nil || name != "hulltest-other" {
		t.Fatalf("NetworkName = %q, %v", name, err)
	}

	if err := m2.Teardown(context.Background(), podA, nsA, nil); err != nil {
		t.Fatalf("Teardown after conf change: %v", err)
	}
	if got := n.leases(t); slices.Contains(got, resA.IPs[0]) || len(got) != 1 {
		t.Fatalf("leases after tearing down A = %v, want only B's", got)
	}
	if got := n.bridgePorts(t); len(got) != 1 {
		t.Fatalf("old bridge ports after tearing down A = %v, want only B's veth", got)
	}
	// B's netns disappears before its teardown (node reboot, crash).
	if err := nsutil.Unpin(map[string]string{"net": nsB}); err != nil {
		t.Fatal(err)
	}
	// What is left where it was pinned is a plain file (a crash between
	// creating the pin file and mounting it leaves the same).
	if err := os.WriteFile(nsB, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := m2.Teardown(context.Background(), podB, nsB, nil); err != nil {
			t.Fatalf("Teardown %d with the netns gone: %v", i+1, err)
		}
	}
	if got := n.leases(t); len(got) != 0 {
		t.Fatalf("leases after teardown = %v", got)
	}
	if got := n.cacheEntries(t); len(got) != 0 {
		t.Fatalf("cache after teardown = %v", got)
	}
	// B's host-side veth is not checked: the kernel destroys it with the
	// netns, asynchronously (cleanup_net), and the bridge's deletion at
	// cleanup removes whatever is left.
}

func TestStatus(t *testing.T) {
	requireCNI(t)
	dir := t.TempDir()
	confDir := filepath.Join(dir, "net.d")
	m, err := New(config.CNI{ConfDir: confDir, BinDirs: []string{pluginDir}, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	expectNotReady := func(what, want string) {
		t.Helper()
		err := m.Status()
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Status with %s = %v, want FailedPrecondition mentioning %q", what, err, want)
		}
	}
	expectNotReady("a missing conf_dir", "no network configuration")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	expectNotReady("an empty conf_dir", "no network configuration")
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(confDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("00-broken.conflist", "{not json")
	write("README.txt", "not a conf")
	expectNotReady("only a broken file", "00-broken.conflist")
	write("10-missing.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nosuchplugin"}]}`)
	expectNotReady("a missing plugin", `"nosuchplugin" not found`)
	// A single-plugin .conf is a usable network too.
	write("20-single.conf", `{"cniVersion":"1.0.0","name":"single","type":"loopback"}`)
	if err := m.Status(); err != nil {
		t.Fatalf("Status with a .conf: %v", err)
	}
	if name, _ := m.NetworkName(); name != "single" {
		t.Fatalf("NetworkName = %q, want the first usable file's network", name)
	}
	// Setup refuses a missing netns, or a plain file, before calling any plugin.
	_, err = m.Setup(context.Background(), pod(30), filepath.Join(dir, "nonetns"), nil)
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Setup with a missing netns = %v, want ErrNotFound", err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = m.Setup(context.Background(), pod(30), plain, nil); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "not a namespace") {
		t.Fatalf("Setup with a plain file as netns = %v, want ErrNotFound", err)
	}
	// Teardown with nothing cached, no netns and a loopback network succeeds.
	if err := m.Teardown(context.Background(), pod(30), filepath.Join(dir, "nonetns"), nil); err != nil {
		t.Fatalf("Teardown of a pod never set up: %v", err)
	}
}

func TestNewAndPortErrors(t *testing.T) {
	for _, c := range []config.CNI{
		{ConfDir: "net.d", BinDirs: []string{pluginDir}},
		{ConfDir: "/etc/cni/net.d"},
		{ConfDir: "/etc/cni/net.d", BinDirs: []string{"bin"}},
		{ConfDir: "/etc/cni/net.d", BinDirs: []string{pluginDir}, CacheDir: "cache"},
	} {
		if _, err := New(c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want ErrInvalidArgument", c, err)
		}
	}
	m, err := New(config.CNI{ConfDir: t.TempDir(), BinDirs: []string{pluginDir}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]PortMapping{
		{{Protocol: "icmp", ContainerPort: 1, HostPort: 2}},
		{{ContainerPort: 0, HostPort: 80}},
		{{ContainerPort: 80, HostPort: 70000}},
		{{ContainerPort: 80, HostPort: 8080, HostIP: "nope"}},
	} {
		if _, err := m.runtimeConf(pod(40), "/x", p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ports %+v: %v, want ErrInvalidArgument", p, err)
		}
	}
	if _, err := m.runtimeConf(PodMeta{Name: "x"}, "/x", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("pod without id: %v", err)
	}
	rt, err := m.runtimeConf(pod(41), "/x", []PortMapping{{ContainerPort: 80}, {ContainerPort: 53, HostPort: 5353, Protocol: "UDP"}})
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := rt.CapabilityArgs["portMappings"].([]portMapping)
	if len(pm) != 1 || pm[0] != (portMapping{HostPort: 5353, ContainerPort: 53, Protocol: "udp"}) {
		t.Errorf("portMappings = %+v, want only the one with a host port, protocol lower-cased", pm)
	}
}

// BenchmarkSetupTeardown measures one pod's ADD + DEL on the test network
// (bridge + host-local + portmap + loopback), the CNI share of runp/stopp.
func BenchmarkSetupTeardown(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	dir := b.TempDir()
	n := &testNet{name: "hulltest-bench", bridge: "hulltest3", subnet: "10.226.10.0/24",
		confDir: filepath.Join(dir, "net.d"), cacheDir: filepath.Join(dir, "cache"), dataDir: filepath.Join(dir, "ipam")}
	b.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.bridge).Run() })
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}},
 {"type":"portmap","capabilities":{"portMappings":true}},{"type":"loopback"}]}`, n.name, n.bridge, n.subnet, n.dataDir)
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.confDir, "10.conflist"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := New(config.CNI{ConfDir: n.confDir, BinDirs: []string{pluginDir}, CacheDir: n.cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	paths, err := nsutil.Pin(filepath.Join(dir, "ns"), []string{"net"}, "")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nsutil.Unpin(paths) })
	p := pod(50)
	for b.Loop() {
		if _, err := m.Setup(context.Background(), p, paths["net"], nil); err != nil {
			b.Fatal(err)
		}
		if err := m.Teardown(context.Background(), p, paths["net"], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParallelPods sets up and tears down pods ten at a time, as the kubelet
// does on a busy node, on a bridge that does not exist yet (the first ADDs
// race to create it).
func TestParallelPods(t *testing.T) {
	requireCNI(t)
	n := newTestNet(t, "hulltest5", 12)
	const count = 10
	netns := make([]string, count)
	for i := range netns {
		netns[i] = pinNetns(t)
	}
	ips := make([]string, count)
	errs := make(chan error, count)
	for i := range count {
		go func() {
			res, err := n.m.Setup(context.Background(), pod(100+i), netns[i], nil)
			if err == nil {
				ips[i] = res.IPs[0]
			}
			errs <- err
		}()
	}
	for range count {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		for i := range count {
			_ = n.m.Teardown(context.Background(), pod(100+i), netns[i], nil)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	seen := map[string]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Fatalf("IP %s given twice: %v", ip, ips)
		}
		seen[ip] = true
	}
	if got := n.bridgePorts(t); len(got) != count {
		t.Fatalf("bridge ports = %d, want %d", len(got), count)
	}
	cached, err := n.m.CachedPodIDs()
	if err != nil || len(cached) != count || !slices.Contains(cached, pod(100).ID) {
		t.Fatalf("CachedPodIDs = %v, %v; want the %d pods", cached, err, count)
	}
	for i := range count {
		go func() { errs <- n.m.Teardown(context.Background(), pod(100+i), netns[i], nil) }()
	}
	for range count {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := n.leases(t); len(got) != 0 {
		t.Errorf("leases after parallel teardown = %v", got)
	}
	if cached, err := n.m.CachedPodIDs(); err != nil || len(cached) != 0 {
		t.Errorf("CachedPodIDs after teardown = %v, %v", cached, err)
	}
	if got := n.bridgePorts(t); len(got) != 0 {
		t.Errorf("bridge ports after parallel teardown = %v", got)
	}
}
