package oci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A Go program is never single-threaded, and setns(CLONE_NEWUSER) and
// setns(CLONE_NEWTIME) refuse multi-threaded callers. So joining a user or
// time namespace by path goes through a raw fork, as gVisor's ptrace
// platform does: the forked child is a copy of one thread only, and until
// it executes the runtime again it runs nothing but raw system calls on
// memory prepared by the parent (no allocation, no stack growth, no
// scheduler), the rules of syscall.forkAndExecInChild1.
//
// The child (stage 1) joins the namespaces, becomes root of the joined
// user namespace and lays out its fds; it then clones the init (stage 2)
// with CLONE_PARENT and the flags of the new namespaces, so that those are
// owned by the joined user namespace, a new pid namespace has the init as
// its pid 1, and the init is the caller's own child (waitable; a
// subreaper above the caller adopts it as before). Stage 1 reports the
// init's pid through a close-on-exec pipe and exits; a failing step in
// either stage is reported there as a record instead.

//go:linkname beforeFork syscall.runtime_BeforeFork
func beforeFork()

//go:linkname afterFork syscall.runtime_AfterFork
func afterFork()

//go:linkname afterForkInChild syscall.runtime_AfterForkInChild
func afterForkInChild()

// rawPlan is everything the forked child needs, prepared by the parent.
type rawPlan struct {
	joinFD     []int     // namespaces to setns into, in order (before the user namespace)
	joinFlag   []uintptr // their CLONE_NEW* types
	userFD     int       // user namespace to join last; -1 for none
	mapsR      int       // new user namespace: read end the child waits on for its maps; -1 for none
	mapsW      int       // the parent's write end, closed by the child
	cloneFlags uintptr   // CLONE_NEW* of the namespaces the init's clone creates
	fds        []int     // fds[i] becomes fd i of the init
	nextfd     int       // first fd number above every fds[i] and len(fds)
	exeFD      int       // fd (in the init's layout) that is executed
	argv, envv []*byte   // nil-terminated
	empty      *byte     // "" for execveat(AT_EMPTY_PATH)
	errw       int       // write end of the report pipe, close-on-exec
}

// Steps a report names.
const (
	rawStageOK = iota
	rawStageJoin
	rawStageUser
	rawStageCreds
	rawStageFDs
	rawStageClone
	rawStageExec
	rawStageNewUser
	rawStageMapsReady // not a failure: the new user namespace waits for its maps
)

// rawStageNames by stage (an array: no map to build at every start-up).
var rawStageNames = [...]string{
	rawStageOK: "", rawStageJoin: "join namespace", rawStageUser: "join user namespace",
	rawStageCreds: "become root of the user namespace", rawStageFDs: "set up file descriptors",
	rawStageClone: "clone the container process", rawStageExec: "execute the runtime",
	rawStageNewUser: "create the user namespace",
}

// rawReport is one 16-byte record on the report pipe: the stage that
// failed (rawStageOK for the pid report), the index of the namespace for
// rawStageJoin, the errno, and the init's pid.
type rawReport [4]int32

// rawFork forks stage 1. It returns in the parent only.
//
//go:nosplit
//go:norace
func rawFork(p *rawPlan) (uintptr, syscall.Errno) {
	beforeFork()
	pid, _, err := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if err != 0 || pid != 0 {
		afterFork()
		return pid, err
	}
	rawChild(p)
	return 0, 0 // not reached
}

// rawChild is stage 1 and, after its clone, stage 2. Only raw system calls.
//
//go:nosplit
//go:norace
func rawChild(p *rawPlan) {
	var (
		rep   rawReport
		err1  syscall.Errno
		r1    uintptr
		i     int
		errw  = p.errw
		stage int32
	)
	afterForkInChild()
	// Not dumpable until execve: see rawExecChild (here the copy becomes
	// root of the container's user namespace before it executes).
	syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0)
	for i = 0; i < len(p.joinFD); i++ {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(p.joinFD[i]), p.joinFlag[i], 0); err1 != 0 {
			stage, rep[1] = rawStageJoin, int32(i)
			goto fail
		}
	}
	if p.userFD >= 0 {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(p.userFD), unix.CLONE_NEWUSER, 0); err1 != 0 {
			stage = rawStageUser
			goto fail
		}
	}
	if p.mapsR >= 0 {
		// A new user namespace (with a time namespace joined first, which
		// needs this single-threaded child): the parent writes its maps
		// while it waits, then it becomes root there.
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(p.mapsW), 0, 0)
		if _, _, err1 = syscall.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0); err1 != 0 {
			stage = rawStageNewUser
			goto fail
		}
		rep[0] = rawStageMapsReady
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(errw), uintptr(unsafe.Pointer(&rep[0])), unsafe.Sizeof(rep))
		if r1, _, err1 = syscall.RawSyscall(unix.SYS_READ, uintptr(p.mapsR), uintptr(unsafe.Pointer(&rep[0])), 1); err1 != 0 || r1 != 1 {
			stage = rawStageNewUser
			if err1 == 0 {
				err1 = syscall.EPIPE
			}
			goto fail
		}
		rep[0] = 0
	}
	if p.userFD >= 0 || p.mapsR >= 0 {
		// Root of the joined or new namespace, or the execve below would
		// drop every capability (the host uid is usually unmapped there).
		// setgroups drops the host's groups; it may be denied in a joined
		// namespace, and the init sets the process's groups itself.
		syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0); err1 != 0 {
			stage = rawStageCreds
			goto fail
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0); err1 != 0 {
			stage = rawStageCreds
			goto fail
		}
	}
	stage = rawStageFDs
	if errw, err1 = rawLayoutFDs(p.fds, p.nextfd, errw); err1 != 0 {
		goto fail
	}
	r1, _, err1 = syscall.RawSyscall6(syscall.SYS_CLONE, unix.CLONE_PARENT|p.cloneFlags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if err1 != 0 {
		stage = rawStageClone
		goto fail
	}
	if r1 != 0 {
		rep[3] = int32(r1)
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(errw), uintptr(unsafe.Pointer(&rep[0])), unsafe.Sizeof(rep))
		for {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
	}
	_, _, err1 = syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(p.exeFD), uintptr(unsafe.Pointer(p.empty)),
		uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])), unix.AT_EMPTY_PATH, 0)
	stage = rawStageExec
