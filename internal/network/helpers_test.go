package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hull/internal/config"
	"hull/internal/nsutil"
)

const pluginDir = "/usr/lib/cni"

// testNet is one CNI network on its own bridge and subnet, with every piece
// of state (conf, libcni cache, host-local leases) in a temp dir.
type testNet struct {
	name, bridge, subnet, gateway string
	confDir, cacheDir, dataDir    string
	m                             *Manager
}

func requireCNI(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for netns, veth and bridges")
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(pluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s missing (apt-get install containernetworking-plugins): %v", p, err)
		}
	}
}

// newTestNet writes a bridge + host-local + portmap + loopback conflist for
// bridge on 10.226.<octet>.0/24 and returns a Manager reading it. Cleanup
// deletes the bridge.
func newTestNet(t *testing.T, bridge string, octet int) *testNet {
	t.Helper()
	dir := t.TempDir()
	n := &testNet{
		name:     "hulltest-" + bridge,
		bridge:   bridge,
		subnet:   fmt.Sprintf("10.226.%d.0/24", octet),
		gateway:  fmt.Sprintf("10.226.%d.1", octet),
		confDir:  filepath.Join(dir, "net.d"),
		cacheDir: filepath.Join(dir, "cache"),
		dataDir:  filepath.Join(dir, "ipam"),
	}
	deleteLink(t, bridge) // a leftover from a killed run
	t.Cleanup(func() { deleteLink(t, bridge) })
	n.writeConf(t, "10-hulltest.conflist")
	m, err := New(config.CNI{ConfDir: n.confDir, BinDirs: []string{"/nonexistent/cni", pluginDir}, CacheDir: n.cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	return n
}

func (n *testNet) writeConf(t *testing.T, file string) {
	t.Helper()
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}`, n.name, n.bridge, n.subnet, n.dataDir)
	if err := os.MkdirAll(n.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.confDir, file), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

func deleteLink(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat("/sys/class/net/" + name); err != nil {
		return
	}
	if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
		t.Errorf("ip link del %s: %v: %s", name, err, out)
	}
}

// pinNetns makes a fresh network namespace, removed at cleanup.
func pinNetns(t *testing.T) string {
	t.Helper()
	paths, err := nsutil.Pin(filepath.Join(t.TempDir(), "ns"), []string{"net"}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsutil.Unpin(paths); err != nil {
			t.Errorf("unpin: %v", err)
		}
	})
	return paths["net"]
}

func inNetns(t *testing.T, path string, fn func() error) {
	t.Helper()
	if err := nsutil.Enter(map[string]string{"net": path}, fn); err != nil {
		t.Fatalf("in netns %s: %v", path, err)
	}
}

func pod(n int) PodMeta {
	return PodMeta{ID: fmt.Sprintf("%064x", 0xc0ffee00+n), Name: fmt.Sprintf("pod-%d", n), Namespace: "hulltest", UID: fmt.Sprintf("uid-%d", n)}
}

// setup runs Setup and registers a Teardown at cleanup.
func (n *testNet) setup(t *testing.T, p PodMeta, netns string, ports []PortMapping) *Result {
	t.Helper()
	res, err := n.m.Setup(context.Background(), p, netns, ports)
	if err != nil {
		t.Fatalf("Setup %s: %v", p.Name, err)
	}
	t.Cleanup(func() {
		if err := n.m.Teardown(context.Background(), p, netns, ports); err != nil {
			t.Errorf("cleanup Teardown %s: %v", p.Name, err)
		}
	})
	return res
}

// leases returns the IPs host-local holds for the network.
func (n *testNet) leases(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(n.dataDir, n.name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// bridgePorts lists the host-side veths attached to the bridge.
func (n *testNet) bridgePorts(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/sys/class/net", n.bridge, "brif"))
	if err != nil {
		t.Fatalf("bridge %s: %v", n.bridge, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func (n *testNet) cacheEntries(t *testing.T) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(n.cacheDir, "results"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func natRulesMentioning(t *testing.T, ip string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	var rules []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if strings.Contains(sc.Text(), ip+"/32") || strings.Contains(sc.Text(), ip+":") {
			rules = append(rules, sc.Text())
		}
	}
	return rules
}

// listen opens a TCP echo-once server inside netns on addr and returns its
// address; the socket keeps living in that netns after Enter returns.
func listen(t *testing.T, netns, addr string) string {
	t.Helper()
	var ln net.Listener
	inNetns(t, netns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "pong %s", line)
			}()
		}
	}()
	return ln.Addr().String()
}

// exchange dials addr (from inside netns when it is not empty) and returns
// the server's answer to "ping".
func exchange(t *testing.T, netns, addr string) string {
	t.Helper()
	var reply string
	dial := func() error {
		d := net.Dialer{Timeout: 20 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := fmt.Fprintf(c, "ping\n"); err != nil {
			return err
		}
		reply, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if netns == "" {
		if err := dial(); err != nil {
			t.Fatalf("dial %s from the host: %v", addr, err)
		}
	} else {
		inNetns(t, netns, dial)
	}
	return reply
}
