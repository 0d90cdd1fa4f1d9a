package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStreaming covers crictl exec (with stdin, with a tty), attach and
// port-forward through hulld's streaming server.
func TestStreaming(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	p, c := d.runPod("stream", "while true; do echo served-by-pod | nc -l -p 8081; done")

	if out, err := d.crictlErr("exec", c, "sh", "-c", "echo via-stream; exit 4"); !strings.Contains(out, "via-stream") ||
		err == nil || !strings.Contains(err.Error(), "exit code 4") {
		t.Fatalf("exec: %q, %v", out, err)
	}
	cmd := d.crictlCmd("exec", "-i", c, "sh")
	cmd.Stdin = strings.NewReader("echo from-stdin\n")
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "from-stdin") {
		t.Fatalf("exec -i: %q, %v", out, err)
	}
	// -t needs a terminal on crictl's side: script(1) provides one.
	tty := exec.Command("script", "-qc", strings.Join(d.crictlCmd("exec", "-it", c, "tty").Args, " "), "/dev/null")
	if out, err := tty.Output(); err != nil || !strings.Contains(string(out), "/dev/pts/") {
		t.Fatalf("exec -it tty: %q, %v", out, err)
	}

	// Port forward: a local port through the streaming server to 8081 in the pod.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pf := d.crictlCmd("port-forward", p, fmt.Sprintf("%d:8081", port))
	stdout, _ := pf.StdoutPipe()
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pf.Process.Kill(); _ = pf.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Forwarding from") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward did not start")
	}
	var got string
	eventually(t, "data through port-forward", func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 64)
		n, _ := conn.Read(b)
		got = string(b[:n])
		return strings.Contains(got, "served-by-pod")
	})
}

// crictlCmd is the crictl command line for this hulld, not yet started.
func (d *daemon) crictlCmd(args ...string) *exec.Cmd {
	full := append([]string{"--config", "/dev/null", "--runtime-endpoint", "unix://" + d.sock,
		"--image-endpoint", "unix://" + d.sock, "--timeout", "60s"}, args...)
	return exec.Command(filepath.Join(harnessBin, "crictl"), full...)
}
