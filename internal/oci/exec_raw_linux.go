package oci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/oci/cgroups"
	"hull/internal/oci/seccomp"
)

// exec without a helper. The usual exec re-executes the runtime binary as a
// helper that joins the container and then executes the user process: a
// second Go process start (~2 ms here, twice what the rest of the helper's
// work costs). For the common case (no terminal, no user or time
// namespace, no AppArmor/SELinux label, scheduler, I/O priority or CPU
// affinity) the forked child does it all itself with raw system calls on
// memory the parent prepared, under the rules of the raw fork
// (rawfork_linux.go): it is placed in the container's cgroups (born in the
// cgroup2 one by clone3 CLONE_INTO_CGROUP, moving itself into the v1 ones),
// joins the namespaces, lays out its fds and closes every other, starts
// its own session, changes to the cwd (checked to be inside the container,
// CVE-2024-21626), sets rlimits (a hard limit above the runtime's own
// clamped, as on the helper path), groups, gid, uid and the capability
// sets, no_new_privs, the umask and the seccomp filter in the helper's
// order, and executes argv[0] through the container's PATH as execvp
// would. Success is the report pipe closing at execve.

// rawExecPlan is everything the exec child needs.
type rawExecPlan struct {
	clone        cloneArgs
	oomPath      *byte  // "/proc/self/oom_score_adj", nil to leave it
	oomValue     []byte // what to write there
	cgroupTasks  []int  // v1 "tasks" files: writing "0" moves the writer
	zero         *byte
	joinFD       []int
	joinFlag     []uintptr
	fds          []int // fds[i] becomes fd i
	nextfd       int
	errw         int
	cwd          *byte
	cwdBuf       []byte
	rlimits      []rawRlimit
	groups       []uint32
	gid, uid     uintptr
	caps         bool
	bndDrop      []uintptr
	capHdr       unix.CapUserHeader
	capData      [2]unix.CapUserData
	ambient      []uintptr
	nnp          bool
	seccomp      *unix.SockFprog
	seccompFlags uintptr
	umask        uintptr
	paths        []*byte // candidates for argv[0], in PATH order
	argv, envv   []*byte
}

// cloneArgs is struct clone_args (clone3(2)), up to the cgroup field.
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
}

type rawRlimit struct {
	res       uintptr
	want, cur unix.Rlimit
}

// Steps an exec report names (rawReport[0]).
const (
	rawExecOK = iota
	rawExecCgroup
	rawExecJoin
	rawExecFDs
	rawExecCwd
	rawExecCwdOutside
	rawExecRlimit
	rawExecSeccomp
	rawExecBounding
	rawExecCreds
	rawExecCaps
	rawExecNNP
	rawExecExec
)

var rawExecStageNames = [...]string{
	rawExecCgroup: "join the container's cgroups", rawExecJoin: "join namespace", rawExecFDs: "set up file descriptors",
	rawExecCwd: "chdir to cwd", rawExecCwdOutside: "cwd is not inside the container", rawExecRlimit: "set rlimit",
	rawExecSeccomp: "load seccomp filter", rawExecBounding: "drop bounding capabilities", rawExecCreds: "set user and groups",
	rawExecCaps: "set capabilities", rawExecNNP: "set no_new_privs", rawExecExec: "exec",
}

// canExecRaw reports whether p can be executed without the helper: no
// terminal, no user or time namespace (raw), a cgroup manager, a seccomp
// profile without a notify listener, no security label or scheduling
// attributes, and stdio that are files (the helper path pipes others).
func canExecRaw(p *specs.Process, raw *rawNamespaces, mgrErr error, sc *specs.LinuxSeccomp, stdin io.Reader, stdout, stderr io.Writer) bool {
	for _, f := range []any{stdin, stdout, stderr} {
		if _, ok := f.(*os.File); !ok {
			return false
		}
	}
	return !p.Terminal && raw == nil && mgrErr == nil && (sc == nil || !seccomp.NeedsListener(sc)) &&
		p.ApparmorProfile == "" && p.SelinuxLabel == "" && p.Scheduler == nil && p.IOPriority == nil && p.ExecCPUAffinity == nil
}

