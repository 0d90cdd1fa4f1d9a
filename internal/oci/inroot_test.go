package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func handlePath(t *testing.T, f *os.File) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Symlinks and ".." never lead out of the root; missing directories are
// made inside it; a file in the way is an error.
func TestInRootLookupsStayInRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	// root/outside exists, so that the escaping links resolve (in the root)
	// to it rather than dangle.
	for _, d := range []string{root + "/etc", root + "/var", root + "/outside", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"up":       "../../outside",
		"abs":      "/outside", // absolute: the root's /outside, never the host's
		"etc/loop": "../up",
		"var/run":  "/run", // dangling inside the root
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()

	for _, p := range []string{"up/x", "abs/x", "etc/loop/x", "../../outside/x", "/up/../../x/y"} {
		h, err := mkdirAllInRoot(rf, p, 0o755)
		if err != nil {
			t.Fatalf("mkdirAllInRoot(%q): %v", p, err)
		}
		if got := handlePath(t, h); !strings.HasPrefix(got, root+"/") {
			t.Errorf("mkdirAllInRoot(%q) made %s, outside the root", p, got)
		}
		h.Close()
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("something was created outside the root: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(root, "outside/x")); err != nil {
		t.Errorf("the escaping symlinks should have resolved to root/outside/x: %v", err)
	}
	h, err := openInRoot(rf, "abs")
	if err != nil {
		t.Fatal(err)
	}
	if got := handlePath(t, h); got != filepath.Join(root, "outside") {
		t.Errorf("openInRoot(abs) = %s, want %s", got, filepath.Join(root, "outside"))
	}
	h.Close()
	if _, err := mkdirAllInRoot(rf, "file/sub", 0o755); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("a file in the way: got %v, want ENOTDIR", err)
	}
	if _, err := mkdirAllInRoot(rf, "file", 0o755); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("a file as the directory: got %v, want ENOTDIR", err)
	}
	// A dangling symlink on the way is refused (the rootfs setup then
	// creates its in-root target itself).
	if _, err := mkdirAllInRoot(rf, "var/run/x", 0o755); err == nil {
		t.Error("mkdirAllInRoot through a dangling symlink succeeded")
	}
	if _, err := os.Lstat("/run/x"); err == nil {
		t.Error("the dangling symlink was followed to the host's /run")
	}
	h, err = mkdirAllInRoot(rf, "a/b/c", 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if got := handlePath(t, h); got != filepath.Join(root, "a/b/c") {
		t.Errorf("mkdirAllInRoot(a/b/c) = %s", got)
	}
	h.Close()
}
