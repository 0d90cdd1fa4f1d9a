package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hull/internal/errdefs"
	"hull/internal/oci"
)

const runcPath = "/usr/sbin/runc"

// monitorBin is cmd/hull-monitor built once by TestMain: the tests run the
// real binary, as hulld does.
var monitorBin string

func TestMain(m *testing.M) {
	if spec := os.Getenv("HULL_MONITOR_TEST_SPAWN"); spec != "" {
		os.Exit(spawnerMain(spec))
	}
	dir, err := os.MkdirTemp("", "hull-monitor-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	monitorBin = filepath.Join(dir, "hull-monitor")
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // where these machines install it
	}
	args := []string{"build", "-o", monitorBin}
	if os.Getenv("HULL_MONITOR_RACE") != "" {
		// Race-check the monitor process itself, not only the client.
		args = append(args, "-race")
	}
	out, err := exec.Command(goBin, append(args, "hull/cmd/hull-monitor")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hull-monitor: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// The hullrt runtime type runs the hullrt binary that sits next to the monitor.
	if out, err := exec.Command(goBin, "build", "-o", filepath.Join(dir, "hullrt"), "hull/cmd/hullrt").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build hullrt: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// spawnerMain plays hulld in a separate process: it spawns a monitor, prints
// the handle and waits to be killed.
func spawnerMain(specJSON string) int {
	var s Spec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	h, err := Spawn(context.Background(), os.Getenv("HULL_MONITOR_TEST_BIN"), s)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	b, _ := json.Marshal(h)
	fmt.Println(string(b))
	select {}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if !rootWithRunc() {
		t.Skipf("needs root and runc at %s to create containers", runcPath)
	}
}

func rootWithRunc() bool {
	_, err := os.Stat(runcPath)
	return os.Geteuid() == 0 && err == nil
}

// makeBundle builds a bundle whose rootfs holds only a static busybox, from
// `runc spec` with args and terminal replaced.
func makeBundle(t *testing.T, terminal bool, args ...string) string {
	return makeBundleTB(t, terminal, args...)
}

func makeBundleTB(t testing.TB, terminal bool, args ...string) string {
	t.Helper()
	bundle := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "/bin/busybox", filepath.Join(bundle, "rootfs", "bin", "busybox"))
	if out, err := exec.Command(runcPath, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	editConfig(t, bundle, func(cfg map[string]any) {
		proc := cfg["process"].(map[string]any)
		proc["args"] = args
		proc["terminal"] = terminal
		proc["env"] = []string{"PATH=/bin", "TERM=xterm"}
	})
	return bundle
}

// editConfig rewrites bundle/config.json through edit.
func editConfig(t testing.TB, bundle string, edit func(map[string]any)) {
	t.Helper()
	cfgPath := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Skipf("needs %s: %v", from, err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// newSpec returns a runc Spec for bundle with a fresh id, runtime root, state
// dir and log path, and registers the cleanup of the container and of any
// monitor still running.
// runtimeTypes are the runtime types every life-cycle test runs with.
var runtimeTypes = []string{RuntimeOCI, RuntimeHullrt}

// forEachRuntime runs fn as a subtest per runtime type.
func forEachRuntime(t *testing.T, fn func(t *testing.T, rtype string)) {
	for _, rt := range runtimeTypes {
		t.Run(rt, func(t *testing.T) {
			requireRoot(t)
			fn(t, rt)
		})
	}
}

func newSpec(t *testing.T, bundle, rtype string) Spec {
	return newSpecTB(t, bundle, rtype)
}

func newSpecTB(t testing.TB, bundle, rtype string) Spec {
	t.Helper()
	base := t.TempDir()
	id := fmt.Sprintf("hull-mon-%d-%d", os.Getpid(), time.Now().UnixNano())
	s := Spec{
		ID:          id,
		Bundle:      bundle,
		LogPath:     filepath.Join(base, "logs", "c.log"),
		RuntimeType: rtype,
		RuntimeRoot: filepath.Join(base, "rt"),
		StateDir:    filepath.Join(base, "state"),
	}
	if rtype == RuntimeOCI {
		s.RuntimePath = runcPath
	}
	t.Cleanup(func() { cleanupContainer(t, s) })
	return s
}

func cleanupContainer(t testing.TB, s Spec) {
	if b, _ := os.ReadFile(filepath.Join(s.StateDir, monitorLogFile)); strings.Contains(string(b), "DATA RACE") {
		t.Errorf("the monitor reported a data race:\n%s", b)
	}
	var st state
	if readJSON(filepath.Join(s.StateDir, stateFile), &st) == nil && alive(st.MonitorPID, st.MonitorStart) {
		_ = syscall.Kill(st.MonitorPID, syscall.SIGKILL)
	}
	if err := ctl(s, "delete"); err != nil && !strings.Contains(err.Error(), "not exist") && !errdefs.IsNotFound(err) {
		t.Logf("delete %s: %v", s.ID, err)
	}
}

// ctl drives the container as hulld's runtime handler would: start, kill
// (SIGKILL), delete (forced) or state (error unless it exists), with runc's
// CLI or in-process with internal/oci.
func ctl(s Spec, op string) error {
	if s.RuntimeType == RuntimeHullrt {
		r, err := oci.New(oci.Options{Root: s.RuntimeRoot})
		if err != nil {
			return err
		}
		switch op {
		case "start":
			return r.Start(context.Background(), s.ID)
		case "kill":
			return r.Kill(s.ID, syscall.SIGKILL, false)
		case "delete":
			return r.Delete(context.Background(), s.ID, true)
		case "state":
			st, err := r.State(s.ID)
			if err == nil && st.Status != "created" {
				err = fmt.Errorf("container %s is %s", s.ID, st.Status)
			}
			return err
		}
		return fmt.Errorf("unknown op %q", op)
	}
	var args []string
	switch op {
	case "start", "state":
		args = []string{op, s.ID}
	case "kill":
		args = []string{"kill", s.ID, "KILL"}
	case "delete":
		args = []string{"delete", "--force", s.ID}
	}
	out, err := exec.Command(s.RuntimePath, append([]string{"--root", s.RuntimeRoot}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v: %s", filepath.Base(s.RuntimePath), args, err, out)
	}
	if op == "state" && !strings.Contains(string(out), `"created"`) {
		return fmt.Errorf("runc state: %s", out)
	}
	return nil
}

func mustCtl(t testing.TB, s Spec, op string) {
	t.Helper()
	if err := ctl(s, op); err != nil {
		t.Fatalf("%s %s: %v", op, s.ID, err)
	}
}

// waitFor polls cond until it holds; the generous limit only bounds a broken
// run, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileContains(path, substr string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), substr)
}

// logHas reports whether the CRI log at path has a record of stream with tag
// and message msg, checking the record's format on the way.
func logHas(t *testing.T, path, stream, tag, msg string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	// Only complete records: a concurrent read may catch a write mid-way.
	text := string(b)
	text = text[:strings.LastIndexByte(text, '\n')+1]
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			t.Fatalf("log line %q is not CRI format", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Fatalf("log line %q: timestamp: %v", line, err)
		}
		if f[1] == stream && f[2] == tag && f[3] == msg {
			return true
		}
	}
	return false
}

// memOf returns VmRSS and RssAnon of pid in kB.
func memOf(t *testing.T, pid int) (rss, anon int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		var v int
		if n, _ := fmt.Sscanf(l, "VmRSS: %d kB", &v); n == 1 {
			rss = v
		}
		if n, _ := fmt.Sscanf(l, "RssAnon: %d kB", &v); n == 1 {
			anon = v
		}
	}
	if rss == 0 || anon == 0 {
		t.Fatalf("no VmRSS/RssAnon in /proc/%d/status", pid)
	}
	return rss, anon
}

// processesMentioning lists pids whose command line contains s.
func processesMentioning(s string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// unmountUnder unmounts what a runtime left mounted below dir (runsc keeps a
// bind-mounted "null-netns" in its root), so that the temp dir can go.
func unmountUnder(t testing.TB, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			if err := syscall.Unmount(f[4], syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", f[4], err)
			}
		}
	}
}
