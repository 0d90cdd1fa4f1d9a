package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// usernsHandlers are the runtime handlers whose user-namespaced pods are
// tested end to end ("" is the default, hullrt).
var usernsHandlers = []string{"", "runc"}

// usernsIDMap: which of them make idmapped mounts (runc 1.1 does not).
var usernsIDMap = map[string]bool{"": true, "hullrt": true}

const usernsTOML = `[runtimes.hullrt]
type = "hullrt"
[runtimes.runc]
type = "oci"
path = "/usr/sbin/runc"
`

// usernsOpt is the namespace option of a pod (and its containers) with
// its own user namespace mapping container ids 0..99999 to host 1000...
const usernsOpt = `"namespace_options":{"userns_options":{"mode":0,` +
	`"uids":[{"container_id":0,"host_id":1000,"length":100000}],"gids":[{"container_id":0,"host_id":1000,"length":100000}]}}`

// startUsernsHulld starts a hulld whose state the container roots (host
// uid 1000) can traverse to their rootfs, as on a node (/run, /var/lib).
func startUsernsHulld(t *testing.T) *daemon {
	d := startHulld(t, usernsTOML)
	if err := os.Chmod(d.dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d.crictl("pull", busybox)
	return d
}

func usernsPod(t *testing.T, d *daemon, name string) string {
	pod := d.podJSON(name, "")
	b, _ := os.ReadFile(pod)
	writeFile(t, pod, strings.Replace(string(b), `"linux":{}`, `"linux":{"security_context":{`+usernsOpt+`}}`, 1))
	return pod
}

func usernsCtr(t *testing.T, d *daemon, name, script string) string {
	cj := d.ctrJSON(name, script, "")
	b, _ := os.ReadFile(cj)
	writeFile(t, cj, strings.Replace(string(b), `"linux":{}`, `"linux":{"security_context":{`+usernsOpt+`}}`, 1))
	return cj
}

// TestUsernsPod: a pod with its own user namespace. Its container sees the
// mapping, its root owns and writes the rootfs and /dev/shm, binds port 80
// (the netns is owned by the userns) which another container of the pod
// reaches, both containers and an exec share one user namespace that is
// not the host's, the pod survives a hulld kill -9, and removing it leaves
// no pin, mount or process behind.
func TestUsernsPod(t *testing.T) {
	for _, h := range usernsHandlers {
		t.Run("handler="+h, func(t *testing.T) { testUsernsPod(t, h) })
	}
}

func testUsernsPod(t *testing.T, handler string) {
	d := startUsernsHulld(t)
	pod := usernsPod(t, d, "uns")
	p := d.crictl("runp", "--runtime", handler, pod)
	// crictl's pid mode POD: the pause program is the shared pid 1.
	if n := procsRunning(filepath.Join(d.dir, "state", "pause")); n != 1 {
		t.Fatalf("%d pause processes for a pod sharing its pid namespace, want 1", n)
	}
	web := d.crictl("create", p, usernsCtr(t, d, "web",
		"cat /proc/self/uid_map; echo hi > /rootfile && echo shm > /dev/shm/f && ls -ln /rootfile /dev/shm/f && "+
			"exec httpd -f -p 80 -h /etc"), pod)
	d.crictl("start", web)
	logf := filepath.Join(d.dir, "logs", "uns", "web.log")
	eventually(t, "web container's output", func() bool {
		b, _ := os.ReadFile(logf)
		return strings.Contains(string(b), "/dev/shm/f")
	})
	b, _ := os.ReadFile(logf)
	out := string(b)
	if !strings.Contains(out, "0       1000     100000") {
		t.Fatalf("uid_map in the container is not 0 1000 100000:\n%s", out)
	}
	// ls -ln: root in the container owns what it wrote.
	for _, f := range []string{"/rootfile", "/dev/shm/f"} {
		if !strings.Contains(out, " 0        0 ") || !strings.Contains(out, f) {
			t.Fatalf("%s not written as the container's root:\n%s", f, out)
		}
	}
	// On the host the file is owned by the pod's root, host uid 1000.
	ups, _ := filepath.Glob(filepath.Join(d.dir, "root", "image", "rootfs", web, "upper", "rootfile"))
	if len(ups) != 1 {
		t.Fatalf("rootfile not in the container's upper dir")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(ups[0], &st); err != nil || st.Uid != 1000 || st.Gid != 1000 {
		t.Fatalf("upper rootfile: %v, owner %d:%d, want 1000:1000", err, st.Uid, st.Gid)
	}
	// The image's files show as root's inside (idmapped layers) and stay
	// host root's in the store.
	if out := d.crictl("exec", "-s", web, "stat", "-c", "%u:%g", "/bin/busybox"); out != "0:0" {
		t.Fatalf("/bin/busybox in the container is owned by %s, want 0:0", out)
	}
	client := d.crictl("create", p, usernsCtr(t, d, "client", "exec sleep 300"), pod)
	d.crictl("start", client)
	var got string
	eventually(t, "client reaches httpd on port 80", func() bool {
		got, _ = d.crictlErr("exec", "-s", client, "wget", "-qO-", "http://127.0.0.1:80/hostname")
		return strings.TrimSpace(got) != ""
	})
	hostNS, _ := os.Readlink("/proc/self/ns/user")
	nsWeb := d.crictl("exec", "-s", web, "readlink", "/proc/self/ns/user")
	nsClient := d.crictl("exec", "-s", client, "readlink", "/proc/self/ns/user")
	if nsWeb != nsClient || nsWeb == hostNS || !strings.HasPrefix(nsWeb, "user:[") {
		t.Fatalf("user namespaces: web %s, client %s, host %s: want one shared, not the host's", nsWeb, nsClient, hostNS)
	}
	if m := d.crictl("exec", "-s", client, "cat", "/proc/self/uid_map"); !strings.Contains(m, "0       1000     100000") {
		t.Fatalf("exec's uid_map: %s", m)
	}
	if m := d.crictl("exec", "-s", client, "cat", "/proc/self/gid_map"); !strings.Contains(m, "0       1000     100000") {
		t.Fatalf("exec's gid_map: %s", m)
	}

	// kill -9 of hulld: the pod and its pinned namespaces stay usable.
	d.kill9()
	d.start()
	if st := field(d.inspect("inspectp", p), "status.state"); st != "SANDBOX_READY" {
		t.Fatalf("userns pod after restart: %v", st)
	}
	again := d.crictl("create", p, usernsCtr(t, d, "again", "exec sleep 300"), pod)
	d.crictl("start", again)
	if ns := d.crictl("exec", "-s", again, "readlink", "/proc/self/ns/user"); ns != nsWeb {
		t.Fatalf("container made after the restart is in %s, not the pod's %s", ns, nsWeb)
	}

	sbDir := filepath.Join(d.dir, "state", "sandboxes", p)
	d.crictl("stopp", p)
	d.crictl("rmp", p)
	if left := mountsUnderDir(filepath.Join(d.dir, "state")); len(left) > 0 {
		t.Fatalf("mounts left after rmp: %v", left)
	}
	if left := mountsUnderDir(filepath.Join(d.dir, "root")); len(left) > 0 {
		t.Fatalf("mounts left after rmp: %v", left)
	}
	if _, err := os.Stat(sbDir); !os.IsNotExist(err) {
		t.Fatalf("sandbox dir left after rmp: %v", err)
	}
	if n := procsRunning(filepath.Join(d.dir, "state", "pause")); n != 0 {
		t.Fatalf("%d pause processes left after rmp", n)
	}
}

// TestUsernsStatus: Status(verbose) names a stateDir on the image store's
// filesystem (critest probes idmapped mounts on its parent) and does not
// claim user namespaces for runc 1.1, which cannot make idmapped mounts.
func TestUsernsStatus(t *testing.T) {
	d := startUsernsHulld(t)
	var info struct {
		Config struct {
			StateDir string `json:"stateDir"`
		} `json:"config"`
		Handlers []struct {
			Name     string          `json:"name"`
			Features map[string]bool `json:"features"`
		} `json:"runtimeHandlers"`
	}
	out := d.crictl("info")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("crictl info: %v\n%s", err, out)
	}
	if want := filepath.Join(d.dir, "root", "image", "rootfs"); info.Config.StateDir != want {
		t.Fatalf("config.stateDir %q, want %q", info.Config.StateDir, want)
	}
	found := false
	for _, h := range info.Handlers {
		if h.Name == "runc" {
			found = true
			if h.Features["user_namespaces"] {
				t.Fatalf("runc 1.1 advertised as supporting user namespaces: %v", h.Features)
			}
		}
	}
	if !found {
		t.Fatalf("no runc handler in Status:\n%s", out)
	}
}

func mountsUnderDir(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mounts")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			out = append(out, f[1])
		}
	}
	return out
}

