package monitor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
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

// BenchmarkDensity starts 20 sleeping containers under monitors and reports
// what each costs: the monitor's own anonymous memory and Pss (text shared
// between monitors is divided among them), and the drop of MemAvailable per
// container (noisy on a shared machine: indicative only).
func BenchmarkDensity(b *testing.B) {
	for _, rt := range runtimeTypes {
		b.Run(rt, func(b *testing.B) { benchDensity(b, rt) })
	}
}

func benchDensity(b *testing.B, rtype string) {
	if !rootWithRunc() {
		b.Skip("needs root and runc")
	}
	const n = 20
	bundle := makeBundleTB(b, false, "/bin/busybox", "sleep", "1000")
	ctx := context.Background()
	for b.Loop() {
		before := memAvailable(b)
		var handles []*Handle
		for range n {
			s := newSpecTB(b, bundle, rtype)
			h, err := Spawn(ctx, monitorBin, s)
			if err != nil {
				b.Fatal(err)
			}
			mustCtl(b, s, "start")
			handles = append(handles, h)
		}
		// Measure the steady state, not the tail of the last setups.
		time.Sleep(time.Second)
		after := memAvailable(b)
		var anon, pss int
		for _, h := range handles {
			a, p := smapsRollup(b, h.MonitorPID)
			anon += a
			pss += p
		}
		b.ReportMetric(float64(before-after)/n, "kB-MemAvailable/container")
		b.ReportMetric(float64(anon)/n, "kB-anon/monitor")
		b.ReportMetric(float64(pss)/n, "kB-Pss/monitor")
		b.StopTimer()
		for _, h := range handles {
			_ = syscall.Kill(h.InitPID, syscall.SIGKILL)
			if _, err := h.Wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

func memAvailable(t testing.TB) int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		var v int
		if n, _ := fmt.Sscanf(l, "MemAvailable: %d kB", &v); n == 1 {
			return v
		}
	}
	t.Fatal("no MemAvailable in /proc/meminfo")
	return 0
}

// smapsRollup returns Anonymous and Pss of pid in kB.
func smapsRollup(t testing.TB, pid int) (anon, pss int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		var v int
		if n, _ := fmt.Sscanf(l, "Anonymous: %d kB", &v); n == 1 {
			anon = v
		}
		if n, _ := fmt.Sscanf(l, "Pss: %d kB", &v); n == 1 {
			pss = v
		}
	}
	return anon, pss
}

// BenchmarkLogThroughput: a container writes 20 MB to stdout in lines of 11
// and of 1001 bytes; the monitor turns them into CRI records. Reports
// container-output bytes per second from start to exit.
func BenchmarkLogThroughput(b *testing.B) {
	for name, line := range map[string]string{
		"short": "l=abcdefghij",
		"long":  "l=abcdefghij; l=$l$l$l$l$l$l$l$l$l$l; l=$l$l$l$l$l$l$l$l$l$l",
	} {
		b.Run(name, func(b *testing.B) { benchLog(b, line) })
	}
}

func benchLog(b *testing.B, line string) {
	if !rootWithRunc() {
		b.Skip("needs root and runc")
	}
	const size = 20 << 20
	bundle := makeBundleTB(b, false, "/bin/busybox", "sh", "-c", fmt.Sprintf("%s; busybox yes $l | busybox head -c %d", line, size))
	ctx := context.Background()
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		s := newSpecTB(b, bundle, RuntimeHullrt)
		h, err := Spawn(ctx, monitorBin, s)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		mustCtl(b, s, "start")
		if e, err := h.Wait(ctx); err != nil || e.Code != 0 {
			b.Fatalf("Wait: %+v, %v", e, err)
		}
		b.StopTimer()
		fi, err := os.Stat(s.LogPath)
		if err != nil || fi.Size() < size {
			b.Fatalf("log %v bytes, want more than %d: %v", fi, size, err)
		}
		mustCtl(b, s, "delete")
		b.StartTimer()
	}
}
