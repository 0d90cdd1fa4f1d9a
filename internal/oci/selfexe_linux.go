package oci

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openProtectedExe opens the runtime binary so that the process executed
// from it cannot be used to overwrite the host binary (CVE-2019-5736:
// a container process re-opens /proc/<init>/exe for writing). The first
// choice is cheap: a detached, read-only clone of the binary's mount
// (open_tree + mount_setattr), which no mount namespace can reach or
// remount, so any write through /proc/PID/exe fails with EROFS. Where the
// new mount API is missing it falls back to a sealed memfd copy, as runc
// does.
//
// The caller calls release once the child has been executed. Dropping the
// clone's tree fd unmounts the detached tree, which waits for an expedited
// RCU grace period (~0.7 ms here): release does it in the background, after
// the child's execve, so that neither the spawn nor the child's exec (had
// the child inherited the last reference) waits for it.
func openProtectedExe(path string) (exe *os.File, release func(), err error) {
	if f, tree, err := openROClone(path); err == nil {
		return f, func() { go unix.Close(tree) }, nil
	}
	f, err := sealedCopy(path)
	return f, func() {}, err
}

// openROClone returns the binary opened in a read-only detached clone of
// its mount, and the clone's tree fd, which the caller closes.
func openROClone(path string) (*os.File, int, error) {
	dir, base := filepath.Split(path)
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, -1, fmt.Errorf("open_tree %s: %w", dir, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(tree)
		return nil, -1, fmt.Errorf("mount_setattr ro %s: %w", dir, err)
	}
	fd, err := unix.Openat(tree, base, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(tree)
		return nil, -1, fmt.Errorf("open %s in read-only clone: %w", base, err)
	}
	return os.NewFile(uintptr(fd), path), tree, nil
}

func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open runtime binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("hullrt", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "memfd:hullrt")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("copy runtime binary to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return dst, nil
}
