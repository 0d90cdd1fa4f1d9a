package nsutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ownerInode is the inode of the user namespace owning the namespace
// file path (NS_GET_USERNS).
func ownerInode(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		t.Fatalf("NS_GET_USERNS %s: %v", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// PinUserns pins a user namespace with the mappings, and net/ipc/uts
// namespaces that it owns, with the hostname set; the holder is gone
// without PID and pid 1 of a pid namespace owned by the userns with it.
func TestPinUserns(t *testing.T) {
	requireRoot(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	maps := []IDMap{{ContainerID: 0, HostID: 1000, Size: 65536}}
	for _, withPID := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "ns")
		paths, proc, err := PinUserns(dir, exec.Command(sleep, "1000"), UserPod{
			UIDs: maps, GIDs: maps, Kinds: []string{"net", "ipc", "uts"}, Hostname: "upod", PID: withPID,
		})
		if err != nil {
			t.Fatalf("PinUserns(pid=%v): %v", withPID, err)
		}
		t.Cleanup(func() {
			if proc != nil {
				_ = proc.Kill()
				_, _ = proc.Wait()
			}
			if err := Unpin(paths); err != nil {
				t.Error(err)
			}
		})
		if (proc != nil) != withPID {
			t.Fatalf("pid=%v: holder returned: %v", withPID, proc)
		}
		user := inode(t, paths["user"])
		for _, k := range []string{"net", "ipc", "uts"} {
			if got := ownerInode(t, paths[k]); got != user {
				t.Fatalf("%s namespace owned by user ns %d, want the pinned %d", k, got, user)
			}
		}
		if withPID {
			if got := ownerInode(t, "/proc/"+strconv.Itoa(proc.Pid)+"/ns/pid"); got != user {
				t.Fatalf("pid namespace owned by %d, want %d", got, user)
			}
		}
		out, err := exec.Command("nsenter", "--user="+paths["user"], "--uts="+paths["uts"], "sh", "-c",
			"cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; hostname").CombinedOutput()
		if err != nil {
			t.Fatalf("nsenter: %v: %s", err, out)
		}
		f := strings.Fields(string(out))
		want := []string{"0", "1000", "65536", "0", "1000", "65536", "allow", "upod"}
		if strings.Join(f, " ") != strings.Join(want, " ") {
			t.Fatalf("inside: %q, want %q", f, want)
		}
		if err := Unpin(paths); err != nil {
			t.Fatal(err)
		}
		if left := mountsUnder(t, dir); len(left) > 0 {
			t.Fatalf("mounts left after Unpin: %v", left)
		}
	}
}

// Bad mappings and kinds fail before any process or pin.
func TestPinUsernsBadInput(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	ok := []IDMap{{0, 1000, 10}}
	for _, o := range []UserPod{
		{GIDs: ok},
		{UIDs: ok, GIDs: []IDMap{{0, 1000, 0}}},
		{UIDs: []IDMap{{0, 4294967290, 10}}, GIDs: ok},
		{UIDs: ok, GIDs: ok, Kinds: []string{"mnt"}},
		{UIDs: ok, GIDs: ok, Kinds: []string{"net"}, Hostname: "x"},
	} {
		cmd := exec.Command("/bin/true")
		if _, _, err := PinUserns(dir, cmd, o); err == nil {
			t.Fatalf("%+v accepted", o)
		}
		if cmd.Process != nil {
			t.Fatalf("%+v: a process was started", o)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("pin dir made: %v", err)
	}
}
