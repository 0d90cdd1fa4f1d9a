package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Load installs prog (from Compile) as a seccomp filter on every thread of
// the calling process. It is pure syscalls so the container init can call it
// right before execve. The caller must have set no_new_privs
// (spec.Process.NoNewPrivileges) or still hold CAP_SYS_ADMIN.
//
// SECCOMP_FILTER_FLAG_TSYNC is always used: a Go process is multi-threaded
// and a filter on one thread only would leave the others (and whichever
// thread ends up calling execve) unfiltered.
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only means something with a
// listener, so Load drops it; LoadListener drops it when the kernel lacks it.
func Load(prog []unix.SockFilter, flags []specs.LinuxSeccompFlag) error {
	_, err := load(prog, flags, false)
	return err
}

// LoadListener is Load for profiles using SCMP_ACT_NOTIFY (NeedsListener):
// it asks the kernel for a notification listener
// (SECCOMP_FILTER_FLAG_NEW_LISTENER) and returns it. The caller passes it to
// the agent at spec.ListenerPath (see SendListener) and closes its copy.
func LoadListener(prog []unix.SockFilter, flags []specs.LinuxSeccompFlag) (*os.File, error) {
	fd, err := load(prog, flags, true)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "seccomp-listener"), nil
}

// LoadFlags is the seccomp(2) flag mask Load uses for flags, less TSYNC:
// for a caller that is one thread (a forked child loading the filter with
// a raw system call).
func LoadFlags(flags []specs.LinuxSeccompFlag) (uintptr, error) {
	mask, err := flagMask(flags)
	if err != nil {
		return 0, err
	}
	return uintptr(mask) &^ unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, nil
}

func load(prog []unix.SockFilter, flags []specs.LinuxSeccompFlag, listener bool) (int, error) {
	if len(prog) == 0 || len(prog) > maxProgLen {
		return -1, fmt.Errorf("seccomp: program of %d instructions, want 1-%d: %w",
			len(prog), maxProgLen, errdefs.ErrInvalidArgument)
	}
	mask, err := flagMask(flags)
	if err != nil {
		return -1, err
	}
	mask |= unix.SECCOMP_FILTER_FLAG_TSYNC
	if listener {
		// Without TSYNC_ESRCH the kernel could not tell a listener fd from
		// the id of a thread that failed to synchronize.
		mask |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		if mask&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 &&
			!kernelHasFlag(unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
			mask &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		}
	} else {
		mask &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(mask),
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, loadError(errno, mask)
	}
	if !listener && r != 0 {
		// TSYNC without TSYNC_ESRCH returns the id of the thread that
		// could not be synchronized (it has a diverging filter).
		return -1, fmt.Errorf("seccomp: thread %d could not be synchronized to the new filter: %w",
			r, errdefs.ErrFailedPrecondition)
	}
	return int(r), nil
}

// maxProgLen is BPF_MAXINSNS, the kernel's limit on one program.
const maxProgLen = 4096

// loadError explains why seccomp(SECCOMP_SET_MODE_FILTER) failed.
func loadError(errno unix.Errno, mask uint) error {
	switch errno {
	case unix.EACCES:
		return fmt.Errorf("seccomp: loading a filter needs no_new_privs or CAP_SYS_ADMIN: %w: %w",
			errno, errdefs.ErrPermissionDenied)
	case unix.EINVAL:
		for _, f := range flagBits {
			if mask&f.bit != 0 && !kernelHasFlag(f.bit) {
				return fmt.Errorf("seccomp: kernel does not support flag %s: %w: %w",
					f.name, errno, errdefs.ErrFailedPrecondition)
			}
		}
		return fmt.Errorf("seccomp: kernel rejected the filter program or flags %#x: %w: %w",
			mask, errno, errdefs.ErrInvalidArgument)
	case unix.ENOMEM:
		return fmt.Errorf("seccomp: filters on this process exceed the kernel's total length limit: %w: %w",
			errno, errdefs.ErrResourceExhausted)
	case unix.ESRCH:
		return fmt.Errorf("seccomp: a thread could not be synchronized to the new filter: %w: %w",
			errno, errdefs.ErrFailedPrecondition)
	case unix.EBUSY:
		return fmt.Errorf("seccomp: a notification listener is already installed: %w: %w",
			errno, errdefs.ErrFailedPrecondition)
	}
	return fmt.Errorf("seccomp: load filter: %w", errno)
}

// kernelHasFlag probes whether the kernel knows a filter flag: with a NULL
// program the kernel checks the flags first (EINVAL when unknown) and only
// then fails to copy the program (EFAULT). Nothing is installed either way.
func kernelHasFlag(bit uint) bool {
	if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		// Only valid together with a listener.
		bit |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(bit), 0)
	return errors.Is(errno, unix.EFAULT)
}
