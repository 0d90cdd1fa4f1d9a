package nsutil

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and mounts")
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

func pinTemp(t *testing.T, kinds []string, hostname string) (string, map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ns")
	paths, err := Pin(dir, kinds, hostname)
	if err != nil {
		t.Fatalf("Pin(%v): %v", kinds, err)
	}
	t.Cleanup(func() {
		if err := Unpin(paths); err != nil {
			t.Errorf("cleanup Unpin: %v", err)
		}
	})
	return dir, paths
}

func TestPinEnterUnpin(t *testing.T) {
	requireRoot(t)
	dir, paths := pinTemp(t, []string{"net", "ipc", "uts"}, "pod-host-1")
	if len(paths) != 3 {
		t.Fatalf("paths = %v", paths)
	}
	for _, k := range []string{"net", "ipc", "uts"} {
		if paths[k] != filepath.Join(dir, k) {
			t.Errorf("paths[%s] = %q", k, paths[k])
		}
		if host, pinned := inode(t, "/proc/self/ns/"+k), inode(t, paths[k]); host == pinned {
			t.Errorf("%s: pinned namespace %d is the host's", k, pinned)
		}
	}
	if m := mountsUnder(t, dir); len(m) != 3 {
		t.Errorf("mounts under %s = %v, want 3", dir, m)
	}

	hostBefore, _ := os.Hostname()
	var inside string
	var ifaces []string
	err := Enter(map[string]string{"uts": paths["uts"], "net": paths["net"]}, func() error {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return err
		}
		inside = unix.ByteSliceToString(u.Nodename[:])
		l, err := net.Interfaces()
		for _, i := range l {
			ifaces = append(ifaces, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != "pod-host-1" {
		t.Errorf("hostname inside the uts namespace = %q, want pod-host-1", inside)
	}
	if strings.Join(ifaces, ",") != "lo" {
		t.Errorf("interfaces in the new netns = %v, want only lo", ifaces)
	}
	if h, _ := os.Hostname(); h != hostBefore {
		t.Fatalf("host name changed from %q to %q", hostBefore, h)
	}
	// Enter gave its thread back in the host namespaces.
	for range 20 {
		_ = Enter(map[string]string{"net": "/proc/self/ns/net"}, func() error { return nil })
	}
	if l, _ := net.Interfaces(); len(l) < 2 {
		t.Errorf("after Enter the process sees %d interfaces: thread left in the pod netns?", len(l))
	}

	if err := Unpin(paths); err != nil {
		t.Fatal(err)
	}
	if err := Unpin(paths); err != nil {
		t.Fatalf("second Unpin: %v", err)
	}
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Errorf("mounts left after Unpin: %v", m)
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Unpin: %v", p, err)
		}
	}
}

func TestPinSubset(t *testing.T) {
	requireRoot(t)
	dir, paths := pinTemp(t, []string{"ipc"}, "")
	if len(paths) != 1 || paths["ipc"] == "" {
		t.Fatalf("paths = %v", paths)
	}
	if _, err := os.Lstat(filepath.Join(dir, "net")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("net pinned although not asked: %v", err)
	}
	// Two pods get two distinct namespaces.
	_, other := pinTemp(t, []string{"ipc"}, "")
	if inode(t, paths["ipc"]) == inode(t, other["ipc"]) {
		t.Error("two Pin calls returned the same ipc namespace")
	}
}

func TestPinErrors(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name, dir string
		kinds     []string
		hostname  string
	}{
		{"relative dir", "rel/ns", []string{"net"}, ""},
		{"unknown kind", "", []string{"net", "pid"}, ""},
		{"duplicate", "", []string{"net", "net"}, ""},
		{"none", "", nil, ""},
		{"hostname without uts", "", []string{"net"}, "h"},
		{"long hostname", "", []string{"uts"}, strings.Repeat("h", 65)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = filepath.Join(t.TempDir(), "ns")
			}
			if _, err := Pin(dir, tc.kinds, tc.hostname); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Pin = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestPinDoesNotClobber(t *testing.T) {
	requireRoot(t)
	dir, first := pinTemp(t, []string{"uts"}, "first")
	before := inode(t, first["uts"])
	// A second Pin into the same dir fails on uts and must leave the first
	// pod's pin and no new mounts behind.
	_, err := Pin(dir, []string{"ipc", "uts"}, "second")
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("Pin over an existing pin = %v, want ErrAlreadyExists", err)
	}
	if inode(t, first["uts"]) != before {
		t.Fatal("the first pin was replaced")
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Fatalf("mounts under %s = %v, want only the first pin", dir, m)
	}
	if _, err := os.Lstat(filepath.Join(dir, "ipc")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed Pin left its ipc file: %v", err)
	}
}

func TestEnterErrors(t *testing.T) {
	requireRoot(t)
	if err := Enter(map[string]string{"mnt": "/proc/self/ns/mnt"}, func() error { return nil }); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Enter(mnt) = %v, want ErrInvalidArgument", err)
	}
	called := false
	err := Enter(map[string]string{"net": filepath.Join(t.TempDir(), "gone")}, func() error { called = true; return nil })
	if !errors.Is(err, errdefs.ErrNotFound) || called {
		t.Errorf("Enter(missing) = %v (fn called %v), want ErrNotFound without calling fn", err, called)
	}
	want := errors.New("from fn")
	if err := Enter(map[string]string{"ipc": "/proc/self/ns/ipc"}, func() error { return want }); err != want {
		t.Errorf("Enter returned %v, want fn's error", err)
	}
}

// BenchmarkPinUnpin measures pinning and releasing a pod's net+ipc+uts
// namespaces, the namespace share of runp/stopp.
func BenchmarkPinUnpin(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		paths, err := Pin(filepath.Join(dir, strconv.Itoa(i)), []string{"net", "ipc", "uts"}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := Unpin(paths); err != nil {
			b.Fatal(err)
		}
	}
}