// execRaw is Exec's raw path (canExecRaw said yes): the process, once it
// has executed, and the pid file. errRawExecUnavailable sends the caller
// to the helper.
func (r *Runtime) execRaw(s *saved, p *specs.Process, cfg *initConfig, pidns string, mgr cgroups.Manager, o ExecOptions,
	stdin io.Reader, stdout, stderr io.Writer) (*os.Process, error) {
	files := []*os.File{stdin.(*os.File), stdout.(*os.File), stderr.(*os.File)}
	for i := 0; i < o.PreserveFDs; i++ {
		files = append(files, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(i)))
	}
	pid, err := rawExec(rawExecSpec{p: p, initPid: s.Pid, joins: cfg.Join, pidns: pidns, mgr: mgr, files: files,
		seccomp: cfg.Seccomp, seccompFl: cfg.SeccompFlags})
	if errors.Is(err, errRawExecUnavailable) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("exec in %q: %w", s.ID, err)
	}
	trace("exec: process executed")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			unix.Kill(pid, unix.SIGKILL)
			return nil, err
		}
	}
	return os.FindProcess(pid)
}

// rawExecFork forks the exec child on the calling (locked) thread.
//
//go:nosplit
//go:norace
func rawExecFork(p *rawExecPlan) (uintptr, syscall.Errno) {
	beforeFork()
	pid, _, err := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&p.clone)), unsafe.Sizeof(p.clone), 0)
	if err != 0 || pid != 0 {
		afterFork()
		return pid, err
	}
	rawExecChild(p)
	return 0, 0 // not reached
}

