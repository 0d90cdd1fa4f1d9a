package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// In-root lookups for the mount setup. openat2 with RESOLVE_IN_ROOT keeps
// every symlink and ".." inside the root, in the kernel, in one syscall.
// pathrs-lite does the same lookup and then names each handle through a
// private procfs instance (fsopen + fsmount + a readlink per handle),
// which cost the init more than all of its lookups; the name is never
// needed here. Kernels without openat2 (before 5.6) get pathrs-lite.

const inRootResolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openat2Retry is openat2, retried while the kernel reports a concurrent
// rename or mount (EAGAIN, which RESOLVE_IN_ROOT returns rather than risk
// an escape through "..").
func openat2Retry(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if !errors.Is(err, unix.EAGAIN) || i == 32 {
			return fd, err
		}
	}
}

// openInRoot returns an O_PATH handle of path resolved inside root.
func openInRoot(root *os.File, path string) (*os.File, error) {
	fd, err := openat2Retry(int(root.Fd()), path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: inRootResolve})
	if errors.Is(err, unix.ENOSYS) {
		return pathrs.OpenatInRoot(root, path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// mkdirAllInRoot creates the directory path and its missing parents inside
// root and returns an O_PATH handle of it. The missing components are made
// one at a time under a handle of their parent and opened without
// following symlinks, so a symlink swapped in meanwhile is an error, not a
// way out. A path that resolves to something other than a directory is an
// error (ENOTDIR).
func mkdirAllInRoot(root *os.File, path string, mode uint32) (*os.File, error) {
	path = filepath.Clean("/" + path)
	dirHow := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: inRootResolve}
	fd, err := openat2Retry(int(root.Fd()), path, dirHow)
	if errors.Is(err, unix.ENOSYS) {
		return pathrs.MkdirAllHandle(root, path, os.FileMode(mode))
	}
	if err == nil {
		return os.NewFile(uintptr(fd), path), nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
	}
	comps := strings.Split(path[1:], "/")
	// The deepest existing ancestor (the root itself at worst).
	n := len(comps) - 1
	for ; ; n-- {
		fd, err = openat2Retry(int(root.Fd()), "/"+strings.Join(comps[:n], "/"), dirHow)
		if err == nil {
			break
		}
		if n == 0 || !errors.Is(err, unix.ENOENT) {
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
	}
	stepHow := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	for _, c := range comps[n:] {
		if err := unix.Mkdirat(fd, c, mode); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return nil, fmt.Errorf("mkdir %s in %s: %w", c, path, err)
		}
		next, err := openat2Retry(fd, c, stepHow)
		unix.Close(fd)
		if err != nil {
			return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), path), nil
}
