package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runOut runs cmd and returns its stdout, its stderr and its exit code.
func runOut(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := startBounded(t, cmd)
	waitExit(t, strings.Join(cmd.Args, " "), done)
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestWebSocketExec runs crictl exec -r websocket (client-go's v5
// executor) next to the SPDY default: output on both streams, exit codes,
// stdin piped and closed (the v5 CLOSE signal ends cat), and a terminal.
func TestWebSocketExec(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	_, c := d.runPod("ws-exec", "sleep 3600")

	for _, tr := range []string{"websocket", "spdy"} {
		out, errOut, code := runOut(t, d.crictlCmd("exec", "-r", tr, c, "sh", "-c", "echo to-out; echo to-err >&2"))
		if code != 0 || out != "to-out\n" || !strings.Contains(errOut, "to-err") {
			t.Fatalf("%s exec: exit %d, stdout %q, stderr %q", tr, code, out, errOut)
		}
		out, errOut, code = runOut(t, d.crictlCmd("exec", "-r", tr, c, "sh", "-c", "echo before-exit; exit 7"))
		if code == 0 || out != "before-exit\n" || !strings.Contains(errOut, "command terminated with exit code 7") {
			t.Fatalf("%s exec exit 7: exit %d, stdout %q, stderr %q", tr, code, out, errOut)
		}
	}

	// 256 KiB through stdin: cat only ends (and wc counts) once the client
	// half-closed stdin after its EOF.
	data := bytes.Repeat([]byte("0123456789abcdef"), 16384)
	cmd := d.crictlCmd("exec", "-i", "-r", "websocket", c, "sh", "-c", "cat | wc -c; echo stdin-closed")
	cmd.Stdin = bytes.NewReader(data)
	out, errOut, code := runOut(t, cmd)
	if code != 0 || strings.Fields(out)[0] != fmt.Sprint(len(data)) || !strings.Contains(out, "stdin-closed") {
		t.Fatalf("exec -i websocket: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// An empty stdin closes at once.
	cmd = d.crictlCmd("exec", "-i", "-r", "websocket", c, "cat")
	cmd.Stdin = strings.NewReader("")
	if out, errOut, code := runOut(t, cmd); code != 0 || out != "" {
		t.Fatalf("exec -i websocket, empty stdin: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A terminal: crictl needs one itself (a Go pty); the container's tty
	// starts at crictl's size, follows a resize, and the exit code comes
	// through.
	execTTYResize(t, d, c, []string{"-r", "websocket"}, [2]uint16{29, 97}, [2]uint16{37, 111}, 5)

	// A client that goes away ends its session: the command is killed.
	cmd = d.crictlCmd("exec", "-r", "websocket", c, "sh", "-c", "echo started; exec sleep 4321")
	var started syncBuffer
	cmd.Stdout = &started
	done := startBounded(t, cmd)
	waitFor(t, "the command to start", &started, "started")
	if out, err := d.crictlErr("exec", "-s", c, "ps"); err != nil || !strings.Contains(out, "sleep 4321") {
		t.Fatalf("the command is not running: %q, %v", out, err)
	}
	_ = cmd.Process.Kill()
	waitExit(t, "killed crictl exec", done)
	eventually(t, "the abandoned command to end", func() bool {
		out, err := d.crictlErr("exec", "-s", c, "ps")
		return err == nil && !strings.Contains(out, "sleep 4321")
	})
}

// TestWebSocketConcurrentExec runs 12 crictl exec at once into one
// container, alternating WebSocket and SPDY: each gets its own streams
// and exit code.
func TestWebSocketConcurrentExec(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	_, c := d.runPod("ws-conc", "sleep 3600")
	const n = 12
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			tr := []string{"websocket", "spdy"}[i%2]
			code := i % 4
			cmd := d.crictlCmd("exec", "-r", tr, c, "sh", "-c", fmt.Sprintf("echo out-%d; echo err-%d >&2; exit %d", i, i, code))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if e := checkExec(i, code, false, stdout.String(), stderr.String(), err); e != nil {
				err = fmt.Errorf("%s: %w", tr, e)
			} else {
				err = nil
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestWebSocketAttachTTY attaches with -it -r websocket to a container
// with a terminal: input reaches it, and crictl's terminal size, before
// and after a resize, is what it sees.
func TestWebSocketAttachTTY(t *testing.T) {
	attachTTYResize(t, "ws-attach-tty", []string{"-r", "websocket"}, [2]uint16{23, 77}, [2]uint16{45, 130})
}

// TestWebSocketAttach attaches with crictl attach -i -r websocket to a
// container running cat: what is sent comes back.
func TestWebSocketAttach(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	pod := d.podJSON("ws-attach", "")
	p := d.crictl("runp", pod)
	c := d.crictl("create", p, d.ctrJSON("ws-attach", "cat", `"stdin":true`), pod)
	d.crictl("start", c)

	cmd := d.crictlCmd("attach", "-i", "-r", "websocket", c)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := startBounded(t, cmd)
	for i := 0; i < 100 && !strings.Contains(out.String(), "echo-over-v5"); i++ {
		if _, err := io.WriteString(in, "echo-over-v5\n"); err != nil {
			t.Fatalf("write stdin: %v; output %q", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "echo-over-v5") {
		t.Fatalf("echo not seen through attach -r websocket: %q", out.String())
	}
	// Closing crictl's stdin half-closes the attach stdin; the container
	// keeps its stdin open (stdin_once unset), so the session ends with the
	// client.
	in.Close()
	_ = cmd.Process.Kill()
	waitExit(t, "crictl attach -r websocket", done)
	if st := field(d.inspect("inspect", c), "status.state"); st != "CONTAINER_RUNNING" {
		t.Fatalf("cat exited after the attach session: state %v", st)
	}
}

// TestWebSocketTokenOnce checks that a streaming URL serves one session,
// whichever transport takes it first: v5 WebSocket (hull's), SPDY or v4
// WebSocket (the library's).
func TestWebSocketTokenOnce(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	p, c := d.runPod("ws-token", "sleep 3600")
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	execURL := func() string {
		t.Helper()
		r, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: c, Cmd: []string{"true"}, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.Url
	}
	attachURL := func() string {
		t.Helper()
		r, err := rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: c, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		return r.Url
	}
	for _, tc := range []struct {
		name        string
		url         func() string
		first, then string
	}{
		{"exec v5 then spdy", execURL, "v5", "spdy"},
		{"exec v5 then v5", execURL, "v5", "v5"},
		{"exec spdy then v5", execURL, "spdy", "v5"},
		{"exec v4 then v5", execURL, "v4", "v5"},
		{"exec v5 then v4", execURL, "v5", "v4"},
		{"attach v5 then spdy", attachURL, "v5", "spdy"},
		{"attach spdy then v5", attachURL, "spdy", "v5"},
	} {
		u := tc.url()
		if code := upgrade(t, u, tc.first); code != http.StatusSwitchingProtocols {
			t.Fatalf("%s: first upgrade (%s) of %s: HTTP %d", tc.name, tc.first, u, code)
		}
		if code := upgrade(t, u, tc.then); code != http.StatusNotFound {
			t.Fatalf("%s: reused token (%s) of %s: HTTP %d, want 404", tc.name, tc.then, u, code)
		}
	}
	// Port-forward URLs stay the library's, tunnelled or not.
	for _, order := range [][2]string{{"spdy-portforward", "tunnel"}, {"tunnel", "spdy-portforward"}, {"tunnel", "tunnel"}} {
		r, err := rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: p})
		if err != nil {
			t.Fatal(err)
		}
		if code := upgrade(t, r.Url, order[0]); code != http.StatusSwitchingProtocols {
			t.Fatalf("port-forward upgrade (%s) of %s: HTTP %d", order[0], r.Url, code)
		}
		if code := upgrade(t, r.Url, order[1]); code != http.StatusNotFound {
			t.Fatalf("reused port-forward token (%s after %s) of %s: HTTP %d, want 404", order[1], order[0], r.Url, code)
		}
	}
}

// upgrade asks the streaming server to upgrade u to proto (v5 or v4
// WebSocket, SPDY remotecommand or port-forward, SPDY port-forward
// tunnelled in a WebSocket) and returns the HTTP
// status; a switched connection is closed at once.
func upgrade(t *testing.T, u, proto string) int {
	t.Helper()
	method := http.MethodGet
	h := http.Header{"Connection": {"Upgrade"}}
	switch proto {
	case "v5", "v4", "tunnel":
		key := make([]byte, 16)
		_, _ = rand.Read(key)
		h.Set("Upgrade", "websocket")
		h.Set("Sec-WebSocket-Version", "13")
		h.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
		h.Set("Sec-WebSocket-Protocol", proto+".channel.k8s.io")
		if proto == "tunnel" {
			h.Set("Sec-WebSocket-Protocol", "SPDY/3.1+portforward.k8s.io")
		}
	case "spdy":
		method = http.MethodPost
		h.Set("Upgrade", "SPDY/3.1")
		h.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	case "spdy-portforward":
		method = http.MethodPost
		h.Set("Upgrade", "SPDY/3.1")
		h.Set("X-Stream-Protocol-Version", "portforward.k8s.io")
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s upgrade of %s: %v", proto, u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebSocketPortForward forwards a port with crictl port-forward -r
// websocket (SPDY tunnelled in WebSocket binary messages) to a busybox
// httpd: a 1 MiB file arrives whole, and concurrent connections each get
// their own stream.
func TestWebSocketPortForward(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	p, c := d.runPod("ws-pf", `mkdir -p /www && echo small-page > /www/index.html &&
dd if=/dev/zero bs=1024 count=1024 2>/dev/null | tr '\0' x > /www/big && exec httpd -f -p 8080 -h /www`)
	eventually(t, "httpd listening in the pod", func() bool {
		out, err := d.crictlErr("exec", "-s", c, "wget", "-q", "-O-", "http://127.0.0.1:8080/index.html")
		return err == nil && strings.Contains(out, "small-page")
	})
	port := freePorts(t, 1)[0]
	pf := d.crictlCmd("port-forward", "-r", "websocket", p, fmt.Sprintf("%d:8080", port))
	var pfOut syncBuffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	startBounded(t, pf)
	waitFor(t, "port-forward listening", &pfOut, fmt.Sprintf("Forwarding from 127.0.0.1:%d", port))

	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(name string) (string, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/%s", port, name))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
		return string(b), err
	}
	if big, err := get("big"); err != nil || big != strings.Repeat("x", 1<<20) {
		t.Fatalf("1 MiB through the tunnel: %d bytes, %v; crictl: %s", len(big), err, pfOut.String())
	}
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			got, err := get("index.html")
			if err == nil && got != "small-page\n" {
				err = fmt.Errorf("got %q", got)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent request: %v", err)
		}
	}
}
