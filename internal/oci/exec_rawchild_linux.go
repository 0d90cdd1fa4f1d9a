package oci

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The exec child of the raw exec path (exec_raw_linux.go): what it is
// given and what it does, with raw system calls only.

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
	if errw, err1 = rawLayoutFDs(p.fds, p.nextfd, errw); err1 != 0 {
		goto fail
	}
	if errw > len(p.fds) {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(len(p.fds)), uintptr(errw-1), 0); err1 != 0 {
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
