package e2e

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestContainerEvents follows GetContainerEvents (crictl events) through a
// container's whole life.
func TestContainerEvents(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	ev := d.crictlCmd("events", "-o", "json")
	var out syncBuffer
	ev.Stdout = &out
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ev.Process.Kill(); _ = ev.Wait() })
	// crictl connects asynchronously: make throwaway containers until one
	// of their events shows up, then follow the real one.
	warm := d.podJSON("warm", "")
	wp := d.crictl("runp", warm)
	eventually(t, "the event stream", func() bool {
		wc := d.crictl("create", wp, d.ctrJSON("warm", "true", ""), warm)
		d.crictl("rm", wc)
		return strings.Contains(out.String(), wc)
	})
	p, c := d.runPod("events", "exec sleep 300")
	d.crictl("stop", "-t", "1", c)
	d.crictl("rm", c)
	for _, want := range []string{"CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT", "CONTAINER_DELETED_EVENT"} {
		eventually(t, want, func() bool { return strings.Contains(out.String(), want) })
	}
	if !strings.Contains(out.String(), c) {
		t.Fatalf("events do not name container %s:\n%s", c, out.String())
	}
	d.crictl("rmp", "-f", p)
}
