package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitFor polls s for want for up to 20 s and fails the test with what
// was seen otherwise.
func waitFor(t *testing.T, what string, s *syncBuffer, want string) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if strings.Contains(s.String(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (%q); got %q", what, want, s.String())
}

// openPty returns a pty master and its slave, the slave to become
// crictl's controlling terminal.
func openPty(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func setWinsize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("set window size: %v", err)
	}
}

// startBounded starts cmd and registers a cleanup that kills it if it is
// still running; the returned channel closes when it exited.
func startBounded(t *testing.T, cmd *exec.Cmd) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return done
}

func waitExit(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit", what)
	}
}

// TestStreamingExecTTYResize runs crictl exec -it on a pty whose size the
// test sets: the container's terminal starts at that size and follows a
// resize during the session.
func TestStreamingExecTTYResize(t *testing.T) {
	d := startHulld(t, `[runtimes.runc]
type = "oci"
path = "/usr/sbin/runc"
`)
	d.crictl("pull", busybox)
	for _, h := range []string{"hullrt", "runc"} {
		t.Run(h, func(t *testing.T) {
			_, c := d.runPod("resize-"+h, "sleep 3600", "--runtime", h)
			execTTYResize(t, d, c, nil, [2]uint16{33, 101}, [2]uint16{41, 123}, 3)
		})
	}
}

// ptyCrictl is crictl running with a fresh pty as its controlling
// terminal; the test plays the user at the master.
type ptyCrictl struct {
	cmd     *exec.Cmd
	master  *os.File
	out     *syncBuffer
	done    <-chan struct{} // crictl exited
	drained <-chan struct{} // all crictl printed is in out
}

// startOnPty starts crictl with args on a new pty of rows x cols.
func startOnPty(t *testing.T, d *daemon, rows, cols uint16, args ...string) *ptyCrictl {
	t.Helper()
	master, slave := openPty(t)
	setWinsize(t, master, rows, cols)
	cmd := d.crictlCmd(args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	p := &ptyCrictl{cmd: cmd, master: master, out: &syncBuffer{}}
	// The copy ends (EIO) once crictl, the slave's last holder, exited:
	// only then is all it printed in out.
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(p.out, master); close(drained) }()
	p.drained = drained
	p.done = startBounded(t, cmd)
	slave.Close()
	return p
}

