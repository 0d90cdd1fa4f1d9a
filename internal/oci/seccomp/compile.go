package seccomp

import (
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// memo is the process-wide in-memory cache behind Compile.
var memo = NewCache("")

// Compile validates and compiles an OCI seccomp config to a BPF program for
// Load. It runs in the runtime's parent process; the result is plain data
// the caller owns and can hand to the container init. Unknown syscall names
// are ignored; unknown actions, architectures, operators and flags are
// ErrInvalidArgument naming the value. Builds without cgo (no libseccomp)
// validate and then return ErrNotImplemented.
//
// Results are memoized in memory for the life of the process (the program
// depends only on the profile, libseccomp and the kernel), so a long-lived
// caller compiles each distinct profile once. A short-lived one (a runtime
// CLI invoked per container) should use a Cache with a directory.
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	return memo.Compile(s)
}
