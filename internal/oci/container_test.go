package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

func TestRunPrintsOutputAndExitCode(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sh", "-c", "echo hello-from-hull; exit 3")
	r := newRuntime(t)
	out, code := runOut(t, r, "exitcode", bundle, spec)
	if !strings.Contains(out, "hello-from-hull") {
		t.Fatalf("output %q lacks the echo", out)
	}
	if code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "exitcode")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir left after delete: %v", err)
	}
}

func TestLifecycleStates(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sleep", "60")
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	ctx := context.Background()
	if err := r.Create(ctx, "lc", CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err != nil {
		t.Fatal(err)
	}
	want := func(status specs.ContainerState) {
		t.Helper()
		st, err := r.State("lc")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != status {
			t.Fatalf("status %s, want %s", st.Status, status)
		}
	}
	want(specs.StateCreated)
	if err := r.Create(ctx, "lc", CreateOptions{Bundle: bundle}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second create: %v, want already exists", err)
	}
	if err := r.Delete(ctx, "lc", false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("delete of a created container without force: %v, want failed precondition", err)
	}
	if err := r.Start(ctx, "lc"); err != nil {
		t.Fatal(err)
	}
	want(specs.StateRunning)
	if err := r.Start(ctx, "lc"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second start: %v, want failed precondition", err)
	}
	if err := r.Delete(ctx, "lc", false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("delete running: %v, want failed precondition", err)
	}
	pids, err := r.Processes("lc")
	if err != nil || len(pids) != 1 {
		t.Fatalf("processes: %v %v, want one", pids, err)
	}
	if err := r.Kill("lc", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait("lc"); err != nil {
		t.Fatal(err)
	}
	want(specs.StateStopped)
	if err := r.Kill("lc", syscall.SIGKILL, false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("kill of stopped: %v", err)
	}
	if err := r.Delete(ctx, "lc", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.State("lc"); !errdefs.IsNotFound(err) {
		t.Fatalf("state after delete: %v, want not found", err)
	}
}

func TestProcessAttributes(t *testing.T) {
	umask := uint32(0o027)
	out := sh(t, `echo "host=$(hostname)"; echo "dom=$(cat /proc/sys/kernel/domainname)"; id; umask; echo "cwd=$(pwd)"; echo "env=$FOO";
		grep -E '^(NoNewPrivs|CapEff|CapBnd)' /proc/self/status; ulimit -n`, func(s *specs.Spec) {
		s.Hostname = "hull-test"
		s.Domainname = "hull.example"
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 2001}, Umask: &umask}
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "FOO=bar")
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 512}}
		c := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
		// A non-root process keeps capabilities across execve only
		// through the ambient set.
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c, Ambient: c}
	})
	for _, w := range []string{"host=hull-test", "dom=hull.example", "uid=1000 gid=1001", "groups=2000,2001", "0027",
		"cwd=/tmp", "env=bar", "NoNewPrivs:\t1", "CapEff:\t0000000000000420", "CapBnd:\t0000000000000420", "\n512\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestMountsMaskedAndReadonly(t *testing.T) {
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "f"), []byte("from-host"), 0o644)
	out := sh(t, `cat /data/f; echo; grep ' /scratch ' /proc/self/mounts; cat /proc/kcore | wc -c;
		echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable; touch /rootfile 2>/dev/null && echo root-writable;
		touch /data/new 2>/dev/null && echo data-writable; ls -l /dev/null; test -c /dev/urandom && echo urandom-ok; echo done`,
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}},
				specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=1m"}})
		})
	for _, w := range []string{"from-host", "/scratch tmpfs rw,nosuid,nodev", "\n0\n", "1,   3", "urandom-ok", "done"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, bad := range []string{"sys-writable", "root-writable", "data-writable"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s:\n%s", bad, out)
		}
	}
	if _, err := os.Stat(filepath.Join(hostDir, "new")); err == nil {
		t.Error("a read-only bind mount let the container write to the host")
	}
}

func TestDevicesAndSysctl(t *testing.T) {
	mode := os.FileMode(0o640)
	out := sh(t, `stat -c '%t:%T %a' /dev/mydev; cat /proc/sys/net/ipv4/ip_forward`, func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 7, FileMode: &mode}}
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	})
	if !strings.Contains(out, "1:7 640") || !strings.Contains(out, "\n1\n") {
		t.Fatalf("device or sysctl missing:\n%s", out)
	}
}

func TestCgroupLimitsVisibleInside(t *testing.T) {
	t.Cleanup(removeTestCgroups)
	limit := int64(64 << 20)
	pids := int64(42)
	out := sh(t, `cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max`,
		func(s *specs.Spec) {
			s.Linux.CgroupsPath = "/hull-test/" + strings.ReplaceAll(t.Name(), "/", "-")
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
		})
	if !strings.Contains(out, "67108864") || !strings.Contains(out, "42") {
		t.Fatalf("limits not visible in the container:\n%s", out)
	}
}
