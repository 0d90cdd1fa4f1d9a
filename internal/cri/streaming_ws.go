package cri

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// v5Protocol is the remotecommand WebSocket subprotocol client-go (crictl,
// kubectl) offers alone: v4's channels and JSON status plus a CLOSE
// signal (channel 255) that half-closes one channel, e.g. stdin.
const v5Protocol = remotecommandserver.StreamProtocolV5Name

// remotecommand channel numbers (the first three are the fds).
const (
	chStdin = iota
	chStdout
	chStderr
	chStatus
	chResize
	chCount
)

// remoteCommander runs the command of an exec or attach session; hull's
// streamRuntime is one.
type remoteCommander interface {
	Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser,
		tty bool, resize <-chan remotecommandserver.TerminalSize) error
	Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser,
		tty bool, resize <-chan remotecommandserver.TerminalSize) error
}

// wsFront is the HTTP handler in front of cri-streaming's. cri-streaming
// speaks the remotecommand WebSocket protocols up to v4 only, and
// client-go's WebSocket executor asks for v5 alone, so the library
// answers it 403. wsFront serves exec and attach requests that ask for v5
// itself, turns port-forwards tunnelled in a WebSocket into the SPDY
// upgrade the library serves (streaming_tunnel.go), and passes every other
// request to the library unchanged.
//
// The URLs are the library's (GetExec/GetAttach); hull keeps each one's
// CRI request in a ticketBook. Every request for a remembered URL takes
// its ticket, so a URL serves one session whichever transport comes
// first: a v5 session also spends the library's token (burn), and a
// request the library served leaves no ticket for v5.
type wsFront struct {
	lib     http.Handler
	tickets *ticketBook
	run     remoteCommander
	idle    time.Duration
	log     *slog.Logger
}

func (f *wsFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := f.tickets.take(r.URL.Path)
	switch {
	case ok && wsstream.IsWebSocketRequestWithStreamCloseProtocol(r):
	case wantsTunnel(r):
		f.serveTunnel(w, r)
		return
	default:
		f.lib.ServeHTTP(w, r)
		return
	}
	if !f.burn(r) {
		// The library no longer has the token: it expired there (the
		// ticket is a little younger) or was used already.
		http.NotFound(w, r)
		return
	}
	f.serveV5(w, r, t)
}

// burn spends the library's token for r's URL by sending it a request it
// consumes and then rejects (no SPDY protocol header: 400, written to a
// sink). It reports whether the token was still valid there.
func (f *wsFront) burn(r *http.Request) bool {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.Header = http.Header{}
	req.Body = http.NoBody
	var sink statusSink
	f.lib.ServeHTTP(&sink, req)
	return sink.code == http.StatusBadRequest
}

// statusSink is a ResponseWriter that keeps only the status code.
type statusSink struct {
	h    http.Header
	code int
}

func (s *statusSink) Header() http.Header {
	if s.h == nil {
		s.h = http.Header{}
	}
	return s.h
}

func (s *statusSink) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return len(p), nil
}

func (s *statusSink) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

// serveV5 runs one exec or attach session over a v5 WebSocket connection.
func (f *wsFront) serveV5(w http.ResponseWriter, r *http.Request, t streamTicket) {
	stdin, stdout, stderr, tty := t.streams()
	channels := make([]wsstream.ChannelType, chCount)
	channels[chStdin] = pick(stdin, wsstream.ReadChannel)
	channels[chStdout] = pick(stdout, wsstream.WriteChannel)
	channels[chStderr] = pick(stderr, wsstream.WriteChannel)
	channels[chStatus] = wsstream.WriteChannel
	channels[chResize] = pick(tty, wsstream.ReadChannel)
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		v5Protocol: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(f.idle)

	// net/http ends the request's context once a read of the hijacked
	// connection fails (client gone, idle timeout): that ends the command.
	ctx := r.Context()
	_, ch, err := conn.Open(&lingerWriter{ResponseWriter: w}, r)
	if err != nil {
		f.log.Debug("websocket v5: upgrade failed", "path", r.URL.Path, "err", err)
		return
	}
	defer conn.Close()
	// An empty frame on the first channel the client reads tells clients
	// that wait for one (browsers' terminals) that the session is up.
	switch {
	case stdout:
		_, _ = ch[chStdout].Write(nil)
	case stderr:
		_, _ = ch[chStderr].Write(nil)
	default:
		_, _ = ch[chStatus].Write(nil)
	}

	var in io.Reader
	var out, errw io.WriteCloser
	var resize <-chan remotecommandserver.TerminalSize
	if stdin {
		in = ch[chStdin]
	}
	if stdout {
		out = ch[chStdout]
	}
	if stderr {
		errw = ch[chStderr]
	}
	if tty {
		resize = decodeResizes(ctx, ch[chResize])
	}
	var st remoteStatus
	if t.exec != nil {
		err = f.run.Exec(ctx, t.exec.ContainerId, t.exec.Cmd, in, out, errw, tty, resize)
		st = execStatus(err)
	} else {
		err = f.run.Attach(ctx, t.attach.ContainerId, in, out, errw, tty, resize)
		st = attachStatus(err)
	}
	if err != nil && st.Reason != reasonNonZeroExit {
		f.log.Debug("websocket v5 session failed", "path", r.URL.Path, "err", err)
	}
	b, _ := json.Marshal(st)
	_, _ = ch[chStatus].Write(b)
}

