// Package unixsock connects to unix stream sockets with raw syscalls, so
// that hullrt does not link package net: net pulls in cgo's resolver on a
// default build, and a dynamically linked runtime pays ~1 ms of dynamic
// loading on every one of the several processes a container start runs.
package unixsock

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Dial connects a close-on-exec unix stream socket to path and returns it.
// timeout, when not 0, bounds the connect and every later write on the
// socket (SO_SNDTIMEO, which unix sockets also apply to a connect that
// waits for a full backlog).
func Dial(path string, timeout time.Duration) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unix socket: %w", err)
	}
	if timeout > 0 {
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("unix socket timeout: %w", err)
		}
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil && !errors.Is(err, unix.EISCONN) {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), "unix:"+path), nil
}

// SendFds writes b with fds as SCM_RIGHTS in one message on the connected
// socket f, and fails unless all of b went out.
func SendFds(f *os.File, b []byte, fds ...int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		for {
			n, serr = unix.SendmsgN(int(fd), b, unix.UnixRights(fds...), nil, 0)
			if !errors.Is(serr, unix.EINTR) {
				return true
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	if n != len(b) {
		return fmt.Errorf("short write: %d of %d bytes", n, len(b))
	}
	return nil
}
