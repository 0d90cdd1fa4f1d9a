package cri

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/net/websocket"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// tunnelProtocol is how client-go's port-forward over WebSocket (crictl
// port-forward -r websocket, kubectl through the API server) asks for
// SPDY port-forwarding carried in a WebSocket's binary messages.
const tunnelProtocol = portforward.WebsocketsSPDYTunnelingPortForwardV1

// wantsTunnel reports whether r is a WebSocket request offering the SPDY
// port-forward tunnel.
func wantsTunnel(r *http.Request) bool {
	if !wsstream.IsWebSocketRequest(r) {
		return false
	}
	for _, v := range r.Header.Values(wsstream.WebSocketProtocolHeader) {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == tunnelProtocol {
				return true
			}
		}
	}
	return false
}

// serveTunnel hands a tunnelled port-forward to cri-streaming as the SPDY
// upgrade it already serves: the request is rewritten into a SPDY one,
// and the response writer answers the library's 101 with the WebSocket
// handshake instead, giving it the WebSocket (a byte stream of binary
// messages) as the hijacked connection. Token, errors and the forwarding
// stay the library's.
func (f *wsFront) serveTunnel(w http.ResponseWriter, r *http.Request) {
	req := r.Clone(r.Context())
	for k := range req.Header {
		if strings.HasPrefix(k, "Sec-Websocket-") {
			req.Header.Del(k)
		}
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", portforward.ProtocolV1Name)
	tw := &tunnelWriter{w: w, r: r, header: http.Header{}}
	f.lib.ServeHTTP(tw, req)
	tw.finish()
}

// tunnelWriter is the ResponseWriter the library upgrades. Responses
// other than 101 (unknown token, bad request) go to the client as they
// are.
type tunnelWriter struct {
	w        http.ResponseWriter
	r        *http.Request
	header   http.Header
	switched bool
	// set by Hijack: the WebSocket server's goroutine and its end
	conn *tunnelConn
	done chan struct{}
}

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		t.switched = true
		return
	}
	for k, v := range t.header {
		t.w.Header()[k] = v
	}
	t.w.WriteHeader(code)
}

func (t *tunnelWriter) Write(p []byte) (int, error) {
	if t.switched {
		return 0, http.ErrHijacked
	}
	return t.w.Write(p)
}

// Hijack completes the WebSocket handshake and returns the WebSocket as
// the connection. The WebSocket server serves it on its own goroutine
// until the library closes it.
func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !t.switched || t.done != nil {
		return nil, nil, errors.New("port-forward tunnel: hijack before the upgrade")
	}
	ready := make(chan *tunnelConn, 1)
	t.done = make(chan struct{})
	srv := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			for _, p := range cfg.Protocol {
				if p == tunnelProtocol {
					cfg.Protocol = []string{tunnelProtocol}
					return nil
				}
			}
			return errors.New("no tunnel protocol")
		},
		Handler: func(ws *websocket.Conn) {
			ws.PayloadType = websocket.BinaryFrame
			c := &tunnelConn{Conn: ws, closed: make(chan struct{})}
			ready <- c
			<-c.closed
		},
	}
	go func() {
		defer close(t.done)
		srv.ServeHTTP(t.w, t.r)
	}()
	select {
	case c := <-ready:
		t.conn = c
		return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
	case <-t.done:
		return nil, nil, errors.New("port-forward tunnel: WebSocket handshake failed")
	}
}

// finish closes the tunnel once the library is done with it and waits
// for the WebSocket server to return.
func (t *tunnelWriter) finish() {
	if t.conn != nil {
		_ = t.conn.Close()
	}
	if t.done != nil {
		<-t.done
	}
}

// tunnelConn is the WebSocket as a net.Conn; closing it also lets the
// WebSocket server's handler return.
type tunnelConn struct {
	*websocket.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *tunnelConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		close(c.closed)
	})
	return err
}