// streams are the standard streams the request asked for, and whether
// it wants a terminal.
func (t streamTicket) streams() (stdin, stdout, stderr, tty bool) {
	if t.exec != nil {
		return t.exec.Stdin, t.exec.Stdout, t.exec.Stderr, t.exec.Tty
	}
	return t.attach.Stdin, t.attach.Stdout, t.attach.Stderr, t.attach.Tty
}

func pick(want bool, t wsstream.ChannelType) wsstream.ChannelType {
	if want {
		return t
	}
	return wsstream.IgnoreChannel
}

// decodeResizes turns the resize channel's JSON objects
// ({"Width":80,"Height":24}) into terminal sizes until it ends.
func decodeResizes(ctx context.Context, r io.Reader) <-chan remotecommandserver.TerminalSize {
	c := make(chan remotecommandserver.TerminalSize)
	go func() {
		defer close(c)
		dec := json.NewDecoder(r)
		for {
			var sz remotecommandserver.TerminalSize
			if err := dec.Decode(&sz); err != nil {
				return
			}
			select {
			case c <- sz:
			case <-ctx.Done():
				return
			}
		}
	}()
	return c
}

// remoteStatus is the metav1.Status JSON a v4/v5 client reads from the
// status channel once the session is over: client-go takes the exit code
// from the cause of type (JSON "reason") ExitCode when the reason is
// NonZeroExitCode, and the message otherwise.
type remoteStatus struct {
	Status  string         `json:"status"`
	Message string         `json:"message,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Details *remoteDetails `json:"details,omitempty"`
	Code    int32          `json:"code,omitempty"`
}

type remoteDetails struct {
	Causes []remoteCause `json:"causes"`
}

type remoteCause struct {
	Type    string `json:"reason"`
	Message string `json:"message"`
}

const reasonNonZeroExit = remotecommandserver.NonZeroExitCodeReason

func execStatus(err error) remoteStatus {
	var ee exitError
	switch {
	case err == nil:
		return remoteStatus{Status: "Success"}
	case errors.As(err, &ee) && ee >= 0 && ee <= 255:
		// client-go parses the code as a uint8: only 0-255 can carry it.
		return remoteStatus{
			Status:  "Failure",
			Reason:  reasonNonZeroExit,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", ee),
			Details: &remoteDetails{Causes: []remoteCause{{
				Type: remotecommandserver.ExitCodeCauseType, Message: strconv.Itoa(int(ee)),
			}}},
		}
	}
	return internalStatus(fmt.Errorf("error executing command in container: %w", err))
}

func attachStatus(err error) remoteStatus {
	if err == nil {
		return remoteStatus{Status: "Success"}
	}
	return internalStatus(fmt.Errorf("error attaching to container: %w", err))
}

func internalStatus(err error) remoteStatus {
	return remoteStatus{
		Status:  "Failure",
		Reason:  "InternalError",
		Message: "Internal error occurred: " + err.Error(),
		Code:    http.StatusInternalServerError,
	}
}

// closeLinger bounds how long a finished v5 session waits for the
// client's answer to its close frame.
const closeLinger = 2 * time.Second

// lingerWriter hands the WebSocket server a connection whose first Close
// (the session's end: the close frame is already sent) leaves the socket
// open until the client answers the close frame, so the WebSocket reader
// ends with a clean EOF rather than a read on a closed socket, which
// wsstream logs as an error (once per session). The second Close (the
// reader's end) or closeLinger closes it.
type lingerWriter struct{ http.ResponseWriter }

func (l *lingerWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := l.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("websocket: the connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &lingerConn{Conn: c}, rw, nil
}

type lingerConn struct {
	net.Conn
	mu     sync.Mutex
	closes int
	timer  *time.Timer
}

func (c *lingerConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	switch c.closes {
	case 1:
		c.timer = time.AfterFunc(closeLinger, func() { _ = c.Conn.Close() })
		return nil
	case 2:
		c.timer.Stop()
		return c.Conn.Close()
	}
	return nil
}
