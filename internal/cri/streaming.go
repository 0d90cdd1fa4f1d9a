package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/monitor"
	"hull/internal/nsutil"
	"hull/internal/runtime"
)

// streamServer is the exec/attach/port-forward HTTP server the CRI
// Exec/Attach/PortForward RPCs hand out URLs for (one-time tokens).
type streamServer struct {
	srv     streaming.Server
	tickets *ticketBook // exec/attach URLs handed out, for WebSocket v5 (streaming_ws.go)
	l       net.Listener
}

// startStreaming listens on addr ("ip:port", port 0 = any) and serves the
// streaming endpoints until Close.
func (s *Service) startStreaming(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("streaming server: listen on %s: %w", addr, err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	cfg.TLSConfig = s.opts.StreamTLS
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return fmt.Errorf("streaming server: %w", err)
	}
	tickets := newTicketBook()
	s.stream = &streamServer{srv: srv, tickets: tickets, l: l}
	front := &wsFront{lib: srv, tickets: tickets, run: streamRuntime{s}, idle: cfg.StreamIdleTimeout, log: s.log}
	go func() {
		hs := &http.Server{Handler: front, ReadHeaderTimeout: 30 * time.Second, TLSConfig: s.opts.StreamTLS}
		serve := hs.Serve
		if hs.TLSConfig != nil {
			serve = func(l net.Listener) error { return hs.ServeTLS(l, "", "") }
		}
		if err := serve(l); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("streaming server stopped", "err", err)
		}
	}()
	s.log.Info("streaming server listening", "addr", cfg.Addr)
	return nil
}

