package oci

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
	out := runScript(t, bundle, spec)
	t.Logf("%s", out)
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
	bundle, spec := userNSBundle(t, "/bin/sh", "-c", "stat -c %u /data/old /plain; touch /data/new && stat -c %u:%g /data/new")
	if mode == "joined" {
		setNamespace(spec, specs.UserNamespace, userns)
	} else {
		setNamespace(spec, specs.UserNamespace, "")
		spec.Linux.UIDMappings, spec.Linux.GIDMappings = testMapping, testMapping
	}
	// Mount points must exist: the container's root cannot create them in
	// a rootfs owned by the host's root.
	for _, d := range []string{"data", "plain"} {
		if err := os.Mkdir(filepath.Join(bundle, "rootfs", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}, UIDMappings: testMapping, GIDMappings: testMapping},
		specs.Mount{Destination: "/plain", Type: "bind", Source: plain, Options: []string{"rbind", "ro"}})
	out := runScript(t, bundle, spec)
	if got := strings.Fields(out); len(got) != 3 || got[0] != "0" || got[1] != "65534" || got[2] != "0:0" {
		t.Fatalf("output %q: want 0 (idmapped), 65534 (not), 0:0", out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(src, "new"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("file created through the idmapped mount is %d:%d on the host, want 0:0", st.Uid, st.Gid)
	}
}