// rawExecChild runs in the forked child. Only raw system calls.
//
//go:nosplit
//go:norace
func rawExecChild(p *rawExecPlan) {
	var (
		rep    rawReport
		err1   syscall.Errno
		cwdErr syscall.Errno
		i      int
		errw   = p.errw
		next   = p.nextfd
		fds    = p.fds
		stage  int32
	)
	afterForkInChild()
	// Not dumpable until execve (which resets it): this copy of the caller
	// (hulld's whole memory, when it runs in-process) must not be traced
	// or read through /proc/PID by the container's processes once it is
	// in their namespaces, with their uid and caps (CVE-2016-9962 class).
	syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0)
	if p.oomPath != nil {
		// Best effort, as setOOMScoreAdj: a negative value needs
		// CAP_SYS_RESOURCE.
		r, _, e := syscall.RawSyscall6(unix.SYS_OPEN, uintptr(unsafe.Pointer(p.oomPath)), unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0, 0)
		if e == 0 {
			syscall.RawSyscall(unix.SYS_WRITE, r, uintptr(unsafe.Pointer(&p.oomValue[0])), uintptr(len(p.oomValue)))
			syscall.RawSyscall(unix.SYS_CLOSE, r, 0, 0)
		}
	}
	stage = rawExecCgroup
	for i = 0; i < len(p.cgroupTasks); i++ {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_WRITE, uintptr(p.cgroupTasks[i]), uintptr(unsafe.Pointer(p.zero)), 1); err1 != 0 {
			goto fail
		}
	}
	stage = rawExecJoin
	for i = 0; i < len(p.joinFD); i++ {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(p.joinFD[i]), p.joinFlag[i], 0); err1 != 0 {
			rep[1] = int32(i)
			goto fail
		}
	}
	// fds as in rawChild, then everything else closed: nothing of the
	// runtime's reaches the process, nor can a cwd name it.
	stage = rawExecFDs
	if errw < next {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(errw), uintptr(next), unix.O_CLOEXEC); err1 != 0 {
			goto fail
		}
		errw = next
		next++
	}
	for i = 0; i < len(fds); i++ {
		if fds[i] < i {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fds[i]), uintptr(next), unix.O_CLOEXEC); err1 != 0 {
				goto fail
			}
			fds[i] = next
			next++
		}
	}
	for i = 0; i < len(fds); i++ {
		if fds[i] == i {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0); err1 != 0 {
				goto fail
			}
			continue
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fds[i]), uintptr(i), 0); err1 != 0 {
			goto fail
		}
	}
	if errw > len(fds) {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(len(fds)), uintptr(errw-1), 0); err1 != 0 {
			goto fail
		}
	}
	if _, _, err1 = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(errw+1), ^uintptr(0)>>32, 0); err1 != 0 {
		goto fail
	}
	// A session of its own, as on the helper path (EPERM: it already
	// leads a group).
	syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
	if _, _, cwdErr = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(p.cwd)), 0, 0); cwdErr != 0 && cwdErr != syscall.EACCES {
		stage, err1 = rawExecCwd, cwdErr
		goto fail
	}
	if cwdErr == 0 {
		// getcwd(2) starts with "(unreachable)" for a cwd outside the root.
		if _, _, err1 = syscall.RawSyscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&p.cwdBuf[0])), uintptr(len(p.cwdBuf)), 0); err1 != 0 {
			stage = rawExecCwd
			goto fail
		}
		if p.cwdBuf[0] != '/' {
			stage, err1 = rawExecCwdOutside, syscall.EPERM
			goto fail
		}
	}
	stage = rawExecRlimit
	for i = 0; i < len(p.rlimits); i++ {
		_, _, err1 = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, p.rlimits[i].res, uintptr(unsafe.Pointer(&p.rlimits[i].want)), 0, 0, 0)
		if err1 == syscall.EPERM {
			// No CAP_SYS_RESOURCE: a hard limit above the current one is
			// clamped to it.
			if _, _, e := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, p.rlimits[i].res, 0, uintptr(unsafe.Pointer(&p.rlimits[i].cur)), 0, 0); e == 0 &&
				p.rlimits[i].want.Max > p.rlimits[i].cur.Max {
				p.rlimits[i].want.Max = p.rlimits[i].cur.Max
				if p.rlimits[i].want.Cur > p.rlimits[i].want.Max {
					p.rlimits[i].want.Cur = p.rlimits[i].want.Max
				}
				_, _, err1 = syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, p.rlimits[i].res, uintptr(unsafe.Pointer(&p.rlimits[i].want)), 0, 0, 0)
			}
		}
		if err1 != 0 {
			rep[1] = int32(p.rlimits[i].res)
			goto fail
		}
	}
	if p.seccomp != nil && !p.nnp {
		// Without no_new_privs loading a filter needs CAP_SYS_ADMIN,
		// which the capability switch below may drop.
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.seccompFlags, uintptr(unsafe.Pointer(p.seccomp))); err1 != 0 {
			stage = rawExecSeccomp
			goto fail
		}
	}
	if p.caps {
		for i = 0; i < len(p.bndDrop); i++ {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, p.bndDrop[i], 0); err1 != 0 && err1 != syscall.EINVAL {
				stage = rawExecBounding
				goto fail
			}
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); err1 != 0 {
			stage = rawExecCaps
			goto fail
		}
	}
	stage = rawExecCreds
	if len(p.groups) == 0 {
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	} else {
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(p.groups)), uintptr(unsafe.Pointer(&p.groups[0])), 0)
	}
	if err1 != 0 && !(err1 == syscall.EPERM && len(p.groups) == 0) {
		goto fail
	}
	if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, p.gid, p.gid, p.gid); err1 != 0 {
		goto fail
	}
	if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, p.uid, p.uid, p.uid); err1 != 0 {
		goto fail
	}
	if p.caps {
		stage = rawExecCaps
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&p.capHdr)), uintptr(unsafe.Pointer(&p.capData[0])), 0); err1 != 0 {
			goto fail
		}
		if _, _, e := syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e == 0 {
			for i = 0; i < len(p.ambient); i++ {
				// Refused when missing from permitted or inheritable,
				// ignored as runc does.
				syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, p.ambient[i], 0, 0, 0)
			}
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); err1 != 0 {
			goto fail
		}
	}
	if cwdErr != 0 {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(p.cwd)), 0, 0); err1 != 0 {
			stage = rawExecCwd
			goto fail
		}
	}
	if p.nnp {
		if _, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); err1 != 0 {
			stage = rawExecNNP
			goto fail
		}
	}
	syscall.RawSyscall(unix.SYS_UMASK, p.umask, 0, 0)
	if p.seccomp != nil && p.nnp {
		// Last: the filter constrains the user process only.
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.seccompFlags, uintptr(unsafe.Pointer(p.seccomp))); err1 != 0 {
			stage = rawExecSeccomp
			goto fail
		}
	}
	// execvp: the first candidate that exists wins; EACCES is remembered
	// in case nothing else does.
	stage, err1 = rawExecExec, syscall.ENOENT
	for i = 0; i < len(p.paths); i++ {
		_, _, r1e := syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(p.paths[i])),
			uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])))
		if r1e == syscall.EACCES || err1 != syscall.EACCES {
			err1 = r1e
		}
		if r1e != syscall.ENOENT && r1e != syscall.ENOTDIR && r1e != syscall.EACCES {
			break
		}
	}
