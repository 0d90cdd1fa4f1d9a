package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
)

// TestSurvivesSpawnerKill is the main life cycle: a separate "hulld" process
// spawns the monitor, output reaches the CRI log, kill -9 of that process
// leaves monitor and container running, a fresh Attach feeds stdin and reads
// output, and the exit code lands in the exit file.
func TestSurvivesSpawnerKill(t *testing.T) { forEachRuntime(t, testSurvivesSpawnerKill) }

func testSurvivesSpawnerKill(t *testing.T, rtype string) {
	bundle := makeBundle(t, false, "/bin/busybox", "sh", "-c",
		`echo hello; echo oops >&2; read x; echo "got $x"; echo "err $x" >&2; exit 7`)
	s := newSpec(t, bundle, rtype)
	s.Stdin = true

	specJSON, _ := json.Marshal(s)
	spawner := exec.Command(os.Args[0], "-test.run=^$")
	spawner.Env = append(os.Environ(), "HULL_MONITOR_TEST_SPAWN="+string(specJSON), "HULL_MONITOR_TEST_BIN="+monitorBin)
	stdout, err := spawner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A pipe that "hulld" inherited without close-on-exec (fd 4 in it): the
	// monitor must not keep it open, or its reader never sees EOF.
	leakR, leakW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer leakR.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	spawner.ExtraFiles = []*os.File{devnull, leakW}
	err = spawner.Start()
	leakW.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = spawner.Process.Kill(); _ = spawner.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("spawner: %v", err)
	}
	var spawned Handle
	if err := json.Unmarshal([]byte(line), &spawned); err != nil {
		t.Fatalf("spawner said %q", line)
	}
	if spawned.InitPID <= 0 || spawned.MonitorPID <= 0 {
		t.Fatalf("spawner handle %+v", spawned)
	}
	mustCtl(t, s, "state")
	mustCtl(t, s, "start")
	waitFor(t, "hello in the log", func() bool { return logHas(t, s.LogPath, "stdout", "F", "hello") })
	waitFor(t, "oops in the log", func() bool { return logHas(t, s.LogPath, "stderr", "F", "oops") })

	// hulld dies hard.
	if err := spawner.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = spawner.Wait()

	h, err := Attach(s.StateDir)
	if err != nil {
		t.Fatalf("Attach after spawner kill: %v", err)
	}
	_ = leakR.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := leakR.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("a pipe leaked into the spawner is still held open (read: %d, %v)", n, err)
	}
	if h.MonitorPID != spawned.MonitorPID || h.InitPID != spawned.InitPID {
		t.Fatalf("Attach found %+v, Spawn reported %+v", h, spawned)
	}
	if err := syscall.Kill(h.InitPID, 0); err != nil {
		t.Fatalf("container init %d after spawner kill: %v", h.InitPID, err)
	}
	rss, anon := memOf(t, h.MonitorPID)
	t.Logf("monitor %d with a running container: VmRSS %d kB, RssAnon %d kB", h.MonitorPID, rss, anon)
	// Text pages are shared by all monitors; what each one adds is its
	// anonymous memory, which must stay small.
	if anon > 4096 && os.Getenv("HULL_MONITOR_RACE") == "" {
		t.Errorf("monitor RssAnon %d kB exceeds 4 MiB", anon)
	}
	if _, err := ReadExit(s.StateDir); !errdefs.IsNotFound(err) {
		t.Fatalf("ReadExit while running: %v, want not found", err)
	}
	if err := h.Resize(80, 24); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Resize without a terminal: %v, want failed precondition", err)
	}

	var out, errOut bytes.Buffer
	if err := h.AttachStreams(strings.NewReader("world\n"), &out, &errOut); err != nil {
		t.Fatalf("AttachStreams: %v", err)
	}
	if out.String() != "got world\n" || errOut.String() != "err world\n" {
		t.Fatalf("attach stdout %q stderr %q", out.String(), errOut.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if e.Code != 7 || e.Signal != 0 || e.At.IsZero() {
		t.Fatalf("exit %+v, want code 7", e)
	}
	fe, err := ReadExit(s.StateDir)
	if err != nil || fe.Code != 7 {
		t.Fatalf("exit file %+v, %v", fe, err)
	}
	if !logHas(t, s.LogPath, "stdout", "F", "got world") || !logHas(t, s.LogPath, "stderr", "F", "err world") {
		b, _ := os.ReadFile(s.LogPath)
		t.Fatalf("log lacks the attached session's output:\n%s", b)
	}
	waitFor(t, "monitor exit", func() bool { return !h.Alive() })
	if _, err := Attach(s.StateDir); !errdefs.IsNotFound(err) {
		t.Fatalf("Attach after exit: %v, want not found", err)
	}
}

// TestSignalExitReopenLongStateDir: a container killed by SIGKILL exits 137;
// ReopenLog switches to a new file after rotation; a state dir whose socket
// path exceeds sun_path still works.
func TestSignalExitReopenLongStateDir(t *testing.T) { forEachRuntime(t, testSignalExitReopen) }

func testSignalExitReopen(t *testing.T, rtype string) {
	bundle := makeBundle(t, false, "/bin/busybox", "sh", "-c", `i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.05; done`)
	s := newSpec(t, bundle, rtype)
	s.StateDir = filepath.Join(s.StateDir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	ctx := context.Background()
	h, err := Spawn(ctx, monitorBin, s)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	mustCtl(t, s, "start")
	waitFor(t, "tick in the log", func() bool { return fileContains(s.LogPath, " stdout F tick ") })

	rotated := s.LogPath + ".1"
	if err := os.Rename(s.LogPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := h.ReopenLog(); err != nil {
		t.Fatalf("ReopenLog: %v", err)
	}
	waitFor(t, "tick in the reopened log", func() bool { return fileContains(s.LogPath, " stdout F tick ") })

	// An attach session ends when its context does (the remote client left).
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := h.AttachContext(actx, nil, cancelOnWrite{cancel}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("AttachContext after cancel: %v, want context.Canceled", err)
	}
	if !h.Alive() {
		t.Fatal("monitor died with its attach client")
	}

	mustCtl(t, s, "kill")
	e, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if e.Code != 137 || e.Signal != int(syscall.SIGKILL) {
		t.Fatalf("exit %+v, want 137 / signal 9", e)
	}
	waitFor(t, "monitor exit", func() bool { return !h.Alive() })
	if _, err := os.Stat(filepath.Join(s.StateDir, ctlSocket)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control socket left behind: %v", err)
	}
}

// TestTerminal: the pty arrives through the console socket, Resize reaches
// the container, output is logged as stdout, attach feeds the terminal and,
// with StdinOnce, the end of the attach's stdin is an EOF (^D) for `cat`.
func TestTerminal(t *testing.T) { forEachRuntime(t, testTerminal) }

func testTerminal(t *testing.T, rtype string) {
	bundle := makeBundle(t, true, "/bin/busybox", "sh", "-c", `busybox stty size; read x; echo "tty:$x"; cat; exit 3`)
	s := newSpec(t, bundle, rtype)
	s.StateDir = filepath.Join(s.StateDir, strings.Repeat("t", 100))
	s.Terminal, s.Stdin, s.StdinOnce = true, true, true
	ctx := context.Background()
	h, err := Spawn(ctx, monitorBin, s)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if err := h.Resize(101, 37); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	mustCtl(t, s, "start")
	waitFor(t, "stty size in the log", func() bool { return fileContains(s.LogPath, " stdout F 37 101\r") })
	var out bytes.Buffer
	if err := h.AttachStreams(strings.NewReader("abc\n"), &out, nil); err != nil {
		t.Fatalf("AttachStreams: %v", err)
	}
	if !strings.Contains(out.String(), "tty:abc") {
		t.Fatalf("attach output %q lacks tty:abc", out.String())
	}
	e, err := h.Wait(ctx)
	if err != nil || e.Code != 3 {
		t.Fatalf("Wait: %+v, %v; want code 3", e, err)
	}
	if !fileContains(s.LogPath, " stdout F tty:abc\r") {
		b, _ := os.ReadFile(s.LogPath)
		t.Fatalf("log lacks tty:abc:\n%s", b)
	}
}

// TestCreateFailure: the runtime's error text comes back from Spawn and no
// monitor (or container) is left behind.
func TestCreateFailure(t *testing.T) { forEachRuntime(t, testCreateFailure) }

func testCreateFailure(t *testing.T, rtype string) {
	for name, tc := range map[string]struct {
		breakIt func(t *testing.T, bundle string)
		want    string // in the runtime's error text
	}{
		"missing rootfs": {func(t *testing.T, bundle string) {
			editConfig(t, bundle, func(cfg map[string]any) {
				cfg["root"].(map[string]any)["path"] = "/nonexistent-rootfs"
			})
		}, "nonexistent-rootfs"},
		"malformed config": {func(t *testing.T, bundle string) {
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{bad"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "invalid character"},
	} {
		t.Run(name, func(t *testing.T) {
			bundle := makeBundle(t, false, "/bin/busybox", "true")
			tc.breakIt(t, bundle)
			s := newSpec(t, bundle, rtype)
			_, err := Spawn(context.Background(), monitorBin, s)
			if err == nil {
				t.Fatal("Spawn of a broken bundle succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Spawn error %q lacks the runtime's text %q", err, tc.want)
			}
			if pids := processesMentioning(s.StateDir); len(pids) > 0 {
				t.Fatalf("processes left behind: %v", pids)
			}
			if err := ctl(s, "state"); err == nil {
				t.Fatalf("container %s left behind", s.ID)
			}
			if _, err := Attach(s.StateDir); !errdefs.IsNotFound(err) {
				t.Fatalf("Attach after failed create: %v, want not found", err)
			}
			if b, _ := os.ReadFile(s.LogPath); len(b) > 0 {
				t.Fatalf("runtime error leaked into the container log: %s", b)
			}
		})
	}
}

func TestSpecValidation(t *testing.T) {
	good := Spec{ID: "c1", Bundle: "/b", StateDir: "/s", RuntimeType: RuntimeOCI, RuntimePath: "/usr/sbin/runc"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for name, mutate := range map[string]func(*Spec){
		"ID":          func(s *Spec) { s.ID = "" },
		"ID ":         func(s *Spec) { s.ID = "../x" },
		"Bundle":      func(s *Spec) { s.Bundle = "rel" },
		"StateDir":    func(s *Spec) { s.StateDir = "" },
		"LogPath":     func(s *Spec) { s.LogPath = "x.log" },
		"RuntimeType": func(s *Spec) { s.RuntimeType = "kata" },
		"RuntimePath": func(s *Spec) { s.RuntimePath = "runc" },
		"StdinOnce":   func(s *Spec) { s.StdinOnce = true },
	} {
		s := good
		mutate(&s)
		err := s.Validate()
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s: %v, want invalid argument naming it", name, err)
		}
	}
	if _, err := Spawn(context.Background(), "relative-monitor", good); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative monitor binary: %v", err)
	}
	dir := t.TempDir()
	if _, err := ReadExit(dir); !errdefs.IsNotFound(err) {
		t.Errorf("ReadExit of an empty dir: %v", err)
	}
	if _, err := Attach(dir); !errdefs.IsNotFound(err) {
		t.Errorf("Attach of an empty dir: %v", err)
	}
}

// cancelOnWrite cancels a context on the first output it receives.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return len(p), nil
}

// TestStdinOnce: the container's stdin closes when the first attach session
// closes its stdin, so `cat` ends and the container exits.
func TestStdinOnce(t *testing.T) { forEachRuntime(t, testStdinOnce) }

func testStdinOnce(t *testing.T, rtype string) {
	bundle := makeBundle(t, false, "/bin/busybox", "sh", "-c", `cat; echo done`)
	s := newSpec(t, bundle, rtype)
	s.Stdin, s.StdinOnce = true, true
	ctx := context.Background()
	h, err := Spawn(ctx, monitorBin, s)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	mustCtl(t, s, "start")
	var out bytes.Buffer
	if err := h.AttachStreams(strings.NewReader("abc\n"), &out, io.Discard); err != nil {
		t.Fatalf("AttachStreams: %v", err)
	}
	if out.String() != "abc\ndone\n" {
		t.Fatalf("attach output %q, want the echo and done", out.String())
	}
	if e, err := h.Wait(ctx); err != nil || e.Code != 0 {
		t.Fatalf("Wait: %+v, %v", e, err)
	}
}

// TestMonitorKilled: a monitor killed with SIGKILL leaves no exit record;
// Wait says so instead of blocking, Attach reports it gone, and a second
// Spawn into the same state dir is refused only while a monitor lives.
func TestMonitorKilled(t *testing.T) {
	requireRoot(t)
	bundle := makeBundle(t, false, "/bin/busybox", "sleep", "1000")
	s := newSpec(t, bundle, RuntimeOCI)
	ctx := context.Background()
	h, err := Spawn(ctx, monitorBin, s)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	if _, err := Spawn(ctx, monitorBin, s); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second Spawn with a live monitor: %v, want already exists", err)
	}
	if err := syscall.Kill(h.MonitorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = h.Wait(ctx)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Wait on a killed monitor: %v, want unavailable", err)
	}
	if _, err := Attach(s.StateDir); !errdefs.IsNotFound(err) {
		t.Fatalf("Attach to a killed monitor: %v, want not found", err)
	}
	if _, err := ReadExit(s.StateDir); !errdefs.IsNotFound(err) {
		t.Fatalf("ReadExit after a killed monitor: %v, want not found", err)
	}
}

// TestRuntimeStderrFallback: an OCI runtime that fails without a json log
// still has its stderr text reported, and nothing reaches the CRI log.
func TestRuntimeStderrFallback(t *testing.T) {
	requireRoot(t)
	bundle := makeBundle(t, false, "/bin/busybox", "true")
	s := newSpec(t, bundle, RuntimeOCI)
	s.RuntimePath = filepath.Join(t.TempDir(), "fake-runtime")
	if err := os.WriteFile(s.RuntimePath, []byte("#!/bin/sh\necho \"boom from runtime\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Spawn(context.Background(), monitorBin, s)
	if err == nil || !strings.Contains(err.Error(), "boom from runtime") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Spawn with a failing runtime: %v", err)
	}
	if b, _ := os.ReadFile(s.LogPath); len(b) > 0 {
		t.Fatalf("runtime error leaked into the container log: %s", b)
	}
}

// TestConcurrentSpawn: monitors spawned side by side (as hulld does for
// parallel CreateContainer calls) each report their own container: own log
// line, own exit code.
func TestConcurrentSpawn(t *testing.T) { forEachRuntime(t, testConcurrentSpawn) }

func testConcurrentSpawn(t *testing.T, rtype string) {
	const n = 8
	ctx := context.Background()
	specs := make([]Spec, n)
	for i := range specs {
		bundle := makeBundle(t, false, "/bin/busybox", "sh", "-c", fmt.Sprintf("echo container-%d; exit %d", i, 10+i))
		specs[i] = newSpec(t, bundle, rtype)
	}
	errs := make(chan error, n)
	for i := range specs {
		go func() {
			s := specs[i]
			h, err := Spawn(ctx, monitorBin, s)
			if err == nil {
				err = ctl(s, "start")
			}
			if err != nil {
				errs <- err
				return
			}
			e, err := h.Wait(ctx)
			switch {
			case err != nil:
			case e.Code != 10+i:
				err = fmt.Errorf("container %d exited %d, want %d", i, e.Code, 10+i)
			case !fileContains(s.LogPath, fmt.Sprintf(" stdout F container-%d\n", i)):
				err = fmt.Errorf("container %d: its line is not in its log", i)
			}
			errs <- err
		}()
	}
	for range specs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestSpawnCancel: a create that outlives Spawn's context is killed with the
// monitor (its whole process group), and Spawn says why.
func TestSpawnCancel(t *testing.T) {
	requireRoot(t)
	bundle := makeBundle(t, false, "/bin/busybox", "true")
	s := newSpec(t, bundle, RuntimeOCI)
	s.RuntimePath = filepath.Join(t.TempDir(), "hanging-runtime")
	// The looping shell keeps the runtime's arguments (they name the state
	// dir) in its command line, so processesMentioning finds it if it lives.
	if err := os.WriteFile(s.RuntimePath, []byte("#!/bin/sh\nexec /bin/busybox sh -c 'while :; do /bin/busybox sleep 1; done' hang \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Spawn(ctx, monitorBin, s)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Spawn with a hanging runtime: %v, want deadline exceeded", err)
	}
	waitFor(t, "the hanging runtime to be gone", func() bool { return len(processesMentioning(s.StateDir)) == 0 })
}

// TestRunsc: gVisor's runsc (the handler for untrusted pods) under the
// monitor: its sandbox is adopted and reaped like runc's init, stdin and
// logs flow, the exit code is the container's.
func TestRunsc(t *testing.T) {
	requireRoot(t)
	runsc, err := exec.LookPath("runsc")
	if err != nil {
		if runsc = "/root/go/bin/runsc"; !fileExists(runsc) {
			t.Skip("needs runsc (go install gvisor.dev/gvisor/runsc@latest)")
		}
	}
	bundle := makeBundle(t, false, "/bin/busybox", "sh", "-c", `echo hi; read x; echo "got $x"; exit 5`)
	s := newSpec(t, bundle, RuntimeOCI)
	s.RuntimePath, s.Stdin = runsc, true
	t.Cleanup(func() {
		_ = ctl(s, "delete") // before the unmount; delete runs again harmlessly
		unmountUnder(t, s.RuntimeRoot)
	})
	ctx := context.Background()
	h, err := Spawn(ctx, monitorBin, s)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	mustCtl(t, s, "start")
	waitFor(t, "hi in the log", func() bool { return logHas(t, s.LogPath, "stdout", "F", "hi") })
	var out bytes.Buffer
	if err := h.AttachStreams(strings.NewReader("yo\n"), &out, io.Discard); err != nil || out.String() != "got yo\n" {
		t.Fatalf("AttachStreams: %q, %v", out.String(), err)
	}
	if e, err := h.Wait(ctx); err != nil || e.Code != 5 {
		t.Fatalf("Wait: %+v, %v; want code 5", e, err)
	}
}

// TestTwoAttachSessions: two sessions receive the same output at once, and
// both end cleanly when the container exits.
func TestTwoAttachSessions(t *testing.T) {
	requireRoot(t)
	bundle := makeBundle(t, false, "/bin/busybox", "sh", "-c", `while true; do echo tick; sleep 0.05; done`)
	s := newSpec(t, bundle, RuntimeHullrt)
	ctx := context.Background()
	h, err := Spawn(ctx, monitorBin, s)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	mustCtl(t, s, "start")
	seen := make(chan struct{}, 2)
	done := make(chan error, 2)
	for range 2 {
		go func() {
			w := &signalOn{want: "tick\n", seen: seen}
			done <- h.AttachStreams(nil, w, io.Discard)
		}()
	}
	<-seen
	<-seen
	mustCtl(t, s, "kill")
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("attach session: %v", err)
		}
	}
	if e, err := h.Wait(ctx); err != nil || e.Code != 137 {
		t.Fatalf("Wait: %+v, %v; want 137", e, err)
	}
}

// signalOn signals seen once when the output so far contains want.
type signalOn struct {
	want string
	got  strings.Builder
	seen chan<- struct{}
	done bool
}

func (s *signalOn) Write(p []byte) (int, error) {
	s.got.Write(p)
	if !s.done && strings.Contains(s.got.String(), s.want) {
		s.done = true
		s.seen <- struct{}{}
	}
	return len(p), nil
}
