package monitor

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/crilog"
)

// drainTimeout bounds how long the monitor waits, after the init exited, for
// the last output: processes that escaped the container's pid namespace (or
// share the pod's) may hold the pipes open forever.
const drainTimeout = 2 * time.Second

// Main is the monitor process's entry point (cmd/hull-monitor): args are
// [argv0, stateDir], the sync pipe is fd 3. It returns the process exit code.
func Main(args []string) int {
	// fds 0-3 are ours (stdio, sync pipe or error pipe); anything else open
	// without close-on-exec leaked from hulld's own environment.
	closeInheritedFDs(syncFD + 1)
	// The monitor idles for the container's lifetime: one P and a GC that
	// runs often keep its heap and RSS at the minimum.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)
	debug.SetMemoryLimit(8 << 20)
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(fmt.Sprintf("hull-monitor[%d]: ", os.Getpid()))

	sync := os.NewFile(syncFD, "sync")
	if len(args) != 2 || sync == nil {
		fmt.Fprintln(os.Stderr, "usage: hull-monitor STATE_DIR (started by hulld with a sync pipe on fd 3)")
		return 2
	}
	// Inherited without close-on-exec: keep it from the runtime and the
	// container, so only this process holds Spawn's pipe open.
	unix.CloseOnExec(syncFD)
	var s Spec
	if err := readJSON(filepath.Join(args[1], specFile), &s); err != nil {
		return report(sync, fmt.Errorf("spec: %w", err))
	}
	if err := s.Validate(); err != nil {
		return report(sync, err)
	}
	m := &monitor{spec: s}
	if err := m.run(sync); err != nil {
		log.Printf("container %s: %v", s.ID, err)
		return 1
	}
	return 0
}

// closeInheritedFDs closes every fd >= from that lacks close-on-exec. The Go
// runtime opens its own fds (epoll, cgroup files) close-on-exec, so such an fd
// was inherited: from whatever started hulld, through hulld. Held by a
// long-lived monitor, a pipe's write end would keep its reader (a shell's
// $(...), a log collector) from ever seeing EOF, and it would reach the
// runtime's processes.
func closeInheritedFDs(from int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < from {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// report sends a create failure to Spawn and returns the exit code.
func report(sync *os.File, err error) int {
	log.Print(err)
	_ = writeMsg(sync, syncMsg{Error: err.Error()})
	sync.Close()
	return 1
}

// monitor is the state of the monitor process for its one container. It is
// built by Main, created by run (single goroutine), then shared read-only by
// the copy goroutines and the control server, except for stdin (stdinMu).
type monitor struct {
	spec Spec
	log  *crilog.Writer // nil when Spec.LogPath is empty

	// Container stdio, our ends. outputs are the pipes' read ends or the pty
	// master; stdin is the stdin pipe's write end or the pty master.
	outputs []output
	stdinMu sync.Mutex
	stdin   *os.File
	pty     *os.File

	hub hub
}

type output struct {
	stream string // crilog.Stdout or crilog.Stderr
	id     byte
	r      *os.File
}

func (m *monitor) run(syncPipe *os.File) error {
	created, initPID := false, 0
	fail := func(err error) error {
		if !created {
			killInit(initPID)
			report(syncPipe, err)
		}
		return err
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("become child subreaper: %w", err))
	}
	if m.spec.LogPath != "" {
		w, err := crilog.Open(m.spec.LogPath)
		if err != nil {
			return fail(err)
		}
		m.log = w
	}

	initPID, err := m.create()
	if err != nil {
		return fail(err)
	}
	start, _, err := procStart(initPID)
	if err != nil {
		// The init may already have exited (a zombie still has its stat) ...
		// or the pid file named something else: either way keep going and
		// reap what we can.
		log.Printf("init %d: %v", initPID, err)
	}
	self, _, err := procStart(os.Getpid())
	if err != nil {
		return fail(fmt.Errorf("own start time: %w", err))
	}
	srv, err := m.serve()
	if err != nil {
		return fail(err)
	}
	st := state{MonitorPID: os.Getpid(), MonitorStart: self, InitPID: initPID, InitStart: start}
	if err := writeJSONAtomic(filepath.Join(m.spec.StateDir, stateFile), &st); err != nil {
		srv.shutdown(nil)
		return fail(err)
	}
	created = true
	if err := writeMsg(syncPipe, syncMsg{InitPID: initPID}); err != nil {
		// hulld gave up (context cancelled and killed us, or died): the
		// container exists anyway, so keep monitoring it.
		log.Printf("report init pid: %v", err)
	}
	syncPipe.Close()
	// Setup was the peak; hand that memory back before idling for the
	// container's lifetime (after the report: not on Spawn's path).
	debug.FreeOSMemory()

	var copies sync.WaitGroup
	for _, o := range m.outputs {
		copies.Add(1)
		go func() {
			defer copies.Done()
			m.copyOutput(o)
		}()
	}

	exit := reap(initPID, start)
	drained := make(chan struct{})
	go func() { copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		log.Printf("output still open %v after init exited; closing it", drainTimeout)
		for _, o := range m.outputs {
			o.r.Close()
		}
		<-drained
	}
	for _, o := range m.outputs {
		o.r.Close()
	}
	m.closeStdin()
	if m.log != nil {
		if err := m.log.Close(); err != nil {
			log.Printf("close log: %v", err)
		}
	}
	err = writeJSONAtomic(filepath.Join(m.spec.StateDir, exitFile), exit)
	srv.shutdown(exit)
	return err
}

// copyOutput copies one output into the CRI log and to attached clients
// until EOF. A pty master reports EIO once the last slave fd closes: that is
// its EOF.
func (m *monitor) copyOutput(o output) {
	var r io.Reader = o.r
	if o.r == m.pty {
		r = eioReader{o.r}
	}
	r = io.TeeReader(r, m.hub.writer(o.id))
	var err error
	if m.log != nil {
		err = m.log.Copy(o.stream, r)
	} else {
		_, err = io.Copy(io.Discard, r)
	}
	if err != nil && !errors.Is(err, os.ErrClosed) {
		log.Printf("copy %s: %v", o.stream, err)
	}
}

type eioReader struct{ r io.Reader }

func (e eioReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, syscall.EIO) {
		err = io.EOF
	}
	return n, err
}

