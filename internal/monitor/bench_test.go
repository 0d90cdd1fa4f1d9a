package monitor

import (
	"context"
	"testing"
)

// BenchmarkSpawnStartWait times one container life under a monitor with runc:
// Spawn (monitor start + runc create), runc start, Wait for the exit.
func BenchmarkSpawnStartWait(b *testing.B) {
	if !rootWithRunc() {
		b.Skip("needs root and runc")
	}
	bundle := makeBundleTB(b, false, "/bin/busybox", "true")
	ctx := context.Background()
	for b.Loop() {
		s := newSpecTB(b, bundle)
		h, err := Spawn(ctx, monitorBin, s)
		if err != nil {
			b.Fatal(err)
		}
		if out, err := runc(s, "start", s.ID); err != nil {
			b.Fatalf("runc start: %v: %s", err, out)
		}
		if e, err := h.Wait(ctx); err != nil || e.Code != 0 {
			b.Fatalf("Wait: %+v, %v", e, err)
		}
		if out, err := runc(s, "delete", s.ID); err != nil {
			b.Fatalf("runc delete: %v: %s", err, out)
		}
	}
}
