package oci

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// testMapping is the id range every user namespace in these tests maps:
// container ids 0-65535 are host ids 1000-66535.
var testMapping = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 65536}}

// pinNamespaces creates a user namespace (mapped as testMapping) plus the
// namespaces of extra (CLONE_NEW* flags, owned by it) with a helper
// process, as hulld pins a pod's, bind-mounts them on files and ends the
// helper. It returns the pinned paths by /proc/PID/ns name.
func pinNamespaces(t *testing.T, extra uintptr) map[string]string {
	t.Helper()
	cmd := exec.Command("/bin/busybox", "sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | extra,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 65536}},
		// Pods may use supplementary groups.
		GidMappingsEnableSetgroups: true,
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	dir := t.TempDir()
	out := map[string]string{}
	names := []string{"user"}
	for flag, name := range map[uintptr]string{unix.CLONE_NEWNET: "net", unix.CLONE_NEWIPC: "ipc", unix.CLONE_NEWUTS: "uts", unix.CLONE_NEWTIME: "time"} {
		if extra&flag != 0 {
			names = append(names, name)
		}
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		src := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/" + name
		if name == "time" {
			src += "_for_children"
		}
		if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("pin %s: %v", name, err)
		}
		t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH) })
		out[name] = p
	}
	return out
}

// userNSBundle is newBundle with the bundle reachable by the container's
// root (host uid 1000): t.TempDir is 0700 root.
func userNSBundle(t *testing.T, args ...string) (string, *specs.Spec) {
	t.Helper()
	bundle, spec := newBundle(t, args...)
	for _, d := range []string{bundle, filepath.Dir(bundle)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=1777"}})
	return bundle, spec
}

func setNamespace(spec *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			spec.Linux.Namespaces[i].Path = path
			return
		}
	}
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

func runScript(t *testing.T, bundle string, spec *specs.Spec) string {
	t.Helper()
	r := newRuntime(t)
	out, code := runOut(t, r, strings.ReplaceAll(t.Name(), "/", "-"), bundle, spec)
	if code != 0 {
		t.Fatalf("script exited %d: %s", code, out)
	}
	return out
}

func mapLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestJoinUserNamespace(t *testing.T) {
	ns := pinNamespaces(t, 0)
	bundle, spec := userNSBundle(t, "/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; echo hello > /tmp/f && cat /tmp/f; cat /proc/1/status | grep -c ^Pid")
	setNamespace(spec, specs.UserNamespace, ns["user"])
	// createRuntime hooks run in the host's namespaces, createContainer
	// hooks in the container's.
	hookOut := filepath.Join(t.TempDir(), "hooks")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo " + name + " $(readlink /proc/self/ns/user) >> " + hookOut}}
	}
	if err := os.WriteFile(hookOut, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(hookOut, 0o666) // writable by the container's root (host uid 1000)
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{hook("createRuntime")}, CreateContainer: []specs.Hook{hook("createContainer")}}
	out := runScript(t, bundle, spec)
	hostNS, _ := os.Readlink("/proc/self/ns/user")
	var st unix.Stat_t
	unix.Stat(ns["user"], &st)
	b, _ := os.ReadFile(hookOut)
	want := "createRuntime " + hostNS + "\ncreateContainer user:[" + strconv.FormatUint(st.Ino, 10) + "]\n"
	if string(b) != want {
		t.Errorf("hooks saw user namespaces %q, want %q", b, want)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 || mapLine(lines[0]) != "0 1000 65536" || mapLine(lines[1]) != "0 1000 65536" || lines[2] != "0" || lines[3] != "hello" {
		t.Fatalf("output %q: want uid and gid map 0 1000 65536, uid 0, a tmpfs write", out)
	}
}

func TestNewUserNamespaceWithMappings(t *testing.T) {
	bundle, spec := userNSBundle(t, "/bin/sh", "-c", "cat /proc/self/uid_map; id -u; echo hello > /tmp/f && cat /tmp/f; ls /dev/null /sys/kernel >/dev/null && echo ok")
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = testMapping, testMapping
	out := runScript(t, bundle, spec)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || mapLine(lines[0]) != "0 1000 65536" || lines[1] != "0" || lines[2] != "hello" || lines[3] != "ok" {
		t.Fatalf("output %q: want uid map 0 1000 65536, uid 0, a tmpfs write, /dev and /sys", out)
	}
}