func (s *Service) runningContainer(id string) (*store.Container, error) {
	c, err := s.store.Container(id)
	if err != nil {
		return nil, err
	}
	if c.State != store.ContainerRunning {
		return nil, fmt.Errorf("container %s is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

func (s *Service) streamingReady() error {
	if s.stream == nil {
		return fmt.Errorf("streaming server is not running: %w", errdefs.ErrUnavailable)
	}
	return nil
}

// Exec returns the URL of a streaming exec session.
func (s *Service) Exec(_ context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := s.streamingReady(); err != nil {
		return nil, err
	}
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	r.ContainerId = c.ID
	resp, err := s.stream.srv.GetExec(r)
	if err != nil {
		return nil, err
	}
	if err := s.stream.tickets.remember(resp.GetUrl(), streamTicket{exec: r}); err != nil {
		return nil, fmt.Errorf("exec: streaming URL %q: %w", resp.GetUrl(), err)
	}
	return resp, nil
}

// Attach returns the URL of a streaming attach session.
func (s *Service) Attach(_ context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := s.streamingReady(); err != nil {
		return nil, err
	}
	c, err := s.runningContainer(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	r.ContainerId = c.ID
	resp, err := s.stream.srv.GetAttach(r)
	if err != nil {
		return nil, err
	}
	if err := s.stream.tickets.remember(resp.GetUrl(), streamTicket{attach: r}); err != nil {
		return nil, fmt.Errorf("attach: streaming URL %q: %w", resp.GetUrl(), err)
	}
	return resp, nil
}

// PortForward returns the URL of a port-forward session into the pod.
func (s *Service) PortForward(_ context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if err := s.streamingReady(); err != nil {
		return nil, err
	}
	sb, err := s.store.Sandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("port forward: %w", err)
	}
	if sb.State != store.SandboxReady {
		return nil, fmt.Errorf("port forward: pod %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	r.PodSandboxId = sb.ID
	return s.stream.srv.GetPortForward(r)
}

// streamRuntime is what the streaming server calls back once a client
// connected.
type streamRuntime struct{ s *Service }

func (sr streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser,
	tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	s := sr.s
	c, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return err
	}
	proc, err := s.execProcess(c, cmd, tty)
	if err != nil {
		return err
	}
	eio := runtime.ExecIO{Stdin: in}
	if out != nil {
		eio.Stdout = out
	}
	if errw != nil {
		eio.Stderr = errw
	}
	var code int
	if tty {
		code, err = s.execTTY(ctx, h, c.ID, proc, in, out, resize)
	} else {
		code, err = h.Exec(ctx, c.ID, proc, eio)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// exitError is how the streaming server learns a command's exit code.
type exitError int

func (e exitError) Error() string   { return "command terminated with exit code " + strconv.Itoa(int(e)) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return int(e) }

// execTTY runs proc with a terminal: the runtime sends the pty master over
// a console socket; its output goes to out, in goes to it, and resize
// events set its size.
func (s *Service) execTTY(ctx context.Context, h runtime.Handler, id string, proc *specs.Process, in io.Reader, out io.Writer,
	resize <-chan remotecommandserver.TerminalSize) (int, error) {
	dir, err := os.MkdirTemp("", "hull-tty-")
	if err != nil {
		return -1, err
	}
	defer os.RemoveAll(dir)
	resize = initialSize(ctx, proc, resize)
	sock := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return -1, fmt.Errorf("exec tty: console socket: %w", err)
	}
	defer l.Close()
	master := make(chan *os.File, 1)
	go func() {
		f, err := recvFD(l)
		if err != nil {
			s.log.Debug("exec tty: no console received", "id", id, "err", err)
		}
		master <- f
	}()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := h.Exec(ctx, id, proc, runtime.ExecIO{ConsoleSocket: sock})
		done <- result{code, err}
	}()
	var pty *os.File
	var finished *result
	select {
	case pty = <-master:
	case r := <-done:
		// A short command can end before its pty master is taken off the
		// socket (the runtime sends it before the command starts); its
		// output waits in the pty, so take the master anyway. The short
		// deadline only matters when the runtime failed before sending.
		finished = &r
		_ = l.SetDeadline(time.Now().Add(time.Second))
		pty = <-master
	}
	if pty == nil {
		if finished == nil {
			r := <-done
			finished = &r
		}
		return finished.code, finished.err
	}
	defer pty.Close()
	if resize != nil {
		go func() {
			for sz := range resize {
				_ = unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
			}
		}()
	}
	if in != nil {
		go func() { _, _ = io.Copy(pty, in) }()
	}
	copied := make(chan struct{})
	go func() {
		if out != nil {
			_, _ = io.Copy(out, pty)
		}
		close(copied)
	}()
	if finished == nil {
		r := <-done
		finished = &r
	}
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	return finished.code, finished.err
}

// initialSizeWait bounds how long a tty exec waits for the client's first
// terminal size; clients without a terminal never send one.
const initialSizeWait = 2 * time.Second

// initialSize takes the terminal size a client with a terminal sends
// first and puts it in proc, so the runtime creates the pty at that size:
// setting it on the master once the process runs races the command's own
// first look at its terminal (stty size printing 0 0). It returns the
// channel for later resizes, nil once the client closed it.
func initialSize(ctx context.Context, proc *specs.Process, resize <-chan remotecommandserver.TerminalSize) <-chan remotecommandserver.TerminalSize {
	if resize == nil {
		return nil
	}
	t := time.NewTimer(initialSizeWait)
	defer t.Stop()
	select {
	case sz, ok := <-resize:
		if !ok {
			return nil
		}
		if sz.Height > 0 && sz.Width > 0 {
			proc.ConsoleSize = &specs.Box{Height: uint(sz.Height), Width: uint(sz.Width)}
		}
	case <-t.C:
	case <-ctx.Done():
	}
	return resize
}

// recvFD accepts one connection and receives one file descriptor on it.
func recvFD(l *net.UnixListener) (*os.File, error) {
	_ = l.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("console socket: no control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("console socket: no fd")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (sr streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser,
	tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	s := sr.s
	c, err := s.runningContainer(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	mh := s.monitors[c.ID]
	s.mu.Unlock()
	if mh == nil {
		if mh, err = monitor.Attach(c.MonitorDir); err != nil {
			return err
		}
	}
	if tty && resize != nil {
		go func() {
			for sz := range resize {
				_ = mh.Resize(sz.Width, sz.Height)
			}
		}()
	}
	var stdout, stderr io.Writer
	if out != nil {
		stdout = out
	}
	if errw != nil {
		stderr = errw
	}
	return mh.AttachContext(ctx, in, stdout, stderr)
}

func (sr streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	s := sr.s
	defer stream.Close()
	sb, err := s.store.Sandbox(podID)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		conn = c
		return err
	}
	// A socket stays in the namespace it was created in: dial from inside
	// the pod's netns, then copy from here.
	if ns := sb.Namespaces["net"]; ns != "" && !sb.HostNetwork {
		err = nsutil.Enter(map[string]string{"net": ns}, dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("port forward to %s in pod %s: %w", addr, podID, err)
	}
	defer conn.Close()
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(conn, stream); errc <- err }()
	go func() { _, err := io.Copy(stream, conn); errc <- err }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	}
	return err
}
