package cri

import (
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tiny pause program runs as pid 1 of a new pid namespace, stays up,
// and leaves no zombie of an orphan that exits inside its namespace.
func TestPauseProgram(t *testing.T) {
	if goruntime.GOARCH != "amd64" || os.Geteuid() != 0 {
		t.Skip("needs root on x86-64")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("needs nsenter")
	}
	p := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(p, pauseELF(), 0o500); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	pid := strconv.Itoa(cmd.Process.Pid)
	// An orphan: sh starts sleep in the background and exits at once.
	out, err := exec.Command("nsenter", "-t", pid, "-p", "--", "/bin/sh", "-c", "sleep 0.2 & exit 0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	time.Sleep(600 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("pause exited")
	default:
	}
	children, _ := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
	for _, c := range strings.Fields(string(children)) {
		st, _ := os.ReadFile("/proc/" + c + "/stat")
		if strings.Contains(string(st), ") Z ") {
			t.Fatalf("zombie %s left under the pause program", c)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("pause survived SIGKILL")
	}
}