// TestExecJoinsUserNamespace: exec into containers whose user namespace is
// joined by path or new sees the container's mapping.
func TestExecJoinsUserNamespace(t *testing.T) {
	pinned := pinNamespaces(t, 0)
	for _, mode := range []string{"joined", "new"} {
		t.Run(mode, func(t *testing.T) {
			bundle, spec := userNSBundle(t, "/bin/sleep", "60")
			if mode == "joined" {
				setNamespace(spec, specs.UserNamespace, pinned["user"])
			} else {
				setNamespace(spec, specs.UserNamespace, "")
				spec.Linux.UIDMappings, spec.Linux.GIDMappings = testMapping, testMapping
			}
			writeSpec(t, bundle, spec)
			r := newRuntime(t)
			ctx := context.Background()
			id := "ux-" + mode
			if err := r.Create(ctx, id, CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx, id); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			w, done := pipeCollect(t, &buf)
			p := *spec.Process
			p.Args = []string{"/bin/sh", "-c", `cat /proc/self/uid_map; id -u
				for f in user net mnt pid uts ipc; do [ "$(readlink /proc/self/ns/$f)" = "$(readlink /proc/1/ns/$f)" ] || echo "differs: $f"; done
				exit 3`}
			proc, err := r.Exec(ctx, id, &p, ExecOptions{Stdin: devNull(t), Stdout: w, Stderr: w})
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			ps, err := proc.Wait()
			if err != nil {
				t.Fatal(err)
			}
			<-done
			out := buf.String()
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if ps.ExitCode() != 3 || len(lines) != 2 || mapLine(lines[0]) != "0 1000 65536" || lines[1] != "0" {
				t.Fatalf("exec exit %d, output %q: want 3, uid map 0 1000 65536, uid 0, every namespace the init's", ps.ExitCode(), out)
			}
		})
	}
}

// TestIDMappedMount: in a joined user namespace, a file the container's
// root creates in an idmapped bind mount lands as host uid 0 in the source,
// and the source's root-owned files show as the container's root; without
// the idmapping they belong to the overflow uid.
func TestIDMappedMount(t *testing.T) {
	pinned := pinNamespaces(t, 0)
	for _, mode := range []string{"joined", "new"} {
		t.Run(mode, func(t *testing.T) { testIDMappedMount(t, mode, pinned["user"]) })
	}
}

