package oci

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pidsIn reads dir/cgroup.procs.
func pidsIn(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The init places itself in the v1 cgroups (only its exec thread moves)
// and is born in the cgroup2 one: after create, and after start, it must
// be in every one of the container's cgroup directories, and the exec'd
// user process must show them in /proc/self/cgroup; an exec'd process too.
func TestInitAndExecPlacedInEveryCgroup(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sleep", "100")
	spec.Linux.CgroupsPath = "/hull-test/place"
	writeSpec(t, bundle, spec)
	t.Cleanup(removeTestCgroups)
	r := newRuntime(t)
	ctx := context.Background()
	if err := r.Create(ctx, "place", CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err != nil {
		t.Fatal(err)
	}
	s, err := r.loadSaved("place")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CgroupPaths) == 0 {
		t.Fatal("no cgroup paths saved")
	}
	pid := strconv.Itoa(s.Pid)
	check := func(when string) {
		t.Helper()
		for ctl, dir := range s.CgroupPaths {
			if !strings.HasSuffix(dir, "/hull-test/place") {
				t.Errorf("%s: %q cgroup %s is not the container's", when, ctl, dir)
			}
			if procs := pidsIn(t, dir); !contains(procs, pid) {
				t.Errorf("%s: init %s is not in the %q cgroup %s (holds %v)", when, pid, ctl, dir, procs)
			}
		}
		// /proc/PID/cgroup is the thread group leader's view (what hooks
		// and monitoring tools read).
		b, err := os.ReadFile("/proc/" + pid + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !strings.HasSuffix(l, ":/hull-test/place") {
				t.Errorf("%s: /proc/%s/cgroup line %q is not the container's cgroup", when, pid, l)
			}
		}
	}
	check("created")
	if err := r.Start(ctx, "place"); err != nil {
		t.Fatal(err)
	}
	check("running")
	// The exec'd process, seen from the host (the container has its own
	// cgroup namespace, where every path reads "/").
	p := *spec.Process
	p.Args = []string{"/bin/sleep", "100"}
	proc, err := r.Exec(ctx, "place", &p, ExecOptions{Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Kill(); proc.Wait() })
	b, err := os.ReadFile("/proc/" + strconv.Itoa(proc.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(s.CgroupPaths) {
		t.Errorf("exec'd process is in %d hierarchies, the container in %d:\n%s", len(lines), len(s.CgroupPaths), b)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ":/hull-test/place") {
			t.Errorf("exec'd process: /proc/PID/cgroup line %q is not the container's cgroup", l)
		}
	}
	proc.Kill()
	proc.Wait()
	if err := r.Delete(ctx, "place", true); err != nil {
		t.Fatal(err)
	}
	for ctl, dir := range s.CgroupPaths {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q cgroup %s left behind after delete (%v)", ctl, dir, err)
		}
	}
}