fail:
	rep[0], rep[2] = stage, int32(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(errw), uintptr(unsafe.Pointer(&rep[0])), unsafe.Sizeof(rep))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
	}
}

// rawExecSpec is what rawExec turns into a plan.
type rawExecSpec struct {
	p         *specs.Process
	initPid   int
	joins     []nsJoin // opened here; the mount namespace last
	pidns     string   // joined by the forking thread ("" for none)
	mgr       cgroups.Manager
	files     []*os.File // files[i] becomes fd i
	seccomp   []unix.SockFilter
	seccompFl []specs.LinuxSeccompFlag
}

// errRawExecUnavailable: the kernel refused the clone3 (no clone3 or
// CLONE_INTO_CGROUP); the caller uses the helper.
var errRawExecUnavailable = errors.New("clone3 with CLONE_INTO_CGROUP unavailable")

// rawExec starts s.p in the container and returns its pid once it has
// executed (or an error, with nothing left running).
func rawExec(s rawExecSpec) (int, error) {
	p := s.p
	plan := &rawExecPlan{zero: &[]byte("0")[0], cwdBuf: make([]byte, 4096), nnp: p.NoNewPrivileges,
		gid: uintptr(p.User.GID), uid: uintptr(p.User.UID), groups: append([]uint32{}, p.User.AdditionalGids...)}
	plan.clone.exitSignal = uint64(unix.SIGCHLD)
	if p.OOMScoreAdj != nil {
		plan.oomPath = &[]byte("/proc/self/oom_score_adj\x00")[0]
		plan.oomValue = []byte(strconv.Itoa(*p.OOMScoreAdj))
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	if path := s.mgr.Path(""); path != "" {
		fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("exec: open cgroup %s: %w", path, err)
		}
		closers = append(closers, fdCloser(fd))
		plan.clone.flags |= unix.CLONE_INTO_CGROUP
		plan.clone.cgroup = uint64(fd)
	}
	for _, d := range cgroups.SelfJoinDirs(s.mgr) {
		fd, err := unix.Open(d+"/tasks", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("exec: open cgroup %s: %w", d, err)
		}
		closers = append(closers, fdCloser(fd))
		plan.cgroupTasks = append(plan.cgroupTasks, fd)
	}
	for _, j := range s.joins {
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open %s namespace %s: %w", j.Type, j.Path, err)
		}
		closers = append(closers, fdCloser(fd))
		plan.joinFD = append(plan.joinFD, fd)
		plan.joinFlag = append(plan.joinFlag, nsFlags[j.Type])
	}
	plan.nextfd = len(s.files)
	for _, f := range s.files {
		fd := int(f.Fd())
		plan.fds = append(plan.fds, fd)
		plan.nextfd = max(plan.nextfd, fd+1)
	}
	var err error
	if plan.cwd, err = unix.BytePtrFromString(p.Cwd); err != nil {
		return 0, fmt.Errorf("exec: cwd %q: %w", p.Cwd, err)
	}
	haveNofile := false
	for _, rl := range p.Rlimits {
		res := rlimitNames[rl.Type]
		haveNofile = haveNofile || res == unix.RLIMIT_NOFILE
		plan.rlimits = append(plan.rlimits, rawRlimit{res: uintptr(res), want: unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}})
	}
	if !haveNofile {
		// This process's soft limit was raised by the Go runtime; the one
		// to pass on is the container's.
		var lim unix.Rlimit
		if err := unix.Prlimit(s.initPid, unix.RLIMIT_NOFILE, nil, &lim); err == nil {
			plan.rlimits = append(plan.rlimits, rawRlimit{res: unix.RLIMIT_NOFILE, want: lim})
		}
	}
	if c := p.Capabilities; c != nil {
		plan.caps = true
		last := lastCap()
		keep := capMask(c.Bounding, last)
		for cp := 0; cp <= last; cp++ {
			if keep&(1<<uint(cp)) == 0 {
				plan.bndDrop = append(plan.bndDrop, uintptr(cp))
			}
		}
		eff, perm, inh := capMask(c.Effective, last), capMask(c.Permitted, last), capMask(c.Inheritable, last)
		plan.capHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		// What the runtime itself lacks cannot be granted (as setCaps).
		var cur [2]unix.CapUserData
		if err := unix.Capget(&plan.capHdr, &cur[0]); err == nil {
			have := uint64(cur[0].Permitted) | uint64(cur[1].Permitted)<<32
			eff, perm = eff&have, perm&have
			inh &= have | uint64(cur[0].Inheritable) | uint64(cur[1].Inheritable)<<32
		}
		plan.capHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // capget may have rewritten it
		plan.capData = [2]unix.CapUserData{
			{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
			{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
		}
		for _, n := range c.Ambient {
			if cp, ok := capByName(n); ok && cp <= last {
				plan.ambient = append(plan.ambient, uintptr(cp))
			}
		}
	}
	if len(s.seccomp) > 0 {
		plan.seccomp = &unix.SockFprog{Len: uint16(len(s.seccomp)), Filter: &s.seccomp[0]}
		if plan.seccompFlags, err = seccomp.LoadFlags(s.seccompFl); err != nil {
			return 0, err
		}
	}
	plan.umask = 0o022
	if p.User.Umask != nil {
		plan.umask = uintptr(*p.User.Umask)
	}
	for _, c := range execCandidates(p.Args[0], p.Env) {
		b, err := unix.BytePtrFromString(c)
		if err != nil {
			return 0, fmt.Errorf("exec %q: %w", p.Args[0], err)
		}
		plan.paths = append(plan.paths, b)
	}
	if plan.argv, err = cStrings(p.Args); err != nil {
		return 0, err
	}
	if plan.envv, err = cStrings(p.Env); err != nil {
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("report pipe: %w", err)
	}
	defer pr.Close()
	plan.errw = int(pw.Fd())
	plan.nextfd = max(plan.nextfd, plan.errw+1)

	// The fork happens on a thread of its own that first joins the pid
	// namespace (pid_for_children is per thread); Go retires it after.
	type forked struct {
		pid   int
		errno syscall.Errno
		err   error
	}
	done := make(chan forked, 1)
	go func() {
		runtime.LockOSThread()
		if s.pidns != "" {
			fd, err := unix.Open(s.pidns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				err = unix.Setns(fd, unix.CLONE_NEWPID)
				unix.Close(fd)
			}
			if err != nil {
				done <- forked{err: fmt.Errorf("join pid namespace %s: %w", s.pidns, err)}
				return
			}
		}
		syscall.ForkLock.Lock()
		pid, errno := rawExecFork(plan)
		syscall.ForkLock.Unlock()
		runtime.KeepAlive(plan)
		done <- forked{pid: int(pid), errno: errno}
	}()
	f := <-done
	runtime.KeepAlive(s)
	pw.Close()
	if f.err != nil {
		return 0, f.err
	}
	if f.errno != 0 {
		if f.errno == syscall.ENOSYS || f.errno == syscall.EINVAL || f.errno == syscall.E2BIG {
			return 0, errRawExecUnavailable
		}
		return 0, fmt.Errorf("fork: %w", f.errno)
	}
	var rep rawReport
	err = binary.Read(pr, binary.NativeEndian, &rep)
	if errors.Is(err, io.EOF) {
		return f.pid, nil // executed
	}
	if err == nil {
		what := "unknown step"
		if rep[0] > 0 && int(rep[0]) < len(rawExecStageNames) {
			what = rawExecStageNames[rep[0]]
		}
		switch rep[0] {
		case rawExecJoin:
			if int(rep[1]) < len(s.joins) {
				what = fmt.Sprintf("join %s namespace %s", s.joins[rep[1]].Type, s.joins[rep[1]].Path)
			}
		case rawExecCwd, rawExecCwdOutside:
			what += " " + p.Cwd
		case rawExecExec:
			what += " " + p.Args[0]
		case rawExecRlimit:
			what += fmt.Sprintf(" %d", rep[1])
		}
		err = fmt.Errorf("%s: %w", what, syscall.Errno(rep[2]))
	} else {
		err = fmt.Errorf("read exec report: %w", err)
	}
	unix.Kill(f.pid, unix.SIGKILL)
	unix.Wait4(f.pid, nil, 0, nil)
	return 0, err
}

// execCandidates are the paths execvp would try for name with the PATH of
// env (the usual default without one).
func execCandidates(name string, env []string) []string {
	if strings.Contains(name, "/") {
		return []string{name}
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	var out []string
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		out = append(out, filepath.Join(dir, name))
	}
	return out
}

type fdCloser int

func (f fdCloser) Close() error { return unix.Close(int(f)) }