func testIDMappedMount(t *testing.T, mode, userns string) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "old"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	hosts := filepath.Join(plain, "hosts")
	if err := os.WriteFile(hosts, []byte("pod-hosts"), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle, spec := userNSBundle(t, "/bin/sh", "-c", "stat -c %u /data/old /plain; touch /data/new && stat -c %u:%g /data/new; cat /etc/pod/hosts")
	if mode == "joined" {
		setNamespace(spec, specs.UserNamespace, userns)
	} else {
		setNamespace(spec, specs.UserNamespace, "")
		spec.Linux.UIDMappings, spec.Linux.GIDMappings = testMapping, testMapping
	}
	// The container's root could not create /data and /plain in a rootfs
	// owned by the host's root: the runtime makes them before the spawn.
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}, UIDMappings: testMapping, GIDMappings: testMapping},
		specs.Mount{Destination: "/plain", Type: "bind", Source: plain, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/etc/pod/hosts", Type: "bind", Source: hosts, Options: []string{"bind", "ro"}})
	out := runScript(t, bundle, spec)
	if got := strings.Fields(out); len(got) != 4 || got[0] != "0" || got[1] != "65534" || got[2] != "0:0" || got[3] != "pod-hosts" {
		t.Fatalf("output %q: want 0 (idmapped), 65534 (not), 0:0, a file bind mount", out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(src, "new"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("file created through the idmapped mount is %d:%d on the host, want 0:0", st.Uid, st.Gid)
	}
}

// TestUserNamespaceOwnsNetworkSysfs: a container joining a pod's user
// namespace and the network, ipc and uts namespaces it owns mounts a sysfs
// of its own (only lo in /sys/class/net) and sets its hostname; with a
// network namespace the user namespace does not own, /sys is the host's
// bound read-only.
func TestUserNamespaceOwnsNetworkSysfs(t *testing.T) {
	ns := pinNamespaces(t, unix.CLONE_NEWNET|unix.CLONE_NEWIPC|unix.CLONE_NEWUTS)
	script := "ls /sys/class/net | tr '\\n' ' '; echo; hostname; grep -c ' /sys ' /proc/self/mountinfo; mount -t sysfs | grep -c 'on /sys '"
	bundle, spec := userNSBundle(t, "/bin/sh", "-c", script)
	spec.Hostname = "podhost"
	setNamespace(spec, specs.UserNamespace, ns["user"])
	setNamespace(spec, specs.NetworkNamespace, ns["net"])
	setNamespace(spec, specs.IPCNamespace, ns["ipc"])
	setNamespace(spec, specs.UTSNamespace, ns["uts"])
	out := runScript(t, bundle, spec)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || strings.TrimSpace(lines[0]) != "lo" || lines[1] != "podhost" {
		t.Fatalf("output %q: want only lo in the container's own sysfs and hostname podhost", out)
	}

	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	bundle, spec = userNSBundle(t, "/bin/sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net | grep -vc '^lo$'; touch /sys/x 2>/dev/null || echo ro")
	setNamespace(spec, specs.UserNamespace, ns["user"])
	setNamespace(spec, specs.NetworkNamespace, "/proc/self/ns/net")
	out = runScript(t, bundle, spec)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || lines[0] != hostNet || lines[1] == "0" || lines[2] != "ro" {
		t.Fatalf("output %q: want the host netns %s, its interfaces in a read-only /sys", out, hostNet)
	}
}

// TestJoinTimeNamespace: a container joining a time namespace with a
// boottime offset of 10^6 s sees it in /proc/uptime; the host does not.
func TestJoinTimeNamespace(t *testing.T) {
	needRoot(t)
	cmd := exec.Command("unshare", "--time", "--boottime", "1000000", "/bin/busybox", "sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pin := filepath.Join(t.TempDir(), "time")
	if err := os.WriteFile(pin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// unshare sets the offset and then executes sleep, which enters the
	// namespace: wait for that.
	own, _ := os.Readlink("/proc/self/ns/time")
	for i := 0; i < 1000; i++ {
		if l, _ := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/time"); l != own {
			if c, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm"); strings.TrimSpace(string(c)) == "busybox" {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := unix.Mount("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/time", pin, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(pin, unix.MNT_DETACH) })
	cmd.Process.Kill()
	cmd.Wait()
	bundle, spec := newBundle(t, "/bin/sleep", "60")
	setNamespace(spec, specs.TimeNamespace, pin)
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	ctx := context.Background()
	startQuiet(t, r, "timens", bundle)
	// An exec'd process joins the container's time namespace too.
	var buf bytes.Buffer
	w, done := pipeCollect(t, &buf)
	p := *spec.Process
	p.Args = []string{"/bin/sh", "-c", "cut -d. -f1 /proc/uptime"}
	proc, err := r.Exec(ctx, "timens", &p, ExecOptions{Stdin: devNull(t), Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	<-done
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	out := sh(t, "cut -d. -f1 /proc/uptime", func(s *specs.Spec) { setNamespace(s, specs.TimeNamespace, pin) })
	// A new user namespace with the time namespace joined by path: the
	// joiner joins it first and then creates the user namespace.
	ubundle, uspec := userNSBundle(t, "/bin/sh", "-c", "cut -d. -f1 /proc/uptime; cat /proc/self/uid_map")
	setNamespace(uspec, specs.TimeNamespace, pin)
	setNamespace(uspec, specs.UserNamespace, "")
	uspec.Linux.UIDMappings, uspec.Linux.GIDMappings = testMapping, testMapping
	uout := strings.Split(strings.TrimSpace(runScript(t, ubundle, uspec)), "\n")
	if len(uout) != 2 || mapLine(uout[1]) != "0 1000 65536" {
		t.Fatalf("new user namespace with a joined time namespace: output %q, want uptime and uid map 0 1000 65536", uout)
	}
	for what, o := range map[string]string{"container": out, "exec": buf.String(), "new userns": uout[0]} {
		up, err := strconv.Atoi(strings.TrimSpace(o))
		if err != nil {
			t.Fatalf("%s uptime %q: %v", what, o, err)
		}
		if up < 1000000 || int64(up) < si.Uptime+999000 {
			t.Errorf("uptime in the %s %d, host %d: want the 10^6 s offset", what, up, si.Uptime)
		}
	}
}

func TestUserNamespaceBadInput(t *testing.T) {
	ns := pinNamespaces(t, unix.CLONE_NEWNET)
	r := newRuntime(t)
	t.Cleanup(removeTestCgroups)
	ctx := context.Background()
	cg := "/hull-test/usernsbad"
	other := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 2000, Size: 1000}}
	cases := []struct {
		name string
		edit func(s *specs.Spec)
		msg  string
	}{
		{"missing-path", func(s *specs.Spec) { setNamespace(s, specs.UserNamespace, "/no/such/userns") }, "/no/such/userns does not exist"},
		{"wrong-type", func(s *specs.Spec) { setNamespace(s, specs.UserNamespace, ns["net"]) }, "is a network namespace, not a user namespace"},
		{"not-a-namespace", func(s *specs.Spec) { setNamespace(s, specs.TimeNamespace, "/etc/hostname") }, "is not a namespace file"},
		{"other-mappings", func(s *specs.Spec) {
			setNamespace(s, specs.UserNamespace, ns["user"])
			s.Linux.UIDMappings, s.Linux.GIDMappings = other, other
		}, "uidMappings given with a user namespace path do not match the namespace's (0 1000 65536)"},
		{"mount-mappings-without-userns", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/tmp", Options: []string{"rbind"}, UIDMappings: testMapping, GIDMappings: testMapping})
		}, "need a user namespace"},
		{"idmap-not-bind", func(s *specs.Spec) {
			setNamespace(s, specs.UserNamespace, ns["user"])
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", UIDMappings: testMapping, GIDMappings: testMapping})
		}, "only supported on bind mounts"},
		{"idmap-missing-source", func(s *specs.Spec) {
			setNamespace(s, specs.UserNamespace, ns["user"])
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/src", Options: []string{"rbind", "idmap"}})
		}, "/no/such/src"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bundle, spec := userNSBundle(t, "/bin/true")
			spec.Linux.CgroupsPath = cg + "-" + c.name
			c.edit(spec)
			writeSpec(t, bundle, spec)
			err := r.Create(ctx, c.name, CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)})
			if err == nil {
				t.Fatal("create succeeded")
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("error %v is not InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q should be one line containing %q", err, c.msg)
			}
			if _, err := os.Stat(filepath.Join(r.Root(), c.name)); !errors.Is(err, os.ErrNotExist) {
				t.Error("state dir left behind")
			}
			for _, ctl := range []string{"memory", "pids", "cpu"} {
				if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctl, cg+"-"+c.name)); err == nil {
					t.Errorf("cgroup %s left behind", ctl)
				}
			}
		})
	}
}

