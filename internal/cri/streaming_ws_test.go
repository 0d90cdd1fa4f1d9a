package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

func TestTicketBookOnceAndExpiry(t *testing.T) {
	b := newTicketBook()
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	req := &runtimeapi.ExecRequest{ContainerId: "c1"}
	if err := b.remember("http://127.0.0.1:1/exec/tok1", streamTicket{exec: req}); err != nil {
		t.Fatal(err)
	}
	if tk, ok := b.take("/exec/tok1"); !ok || tk.exec != req {
		t.Fatalf("first take: %v %v", tk, ok)
	}
	if _, ok := b.take("/exec/tok1"); ok {
		t.Fatal("a ticket was taken twice")
	}
	if err := b.remember("http://127.0.0.1:1/attach/tok2", streamTicket{attach: &runtimeapi.AttachRequest{}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(streamTokenTTL + time.Second)
	if _, ok := b.take("/attach/tok2"); ok {
		t.Fatal("an expired ticket was served")
	}
	// Expired tickets nobody took go when the next one is remembered.
	_ = b.remember("http://127.0.0.1:1/exec/old", streamTicket{exec: req})
	now = now.Add(streamTokenTTL + time.Second)
	_ = b.remember("http://127.0.0.1:1/exec/new", streamTicket{exec: req})
	if n := b.len(); n != 1 {
		t.Fatalf("%d tickets held, want 1 (expired ones dropped)", n)
	}
	if err := b.remember("http://[bad", streamTicket{exec: req}); err == nil {
		t.Fatal("a malformed URL was remembered")
	}
}

// fakeCommander stands for the container side: exec echoes stdin to
// stdout until EOF and exits with the code in cmd[0]; attach writes
// "attached". It records the terminal sizes it was sent.
type fakeCommander struct {
	mu    sync.Mutex
	sizes []remotecommandserver.TerminalSize
}

func (f *fakeCommander) Exec(_ context.Context, _ string, cmd []string, in io.Reader, out, _ io.WriteCloser,
	tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	if tty {
		sz := <-resize
		f.mu.Lock()
		f.sizes = append(f.sizes, sz)
		f.mu.Unlock()
	}
	if in != nil {
		if _, err := io.Copy(out, in); err != nil {
			return err
		}
	}
	switch cmd[0] {
	case "0":
		return nil
	case "fail":
		return errors.New("no such runtime")
	}
	var code int
	fmt.Sscan(cmd[0], &code)
	return exitError(code)
}

func (f *fakeCommander) Attach(_ context.Context, _ string, _ io.Reader, out, _ io.WriteCloser, _ bool,
	_ <-chan remotecommandserver.TerminalSize) error {
	_, err := io.WriteString(out, "attached")
	return err
}

func (f *fakeCommander) PortForward(context.Context, string, int32, io.ReadWriteCloser) error {
	return errors.New("not used")
}

// frontServer serves cri-streaming behind a wsFront on a loopback port.
func frontServer(t *testing.T, run *fakeCommander) (streaming.Server, *ticketBook) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	lib, err := streaming.NewServer(cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	tickets := newTicketBook()
	front := &wsFront{lib: lib, tickets: tickets, run: run, idle: time.Minute, log: slog.New(slog.DiscardHandler)}
	hs := &http.Server{Handler: front, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { hs.Close() })
	return lib, tickets
}

func dialWS(t *testing.T, u, proto string) (*websocket.Conn, error) {
	t.Helper()
	cfg, err := websocket.NewConfig(strings.Replace(u, "http://", "ws://", 1), "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{proto}
	return websocket.DialConfig(cfg)
}

// readSession reads frames until the server closes: the bytes per
// channel.
func readSession(t *testing.T, ws *websocket.Conn) map[byte]string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := map[byte]string{}
	for {
		var msg []byte
		if err := websocket.Message.Receive(ws, &msg); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("receive: %v", err)
			}
			return got
		}
		if len(msg) > 0 {
			got[msg[0]] += string(msg[1:])
		}
	}
}

