package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMain lets the test binary serve as the container init: Create
// re-executes it, and MaybeInit takes over before any test runs.
func TestMain(m *testing.M) {
	MaybeInit()
	os.Exit(m.Run())
}

var applets = []string{"sh", "cat", "echo", "ls", "id", "hostname", "sleep", "true", "false", "touch", "test",
	"readlink", "stat", "grep", "mount", "ulimit", "umask", "tty", "mkdir", "wc", "head", "dd", "pwd", "env", "domainname", "ps"}

// needRoot skips tests that need root and a static busybox, which CI has.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
}

// newBundle builds a bundle in a temp dir: a busybox rootfs (copied from
// the host's static busybox) and DefaultSpec adjusted to args.
func newBundle(t *testing.T, args ...string) (string, *specs.Spec) {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	spec := DefaultSpec()
	spec.Root.Path = "rootfs"
	spec.Process.Terminal = false
	spec.Process.Args = args
	return dir, spec
}

func writeSpec(t *testing.T, bundle string, spec *specs.Spec) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// newRuntime returns a Runtime with a private root; every container left
// in it is force-deleted at cleanup.
func newRuntime(t *testing.T) *Runtime {
	t.Helper()
	r, err := New(Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		list, _ := r.List()
		for _, s := range list {
			r.Delete(context.Background(), s.ID, true)
		}
	})
	return r
}

// runOut runs the container to completion and returns its combined output
// and exit status.
func runOut(t *testing.T, r *Runtime, id, bundle string, spec *specs.Spec) (string, int) {
	t.Helper()
	writeSpec(t, bundle, spec)
	var out bytes.Buffer
	w, rd := pipeCollect(t, &out)
	ctx := context.Background()
	if err := r.Create(ctx, id, CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: w, Stderr: w}); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	w.Close()
	if err := r.Start(ctx, id); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	code, err := r.Wait(id)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	<-rd
	if err := r.Delete(ctx, id, false); err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
	return out.String(), code
}

// startQuiet creates and starts container id from bundle with its stdio on
// /dev/null.
func startQuiet(t *testing.T, r *Runtime, id, bundle string) {
	t.Helper()
	ctx := context.Background()
	if err := r.Create(ctx, id, CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func devNull(t *testing.T) *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pipeCollect returns the write end of a pipe whose read end is copied into
// buf; the channel closes at EOF.
func pipeCollect(t *testing.T, buf *bytes.Buffer) (*os.File, chan struct{}) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		buf.ReadFrom(pr)
		pr.Close()
		close(done)
	}()
	return pw, done
}

// sh runs a shell script in a fresh container and returns its output,
// failing the test on a non-zero exit.
func sh(t *testing.T, script string, edit func(*specs.Spec)) string {
	t.Helper()
	bundle, spec := newBundle(t, "/bin/sh", "-c", script)
	if edit != nil {
		edit(spec)
	}
	r := newRuntime(t)
	out, code := runOut(t, r, strings.ReplaceAll(t.Name(), "/", "-"), bundle, spec)
	if code != 0 {
		t.Fatalf("script exited %d: %s", code, out)
	}
	return out
}

// removeTestCgroups removes the empty parents that cgroupsPath
// "/hull-test/..." leaves in every hierarchy.
func removeTestCgroups() {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/hull-test")
	for _, d := range dirs {
		os.Remove(d)
	}
}
