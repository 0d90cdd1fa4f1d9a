package cgroups

import (
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func recvCount(t *testing.T, c <-chan uint64) (uint64, bool) {
	t.Helper()
	select {
	case n, ok := <-c:
		return n, ok
	case <-time.After(30 * time.Second):
		t.Fatal("no OOM event within 30s")
		return 0, false
	}
}

func TestNotifyOOMV1RealKill(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	p := startProc(t, "read x; exec tail /dev/zero")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatal(err)
	}
	lim := int64(16 << 20)
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim, Swap: &lim}}); err != nil {
		t.Fatal(err)
	}
	n, err := NotifyOOM(m)
	if err != nil {
		t.Fatalf("NotifyOOM: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if _, err := p.in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if count, ok := recvCount(t, n.C()); !ok || count < 1 {
		t.Errorf("OOM event count %d ok=%v, want >= 1", count, ok)
	}
	_ = p.cmd.Wait()
	// Removing the cgroup ends the notifier.
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for range n.C() {
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestNotifyOOMV2FakeEvents(t *testing.T) {
	m := fakeV2(t, map[string]string{"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"})
	n, err := NotifyOOM(m)
	if err != nil {
		t.Fatalf("NotifyOOM: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	// A max event without a kill is not reported; the kill is.
	write(t, m.dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n")
	write(t, m.dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
	if count, ok := recvCount(t, n.C()); !ok || count != 1 {
		t.Errorf("count %d ok=%v, want 1", count, ok)
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, ok := <-n.C(); ok {
		t.Error("C still open after Close")
	}
}
