package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// child is a re-executed init or exec helper with its sync channel.
type child struct {
	cmd  *exec.Cmd // nil when started by the raw fork
	proc *os.Process
	sync *os.File
	dec  *json.Decoder
}

// spawnOptions are the parts of starting a child that differ between init
// and exec.
type spawnOptions struct {
	mode        string
	exe         string
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
	preserve    int
	fifo        *os.File // init only
	console     *os.File // optional
	sys         *syscall.SysProcAttr
	joinPidPath string         // setns into this pid namespace before the fork
	raw         *rawNamespaces // start through the raw fork (userns_linux.go)
	mountFDs    []*os.File     // idmapped mounts sent before the config (idmap_linux.go)
}

// spawn starts the child blocked on reading its config.
func spawn(o spawnOptions) (*child, error) {
	exe, release, err := openProtectedExe(o.exe)
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	defer release() // after the child's execve (startCmd waits for it)
	trace("spawn: exe opened")
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parentEnd := os.NewFile(uintptr(fds[0]), "sync-parent")
	childEnd := os.NewFile(uintptr(fds[1]), "sync-child")
	defer childEnd.Close()

	var extra []*os.File
	for i := 0; i < o.preserve; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(i)))
	}
	base := 3 + o.preserve
	fifo := o.fifo
	if fifo == nil {
		if fifo, err = os.Open(os.DevNull); err != nil {
			parentEnd.Close()
			return nil, err
		}
		defer fifo.Close()
	}
	extra = append(extra, childEnd, exe, fifo)
	if o.console != nil {
		extra = append(extra, o.console)
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/fd/" + strconv.Itoa(base+fdExe),
		Args:        []string{"hullrt", o.mode},
		Env:         []string{envInit + "=" + o.mode, envFDBase + "=" + strconv.Itoa(base)},
		Stdin:       o.stdin,
		Stdout:      o.stdout,
		Stderr:      o.stderr,
		ExtraFiles:  extra,
		SysProcAttr: o.sys,
	}
	if traceOn {
		cmd.Env = append(cmd.Env, "HULLRT_TRACE=1")
	}
	if len(o.mountFDs) > 0 {
		cmd.Env = append(cmd.Env, envMountFDs+"="+strconv.Itoa(len(o.mountFDs)))
	}
	c := &child{sync: parentEnd, dec: json.NewDecoder(parentEnd)}
	trace("spawn: starting")
	if o.raw != nil {
		c.proc, err = startRaw(cmd, o.raw, base+fdExe)
	} else if err = startCmd(cmd, o.joinPidPath); err == nil {
		c.cmd, c.proc = cmd, cmd.Process
	}
	if err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("start container %s process: %w", o.mode, err)
	}
	if len(o.mountFDs) > 0 {
		if err := sendMountFDs(parentEnd, o.mountFDs); err != nil {
			c.kill()
			return nil, err
		}
	}
	return c, nil
}

// startCmd starts cmd, first joining the pid namespace at pidns on a
// dedicated OS thread: pid_for_children is per thread, and the fork
// happens on the calling thread. The thread is never unlocked, so Go
// discards it when the goroutine ends.
func startCmd(cmd *exec.Cmd, pidns string) error {
	if pidns == "" {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(pidns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open pid namespace %s: %w", pidns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWPID)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("join pid namespace %s: %w", pidns, err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// send writes an *initConfig or a syncMsg.
func (c *child) send(v any) error {
	var err error
	switch v := v.(type) {
	case *initConfig:
		err = writeJSON(c.sync, v, jsonEncodeInitConfig)
	case syncMsg:
		err = writeJSON(c.sync, &v, jsonEncodeSyncMsg)
	default:
		err = fmt.Errorf("no encoder for %T", v)
	}
	if err != nil {
		return fmt.Errorf("send to container process: %w", err)
	}
	return nil
}

// recv reads the next message; a child that died first is reported with
// its exit status.
func (c *child) recv() (syncMsg, error) {
	var m syncMsg
	if err := readJSON(c.dec, &m, jsonDecodeSyncMsg); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return m, errors.New("container process exited during setup")
		}
		return m, fmt.Errorf("read from container process: %w", err)
	}
	if m.Type == "error" {
		return m, errors.New(m.Msg)
	}
	return m, nil
}

// kill ends a child that failed during setup and reaps it.
func (c *child) kill() {
	c.sync.Close()
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	} else if c.proc != nil {
		c.proc.Kill()
		c.proc.Wait()
	}
}