// TestUsernsBadInput: user namespace options hulld cannot honour fail
// RunPodSandbox (or CreateContainer) with InvalidArgument naming the
// field, and leave no pod, sandbox dir (pins, netns) or mount behind.
func TestUsernsBadInput(t *testing.T) {
	d := startUsernsHulld(t)
	m := func(c, h, l int) string {
		return fmt.Sprintf(`{"container_id":%d,"host_id":%d,"length":%d}`, c, h, l)
	}
	ok := m(0, 1000, 100000)
	for _, c := range []struct{ name, opts, want string }{
		{"two-mappings", `"userns_options":{"mode":0,"uids":[` + ok + `,` + m(0, 2000, 100000) + `],"gids":[` + ok + `]}`, "exactly one mapping"},
		{"root-unmapped", `"userns_options":{"mode":0,"uids":[` + m(1, 1000, 100000) + `],"gids":[` + m(1, 1000, 100000) + `]}`, "container id 0 is not mapped"},
		{"no-gids", `"userns_options":{"mode":0,"uids":[` + ok + `]}`, "gids: exactly one mapping"},
		{"zero-length", `"userns_options":{"mode":0,"uids":[` + m(0, 1000, 0) + `],"gids":[` + ok + `]}`, "length is 0"},
		{"overflow", `"userns_options":{"mode":0,"uids":[` + m(0, 4294967000, 100000) + `],"gids":[` + ok + `]}`, "overflow"},
		{"host-root", `"userns_options":{"mode":0,"uids":[` + m(0, 0, 100000) + `],"gids":[` + ok + `]}`, "host id 0"},
		{"container-mode", `"userns_options":{"mode":1}`, "mode CONTAINER is not supported"},
		{"target-mode", `"userns_options":{"mode":3}`, "mode TARGET is not supported"},
		{"node-with-mappings", `"userns_options":{"mode":2,"uids":[` + ok + `],"gids":[` + ok + `]}`, "mode NODE takes no"},
		{"host-network", `"network":2,"userns_options":{"mode":0,"uids":[` + ok + `],"gids":[` + ok + `]}`, "network NODE cannot be combined"},
		{"host-pid", `"pid":2,"userns_options":{"mode":0,"uids":[` + ok + `],"gids":[` + ok + `]}`, "pid NODE cannot be combined"},
		{"host-ipc", `"ipc":2,"userns_options":{"mode":0,"uids":[` + ok + `],"gids":[` + ok + `]}`, "ipc NODE cannot be combined"},
	} {
		pod := d.podJSON(c.name, "")
		b, _ := os.ReadFile(pod)
		writeFile(t, pod, strings.Replace(string(b), `"linux":{}`, `"linux":{"security_context":{"namespace_options":{`+c.opts+`}}}`, 1))
		_, err := d.crictlErr("runp", "--runtime", "runc", pod)
		if err == nil || !strings.Contains(err.Error(), "InvalidArgument") || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: runp error %v, want InvalidArgument with %q", c.name, err, c.want)
		}
	}
	// A container must use its pod's user namespace option.
	pod := usernsPod(t, d, "mismatch")
	p := d.crictl("runp", "--runtime", "runc", pod)
	cj := d.ctrJSON("other", "true", "")
	b, _ := os.ReadFile(cj)
	writeFile(t, cj, strings.Replace(string(b), `"linux":{}`, `"linux":{"security_context":{"namespace_options":{"userns_options":{"mode":2}}}}`, 1))
	if _, err := d.crictlErr("create", p, cj, pod); err == nil || !strings.Contains(err.Error(), "InvalidArgument") ||
		!strings.Contains(err.Error(), "differs from the pod's") {
		t.Fatalf("container with a host user namespace in a userns pod: %v", err)
	}
	d.crictl("stopp", p)
	d.crictl("rmp", p)
	if out := d.crictl("pods", "-q"); out != "" {
		t.Fatalf("pods left: %s", out)
	}
	ents, _ := os.ReadDir(filepath.Join(d.dir, "state", "sandboxes"))
	if len(ents) > 0 {
		t.Fatalf("sandbox dirs left: %d", len(ents))
	}
	if left := mountsUnderDir(d.dir); len(left) > 0 {
		t.Fatalf("mounts left: %v", left)
	}
}

