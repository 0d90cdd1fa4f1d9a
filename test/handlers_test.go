package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// findRunsc looks for gVisor's runsc where `go install` or an admin puts it.
func findRunsc() string {
	for _, p := range []string{"/usr/local/bin/runsc", "/root/go/bin/runsc"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("runsc")
	return p
}

// TestRuntimeHandlersSideBySide runs one pod per handler at the same time:
// hullrt (in-process, the default), runc and gVisor's runsc.
func TestRuntimeHandlersSideBySide(t *testing.T) {
	runsc := findRunsc()
	if runsc == "" {
		t.Skip("runsc is not installed (CGO_ENABLED=0 go install gvisor.dev/gvisor/runsc@latest)")
	}
	d := startHulld(t, `[runtimes.runc]
type = "oci"
path = "/usr/sbin/runc"
[runtimes.runsc]
type = "oci"
path = "`+runsc+`"
`)
	d.crictl("pull", busybox)
	type pod struct{ handler, pod, ctr string }
	var pods []pod
	for _, h := range []string{"hullrt", "runc", "runsc"} {
		p, c := d.runPod("h-"+h, "echo running-on-"+h+"; exec sleep 300", "--runtime", h)
		pods = append(pods, pod{h, p, c})
	}
	for _, p := range pods {
		if got := field(d.inspect("inspectp", p.pod), "status.runtimeHandler"); got != p.handler {
			t.Fatalf("pod %s: runtimeHandler %v, want %s", p.pod, got, p.handler)
		}
		if st := field(d.inspect("inspect", p.ctr), "status.state"); st != "CONTAINER_RUNNING" {
			t.Fatalf("%s container is %v", p.handler, st)
		}
		out := d.crictl("exec", "-s", p.ctr, "uname", "-r")
		if gvisor := strings.Contains(out, "gvisor"); gvisor != (p.handler == "runsc") {
			t.Fatalf("%s container runs kernel %q", p.handler, out)
		}
		// Each handler keeps its containers under its own state root.
		if _, err := os.Stat(filepath.Join(d.dir, "state", "runtimes", p.handler, p.ctr)); err != nil && p.handler != "runsc" {
			t.Fatalf("%s container not in its handler's root: %v", p.handler, err)
		}
		eventually(t, p.handler+" log", func() bool {
			out, _ := d.crictlErr("logs", p.ctr)
			return strings.Contains(out, "running-on-"+p.handler)
		})
	}
	for _, p := range pods {
		d.crictl("stop", "-t", "2", p.ctr)
		d.crictl("rm", p.ctr)
		d.crictl("stopp", p.pod)
		d.crictl("rmp", p.pod)
	}
}
