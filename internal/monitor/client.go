package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"hull/internal/errdefs"
)

// syncMsg is the one message a monitor writes on its sync fd: the init pid
// once the runtime's create succeeded, or the runtime's error.
type syncMsg struct {
	InitPID int    `json:"init_pid,omitempty"`
	Error   string `json:"error,omitempty"`
}

// syncFD is the monitor's fd number for the sync pipe (first ExtraFiles entry).
const syncFD = 3

// Handle is hulld's view of one live monitor. It holds no connection: every
// call dials the control socket, so a Handle is safe for concurrent use and
// stays valid across a monitor's exit (calls then fail or read the exit file).
type Handle struct {
	MonitorPID int
	InitPID    int
	StateDir   string

	monitorStart uint64
	// reaped is closed when Spawn's goroutine has waited for the monitor
	// process; nil for handles from Attach (the monitor is not our child).
	reaped chan struct{}
}

// Spawn starts monitorBinary for s, detached in its own session so that it and
// the container survive hulld, and returns once the runtime's create has
// finished: with the init pid, or with the runtime's error text (the monitor
// has then exited). Cancelling ctx before that kills the monitor (and what it
// started in its process group). After any error the caller should still
// delete the runtime's container by id (forced): a create interrupted by the
// cancellation may have left runtime state behind.
func Spawn(ctx context.Context, monitorBinary string, s Spec) (*Handle, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("container %q: create: %w", s.ID, err)
	}
	if !filepath.IsAbs(monitorBinary) {
		return nil, fmt.Errorf("monitor binary %q is not absolute: %w", monitorBinary, errdefs.ErrInvalidArgument)
	}
	if fi, err := os.Stat(s.Bundle); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("container %q: bundle %q is not a directory: %w", s.ID, s.Bundle, errdefs.ErrNotFound)
	}
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("container %q: state dir: %w", s.ID, err)
	}
	if h, err := Attach(s.StateDir); err == nil {
		return nil, fmt.Errorf("container %q: monitor %d already runs in %s: %w", s.ID, h.MonitorPID, s.StateDir, errdefs.ErrAlreadyExists)
	}
	// A dead monitor's leftovers would be mistaken for this one's.
	for _, name := range []string{stateFile, exitFile, ctlSocket, consoleSocket, pidFile, runtimeLogFile, specFile} {
		if err := os.Remove(filepath.Join(s.StateDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: clean state dir: %w", s.ID, err)
		}
	}
	if err := writeJSONAtomic(filepath.Join(s.StateDir, specFile), &s); err != nil {
		return nil, fmt.Errorf("container %q: %w", s.ID, err)
	}

	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("container %q: sync pipe: %w", s.ID, err)
	}
	defer syncR.Close()
	logf, err := os.OpenFile(filepath.Join(s.StateDir, monitorLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		syncW.Close()
		return nil, fmt.Errorf("container %q: monitor log: %w", s.ID, err)
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	cmd := exec.Command(monitorBinary, s.StateDir)
	// GOMAXPROCS in the environment takes effect before the Go runtime starts
	// its Ps; the monitor sets its GC knobs itself.
	cmd.Env = []string{"PATH=" + path, "GOMAXPROCS=1"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{syncW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	syncW.Close()
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("container %q: start monitor %s: %w", s.ID, monitorBinary, err)
	}
	reaped := make(chan struct{})
	go func() {
		// Reap the monitor whenever it exits, so it leaves no zombie while
		// hulld lives; after a hulld restart its new parent reaps it.
		_ = cmd.Wait()
		close(reaped)
	}()

	got := make(chan syncMsg, 1)
	go func() {
		var m syncMsg
		// A decode error leaves m empty: the monitor died before reporting.
		_ = json.NewDecoder(syncR).Decode(&m)
		got <- m
	}()
	var m syncMsg
	select {
	case m = <-got:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-reaped
		return nil, fmt.Errorf("container %q: create: %w", s.ID, ctx.Err())
	}
	if m.InitPID <= 0 {
		// The monitor exits right after reporting a failure; wait for it so
		// that no monitor is left behind when Spawn returns an error.
		select {
		case <-reaped:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-reaped
		}
		if m.Error == "" {
			m.Error = "monitor exited without reporting: " + tail(filepath.Join(s.StateDir, monitorLogFile))
		}
		return nil, fmt.Errorf("container %q: create: %s", s.ID, m.Error)
	}
	// The monitor recorded its own start time before reporting; /proc could
	// no longer tell it if the container and the monitor ended already.
	var st state
	if err := readJSON(filepath.Join(s.StateDir, stateFile), &st); err != nil {
		return nil, fmt.Errorf("container %q: monitor %d: %w", s.ID, cmd.Process.Pid, err)
	}
	return &Handle{MonitorPID: cmd.Process.Pid, InitPID: m.InitPID, StateDir: s.StateDir, monitorStart: st.MonitorStart, reaped: reaped}, nil
}

// tail returns the last few hundred bytes of a file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 512 {
		b = b[len(b)-512:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return string(b)
}

// Attach reconnects to the monitor recorded in stateDir (after a hulld
// restart). It returns an ErrNotFound error when the container was never
// created there or its monitor is gone; ReadExit then tells whether the
// container's exit was recorded.
func Attach(stateDir string) (*Handle, error) {
	var st state
	if err := readJSON(filepath.Join(stateDir, stateFile), &st); err != nil {
		return nil, fmt.Errorf("monitor state: %w", err)
	}
	if !alive(st.MonitorPID, st.MonitorStart) {
		return nil, fmt.Errorf("monitor %d for %s is gone: %w", st.MonitorPID, stateDir, errdefs.ErrNotFound)
	}
	return &Handle{MonitorPID: st.MonitorPID, InitPID: st.InitPID, StateDir: stateDir, monitorStart: st.MonitorStart}, nil
}

// Alive reports whether the monitor process still runs.
func (h *Handle) Alive() bool {
	if h.reaped != nil {
		select {
		case <-h.reaped:
			return false
		default:
		}
	}
	return alive(h.MonitorPID, h.monitorStart)
}

// Wait blocks until the container has exited and returns its exit status.
func (h *Handle) Wait(ctx context.Context) (*Exit, error) {
	for {
		if e, err := h.waitOnce(ctx); e != nil || err != nil {
			return e, err
		}
		if e, err := ReadExit(h.StateDir); err == nil {
			return e, nil
		}
		if !h.Alive() {
			// The exit file is written before the monitor exits; check once
			// more in case it exited between the two reads.
			if e, err := ReadExit(h.StateDir); err == nil {
				return e, nil
			}
			return nil, fmt.Errorf("monitor %d exited without recording an exit in %s: %w", h.MonitorPID, h.StateDir, errdefs.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitOnce asks the monitor for the exit; (nil, nil) means "ask elsewhere":
// the socket is gone or the monitor hung up.
func (h *Handle) waitOnce(ctx context.Context) (*Exit, error) {
	c, err := dialUnix(filepath.Join(h.StateDir, ctlSocket))
	if err != nil {
		return nil, nil
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var resp response
	if writeMsg(c, request{Op: opWait}) == nil {
		// A read error means the monitor hung up: the caller reads the file.
		_ = readMsg(bufio.NewReader(c), &resp)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp.Exit, nil
}

// call sends one request and returns the monitor's answer.
func (h *Handle) call(req request) error {
	c, err := dialUnix(filepath.Join(h.StateDir, ctlSocket))
	if err != nil {
		return fmt.Errorf("monitor %d: %s: %w", h.MonitorPID, err, errdefs.ErrUnavailable)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var resp response
	if err := writeMsg(c, req); err != nil {
		return fmt.Errorf("monitor %d: %s: %w", h.MonitorPID, err, errdefs.ErrUnavailable)
	}
	if err := readMsg(bufio.NewReader(c), &resp); err != nil {
		return fmt.Errorf("monitor %d: %s request: %s: %w", h.MonitorPID, req.Op, err, errdefs.ErrUnavailable)
	}
	return resp.err()
}

// ReopenLog makes the monitor close and reopen the CRI log file (after the
// kubelet rotated it).
func (h *Handle) ReopenLog() error { return h.call(request{Op: opReopen}) }

// Resize sets the container's terminal size; ErrFailedPrecondition when the
// container has no terminal.
func (h *Handle) Resize(width, height uint16) error {
	return h.call(request{Op: opResize, Width: width, Height: height})
}

// AttachStreams connects to the container's stdio until its output ends (the
// container exited) or the monitor goes away. A nil stdin, stdout or stderr
// leaves that stream out; in terminal mode all output arrives on stdout.
// Output is what the container writes from then on (no replay: the CRI log
// has the past). Stdin is copied until it returns EOF, which ends the
// container's stdin when the Spec had StdinOnce (^D on a terminal). Several
// sessions may be attached at once; one that stops reading for 10 s is
// dropped rather than stall the log.
func (h *Handle) AttachStreams(stdin io.Reader, stdout, stderr io.Writer) error {
	return h.AttachContext(context.Background(), stdin, stdout, stderr)
}

// AttachContext is AttachStreams that also ends when ctx is done (the remote
// client went away), returning ctx's error.
func (h *Handle) AttachContext(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := dialUnix(filepath.Join(h.StateDir, ctlSocket))
	if err != nil {
		return fmt.Errorf("monitor %d: attach: %s: %w", h.MonitorPID, err, errdefs.ErrUnavailable)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req := request{Op: opAttach, Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil}
	if err := writeMsg(c, req); err != nil {
		return fmt.Errorf("monitor %d: attach: %w", h.MonitorPID, err)
	}
	br := bufio.NewReader(c)
	var resp response
	if err := readMsg(br, &resp); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("monitor %d: attach: %s: %w", h.MonitorPID, err, errdefs.ErrUnavailable)
	}
	if err := resp.err(); err != nil {
		return err
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(c, stdin)
			_ = c.CloseWrite()
		}()
	}
	buf := make([]byte, 32*1024)
	for {
		stream, p, err := readFrame(br, buf)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("monitor %d: attach: %w", h.MonitorPID, err)
		}
		w := stdout
		if stream == streamStderr {
			w = stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("attach: write %s: %w", streamName(stream), err)
		}
	}
}

func streamName(s byte) string {
	if s == streamStderr {
		return "stderr"
	}
	return "stdout"
}
