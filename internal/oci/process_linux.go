package oci

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/oci/seccomp"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// prepareProcess applies everything about the process except seccomp with
// no_new_privs (which must come last) and returns the resolved executable.
// It runs after the root switch, on the locked thread.
func (c *initProc) prepareProcess(isInit bool) (string, error) {
	p := c.cfg.Process
	// A session (and process group) of its own, as runc and crun give it:
	// signals sent to the caller's process group (a shell's Ctrl-C, a test
	// harness ending its group) must not reach the container. EPERM means
	// it already leads a group, which only a caller's own setup can do.
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
		return "", fmt.Errorf("setsid: %w", err)
	}
	if err := c.attachTty(); err != nil {
		return "", err
	}
	cwdErr := unix.Chdir(p.Cwd)
	if cwdErr != nil && !errors.Is(cwdErr, unix.EACCES) {
		return "", fmt.Errorf("chdir to cwd %q in the container: %w", p.Cwd, cwdErr)
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		if !isInit {
			return "", err
		}
		// The rootfs may still change before start (a createContainer
		// hook, a bind mount's source); execve reports it then.
		path = p.Args[0]
	}
	// A cwd outside the container (a leaked host directory fd used as
	// cwd, CVE-2024-21626) shows up as an unreachable path.
	if cwdErr == nil {
		if wd, err := os.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
			return "", fmt.Errorf("cwd %q is not inside the container", wd)
		}
	}
	if len(c.cfg.Seccomp) > 0 && !p.NoNewPrivileges {
		// Without no_new_privs loading a filter needs CAP_SYS_ADMIN,
		// which the capability switch below may drop.
		if err := seccomp.Load(c.cfg.Seccomp, c.cfg.SeccompFlags); err != nil {
			return "", fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	if err := switchUser(p.User, p.Capabilities); err != nil {
		return "", err
	}
	if cwdErr != nil {
		if err := unix.Chdir(p.Cwd); err != nil {
			return "", fmt.Errorf("chdir to cwd %q in the container: %w", p.Cwd, err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	umask := 0o022
	if p.User.Umask != nil {
		umask = int(*p.User.Umask)
	}
	unix.Umask(umask)
	if err := closeExtraFDs(c.base); err != nil {
		return "", err
	}
	return path, nil
}

// execProcess loads a no_new_privs seccomp filter (the last step, so that
// the filter constrains only the user process) and executes it.
func (c *initProc) execProcess(path string) error {
	p := c.cfg.Process
	// Limits such as RLIMIT_AS would starve the Go runtime of this
	// helper; they are set at the last moment.
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if len(c.cfg.Seccomp) > 0 && p.NoNewPrivileges {
		if err := seccomp.Load(c.cfg.Seccomp, c.cfg.SeccompFlags); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	env := p.Env
	if env == nil {
		env = []string{}
	}
	trace("init: execve")
	err := syscall.Exec(path, p.Args, env)
	return fmt.Errorf("exec %s: %w", p.Args[0], err)
}

// lookPath resolves name with the container's PATH (from the process env,
// else the usual default), inside the container's root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec %s: %w", name, err)
		}
		return name, nil
	}
	for _, p := range execCandidates(name, env) {
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

// setRlimits applies process.rlimits; a hard limit above what this process
// may raise to (no CAP_SYS_RESOURCE) is clamped to the current hard limit.
func setRlimits(rls []specs.POSIXRlimit) error {
	for _, rl := range rls {
		res := rlimitNames[rl.Type]
		lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		err := setrlimit(res, &lim)
		if errors.Is(err, unix.EPERM) {
			var cur unix.Rlimit
			if unix.Prlimit(0, res, nil, &cur) == nil && lim.Max > cur.Max {
				lim.Max = cur.Max
				lim.Cur = min(lim.Cur, lim.Max)
				logf("rlimit %s hard %d clamped to %d", rl.Type, rl.Hard, lim.Max)
				err = setrlimit(res, &lim)
			}
		}
		if err != nil {
			return fmt.Errorf("set rlimit %s: %w", rl.Type, err)
		}
	}
	return nil
}

// setrlimit goes through package syscall for RLIMIT_NOFILE: the Go runtime
// raised that soft limit at startup and would restore its saved value at
// execve unless syscall.Setrlimit tells it the limit was set on purpose.
func setrlimit(res int, lim *unix.Rlimit) error {
	if res == unix.RLIMIT_NOFILE {
		return syscall.Setrlimit(res, &syscall.Rlimit{Cur: lim.Cur, Max: lim.Max})
	}
	return unix.Prlimit(0, res, lim, nil)
}

// switchUser sets groups, gid and uid on this thread only (raw syscalls:
// the execve that follows is on this thread), keeping the capabilities the
// spec asks for across the uid change.
func switchUser(u specs.User, caps *specs.LinuxCapabilities) error {
	if caps != nil {
		if err := dropBounding(caps.Bounding); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keep capabilities: %w", err)
		}
	}
	gids := make([]uint32, 0, len(u.AdditionalGids))
	gids = append(gids, u.AdditionalGids...)
	if err := setgroups(gids); err != nil {
		// A user namespace with setgroups denied keeps its one group.
		if !(errors.Is(err, unix.EPERM) && len(gids) == 0) {
			if b, rerr := os.ReadFile("/proc/self/setgroups"); rerr == nil && strings.TrimSpace(string(b)) == "deny" {
				return fmt.Errorf("setgroups %v: the user namespace denies setgroups (/proc/PID/setgroups is deny): %w", gids, err)
			}
			return fmt.Errorf("setgroups %v: %w", gids, err)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	if caps == nil {
		return nil
	}
	if err := setCaps(caps); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
}

func setgroups(gids []uint32) error {
	if len(gids) == 0 {
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return e
		}
		return nil
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(unsafe.Pointer(&gids[0])), 0); e != 0 {
		return e
	}
	return nil
}

// closeExtraFDs marks every fd from base up close-on-exec: only stdio and
// the preserved fds reach the container process.
func closeExtraFDs(base int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < base {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}
