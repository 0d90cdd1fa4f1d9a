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