func execURL(t *testing.T, lib streaming.Server, tickets *ticketBook, r *runtimeapi.ExecRequest) string {
	t.Helper()
	resp, err := lib.GetExec(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := tickets.remember(resp.Url, streamTicket{exec: r}); err != nil {
		t.Fatal(err)
	}
	return resp.Url
}

func TestWebSocketV5Exec(t *testing.T) {
	run := &fakeCommander{}
	lib, tickets := frontServer(t, run)
	for _, tc := range []struct {
		code   string
		status string
	}{
		{"0", `{"status":"Success"}`},
		{"3", `{"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 3",` +
			`"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`},
		{"fail", `{"status":"Failure","message":"Internal error occurred: error executing command in container: no such runtime",` +
			`"reason":"InternalError","code":500}`},
	} {
		u := execURL(t, lib, tickets, &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{tc.code}, Stdin: true, Stdout: true, Stderr: true})
		ws, err := dialWS(t, u, v5Protocol)
		if err != nil {
			t.Fatal(err)
		}
		if got := ws.Config().Protocol; len(got) != 1 || got[0] != v5Protocol {
			t.Fatalf("negotiated %v", got)
		}
		// stdin data, then the CLOSE signal for stdin: the command sees
		// EOF and ends.
		if err := websocket.Message.Send(ws, []byte("\x00hello v5")); err != nil {
			t.Fatal(err)
		}
		if err := websocket.Message.Send(ws, []byte{255, chStdin}); err != nil {
			t.Fatal(err)
		}
		got := readSession(t, ws)
		ws.Close()
		if got[chStdout] != "hello v5" || got[chStatus] != tc.status {
			t.Fatalf("exit %s: stdout %q, status %s", tc.code, got[chStdout], got[chStatus])
		}
		// The token is spent for the library too.
		resp, err := http.Post(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("library served a token v5 used: HTTP %d", resp.StatusCode)
		}
		if _, err := dialWS(t, u, v5Protocol); err == nil {
			t.Fatal("v5 served a token twice")
		}
	}
}

func TestWebSocketV5TTYAndAttach(t *testing.T) {
	run := &fakeCommander{}
	lib, tickets := frontServer(t, run)
	u := execURL(t, lib, tickets, &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"0"}, Stdout: true, Tty: true})
	ws, err := dialWS(t, u, v5Protocol)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(remotecommandserver.TerminalSize{Width: 120, Height: 40})
	if err := websocket.Message.Send(ws, append([]byte{chResize}, b...)); err != nil {
		t.Fatal(err)
	}
	got := readSession(t, ws)
	ws.Close()
	run.mu.Lock()
	sizes := run.sizes
	run.mu.Unlock()
	if got[chStatus] != `{"status":"Success"}` || len(sizes) != 1 || sizes[0].Width != 120 || sizes[0].Height != 40 {
		t.Fatalf("tty exec: status %q, sizes %v", got[chStatus], sizes)
	}

	ar := &runtimeapi.AttachRequest{ContainerId: "c", Stdout: true}
	resp, err := lib.GetAttach(ar)
	if err != nil {
		t.Fatal(err)
	}
	if err := tickets.remember(resp.Url, streamTicket{attach: ar}); err != nil {
		t.Fatal(err)
	}
	ws, err = dialWS(t, resp.Url, v5Protocol)
	if err != nil {
		t.Fatal(err)
	}
	got = readSession(t, ws)
	ws.Close()
	if got[chStdout] != "attached" || got[chStatus] != `{"status":"Success"}` {
		t.Fatalf("attach: %q", got)
	}
}

// TestWebSocketV4StaysLibrarys checks that older WebSocket protocols
// still reach cri-streaming, and that a token it served is gone for v5.
func TestWebSocketV4StaysLibrarys(t *testing.T) {
	run := &fakeCommander{}
	lib, tickets := frontServer(t, run)
	u := execURL(t, lib, tickets, &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"4"}, Stdout: true})
	ws, err := dialWS(t, u, "v4.channel.k8s.io")
	if err != nil {
		t.Fatal(err)
	}
	got := readSession(t, ws)
	ws.Close()
	if !strings.Contains(got[chStatus], `"message":"4"`) {
		t.Fatalf("v4 status from the library: %q", got[chStatus])
	}
	if _, err := dialWS(t, u, v5Protocol); err == nil {
		t.Fatal("v5 served a token the library had served")
	}
	if n := tickets.len(); n != 0 {
		t.Fatalf("%d tickets left after the session", n)
	}
}
