package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCrictlLifecycle walks every crictl verb a user runs on one pod.
func TestCrictlLifecycle(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	if imgs := d.crictl("images"); !strings.Contains(imgs, "e2e-test-images/busybox") {
		t.Fatalf("crictl images does not list busybox:\n%s", imgs)
	}
	img := d.inspect("inspecti", busybox)
	imgID, _ := field(img, "status.id").(string)
	if !strings.HasPrefix(imgID, "sha256:") {
		t.Fatalf("inspecti: image id %q", imgID)
	}

	pod := d.podJSON("life", "")
	p := d.crictl("runp", pod)
	if pods := d.crictl("pods", "-q"); !strings.Contains(pods, p) {
		t.Fatalf("crictl pods does not list %s: %q", p, pods)
	}
	ps := d.inspect("inspectp", p)
	if st := field(ps, "status.state"); st != "SANDBOX_READY" {
		t.Fatalf("pod state %v", st)
	}
	ip, _ := field(ps, "status.network.ip").(string)
	if !strings.HasPrefix(ip, d.subnet+".") {
		t.Fatalf("pod ip %q is not on the test bridge %s.0/24", ip, d.subnet)
	}

	c := d.crictl("create", p, d.ctrJSON("life", "echo hello-from-hull; echo oops >&2; exec sleep 300", ""), pod)
	if st := field(d.inspect("inspect", c), "status.state"); st != "CONTAINER_CREATED" {
		t.Fatalf("state after create: %v", st)
	}
	d.crictl("start", c)
	ins := d.inspect("inspect", c)
	if st := field(ins, "status.state"); st != "CONTAINER_RUNNING" {
		t.Fatalf("state after start: %v", st)
	}
	if u := field(ins, "status.user.linux"); u == nil {
		t.Fatalf("status has no user: %v", field(ins, "status"))
	}
	if out := d.crictl("ps", "-q"); !strings.Contains(out, c) {
		t.Fatalf("crictl ps does not list %s", c)
	}
	if out := d.crictl("exec", "-s", c, "sh", "-c", "echo $((6*7)); hostname"); !strings.HasPrefix(out, "42") {
		t.Fatalf("exec -s printed %q", out)
	}
	if _, err := d.crictlErr("exec", "-s", c, "sh", "-c", "exit 3"); err == nil || !strings.Contains(err.Error(), "exited with 3") {
		t.Fatalf("exec of a failing command: %v", err)
	}
	logPath := filepath.Join(d.dir, "logs", "life", "life.log")
	eventually(t, "log lines", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " stdout F hello-from-hull\n") && strings.Contains(string(b), " stderr F oops\n")
	})
	if out := d.crictl("logs", c); !strings.Contains(out, "hello-from-hull") {
		t.Fatalf("crictl logs: %q", out)
	}
	if lp := field(d.inspect("inspect", c), "status.logPath"); lp != logPath {
		t.Fatalf("status.logPath %v, want %s", lp, logPath)
	}
	if out := d.crictl("stats", "-o", "json", c); !strings.Contains(out, `"workingSetBytes"`) {
		t.Fatalf("stats: %s", out)
	}
	d.crictl("update", "--memory", "134217728", c)
	if out := d.crictl("exec", "-s", c, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(out) != "134217728" {
		t.Fatalf("memory limit after update: %q", out)
	}
	d.crictl("stop", "-t", "2", c)
	st := d.inspect("inspect", c)
	if field(st, "status.state") != "CONTAINER_EXITED" {
		t.Fatalf("state after stop: %v", field(st, "status.state"))
	}
	d.crictl("rm", c)
	if _, err := d.crictlErr("inspect", c); err == nil {
		t.Fatal("container still there after rm")
	}
	d.crictl("stopp", p)
	d.crictl("rmp", p)
	if out := d.crictl("pods", "-q"); out != "" {
		t.Fatalf("pods left after rmp: %q", out)
	}
	d.crictl("rmi", busybox)
	if out := d.crictl("images", "-q"); out != "" {
		t.Fatalf("images left after rmi: %q", out)
	}
	// Nothing of the pod may stay mounted under hulld's dirs.
	b, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(b), d.dir+"/state") {
		t.Fatalf("mounts left under %s/state:\n%s", d.dir, b)
	}
}
