package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCLIEventsStream runs `events` without --stats on a container that
// exhausts its 16 MiB memory limit: the stream carries stats events, then
// an oom event, and ends by itself once the container has stopped.
func TestCLIEventsStream(t *testing.T) {
	c := newCLI(t)
	b := bundle(t, "/bin/sh", "-c", "sleep 0.3; exec tail /dev/zero")
	os.Symlink("busybox", filepath.Join(b, "rootfs/bin/tail"))
	cfgPath := filepath.Join(b, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	limit := int64(16 << 20)
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	raw, _ = json.Marshal(&s)
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("create", "-b", b, "ev1")
	t.Cleanup(func() { c.run("", "delete", "--force", "ev1") })

	cmd := exec.Command(c.bin, "--root", c.root, "events", "--interval", "100ms", "ev1")
	cmd.Env = append(os.Environ(), "HULLRT_CLI=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c.must("start", "ev1")

	types := map[string]int{}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
loop:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				break loop
			}
			var ev struct {
				Type string          `json:"type"`
				ID   string          `json:"id"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.ID != "ev1" {
				t.Fatalf("bad event line %q: %v", l, err)
			}
			if ev.Type == "stats" && len(ev.Data) < 10 {
				t.Fatalf("stats event without data: %q", l)
			}
			types[ev.Type]++
		case <-deadline:
			t.Fatalf("events did not end after the container stopped; so far %v", types)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("events: %v: %s", err, stderr.String())
	}
	if types["stats"] < 1 || types["oom"] < 1 {
		t.Fatalf("want stats and oom events, got %v", types)
	}
	if s := c.status("ev1"); s != "stopped" {
		t.Fatalf("after the OOM kill: %s", s)
	}
}

func TestCLIEventsBadInterval(t *testing.T) {
	c := newCLI(t)
	b := bundle(t, "/bin/sleep", "60")
	c.must("create", "-b", b, "ev2")
	t.Cleanup(func() { c.run("", "delete", "--force", "ev2") })
	out, err := c.run("", "events", "--interval", "soon", "ev2")
	if err == nil || !strings.Contains(out, "--interval") {
		t.Fatalf("bad interval accepted: %v %q", err, out)
	}
}