// closeStdin closes the container's stdin (once); with a pty it is the master
// and stays open until the end, as closing it would hang up the terminal.
func (m *monitor) closeStdin() {
	m.stdinMu.Lock()
	defer m.stdinMu.Unlock()
	if m.stdin != nil && m.stdin != m.pty {
		m.stdin.Close()
	}
	m.stdin = nil
}

// endStdin ends the container's input after a StdinOnce attach: the pipe is
// closed; a terminal cannot be half-closed without hanging it up, so it gets
// the end-of-file character (^D) that a canonical-mode reader takes as EOF.
func (m *monitor) endStdin() {
	if m.pty != nil {
		_ = m.writeStdin([]byte{4})
	}
	m.closeStdin()
}

func (m *monitor) writeStdin(p []byte) error {
	m.stdinMu.Lock()
	f := m.stdin
	m.stdinMu.Unlock()
	if f == nil {
		return os.ErrClosed
	}
	_, err := f.Write(p)
	return err
}

// reap waits for the init, reaping every other child re-parented to us on the
// way, and converts its status the way CRI expects (128+signal when killed).
func reap(pid int, start uint64) *Exit {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// ECHILD: the init is not our child (the runtime did not leave
			// it to us); we can only watch it go and not learn its status.
			log.Printf("init %d is not our child (%v): watching it without its status", pid, err)
			for alive(pid, start) {
				time.Sleep(200 * time.Millisecond)
			}
			return &Exit{Code: 255, At: time.Now().UTC()}
		}
		if p != pid {
			continue
		}
		e := &Exit{Code: ws.ExitStatus(), At: time.Now().UTC()}
		if ws.Signaled() {
			e.Signal = int(ws.Signal())
			e.Code = 128 + e.Signal
		}
		return e
	}
}
