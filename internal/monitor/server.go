package monitor

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"hull/internal/errdefs"
)

// server is the monitor's control socket. Every connection is served by its
// own goroutine; done is closed (after exit is set) when the container has
// exited and its output is drained, which answers the waiters.
type server struct {
	m    *monitor
	l    *net.UnixListener
	path string
	done chan struct{}

	// mu orders waiter registration against shutdown, so that no waiter is
	// added to the WaitGroup once shutdown waits on it.
	mu      sync.Mutex
	closing bool
	exit    *Exit
	waiters sync.WaitGroup
}

func (m *monitor) serve() (*server, error) {
	path := filepath.Join(m.spec.StateDir, ctlSocket)
	_ = os.Remove(path)
	l, err := listenUnix(path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &server{m: m, l: l, path: path, done: make(chan struct{})}
	go s.accept()
	return s, nil
}

func (s *server) accept() {
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

// shutdown answers the waiters with exit (nil: the monitor failed before the
// container ran), ends attach sessions and removes the socket.
func (s *server) shutdown(exit *Exit) {
	s.mu.Lock()
	s.exit, s.closing = exit, true
	s.mu.Unlock()
	close(s.done)
	s.l.Close()
	os.Remove(s.path)
	s.m.hub.closeAll()
	// Give the waiters' goroutines a moment to write their answer before the
	// process exits; they fall back to the exit file if they miss it.
	finished := make(chan struct{})
	go func() { s.waiters.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(time.Second):
	}
}

func (s *server) handle(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var req request
	if err := readMsg(br, &req); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var err error
	switch req.Op {
	case opWait:
		s.mu.Lock()
		closing, exit := s.closing, s.exit
		if !closing {
			s.waiters.Add(1)
		}
		s.mu.Unlock()
		if !closing {
			defer s.waiters.Done()
			<-s.done
			exit = s.exit // set before done was closed
		}
		_ = writeMsg(c, response{Exit: exit})
		return
	case opReopen:
		if s.m.log != nil {
			err = s.m.log.Reopen()
		}
	case opResize:
		if s.m.pty == nil {
			err = fmt.Errorf("container %s has no terminal: %w", s.m.spec.ID, errdefs.ErrFailedPrecondition)
		} else if err = resize(s.m.pty, req.Width, req.Height); err != nil {
			err = fmt.Errorf("resize terminal: %w", err)
		}
	case opAttach:
		s.m.attach(c, br, req)
		return
	default:
		err = fmt.Errorf("unknown request %q: %w", req.Op, errdefs.ErrInvalidArgument)
	}
	var resp response
	if err != nil {
		resp = errResponse(err)
	}
	_ = writeMsg(c, resp)
}

// attach serves one attach session: the client is registered with the hub
// for output, and what it sends is copied to the container's stdin.
func (m *monitor) attach(c *net.UnixConn, br *bufio.Reader, req request) {
	cl := &client{c: c, stdout: req.Stdout, stderr: req.Stderr}
	if !m.hub.add(cl) {
		_ = writeMsg(c, errResponse(fmt.Errorf("container %s has exited: %w", m.spec.ID, errdefs.ErrFailedPrecondition)))
		return
	}
	if !req.Stdin || !m.spec.Stdin {
		// Nothing to forward. EOF may be a half-close (the client still
		// wants output), so the session ends when the hub drops the client.
		_, _ = io.Copy(io.Discard, br)
		<-cl.gone
		return
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if werr := m.writeStdin(buf[:n]); werr != nil {
				log.Printf("attach: stdin: %v", werr)
				_, _ = io.Copy(io.Discard, br)
				break
			}
		}
		if err != nil {
			break
		}
	}
	if m.spec.StdinOnce {
		m.endStdin()
	}
	// The client half-closed its side; it keeps receiving output until the
	// container exits (closeAll) or it hangs up.
	<-cl.gone
}

// client is one attach session. gone is closed when the hub drops it.
type client struct {
	c              *net.UnixConn
	stdout, stderr bool
	gone           chan struct{}
}

// hub fans container output out to attach clients. Writes to a client have a
// deadline so that a stalled client cannot stop the log; it is dropped
// instead. mu guards clients and closed.
type hub struct {
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool
}

// add registers cl and sends it the success response, under the lock so that
// no frame can precede it. It reports false once the hub is closed.
func (h *hub) add(cl *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.clients == nil {
		h.clients = map[*client]struct{}{}
	}
	cl.gone = make(chan struct{})
	_ = cl.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := writeMsg(cl.c, response{}); err != nil {
		close(cl.gone)
		return true // a dead client: its reads fail and it is removed
	}
	h.clients[cl] = struct{}{}
	return true
}

func (h *hub) dropLocked(cl *client) {
	if _, ok := h.clients[cl]; !ok {
		return
	}
	delete(h.clients, cl)
	_ = cl.c.CloseWrite()
	close(cl.gone)
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for cl := range h.clients {
		h.dropLocked(cl)
	}
}

func (h *hub) broadcast(stream byte, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for cl := range h.clients {
		if (stream == streamStdout && !cl.stdout) || (stream == streamStderr && !cl.stderr) {
			continue
		}
		_ = cl.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(cl.c, stream, p); err != nil {
			log.Printf("attach: drop client: %v", err)
			h.dropLocked(cl)
		}
	}
}

type hubWriter struct {
	h      *hub
	stream byte
}

// Write never fails: attach clients must not affect the log copy.
func (w hubWriter) Write(p []byte) (int, error) {
	w.h.broadcast(w.stream, p)
	return len(p), nil
}

func (h *hub) writer(stream byte) io.Writer { return hubWriter{h, stream} }
