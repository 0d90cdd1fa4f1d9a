package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadRequestsLeaveNothing checks error codes and that failed requests
// leave no record, directory or mount behind.
func TestBadRequestsLeaveNothing(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	if _, err := d.crictlErr("inspectp", "doesnotexist"); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("inspectp of a missing pod: %v", err)
	}
	pod := d.podJSON("bad", "")
	if _, err := d.crictlErr("runp", "--runtime", "nosuch", pod); err == nil || !strings.Contains(err.Error(), "InvalidArgument") || !strings.Contains(err.Error(), "is not configured") {
		t.Fatalf("runp with an unknown handler: %v", err)
	}
	if out := d.crictl("pods", "-q"); out != "" {
		t.Fatalf("a failed runp left pods: %q", out)
	}
	if _, err := d.crictlErr("create", "doesnotexist", d.ctrJSON("bad", "true", ""), pod); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("create in a missing pod: %v", err)
	}
	p := d.crictl("runp", pod)
	bad := d.ctrJSON("badimg", "true", "")
	b, _ := os.ReadFile(bad)
	writeFile(t, bad, strings.Replace(string(b), busybox, "127.0.0.1:5000/no/such:image", 1))
	if _, err := d.crictlErr("create", "--no-pull", p, bad, pod); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("create from a missing image: %v", err)
	}
	mnt := d.ctrJSON("badmount", "true", `"mounts":[{"container_path":"relative/path","host_path":"/tmp"}]`)
	if _, err := d.crictlErr("create", p, mnt, pod); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("create with a relative mount path: %v", err)
	}
	if out := d.crictl("ps", "-a", "-q"); out != "" {
		t.Fatalf("failed creates left containers: %q", out)
	}
	entries, _ := os.ReadDir(filepath.Join(d.dir, "state", "containers"))
	if len(entries) != 0 {
		t.Fatalf("failed creates left %d container dirs", len(entries))
	}
	rootfs, _ := os.ReadDir(filepath.Join(d.dir, "root", "image", "rootfs"))
	if len(rootfs) != 0 {
		t.Fatalf("failed creates left %d rootfs dirs", len(rootfs))
	}
	// Stop is idempotent.
	d.crictl("stopp", p)
	d.crictl("stopp", p)
	d.crictl("rmp", p)
}

// TestCNIFailure: a network whose ADD fails leaves the pod NOT_READY with
// the plugin's error, refuses to start its containers, and is removable.
func TestCNIFailure(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	// host-local refuses an exhausted range: a /32 has no address to give.
	conf := filepath.Join(d.dir, "cni", "10-e2e.conflist")
	writeFile(t, conf, `{"cniVersion":"1.0.0","name":"broken","plugins":[{"type":"bridge","bridge":"`+d.bridge+`",
"ipam":{"type":"host-local","ranges":[[{"subnet":"10.228.251.7/32"}]],"dataDir":"`+filepath.Join(d.dir, "ipam")+`"}}]}`)
	pod := d.podJSON("nonet", "")
	p := d.crictl("runp", pod)
	if st := field(d.inspect("inspectp", p), "status.state"); st != "SANDBOX_NOTREADY" {
		t.Fatalf("pod with a failed CNI ADD is %v", st)
	}
	if _, err := d.crictlErr("create", p, d.ctrJSON("nonet", "true", ""), pod); err == nil {
		t.Fatal("create in a pod whose network failed succeeded")
	}
	d.crictl("stopp", p)
	d.crictl("rmp", p)
	if out := d.crictl("pods", "-q"); out != "" {
		t.Fatalf("pods left: %q", out)
	}
}
