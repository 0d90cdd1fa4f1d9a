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
		plan.caps, plan.bndDrop, plan.ambient = true, boundingDrops(c.Bounding), ambientCaps(c)
		plan.capHdr, plan.capData = capsetArgs(c)
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