// typeUntil types a line every 100 ms (each makes the container print
// again) until want shows, for up to 20 s; it reports whether it did.
func (p *ptyCrictl) typeUntil(t *testing.T, want string) bool {
	t.Helper()
	for i := 0; i < 200 && !strings.Contains(p.out.String(), want); i++ {
		if _, err := p.master.Write([]byte("\r")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return strings.Contains(p.out.String(), want)
}

// endAndWait types ^D and waits for crictl to exit and its output to drain.
func (p *ptyCrictl) endAndWait(t *testing.T, what string) {
	t.Helper()
	if _, err := p.master.Write([]byte{4}); err != nil {
		t.Fatal(err)
	}
	waitExit(t, what, p.done)
	waitExit(t, "crictl's terminal output", p.drained)
}

// execTTYResize runs crictl exec -it (plus extra flags, e.g. the
// transport) into c on a pty: the container's terminal starts at the
// client's size and follows a resize, and the shell's exit code comes back
// through crictl.
func execTTYResize(t *testing.T, d *daemon, c string, extra []string, first, second [2]uint16, exitCode int) {
	t.Helper()
	args := append(append([]string{"exec", "-it"}, extra...), c, "sh", "-c",
		fmt.Sprintf(`tty; stty size; while read x; do echo "size=$(stty size)"; done; exit %d`, exitCode))
	p := startOnPty(t, d, first[0], first[1], args...)
	waitFor(t, "initial terminal size", p.out, fmt.Sprintf("%d %d", first[0], first[1]))
	setWinsize(t, p.master, second[0], second[1])
	if !p.typeUntil(t, fmt.Sprintf("size=%d %d", second[0], second[1])) {
		t.Fatalf("exec -it %v: resize not seen in the container: %q", extra, p.out.String())
	}
	// ^D ends the read loop.
	p.endAndWait(t, "crictl exec -it")
	if got := p.out.String(); p.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(got, "/dev/pts/") ||
		!strings.Contains(got, fmt.Sprintf("exit code %d", exitCode)) {
		t.Fatalf("exec -it %v, exit %d inside: crictl exit code %d; output %q", extra, exitCode, p.cmd.ProcessState.ExitCode(), got)
	}
}

// TestStreamingAttachEcho attaches to a container running cat on its
// stdin: what crictl attach -i sends comes back, and lands in the log.
func TestStreamingAttachEcho(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	pod := d.podJSON("attach", "")
	p := d.crictl("runp", pod)
	c := d.crictl("create", p, d.ctrJSON("attach", "cat", `"stdin":true`), pod)
	d.crictl("start", c)

	for _, transport := range []string{"spdy"} {
		word := "hello-" + transport
		cmd := d.crictlCmd("attach", "-i", "-r", transport, c)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := startBounded(t, cmd)
		// The attach stream may not be wired when the first bytes are
		// written, so resend until cat's echo comes back.
		for i := 0; i < 100 && !strings.Contains(out.String(), word); i++ {
			if _, err := io.WriteString(in, word+"\n"); err != nil {
				t.Fatalf("%s: write stdin: %v; output %q", transport, err, out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !strings.Contains(out.String(), word) {
			t.Fatalf("%s: echo not seen through attach: %q", transport, out.String())
		}
		in.Close()
		// The container kept its stdin (stdin_once unset), so the session
		// only ends when crictl goes away.
		_ = cmd.Process.Kill()
		waitExit(t, "crictl attach", done)
	}
	if st := field(d.inspect("inspect", c), "status.state"); st != "CONTAINER_RUNNING" {
		t.Fatalf("cat exited after the attach sessions: state %v", st)
	}

	logPath := filepath.Join(d.dir, "logs", "attach", "attach.log")
	var logged []byte
	for i := 0; i < 400 && !bytes.Contains(logged, []byte(" stdout F hello-spdy\n")); i++ {
		time.Sleep(50 * time.Millisecond)
		logged, _ = os.ReadFile(logPath)
	}
	if !bytes.Contains(logged, []byte(" stdout F hello-spdy\n")) {
		t.Fatalf("echo not in the CRI log %s: %q", logPath, logged)
	}
	if out := d.crictl("logs", c); !strings.Contains(out, "hello-spdy") {
		t.Fatalf("crictl logs: %q", out)
	}
}

// TestStreamingPortForwardHTTP forwards two ports to two busybox httpd in
// a pod and fetches from both with concurrent HTTP clients.
func TestStreamingPortForwardHTTP(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	p, c := d.runPod("httpd", `mkdir -p /www /www2 && echo page-one > /www/index.html && echo page-two > /www2/index.html &&
httpd -p 8081 -h /www2 && exec httpd -f -p 8080 -h /www`)

	// crictl port-forward gives up at the first refused connection, so
	// both servers must listen before it starts.
	eventually(t, "both httpd listening in the pod", func() bool {
		a, err1 := d.crictlErr("exec", "-s", c, "wget", "-q", "-O-", "http://127.0.0.1:8080/index.html")
		b, err2 := d.crictlErr("exec", "-s", c, "wget", "-q", "-O-", "http://127.0.0.1:8081/index.html")
		return err1 == nil && err2 == nil && strings.Contains(a, "page-one") && strings.Contains(b, "page-two")
	})
	ports := freePorts(t, 2)
	pf := d.crictlCmd("port-forward", p, fmt.Sprintf("%d:8080", ports[0]), fmt.Sprintf("%d:8081", ports[1]))
	var pfOut syncBuffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	startBounded(t, pf)
	waitFor(t, "port-forward listening", &pfOut, fmt.Sprintf("Forwarding from 127.0.0.1:%d", ports[1]))

	// No keep-alive: every request is its own connection, so its own
	// port-forward stream.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(port int) (string, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %s: %q", resp.Status, b)
		}
		return strings.TrimSpace(string(b)), nil
	}
	if a, err := get(ports[0]); err != nil || a != "page-one" {
		t.Fatalf("GET through port %d: %q, %v; crictl: %s", ports[0], a, err, pfOut.String())
	}
	if b, err := get(ports[1]); err != nil || b != "page-two" {
		t.Fatalf("GET through port %d: %q, %v; crictl: %s", ports[1], b, err, pfOut.String())
	}

	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			port, want := ports[i%2], []string{"page-one", "page-two"}[i%2]
			got, err := get(port)
			if err == nil && got != want {
				err = fmt.Errorf("got %q, want %q", got, want)
			}
			if err != nil {
				errs <- fmt.Errorf("request %d to %d: %w", i, port, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// A raw connection held open while others come and go: streams are
	// independent.
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := get(ports[1]); err != nil || got != "page-two" {
		t.Fatalf("request beside an open connection: %q, %v", got, err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /index.html HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("held connection: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "page-one" {
		t.Fatalf("held connection body %q", b)
	}
}

// freePorts returns n distinct local TCP ports free at the time of the call.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// TestStreamingConcurrentExec runs 20 crictl exec at once into one
// container, over both transports and ExecSync: each gets its own output
// and exit code.
func TestStreamingConcurrentExec(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	_, c := d.runPod("conc-exec", "sleep 3600")

	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			args := []string{"exec"}
			if i%3 == 1 {
				args = append(args, "-s")
			}
			code := i % 4
			args = append(args, c, "sh", "-c", fmt.Sprintf("echo out-%d; echo err-%d >&2; exit %d", i, i, code))
			cmd := d.crictlCmd(args...)
			cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			if err := checkExec(i, code, len(args) == 6, stdout.String(), stderr.String(), runErr); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkExec says what is wrong with the result of exec i, which should
// print out-i and err-i and exit with code. crictl reports ExecSync (-s)
// differently: both streams on its stdout on success, and only stderr in
// its error message on failure.
func checkExec(i, code int, sync bool, stdout, stderr string, err error) error {
	out, errOut := fmt.Sprintf("out-%d\n", i), fmt.Sprintf("err-%d\n", i)
	switch {
	case code == 0 && err != nil:
		return fmt.Errorf("exec %d (sync %v): %v: %s", i, sync, err, stderr)
	case code != 0 && err == nil:
		return fmt.Errorf("exec %d (sync %v): exit %d not reported: %q", i, sync, code, stdout)
	case sync && code == 0 && (!strings.Contains(stdout, out) || !strings.Contains(stdout, errOut)):
		return fmt.Errorf("exec %d (sync): output %q", i, stdout)
	case sync && code != 0 && !strings.Contains(stderr, fmt.Sprintf("exited with %d: err-%d", code, i)):
		return fmt.Errorf("exec %d (sync): want exit %d with err-%d, got %q", i, code, i, stderr)
	case !sync && (!strings.Contains(stdout, out) || strings.Contains(stdout, "err-")):
		return fmt.Errorf("exec %d: stdout %q", i, stdout)
	case !sync && !strings.Contains(stderr, errOut):
		return fmt.Errorf("exec %d: stderr %q", i, stderr)
	case !sync && code != 0 && !strings.Contains(stderr, fmt.Sprintf("exit code %d", code)):
		return fmt.Errorf("exec %d: want exit code %d, got %v: %s", i, code, err, stderr)
	}
	return nil
}

// TestStreamingAttachTTYResize attaches with -it to a container that has
// a terminal: input reaches it and crictl's terminal size, before and
// after a resize, is what the container sees.
func TestStreamingAttachTTYResize(t *testing.T) {
	attachTTYResize(t, "attach-tty", nil, [2]uint16{27, 91}, [2]uint16{44, 132})
}

// attachTTYResize runs `crictl attach -it` (plus extra flags, e.g. the
// transport) into a container printing its terminal size for each line it
// reads, and checks the size crictl sent at attach and after a resize.
func attachTTYResize(t *testing.T, name string, extra []string, first, second [2]uint16) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	pod := d.podJSON(name, "")
	sb := d.crictl("runp", pod)
	c := d.crictl("create", sb, d.ctrJSON(name, `while read x; do echo "size=$(stty size)"; done`,
		`"stdin":true,"tty":true`), pod)
	d.crictl("start", c)

	p := startOnPty(t, d, first[0], first[1], append(append([]string{"attach", "-it"}, extra...), c)...)
	// The size crictl sent (asynchronously, at attach), then a resize.
	for i, size := range [][2]uint16{first, second} {
		if i > 0 {
			setWinsize(t, p.master, size[0], size[1])
		}
		if want := fmt.Sprintf("size=%d %d", size[0], size[1]); !p.typeUntil(t, want) {
			t.Fatalf("attach -it %v: %q not seen: %q", extra, want, p.out.String())
		}
	}
}

// TestStreamingExecTTYShortCommand runs commands that end at once under
// exec -it: their output must not be lost when the command finishes
// before hulld took the pty master off the console socket.
func TestStreamingExecTTYShortCommand(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	_, c := d.runPod("short-tty", "sleep 3600")
	for i := 0; i < 25; i++ {
		p := startOnPty(t, d, 24, 80, "exec", "-it", c, "echo", fmt.Sprintf("quick-%d", i))
		waitExit(t, "crictl exec -it", p.done)
		waitExit(t, "crictl's terminal output", p.drained)
		if !strings.Contains(p.out.String(), fmt.Sprintf("quick-%d", i)) || p.cmd.ProcessState.ExitCode() != 0 {
			t.Fatalf("exec -it %d: exit %d, output %q", i, p.cmd.ProcessState.ExitCode(), p.out.String())
		}
		p.master.Close()
	}
}
