package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRecursiveReadOnlyBind binds a host dir holding a tmpfs submount: with
// "ro" alone the submount stays writable, with "rro" it is read-only too.
func TestRecursiveReadOnlyBind(t *testing.T) {
	needRoot(t)
	hostDir := t.TempDir()
	sub := filepath.Join(hostDir, "tmpfs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(sub, unix.MNT_DETACH) })
	out := sh(t, `touch /ro/tmpfs/a 2>/dev/null && echo ro-sub-writable; touch /rro/tmpfs/b 2>/dev/null && echo rro-sub-writable;
		touch /rro/c 2>/dev/null && echo rro-writable; echo done`, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/ro", Type: "bind", Source: hostDir, Options: []string{"rbind", "rprivate", "ro"}},
			specs.Mount{Destination: "/rro", Type: "bind", Source: hostDir, Options: []string{"rbind", "rprivate", "ro", "rro"}})
	})
	if !strings.Contains(out, "ro-sub-writable") || !strings.Contains(out, "done") {
		t.Errorf("a plain ro bind should leave its submount writable (the case rro exists for):\n%s", out)
	}
	for _, bad := range []string{"rro-sub-writable", "rro-writable"} {
		if strings.Contains(out, bad) {
			t.Errorf("%s:\n%s", bad, out)
		}
	}
	if _, err := os.Stat(filepath.Join(sub, "b")); err == nil {
		t.Error("an rro bind let the container write into the host's submount")
	}
}