// TestUsernsVolume: a volume with the kubelet's uid/gid mappings becomes an
// idmapped bind mount: host root's files show as the pod's root's and
// what the container's root writes lands as host root's. A handler that
// cannot make idmapped mounts (runc 1.1) refuses it at CreateContainer.
func TestUsernsVolume(t *testing.T) {
	d := startUsernsHulld(t)
	vol := filepath.Join(d.dir, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(vol, "host"), "from the host\n")
	mapping := `[{"container_id":0,"host_id":1000,"length":100000}]`
	mount := fmt.Sprintf(`"mounts":[{"container_path":"/vol","host_path":%q,"uidMappings":%s,"gidMappings":%s}]`, vol, mapping, mapping)
	withMount := func(name, script string) string {
		cj := usernsCtr(t, d, name, script)
		b, _ := os.ReadFile(cj)
		writeFile(t, cj, strings.Replace(string(b), `"log_path"`, mount+`,"log_path"`, 1))
		return cj
	}
	for _, h := range usernsHandlers {
		pod := usernsPod(t, d, "vol"+h)
		p := d.crictl("runp", "--runtime", h, pod)
		cj := withMount("v", "stat -c '%u:%g %n' /vol/host; echo c > /vol/from-"+h+"; stat -c '%u:%g %n' /vol/from-"+h)
		if !usernsIDMap[h] {
			if _, err := d.crictlErr("create", p, cj, pod); err == nil || !strings.Contains(err.Error(), "InvalidArgument") ||
				!strings.Contains(err.Error(), "idmapped") {
				t.Fatalf("handler %q without idmapped mounts: create gave %v", h, err)
			}
			continue
		}
		c := d.crictl("create", p, cj, pod)
		d.crictl("start", c)
		logf := filepath.Join(d.dir, "logs", "vol"+h, "v.log")
		eventually(t, "volume container's output", func() bool {
			b, _ := os.ReadFile(logf)
			return strings.Contains(string(b), "/vol/from-")
		})
		b, _ := os.ReadFile(logf)
		if !strings.Contains(string(b), "0:0 /vol/host") || !strings.Contains(string(b), "0:0 /vol/from-"+h) {
			t.Fatalf("handler %q: owners inside the idmapped volume:\n%s", h, b)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(vol, "from-"+h), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
			t.Fatalf("handler %q: file written through the volume: %v, host owner %d:%d, want 0:0", h, err, st.Uid, st.Gid)
		}
	}
}

