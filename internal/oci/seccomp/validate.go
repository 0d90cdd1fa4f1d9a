package seccomp

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// maxArgs is the number of syscall arguments seccomp can inspect.
const maxArgs = 6

// maxErrno is the largest errno the kernel passes through: it clamps
// SECCOMP_RET_ERRNO data above MAX_ERRNO, so a larger errnoRet would not do
// what the profile says.
const maxErrno = 4095

// Validate checks a seccomp config without building a filter: actions,
// errno values, operators, argument indexes, architectures and flags. It
// needs no cgo, so a parent built without libseccomp can still reject a bad
// config early. Syscall names are not checked (unknown names are ignored).
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return fmt.Errorf("seccomp: no config: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkActionErrno("defaultAction", s.DefaultAction, s.DefaultErrnoRet); err != nil {
		return err
	}
	if s.DefaultAction == specs.ActNotify {
		return fmt.Errorf("seccomp: defaultAction %q is not allowed (the runtime itself would block): %w",
			s.DefaultAction, errdefs.ErrInvalidArgument)
	}
	for _, a := range s.Architectures {
		if _, err := libArchName(a); err != nil {
			return err
		}
	}
	if err := CheckFlags(s.Flags); err != nil {
		return err
	}
	if NeedsListener(s) && s.ListenerPath == "" {
		return fmt.Errorf("seccomp: SCMP_ACT_NOTIFY needs listenerPath: %w", errdefs.ErrInvalidArgument)
	}
	for i, sc := range s.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		if len(sc.Names) == 0 {
			return fmt.Errorf("seccomp: %s has no names: %w", where, errdefs.ErrInvalidArgument)
		}
		for _, n := range sc.Names {
			if n == "" {
				return fmt.Errorf("seccomp: %s has an empty syscall name: %w", where, errdefs.ErrInvalidArgument)
			}
		}
		if err := checkActionErrno(where+" ("+sc.Names[0]+")", sc.Action, sc.ErrnoRet); err != nil {
			return err
		}
		for _, a := range sc.Args {
			if err := checkOperator(a.Op); err != nil {
				return fmt.Errorf("%s (%s): %w", where, sc.Names[0], err)
			}
			if a.Index >= maxArgs {
				return fmt.Errorf("seccomp: %s (%s): argument index %d out of range 0-%d: %w",
					where, sc.Names[0], a.Index, maxArgs-1, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// checkActionErrno validates an action and its optional errno.
func checkActionErrno(where string, a specs.LinuxSeccompAction, errno *uint) error {
	if err := checkAction(a); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if errno == nil {
		return nil
	}
	if a != specs.ActErrno && a != specs.ActTrace {
		return fmt.Errorf("seccomp: %s: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %q: %w",
			where, a, errdefs.ErrInvalidArgument)
	}
	if *errno > maxErrno {
		return fmt.Errorf("seccomp: %s: errnoRet %d out of range 0-%d: %w", where, *errno, maxErrno, errdefs.ErrInvalidArgument)
	}
	return nil
}

// NeedsListener reports whether the config uses SCMP_ACT_NOTIFY, in which
// case the init must load it with LoadListener and hand the listener fd to
// the agent at ListenerPath.
func NeedsListener(s *specs.LinuxSeccomp) bool {
	if s == nil {
		return false
	}
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

// errnoOf returns the errno an ERRNO/TRACE action uses: errnoRet or EPERM.
func errnoOf(errno *uint) uint {
	if errno == nil {
		return uint(unix.EPERM)
	}
	return *errno
}