fail:
	rep[0], rep[2] = stage, int32(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(errw), uintptr(unsafe.Pointer(&rep[0])), unsafe.Sizeof(rep))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
	}
}

// rawLayoutFDs puts fds[i] on fd i, as os/exec lays out its ExtraFiles:
// first every source that a lower slot would overwrite moves above all of
// them (next is the first free number), then each is dup'ed onto its slot.
// The report pipe errw moves out of the way first; its new number is
// returned. Raw system calls only (a forked child's).
//
//go:nosplit
//go:norace
func rawLayoutFDs(fds []int, next, errw int) (int, syscall.Errno) {
	var err1 syscall.Errno
	if errw < next {
		if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(errw), uintptr(next), unix.O_CLOEXEC); err1 != 0 {
			return errw, err1
		}
		errw = next
		next++
	}
	for i := 0; i < len(fds); i++ {
		if fds[i] < i {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fds[i]), uintptr(next), unix.O_CLOEXEC); err1 != 0 {
				return errw, err1
			}
			fds[i] = next
			next++
		}
	}
	for i := 0; i < len(fds); i++ {
		if fds[i] == i {
			if _, _, err1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0); err1 != 0 {
				return errw, err1
			}
			continue
		}
		if _, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fds[i]), uintptr(i), 0); err1 != 0 {
			return errw, err1
		}
	}
	return errw, 0
}

// rawStartSpec is what rawStart turns into a rawPlan.
type rawStartSpec struct {
	joins      []nsFD // joined first, in order
	user       *os.File
	newUser    *idMaps // create a user namespace with these maps (user must be nil)
	cloneFlags uintptr
	files      []*os.File // files[i] becomes fd i; nil entries are not allowed
	exeIndex   int        // index in files of the binary to execute
	args, env  []string
	names      []string // namespace descriptions for errors, parallel to joins
}

// nsFD is an open namespace file and its CLONE_NEW* type.
type nsFD struct {
	f    *os.File
	flag uintptr
	desc string
}

// rawStart runs the two-stage fork and returns the init's pid. Stage 1 is
// reaped before it returns; on error nothing is left running.
func rawStart(s rawStartSpec) (int, error) {
	p := &rawPlan{userFD: -1, mapsR: -1, mapsW: -1, cloneFlags: s.cloneFlags, exeFD: s.exeIndex}
	for _, j := range s.joins {
		p.joinFD = append(p.joinFD, int(j.f.Fd()))
		p.joinFlag = append(p.joinFlag, j.flag)
	}
	if s.user != nil {
		p.userFD = int(s.user.Fd())
	}
	p.nextfd = len(s.files)
	for _, f := range s.files {
		fd := int(f.Fd())
		p.fds = append(p.fds, fd)
		if fd >= p.nextfd {
			p.nextfd = fd + 1
		}
	}
	var err error
	if p.argv, err = cStrings(s.args); err != nil {
		return 0, err
	}
	if p.envv, err = cStrings(s.env); err != nil {
		return 0, err
	}
	p.empty = new(byte)
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("report pipe: %w", err)
	}
	defer pr.Close()
	p.errw = int(pw.Fd())
	if p.errw >= p.nextfd {
		p.nextfd = p.errw + 1
	}
	var mapsW *os.File
	if s.newUser != nil {
		mr, mw, err := os.Pipe()
		if err != nil {
			pw.Close()
			return 0, fmt.Errorf("user namespace pipe: %w", err)
		}
		defer mr.Close()
		defer mw.Close()
		p.mapsR, p.mapsW, mapsW = int(mr.Fd()), int(mw.Fd()), mw
		// The child's fd layout may reuse these numbers, but only after
		// it is done with them.
	}
	// Held as os/exec holds it: no fd may be created without close-on-exec
	// (and so leak into the child) while the fork runs.
	syscall.ForkLock.Lock()
	pid1, errno := rawFork(p)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(p)
	runtime.KeepAlive(s)
	pw.Close()
	if errno != 0 {
		return 0, fmt.Errorf("fork: %w", errno)
	}
	var mapErr error
	var first *rawReport
	if mapsW != nil {
		// Maps only once the child has unshared the namespace, or they
		// would be written to its old one.
		var rep rawReport
		if err := binary.Read(pr, binary.NativeEndian, &rep); err == nil && rep[0] != rawStageMapsReady {
			first = &rep // it failed before
		} else if err == nil {
			if mapErr = s.newUser.write(int(pid1)); mapErr != nil {
				unix.Kill(int(pid1), unix.SIGKILL)
			} else if _, err := mapsW.Write([]byte{1}); err != nil {
				mapErr = fmt.Errorf("release the namespace joiner: %w", err)
			}
		}
		mapsW.Close()
	}
	initPid, rerr := readReports(pr, s.names, first)
	if mapErr != nil && rerr == nil {
		rerr = mapErr
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(int(pid1), &ws, 0, nil); err != nil && rerr == nil {
		rerr = fmt.Errorf("wait for the namespace joiner: %w", err)
	}
	if rerr == nil && initPid == 0 {
		rerr = fmt.Errorf("namespace joiner exited (status %#x) without starting the container process", uint32(ws))
	}
	if rerr != nil {
		if initPid > 0 {
			unix.Kill(initPid, unix.SIGKILL)
			unix.Wait4(initPid, nil, 0, nil)
		}
		return 0, rerr
	}
	return initPid, nil
}

