package cri

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"

	"hull/internal/cri/store"
)

func TestMetricDescriptorsUniqueWithHelp(t *testing.T) {
	resp, err := (&Service{}).ListMetricDescriptors(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range resp.GetDescriptors() {
		if seen[d.GetName()] || d.GetHelp() == "" || len(d.GetLabelKeys()) < len(baseLabels) {
			t.Errorf("descriptor %q: duplicate, no help or too few label keys (%v)", d.GetName(), d.GetLabelKeys())
		}
		seen[d.GetName()] = true
	}
	if !seen["container_memory_working_set_bytes"] || !seen["container_network_receive_bytes_total"] {
		t.Fatalf("core metrics missing from %d descriptors", len(seen))
	}
}

// TestProcessCounts counts a real child tree: this test process and a
// sleeping child holding a socket it inherited.
func TestProcessCounts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	procs, fds, socks := processCounts(&store.Container{State: store.ContainerRunning, Pid: os.Getpid()})
	if procs < 2 || fds < 4 || socks < 2 {
		t.Fatalf("processes %d, fds %d, sockets %d: want >= 2, 4, 2", procs, fds, socks)
	}
	if p, _, _ := processCounts(&store.Container{State: store.ContainerExited, Pid: os.Getpid()}); p != 0 {
		t.Fatalf("a stopped container reported %d processes", p)
	}
}

// TestNetworkMetrics reads a fresh network namespace holding one dummy
// veth pair: eight counters per end with the descriptors' label count, no lo.
func TestNetworkMetrics(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	cmd := exec.Command("unshare", "-n", "sh", "-c", "ip link add hullm0 type veth peer name hullm1 && echo ok && exec sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	buf := make([]byte, 3)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ok\n" {
		t.Fatalf("namespace setup: %q, %v", buf, err)
	}
	keys := map[string]int{}
	for _, d := range metricDescs {
		keys[d.name] = len(baseLabels) + len(d.extra)
	}
	ms := &metricSet{base: []string{"id", "name", ""}}
	addNetworkMetrics(ms, cmd.Process.Pid)
	if len(ms.out) != 16 {
		t.Fatalf("got %d metrics, want 8 for each of hullm0 and hullm1: %v", len(ms.out), ms.out)
	}
	for _, m := range ms.out {
		lv := m.GetLabelValues()
		if len(lv) != keys[m.GetName()] || (lv[len(lv)-1] != "hullm0" && lv[len(lv)-1] != "hullm1") {
			t.Errorf("%s: label values %v, descriptor has %d keys", m.GetName(), lv, keys[m.GetName()])
		}
	}
}
