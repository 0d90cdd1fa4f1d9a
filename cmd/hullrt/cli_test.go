package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci"
)

// TestMain makes the test binary double as hullrt: with HULLRT_CLI=1 it is
// the CLI, and as the container init it is caught by MaybeInit.
func TestMain(m *testing.M) {
	oci.MaybeInit()
	if os.Getenv("HULLRT_CLI") == "1" {
		os.Exit(runMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type cli struct {
	t    *testing.T
	root string
	bin  string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox")
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, root: t.TempDir(), bin: bin}
	t.Cleanup(func() {
		out, _ := c.run("", "list", "-q")
		for _, id := range strings.Fields(out) {
			c.run("", "delete", "--force", id)
		}
	})
	return c
}

// run runs hullrt --root ROOT args... with stdin and returns stdout+stderr.
func (c *cli) run(stdin string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, append([]string{"--root", c.root}, args...)...)
	cmd.Env = append(os.Environ(), "HULLRT_CLI=1")
	cmd.Stdin = strings.NewReader(stdin)
	// A file, not a pipe: a detached container keeps its stdio open, and
	// Wait would block on a pipe until the container exits.
	out, err := os.CreateTemp(c.t.TempDir(), "out")
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run("", args...)
	if err != nil {
		c.t.Fatalf("hullrt %v: %v\n%s", args, err, out)
	}
	return out
}

func (c *cli) status(id string) string {
	c.t.Helper()
	var st oci.State
	if err := json.Unmarshal([]byte(c.must("state", id)), &st); err != nil {
		c.t.Fatal(err)
	}
	return string(st.Status)
}

func bundle(t *testing.T, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755)
	for _, a := range []string{"sh", "sleep", "echo", "cat", "true"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
	}
	s := oci.DefaultSpec()
	s.Process.Terminal = false
	s.Process.Args = args
	s.Linux.CgroupsPath = "/hull-clitest/" + filepath.Base(dir)
	b, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	t.Cleanup(func() {
		// The empty parent every hierarchy got for cgroupsPath /hull-clitest/...
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/hull-clitest")
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	return dir
}

func TestCLILifecycle(t *testing.T) {
	c := newCLI(t)
	b := bundle(t, "/bin/sleep", "60")
	pidFile := filepath.Join(t.TempDir(), "pid")
	c.must("create", "-b", b, "--pid-file", pidFile, "--no-new-keyring", "c1")
	if s := c.status("c1"); s != "created" {
		t.Fatalf("after create: %s", s)
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil || len(pid) == 0 {
		t.Fatalf("pid file: %v", err)
	}
	c.must("start", "c1")
	if s := c.status("c1"); s != "running" {
		t.Fatalf("after start: %s", s)
	}
	out, err := c.run("", "exec", "c1", "/bin/sh", "-c", "echo in-exec; exit 5")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 || !strings.Contains(out, "in-exec") {
		t.Fatalf("exec: %v %q", err, out)
	}
	var pids []int
	// The exec'd process leaves the cgroup as it exits; give the kernel a
	// moment rather than racing it.
	for i := 0; i < 100; i++ {
		if err := json.Unmarshal([]byte(c.must("ps", "--format", "json", "c1")), &pids); err != nil || len(pids) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 1 || strconv.Itoa(pids[0]) != string(pid) {
		var who []string
		for _, p := range pids {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/status")
			who = append(who, strings.SplitN(string(b), "\n", 4)[:3]...)
		}
		t.Fatalf("ps: %v (init %s): %v", pids, pid, who)
	}
	c.must("pause", "c1")
	if s := c.status("c1"); s != "paused" {
		t.Fatalf("after pause: %s", s)
	}
	c.must("resume", "c1")
	if _, err := c.run(`{"memory":{"limit":33554432},"pids":{"limit":77}}`, "update", "--resources", "-", "c1"); err != nil {
		t.Fatal(err)
	}
	lim, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory/hull-clitest", filepath.Base(b), "memory.limit_in_bytes"))
	if strings.TrimSpace(string(lim)) != "33554432" {
		t.Fatalf("update did not set the memory limit: %q", lim)
	}
	var ev struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(c.must("events", "--stats", "c1")), &ev); err != nil || ev.Type != "stats" || len(ev.Data) < 10 {
		t.Fatalf("events --stats: %v %+v", err, ev)
	}
	var list []oci.State
	if err := json.Unmarshal([]byte(c.must("list", "--format", "json")), &list); err != nil || len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if _, err := c.run("", "delete", "c1"); err == nil {
		t.Fatal("delete of a running container without --force succeeded")
	}
	c.must("kill", "c1", "9")
	for i := 0; i < 200 && c.status("c1") != "stopped"; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if s := c.status("c1"); s != "stopped" {
		t.Fatalf("after kill: %s", s)
	}
	c.must("delete", "c1")
	if _, err := c.run("", "state", "c1"); err == nil {
		t.Fatal("state of a deleted container succeeded")
	}
}

func TestCLIRunAndJSONLog(t *testing.T) {
	c := newCLI(t)
	b := bundle(t, "/bin/sh", "-c", "echo hello-run; exit 4")
	out, err := c.run("", "run", "--bundle", b, "r1")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 || !strings.Contains(out, "hello-run") {
		t.Fatalf("run: %v %q", err, out)
	}
	if _, err := c.run("", "state", "r1"); err == nil {
		t.Fatal("run left the container behind")
	}
	log := filepath.Join(t.TempDir(), "log.json")
	if _, err := c.run("", "--log", log, "--log-format", "json", "start", "missing"); err == nil {
		t.Fatal("start of a missing container succeeded")
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(raw), &line); err != nil {
		t.Fatalf("log is not one JSON line: %q", raw)
	}
	if line["level"] != "error" || !strings.Contains(line["msg"], "missing") || line["time"] == "" {
		t.Fatalf("log line %v", line)
	}
}

func TestCLIFeaturesAndSpec(t *testing.T) {
	c := newCLI(t)
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
	}
	if err := json.Unmarshal([]byte(c.must("features")), &f); err != nil || f.OCIVersionMax != specs.Version || len(f.Hooks) != 6 {
		t.Fatalf("features: %v %+v", err, f)
	}
	dir := t.TempDir()
	c.must("spec", "--bundle", dir)
	if _, err := oci.LoadSpec(dir); err != nil && !strings.Contains(err.Error(), "rootfs") {
		t.Fatalf("spec output does not load: %v", err)
	}
	if _, err := c.run("", "kill", "x", "NOSUCHSIG"); err == nil {
		t.Fatal("kill with an unknown signal succeeded")
	}
	for in, want := range map[string]int{"KILL": 9, "SIGTERM": 15, "hup": 1, "10": 10} {
		if got, err := parseSignal(in); err != nil || int(got) != want {
			t.Errorf("parseSignal(%q) = %d, %v", in, got, err)
		}
	}
}