// readReports reads the pipe until both stages have closed it (stage 2 by
// executing): the init's pid and the first failure, if any.
func readReports(r io.Reader, names []string, first *rawReport) (int, error) {
	pid := 0
	var failure error
	for {
		var rep rawReport
		if first != nil {
			rep, first = *first, nil
		} else if err := binary.Read(r, binary.NativeEndian, &rep); err != nil {
			if errors.Is(err, io.EOF) {
				return pid, failure
			}
			return pid, fmt.Errorf("read namespace joiner report: %w", err)
		}
		if rep[0] == rawStageOK {
			pid = int(rep[3])
			continue
		}
		if rep[0] == rawStageMapsReady {
			continue
		}
		if failure != nil {
			continue
		}
		what := "unknown step"
		if rep[0] > 0 && int(rep[0]) < len(rawStageNames) {
			what = rawStageNames[rep[0]]
		}
		if rep[0] == rawStageJoin && int(rep[1]) < len(names) {
			what = "join " + names[rep[1]]
		}
		failure = fmt.Errorf("%s: %w", what, syscall.Errno(rep[2]))
	}
}

func cStrings(ss []string) ([]*byte, error) {
	out := make([]*byte, 0, len(ss)+1)
	for _, s := range ss {
		b, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", s, err)
		}
		out = append(out, b)
	}
	return append(out, nil), nil
}

// startRaw starts cmd (the description os/exec would run: path through
// the protected binary's fd exeFD, args, env, stdio and ExtraFiles at fd
// 3 on) through the raw fork into the namespaces n. Stdio that are not
// files are connected through pipes, as os/exec does.
func startRaw(cmd *exec.Cmd, n *rawNamespaces, exeFD int) (*os.Process, error) {
	var closeAfter []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	var copies []func()
	files := make([]*os.File, 0, 3+len(cmd.ExtraFiles))
	if f, ok := cmd.Stdin.(*os.File); ok {
		files = append(files, f)
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		closeAfter = append(closeAfter, pr)
		in := cmd.Stdin
		if in == nil {
			in = eofReader{}
		}
		copies = append(copies, func() { io.Copy(pw, in); pw.Close() })
		files = append(files, pr)
	}
	for _, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
		if f, ok := w.(*os.File); ok {
			files = append(files, f)
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		closeAfter = append(closeAfter, pw)
		if w == nil {
			w = io.Discard
		}
		copies = append(copies, func() { io.Copy(w, pr); pr.Close() })
		files = append(files, pw)
	}
	files = append(files, cmd.ExtraFiles...)
	pid, err := rawStart(rawStartSpec{joins: n.joins, user: n.user, newUser: n.newUser, cloneFlags: n.cloneFlags, files: files,
		exeIndex: exeFD, args: cmd.Args, env: cmd.Env, names: n.names()})
	if err != nil {
		return nil, err
	}
	for _, c := range copies {
		go c()
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("container process %d: %w", pid, err)
	}
	return p, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// idMaps are the mappings of a user namespace the raw fork creates.
type idMaps struct {
	uids, gids []specs.LinuxIDMapping
}

// write sets the maps of the user namespace of process pid; setgroups
// stays allowed, as on the os/exec path.
func (m *idMaps) write(pid int) error {
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	if err := os.WriteFile(proc+"uid_map", []byte(idMapText(m.uids)), 0); err != nil {
		return fmt.Errorf("write uid_map %s: %w", formatMappings(m.uids), err)
	}
	if err := os.WriteFile(proc+"gid_map", []byte(idMapText(m.gids)), 0); err != nil {
		return fmt.Errorf("write gid_map %s: %w", formatMappings(m.gids), err)
	}
	return nil
}
