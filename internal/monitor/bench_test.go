package monitor

import (
	"context"
	"testing"
)

// BenchmarkSpawnStartWait times one container life under a monitor with runc:
// Spawn (monitor start + runc create), runc start, Wait for the exit.
func BenchmarkSpawnStartWait(b *testing.B) {
	for _, rt := range runtimeTypes {
		b.Run(rt, func(b *testing.B) { benchSpawn(b, rt) })
	}
}

func benchSpawn(b *testing.B, rtype string) {
	if !rootWithRunc() {
		b.Skip("needs root and runc")
	}
	bundle := makeBundleTB(b, false, "/bin/busybox", "true")
	ctx := context.Background()
	for b.Loop() {
		s := newSpecTB(b, bundle, rtype)
		h, err := Spawn(ctx, monitorBin, s)
		if err != nil {
			b.Fatal(err)
		}
		mustCtl(b, s, "start")
		if e, err := h.Wait(ctx); err != nil || e.Code != 0 {
			b.Fatalf("Wait: %+v, %v", e, err)
		}
		mustCtl(b, s, "delete")
	}
}