// TestUsernsContainerPidNS: in a userns pod without a shared pid namespace
// (the kubelet's default) no pause process stays, and each container gets
// its own pid namespace, owned by the pod's user namespace (it mounts
// /proc and is pid 1 there).
func TestUsernsContainerPidNS(t *testing.T) {
	d := startUsernsHulld(t)
	for _, h := range usernsHandlers {
		pod := usernsPod(t, d, "pidc"+h)
		b, _ := os.ReadFile(pod)
		writeFile(t, pod, strings.Replace(string(b), `"namespace_options":{`, `"namespace_options":{"pid":1,`, 1))
		p := d.crictl("runp", "--runtime", h, pod)
		if pid := field(d.inspect("inspectp", p), "info.pausePid"); pid != nil && pid != "0" {
			t.Fatalf("handler %q: a pause process (%v) for a pod without a shared pid namespace", h, pid)
		}
		if n := procsRunning(filepath.Join(d.dir, "state", "pause")); n != 0 {
			t.Fatalf("handler %q: %d pause processes left by RunPodSandbox", h, n)
		}
		cj := usernsCtr(t, d, "c", "exec sleep 300")
		b, _ = os.ReadFile(cj)
		writeFile(t, cj, strings.Replace(string(b), `"namespace_options":{`, `"namespace_options":{"pid":1,`, 1))
		c := d.crictl("create", p, cj, pod)
		d.crictl("start", c)
		out := d.crictl("exec", "-s", c, "sh", "-c", "cat /proc/1/cmdline; echo; cat /proc/self/uid_map")
		if !strings.HasPrefix(out, "sleep") || !strings.Contains(out, "0       1000     100000") {
			t.Fatalf("handler %q: pid 1 and uid_map inside:\n%s", h, out)
		}
	}
}

// procsRunning counts live processes whose argv[0] is path.
func procsRunning(path string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.SplitN(string(b), "\x00", 2)[0] == path {
			st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if !strings.Contains(string(st), ") Z ") {
				n++
			}
		}
	}
	return n
}
