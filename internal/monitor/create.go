package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/crilog"
	"hull/internal/errdefs"
)

// stdio is what the runtime's create gets: the child ends of the pipes (nil
// entries mean /dev/null) or, with a terminal, a console socket path.
type stdio struct {
	in, out, err  *os.File
	consoleSocket string
}

// closeChildEnds closes our copies of the child's ends once the runtime
// process holds them, so that the pipes see EOF when the last container
// writer (or a failed runtime) is gone. Closing twice is harmless.
func (sio stdio) closeChildEnds() {
	for _, f := range []*os.File{sio.in, sio.out, sio.err} {
		if f != nil {
			f.Close()
		}
	}
}

// create sets up the container's stdio, runs the runtime's create and returns
// the init pid. On return the child ends of the pipes are closed, so the
// output pipes reach EOF when the container's last writer exits.
func (m *monitor) create() (int, error) {
	var sio stdio
	var console *net.UnixListener
	var closeAfter []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	if m.spec.Terminal {
		l, path, dir, err := listenConsole(m.spec.StateDir)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		defer os.Remove(filepath.Join(m.spec.StateDir, consoleSocket))
		if dir != nil {
			closeAfter = append(closeAfter, dir)
		}
		console, sio.consoleSocket = l, path
	} else {
		out, outW, err := os.Pipe()
		if err != nil {
			return 0, fmt.Errorf("stdout pipe: %w", err)
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			out.Close()
			outW.Close()
			return 0, fmt.Errorf("stderr pipe: %w", err)
		}
		closeAfter = append(closeAfter, outW, errW)
		sio.out, sio.err = outW, errW
		m.outputs = []output{{crilog.Stdout, streamStdout, out}, {crilog.Stderr, streamStderr, errR}}
		if m.spec.Stdin {
			inR, inW, err := os.Pipe()
			if err != nil {
				return 0, fmt.Errorf("stdin pipe: %w", err)
			}
			closeAfter = append(closeAfter, inR)
			sio.in, m.stdin = inR, inW
		}
	}

	var pid int
	var err error
	switch m.spec.RuntimeType {
	case RuntimeOCI:
		pid, err = m.createOCI(sio)
	case RuntimeHullrt:
		pid, err = m.createHullrt(sio)
	default:
		err = fmt.Errorf("runtime type %q: %w", m.spec.RuntimeType, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return 0, err
	}
	if console != nil {
		master, err := recvConsole(console)
		if err != nil {
			killInit(pid)
			return 0, fmt.Errorf("container %s created (init %d) but its terminal did not arrive: %w", m.spec.ID, pid, err)
		}
		m.pty = master
		m.outputs = []output{{crilog.Stdout, streamStdout, master}}
		if m.spec.Stdin {
			m.stdin = master
		}
	}
	return pid, nil
}

// killInit ends a container whose creation cannot be completed, so that no
// unmonitored container survives a failed Spawn. The init is our child (or
// adopted as subreaper), so it is reaped here too; the runtime's state is
// left for hulld's cleanup (delete --force).
func killInit(pid int) {
	if pid <= 0 {
		return
	}
	_ = unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, 0, nil)
}

// createOCI runs `RUNTIME [--root R] --log F --log-format json create
// --bundle B --pid-file P [--console-socket S] ID` with the container's stdio
// as its own: runc hands its stdio to the container's init.
func (m *monitor) createOCI(sio stdio) (int, error) {
	s := &m.spec
	logPath := filepath.Join(s.StateDir, runtimeLogFile)
	pidPath := filepath.Join(s.StateDir, pidFile)
	args := []string{s.RuntimePath}
	if s.RuntimeRoot != "" {
		args = append(args, "--root", s.RuntimeRoot)
	}
	args = append(args, "--log", logPath, "--log-format", "json", "create", "--bundle", s.Bundle, "--pid-file", pidPath)
	if sio.consoleSocket != "" {
		args = append(args, "--console-socket", sio.consoleSocket)
	}
	args = append(args, s.ID)

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	files := []*os.File{sio.in, sio.out, sio.err}
	for i, f := range files {
		if f == nil {
			files[i] = devnull
		}
	}
	// runc prints its errors on stderr (the container's pipe) as well as in
	// the json log; the log is read on failure, the pipe only as a fallback
	// (the container does not run before start, so nothing else is in it).
	proc, err := os.StartProcess(s.RuntimePath, args, &os.ProcAttr{Dir: "/", Env: os.Environ(), Files: files})
	sio.closeChildEnds()
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", s.RuntimePath, err)
	}
	ps, err := proc.Wait()
	if err != nil {
		return 0, fmt.Errorf("wait for %s create: %w", s.RuntimePath, err)
	}
	if !ps.Success() {
		msg := runtimeError(logPath)
		if msg == "" {
			msg = m.failureOutput()
		}
		if msg == "" {
			msg = "no error output"
		}
		return 0, fmt.Errorf("%s create %s: %s: %s", filepath.Base(s.RuntimePath), s.ID, ps, msg)
	}
	return readPidFile(pidPath)
}

// failureOutput returns what the runtime wrote on the container's stderr pipe
// (empty with a terminal), waiting a moment for its writers to close.
func (m *monitor) failureOutput() string {
	for _, o := range m.outputs {
		if o.stream != crilog.Stderr {
			continue
		}
		_ = o.r.SetReadDeadline(time.Now().Add(time.Second))
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for b.Len() < 4096 {
			n, err := o.r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return strings.TrimSpace(b.String())
	}
	return ""
}

// runtimeError extracts the error messages of a runc-style json log.
func runtimeError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var msgs []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e struct{ Level, Msg string }
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msgs = append(msgs, e.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("runtime pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("runtime pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

// listenConsole listens on StateDir/console for the runtime to send the pty
// master. When that path is too long for a socket address the runtime is given
// /proc/<our pid>/fd/<dir fd>/console instead, and dir must stay open.
func listenConsole(stateDir string) (l *net.UnixListener, path string, dir *os.File, err error) {
	path = filepath.Join(stateDir, consoleSocket)
	_ = os.Remove(path)
	l, err = listenUnix(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("console socket: %w", err)
	}
	if len(path) > sunPathMax {
		dir, err = os.OpenFile(stateDir, os.O_RDONLY|unix.O_PATH, 0)
		if err != nil {
			l.Close()
			return nil, "", nil, fmt.Errorf("console socket: %w", err)
		}
		path = fmt.Sprintf("/proc/%d/fd/%d/%s", os.Getpid(), dir.Fd(), consoleSocket)
	}
	return l, path, dir, nil
}

// recvConsole accepts the runtime's connection and receives the pty master
// (SCM_RIGHTS), returned non-blocking so that reads go through the poller and
// Close interrupts them.
func recvConsole(l *net.UnixListener) (*os.File, error) {
	_ = l.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, msg := range msgs {
		if got, err := unix.ParseUnixRights(&msg); err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) == 0 {
		return nil, errors.New("no file descriptor in the console message")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	unix.CloseOnExec(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// resize sets the terminal size on the pty master without Fd(), which would
// switch the file to blocking mode.
func resize(pty *os.File, width, height uint16) error {
	rc, err := pty.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	})
	if err == nil {
		err = ierr
	}
	return err
}