// TestUserNamespaceProcessAndConsole: in a joined user namespace a
// non-root user with supplementary groups runs as asked (setgroups,
// setresgid, setresuid inside the mapping), rlimits apply, and a terminal
// comes back over the console socket.
func TestUserNamespaceProcessAndConsole(t *testing.T) {
	ns := pinNamespaces(t, 0)
	bundle, spec := userNSBundle(t, "/bin/sh", "-c", "id -u; id -g; id -G; ulimit -n; tty")
	setNamespace(spec, specs.UserNamespace, ns["user"])
	spec.Process.User = specs.User{UID: 1234, GID: 1235, AdditionalGids: []uint32{2000}}
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 256}}
	spec.Process.Terminal = true
	writeSpec(t, bundle, spec)
	out := runOnConsole(t, newRuntime(t), "ux-tty", bundle)
	f := strings.Fields(out)
	if len(f) < 6 || f[0] != "1234" || f[1] != "1235" || f[2] != "1235" || f[3] != "2000" || f[4] != "256" || f[5] != "/dev/pts/0" {
		t.Fatalf("output %q: want uid 1234, gid 1235, groups 1235 2000, nofile 256, /dev/pts/0", out)
	}
}

// TestJoinOwnUserNamespace: the runtime's own user namespace given by path
// (setns would refuse it) leaves the container in it.
func TestJoinOwnUserNamespace(t *testing.T) {
	own, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	out := sh(t, "readlink /proc/self/ns/user", func(s *specs.Spec) { setNamespace(s, specs.UserNamespace, "/proc/self/ns/user") })
	if strings.TrimSpace(out) != own {
		t.Fatalf("container user namespace %q, want the host's %s", out, own)
	}
}

// TestUserNamespaceSharedPid: a second container of a "pod" joins the
// pinned user namespace and the first container's pid namespace by path
// (a pod-level pid namespace) and sees the first one's processes.
func TestUserNamespaceSharedPid(t *testing.T) {
	ns := pinNamespaces(t, 0)
	r := newRuntime(t)
	bundle, spec := userNSBundle(t, "/bin/sleep", "60")
	setNamespace(spec, specs.UserNamespace, ns["user"])
	writeSpec(t, bundle, spec)
	startQuiet(t, r, "pod-a", bundle)
	st, err := r.State("pod-a")
	if err != nil {
		t.Fatal(err)
	}
	bundle2, spec2 := userNSBundle(t, "/bin/sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
	setNamespace(spec2, specs.UserNamespace, ns["user"])
	setNamespace(spec2, specs.PIDNamespace, "/proc/"+strconv.Itoa(st.Pid)+"/ns/pid")
	out, code := runOut(t, r, "pod-b", bundle2, spec2)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || strings.TrimSpace(lines[0]) != "/bin/sleep 60" || lines[1] == "1" {
		t.Fatalf("exit %d, output %q: want pid 1 the first container's sleep, itself not pid 1", code, out)
	}
}
