package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestInheritedFDsNotLeaked: an fd hulld inherits without close-on-exec
// (here the write end of a pipe, as a shell or supervisor might leave
// one) reaches neither the container's monitor, nor the pod's pause
// process, nor the container itself, nor a process ExecSync starts.
func TestInheritedFDsNotLeaked(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", w.Fd()))
	if err != nil || !strings.HasPrefix(target, "pipe:[") {
		t.Fatalf("pipe link %q: %v", target, err)
	}

	d := startHulld(t, "")
	// Restart it with the pipe as its fd 3: exec.Cmd dups ExtraFiles
	// without close-on-exec, like any inherited fd.
	d.stop()
	d.files = []*os.File{w}
	d.start()
	if fds := fdsWith(t, d.cmd.Process.Pid, target); len(fds) == 0 {
		t.Fatalf("hulld (pid %d) does not hold the inherited %s: the test would prove nothing", d.cmd.Process.Pid, target)
	}

	d.crictl("pull", busybox)
	pidNS := `"linux":{"security_context":{"namespace_options":{"pid":0}}}`
	pod := d.podJSON("fds", "")
	b, _ := os.ReadFile(pod)
	writeFile(t, pod, strings.Replace(string(b), `"linux":{}`, pidNS, 1))
	p := d.crictl("runp", pod)
	cj := d.ctrJSON("fds", "exec sleep 300", "")
	b, _ = os.ReadFile(cj)
	writeFile(t, cj, strings.Replace(string(b), `"linux":{}`, pidNS, 1))
	c := d.crictl("create", p, cj, pod)
	d.crictl("start", c)

	info := inspectJSON(t, d, "inspect", c)
	procs := map[string]int{
		"container": pidField(t, info, "pid"),
		"monitor":   pidField(t, info, "monitorPid"),
		"pause":     pidField(t, inspectJSON(t, d, "inspectp", p), "pausePid"),
	}
	for what, pid := range procs {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			t.Fatalf("%s pid %d: %v", what, pid, err)
		}
		if fds := fdsWith(t, pid, target); len(fds) > 0 {
			t.Errorf("%s (pid %d) holds hulld's inherited %s as fd %v", what, pid, target, fds)
		}
	}
	// A process started by ExecSync (hulld's exec helper joins the
	// container) must not have it either.
	if out := d.crictl("exec", "-s", c, "ls", "-l", "/proc/self/fd/"); strings.Contains(out, target) {
		t.Errorf("an exec'd process holds hulld's inherited %s:\n%s", target, out)
	} else if !strings.Contains(out, "/dev/") && !strings.Contains(out, "pipe:[") {
		t.Errorf("ls -l of the exec'd process's fds printed no links:\n%s", out)
	}
	// Any other process that holds it (a CNI plugin left running, a
	// helper) leaked it too: only this test and hulld may.
	procDirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range procDirs {
		pid, _ := strconv.Atoi(filepath.Base(dir))
		if pid == os.Getpid() || pid == d.cmd.Process.Pid {
			continue
		}
		if fds := fdsWith(t, pid, target); len(fds) > 0 {
			comm, _ := os.ReadFile(dir + "/comm")
			t.Errorf("pid %d (%s) holds hulld's inherited %s as fd %v", pid, strings.TrimSpace(string(comm)), target, fds)
		}
	}
}

// inspectJSON runs crictl VERB -o json ID (the verbose form: the info keys at the top level).
func inspectJSON(t *testing.T, d *daemon, verb, id string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(d.crictl(verb, "-o", "json", id)), &v); err != nil {
		t.Fatalf("crictl %s %s: %v", verb, id, err)
	}
	return v
}

// pidField reads a pid from a crictl inspect info map (crictl prints it
// as a number or a string).
func pidField(t *testing.T, v map[string]any, path string) int {
	t.Helper()
	var pid int
	switch x := field(v, path).(type) {
	case float64:
		pid = int(x)
	case string:
		pid, _ = strconv.Atoi(x)
	}
	if pid <= 0 {
		t.Fatalf("no %s in inspect output: %v", path, v)
	}
	return pid
}

// fdsWith lists the fds of pid whose link target is target. A process
// that exits meanwhile holds nothing.
func fdsWith(t *testing.T, pid int, target string) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var fds []string
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == target {
			fds = append(fds, e.Name())
		}
	}
	return fds
}
