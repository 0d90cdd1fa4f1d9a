package cgroups

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitEmpty waits until the cgroup has no processes left.
func waitEmpty(t *testing.T, m Manager) {
	t.Helper()
	var left []int
	err := waitFor(10*time.Second, func() (bool, error) {
		var err error
		left, err = m.Pids()
		return len(left) == 0, err
	})
	if err != nil {
		t.Errorf("processes left in the cgroup: %v (%v)", left, err)
	}
}

// A shell with two children: three processes to kill, none of which is
// the test's direct child except the shell.
const family = "read x; sleep 1000 & sleep 1000 & echo started; wait"

func testSignalAll(t *testing.T, m Manager) {
	p := startProc(t, family)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := p.in.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := p.out.ReadString('\n'); err != nil || line != "started\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	if pids, err := m.Pids(); err != nil || len(pids) != 3 {
		t.Fatalf("Pids = %v, %v; want 3", pids, err)
	}
	// SIGTERM to a paused container leaves it paused.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := SignalAll(m, unix.SIGCONT); err != nil {
		t.Errorf("SignalAll(SIGCONT): %v", err)
	}
	if st, _ := FreezerState(m); st != "FROZEN" {
		t.Errorf("after SIGCONT freezer is %q, want FROZEN", st)
	}
	if err := SignalAll(m, unix.SIGKILL); err != nil {
		t.Errorf("SignalAll(SIGKILL): %v", err)
	}
	_ = p.cmd.Wait()
	waitEmpty(t, m)
}

func TestSignalAllV1(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	testSignalAll(t, newTestManager(t))
}

func TestSignalAllV2(t *testing.T) {
	testSignalAll(t, newRealV2(t))
}
