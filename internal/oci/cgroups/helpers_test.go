package cgroups

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

func requireHost(t *testing.T, layouts ...Layout) *system {
	t.Helper()
	requireRoot(t)
	s, err := hostSystem()
	if err != nil {
		t.Fatalf("hostSystem: %v", err)
	}
	for _, l := range layouts {
		if s.layout == l {
			return s
		}
	}
	t.Skipf("host cgroup layout is %v, test needs %v", s.layout, layouts)
	return nil
}

// testName is a unique relative cgroup name for one test.
func testName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	n := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return "hull-test-" + n + "-" + hex.EncodeToString(b)
}

// newTestManager creates a manager for a fresh cgroup below the test's own
// cgroup and removes it when the test ends. Register it before starting
// processes so that their cleanup (kill) runs first.
func newTestManager(t *testing.T) Manager {
	t.Helper()
	m, err := New(testName(t), "", Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return m
}

// proc is a child process driven through its stdin/stdout.
type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startProc starts sh -c script; it is killed and reaped at cleanup.
func startProc(t *testing.T, script string) *proc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	// Own process group, so cleanup reaches the script's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", script, err)
	}
	p := &proc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		// A frozen process cannot die: thaw whatever froze it.
		thawAll(cmd.Process.Pid)
		in.Close()
		_ = cmd.Wait()
	})
	return p
}

// thawAll thaws the freezer cgroups of pid (v1 and v2), best effort.
func thawAll(pid int) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return
	}
	s, err := hostSystem()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "freezer" {
			_ = os.WriteFile(filepath.Join(s.v1["freezer"].mountpoint, parts[2], "freezer.state"), []byte("THAWED"), 0)
		}
		if parts[0] == "0" && s.v2 != nil {
			_ = os.WriteFile(filepath.Join(s.v2.mountpoint, parts[2], "cgroup.freeze"), []byte("0"), 0)
		}
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// send writes a line to the process and returns the line it answers.
func (p *proc) send(t *testing.T, line string) string {
	t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		t.Fatalf("write to child: %v", err)
	}
	ans, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("read from child: %v", err)
	}
	return strings.TrimSpace(ans)
}

// procState returns the State line of /proc/PID/status ("S (sleeping)").
func procState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no State in /proc/%d/status", pid)
	return ""
}

// waitState waits (up to 10s, polling) until pid's state starts with one of
// prefixes: a thawed task is runnable before it is scheduled again, so its
// state settles only eventually.
func waitState(t *testing.T, pid int, prefixes ...string) string {
	t.Helper()
	var st string
	err := waitFor(10*time.Second, func() (bool, error) {
		st = procState(t, pid)
		for _, p := range prefixes {
			if strings.HasPrefix(st, p) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("process %d state %q, want one of %v", pid, st, prefixes)
	}
	return st
}

// procCgroups parses /proc/PID/cgroup into controller → path ("" = v2).
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := parseProcCgroup(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readTrim(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func ptr[T any](v T) *T { return &v }
