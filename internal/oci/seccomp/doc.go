// Package seccomp turns an OCI seccomp configuration (runtime-spec
// specs.LinuxSeccomp) into a classic BPF program and installs it.
//
// The work is split in two on purpose:
//
//   - Compile runs in the runtime's parent process. It validates the profile
//     and builds the sock_filter program with hull's own compiler (pure Go,
//     so hullrt links statically): libseccomp's semantics, with syscall
//     tables generated once from libseccomp (hack/seccomp-tables) for amd64
//     (x86_64, x86, x32) and arm64 (aarch64, arm) hosts. Other Go
//     architectures get ErrNotImplemented.
//   - Load (and LoadListener) run in the container's init right before
//     execve. They are pure syscalls (no libseccomp, no allocation-heavy
//     work), so the init needs nothing but the program bytes the parent
//     hands it.
//
// Compiling costs ~0.4 ms for the default profile (libseccomp took ~10 ms).
// Compile memoizes results in memory (~30 µs per hit), which serves a
// long-lived process such as hulld; NewCache(dir) adds a private on-disk
// cache (~60 µs per hit).
//
// For SCMP_ACT_NOTIFY profiles (NeedsListener) the init uses LoadListener,
// and the listener goes to the agent at ListenerPath with SendListener.
//
// Semantics follow runc so that profiles written for runc/crun behave the
// same: syscall names libseccomp's tables do not have are ignored (a profile written
// for a newer kernel still loads), several conditions on the same argument
// index become separate rules (OR) while conditions on different indexes are
// combined in one rule (AND), rules whose action equals the default action
// are dropped, and SCMP_ACT_ERRNO/SCMP_ACT_TRACE without errnoRet use EPERM.
// Unknown actions, architectures, operators and flags are rejected with
// errdefs.ErrInvalidArgument naming the value.
//
// Newer syscalls a profile cannot name (because the tables predate them)
// would hit the default action; when that default is an errno, Compile
// prepends a small stub returning ENOSYS for syscall numbers above the
// highest one the profile knows on each architecture, like runc does, so that
// libc falls back to older syscalls instead of failing with EPERM.
package seccomp
