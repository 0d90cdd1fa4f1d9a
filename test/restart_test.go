package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestartKeepsPods kills hulld with SIGKILL while five pods run: their
// logs keep growing while it is down; after a restart all five are running
// and stoppable, and a container that exited meanwhile reports its code.
func TestRestartKeepsPods(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	var ctrs []string
	for i := 0; i < 5; i++ {
		_, c := d.runPod(fmt.Sprintf("r%d", i), "while true; do echo tick; sleep 0.1; done")
		ctrs = append(ctrs, c)
	}
	_, quitter := d.runPod("quitter", "read x < /dev/null; sleep 1; exit 7")
	logPath := filepath.Join(d.dir, "logs", "r0", "r0.log")
	eventually(t, "first log lines", func() bool { return lines(logPath) > 2 })

	d.kill9()
	n1 := lines(logPath)
	eventually(t, "log growth while hulld is down", func() bool { return lines(logPath) > n1+3 })
	time.Sleep(1500 * time.Millisecond) // the quitter exits while hulld is down
	d.start()

	for _, c := range ctrs {
		if st := field(d.inspect("inspect", c), "status.state"); st != "CONTAINER_RUNNING" {
			t.Fatalf("container %s is %v after the restart", c, st)
		}
	}
	q := d.inspect("inspect", quitter)
	if field(q, "status.state") != "CONTAINER_EXITED" || fmt.Sprint(field(q, "status.exitCode")) != "7" {
		t.Fatalf("quitter after restart: state %v exit code %v", field(q, "status.state"), field(q, "status.exitCode"))
	}
	for _, c := range ctrs {
		d.crictl("stop", "-t", "1", c)
		if st := field(d.inspect("inspect", c), "status.state"); st != "CONTAINER_EXITED" {
			t.Fatalf("container %s is %v after stop", c, st)
		}
	}
	n2 := lines(logPath)
	time.Sleep(300 * time.Millisecond)
	if n3 := lines(logPath); n3 != n2 {
		t.Fatalf("log still growing after stop: %d -> %d", n2, n3)
	}
}

func lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}
