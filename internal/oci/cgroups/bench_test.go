package cgroups

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// typicalResources is roughly what the kubelet asks for a burstable pod.
func typicalResources() *specs.LinuxResources {
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: ptr(int64(256 << 20))},
		CPU:     &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(1024))},
	}
}

// BenchmarkCreateSetDestroy measures the cgroup work of one container
// lifecycle on this host: New, Apply (directories only), Set, Destroy.
func BenchmarkCreateSetDestroy(b *testing.B) {
	if _, err := hostSystem(); err != nil {
		b.Skip(err)
	}
	r := typicalResources()
	for b.Loop() {
		m, err := New(testName(&testing.T{}), "", Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Apply(-1); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(r); err != nil {
			_ = m.Destroy()
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStats measures one Stats read of a live cgroup.
func BenchmarkStats(b *testing.B) {
	m, err := New(testName(&testing.T{}), "", Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Destroy() })
	if err := m.Apply(-1); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.Stats(); err != nil {
			b.Fatal(err)
		}
	}
}
