package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var errNoNetCls = errors.New("net_cls,net_prio cannot be mounted as a v1 hierarchy here")

// net_cls and net_prio are not mounted on this project's hosts. The test
// mounts them as a v1 hierarchy of its own, in a private mount namespace of
// one locked thread (never unlocked, so the thread and its namespace die
// with the goroutine), and drives the real kernel files there.
func TestV1NetClsNetPrioRealHierarchy(t *testing.T) {
	requireRoot(t)
	mnt := t.TempDir()
	r := &specs.LinuxResources{Network: &specs.LinuxNetwork{
		ClassID:    ptr(uint32(0x100001)),
		Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 5}},
	}}
	type result struct{ classid, ifprio string }
	done := make(chan error, 1)
	var got result
	go func() {
		runtime.LockOSThread()
		done <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return err
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return err
			}
			if err := unix.Mount("cgroup", mnt, "cgroup", 0, "net_cls,net_prio"); err != nil {
				return errNoNetCls
			}
			defer unix.Unmount(mnt, unix.MNT_DETACH)
			leaf := filepath.Join(mnt, "hull-test-net")
			if err := os.Mkdir(leaf, 0o755); err != nil {
				return err
			}
			defer unix.Rmdir(leaf)
			if err := setNetClsV1(leaf, r); err != nil {
				return err
			}
			if err := setNetPrioV1(leaf, r); err != nil {
				return err
			}
			c, err := readFile(leaf, "net_cls.classid")
			if err != nil {
				return err
			}
			p, err := readFile(leaf, "net_prio.ifpriomap")
			got = result{strings.TrimSpace(c), p}
			return err
		}()
	}()
	err := <-done
	if errors.Is(err, errNoNetCls) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.classid != "1048577" {
		t.Errorf("net_cls.classid = %q, want 1048577", got.classid)
	}
	if !strings.Contains(got.ifprio, "lo 5\n") {
		t.Errorf("net_prio.ifpriomap = %q, want a \"lo 5\" line", got.ifprio)
	}
	// Bad interface names never reach the kernel.
	bad := &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "../x", Priority: 1}}}}
	if err := setNetPrioV1(mnt, bad); err == nil {
		t.Error("interface name with / accepted")
	}
}
