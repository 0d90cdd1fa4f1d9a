package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentPods starts 20 pods ten at a time and removes them ten at
// a time: no errors, every container running, nothing left.
func TestConcurrentPods(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	const n, par = 20, 10
	pods := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("conc%d", i)
			pod := d.podJSON(name, "")
			p, err := d.crictlErr("runp", pod)
			if err != nil {
				errs <- err
				return
			}
			pods[i] = p
			c, err := d.crictlErr("create", p, d.ctrJSON(name, "exec sleep 300", ""), pod)
			if err == nil {
				_, err = d.crictlErr("start", c)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if running := strings.Fields(d.crictl("ps", "-q", "--state", "running")); len(running) != n {
		t.Fatalf("%d containers running, want %d", len(running), n)
	}
	ips := map[string]bool{}
	for _, p := range pods {
		ip, _ := field(d.inspect("inspectp", p), "status.network.ip").(string)
		if ip == "" || ips[ip] {
			t.Fatalf("pod %s has ip %q (duplicate or none)", p, ip)
		}
		ips[ip] = true
	}
	errs = make(chan error, n)
	for _, p := range pods {
		wg.Add(1)
		go func(p string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := d.crictlErr("stopp", p); err != nil {
				errs <- err
			}
			if _, err := d.crictlErr("rmp", p); err != nil {
				errs <- err
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if out := d.crictl("pods", "-q"); out != "" {
		t.Fatalf("pods left: %q", out)
	}
}
