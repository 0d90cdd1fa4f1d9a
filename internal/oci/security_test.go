package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRuntimeBinaryCannotBeOverwritten is the CVE-2019-5736 class: a
// container process that gets hold of /proc/<init>/exe (here: an O_PATH fd
// taken while the init still runs the runtime binary) must not be able to
// write through it, during the init's life or after it.
func TestRuntimeBinaryCannotBeOverwritten(t *testing.T) {
	needRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A private copy as the init binary: nothing else executes it, so
	// only the runtime's protection stands between a writer and it.
	initBin := filepath.Join(t.TempDir(), "hullrt-init")
	copyFile(t, self, initBin)
	before := fileHash(t, initBin)

	bundle, spec := newBundle(t, "/bin/sleep", "60")
	writeSpec(t, bundle, spec)
	r, err := New(Options{Root: t.TempDir(), InitPath: initBin})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { r.Delete(ctx, "exe", true) })
	if err := r.Create(ctx, "exe", CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err != nil {
		t.Fatal(err)
	}
	st, err := r.State("exe")
	if err != nil {
		t.Fatal(err)
	}
	exe := "/proc/" + strconv.Itoa(st.Pid) + "/exe"
	if f, err := os.OpenFile(exe, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Fatal("the init's /proc/PID/exe opened for writing")
	}
	opath, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(opath)
	if err := r.Start(ctx, "exe"); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill("exe", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Wait("exe"); err != nil {
		t.Fatal(err)
	}
	// No process executes the binary any more: only a read-only or sealed
	// image stops this write.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(opath), os.O_WRONLY|os.O_TRUNC, 0)
	if err == nil {
		_, werr := f.Write([]byte("#!/bin/sh\necho pwned\n"))
		f.Close()
		if werr == nil {
			t.Fatal("wrote to the runtime binary through the init's exe link")
		}
	}
	if after := fileHash(t, initBin); after != before {
		t.Fatal("the runtime binary changed")
	}
}

// TestNoHostFDReachesContainer is the CVE-2024-21626 class: a host
// directory fd leaked into the runtime (opened without O_CLOEXEC) must not
// reach the container, not even as its cwd through /proc/self/fd/N.
func TestNoHostFDReachesContainer(t *testing.T) {
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "host-secret"), []byte("x"), 0o644)
	fd, err := syscall.Open(hostDir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0) // deliberately inheritable
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)

	out := sh(t, `for f in /proc/self/fd/*; do echo "fd $f -> $(readlink $f)"; done; echo "cwd=$(readlink /proc/self/cwd)"`, nil)
	if strings.Contains(out, hostDir) {
		t.Fatalf("a host fd reached the container:\n%s", out)
	}
	if !strings.Contains(out, "cwd=/\n") {
		t.Fatalf("cwd not the container root:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "fd /proc/self/fd/") {
			n := strings.TrimPrefix(strings.Fields(line)[1], "/proc/self/fd/")
			if n != "0" && n != "1" && n != "2" && !strings.Contains(line, "/proc/") {
				t.Errorf("unexpected fd in the container: %s", line)
			}
		}
	}

	// The attack itself: cwd set to the leaked fd's magic link.
	bundle, spec := newBundle(t, "/bin/sh", "-c", "ls; pwd")
	spec.Process.Cwd = "/proc/self/fd/" + strconv.Itoa(fd)
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	var buf bytes.Buffer
	w, done := pipeCollect(t, &buf)
	err = r.Create(context.Background(), "cwd-attack", CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: w, Stderr: w})
	w.Close()
	if err == nil {
		r.Start(context.Background(), "cwd-attack")
		r.Wait("cwd-attack")
	}
	<-done
	if strings.Contains(buf.String(), "host-secret") {
		t.Fatalf("the container reached the host directory through its cwd:\n%s", buf.String())
	}
}

// TestMountDestinationSymlinksStayInRootfs: symlinks in the rootfs that
// point at host paths (absolute or through ..) are resolved inside the
// rootfs, so mount points are never created on the host.
func TestMountDestinationSymlinksStayInRootfs(t *testing.T) {
	hostDir := t.TempDir()
	bundle, spec := newBundle(t, "/bin/sh", "-c", "grep -c ' /abs/x \\| /rel/y ' /proc/self/mounts || true")
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.Symlink(hostDir, filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../.."+hostDir, filepath.Join(rootfs, "rel")); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/abs/x", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/rel/y", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/abs/file", Type: "bind", Source: "/etc/hostname", Options: []string{"bind", "ro"}})
	r := newRuntime(t)
	out, code := runOut(t, r, "symlinks", bundle, spec)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	ents, _ := os.ReadDir(hostDir)
	if len(ents) != 0 {
		t.Fatalf("mount points were created on the host in %s: %v", hostDir, ents)
	}
	// The mounts landed inside the rootfs, at the symlinks' in-root targets.
	if _, err := os.Stat(filepath.Join(rootfs, hostDir, "x")); err != nil {
		t.Fatalf("mount point not created inside the rootfs: %v", err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestSealedCopyRefusesWrites covers the fallback for kernels without
// open_tree: the memfd copy is sealed against any write.
func TestSealedCopyRefusesWrites(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := sealedCopy(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0)
	if err == nil {
		_, err = w.Write([]byte("x"))
		w.Close()
	}
	if err == nil {
		t.Fatal("wrote to the sealed memfd copy")
	}
	if fileHashFile(t, f) != fileHash(t, self) {
		t.Fatal("sealed copy differs from the binary")
	}
}

func fileHashFile(t *testing.T, f *os.File) [32]byte {
	t.Helper()
	b, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
