package seccomp

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Kernel structs of the notification API (x/sys has only the ioctl numbers).
type notifData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type notif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  notifData
}

type notifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// agentResult is what the test's seccomp agent saw.
type agentResult struct {
	state specs.ContainerProcessState
	nrs   []int32
	err   error
}

// runAgent accepts one connection on l like a seccomp agent, takes the
// listener fd, and answers notifications in order: the first with EXDEV,
// the rest with "continue". It returns when the helper's filter goes away.
func runAgent(l *net.UnixListener, done chan<- agentResult) {
	var res agentResult
	defer func() { done <- res }()
	conn, err := l.AcceptUnix()
	if err != nil {
		res.err = err
		return
	}
	defer conn.Close()
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		res.err = err
		return
	}
	if err := json.Unmarshal(buf[:n], &res.state); err != nil {
		res.err = err
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		res.err = errors.Join(errors.New("no control message"), err)
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		res.err = errors.Join(errors.New("no fd"), err)
		return
	}
	fd := fds[0]
	defer unix.Close(fd)
	for {
		var req notif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV,
			uintptr(unsafe.Pointer(&req))); e != 0 {
			if e == unix.EINTR {
				continue
			}
			return // ENOENT: the filtered process is gone
		}
		res.nrs = append(res.nrs, req.Data.Nr)
		resp := notifResp{ID: req.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if len(res.nrs) == 1 {
			resp = notifResp{ID: req.ID, Error: -int32(unix.EXDEV)}
		}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND,
			uintptr(unsafe.Pointer(&resp))); e != 0 && e != unix.ENOENT {
			res.err = e
			return
		}
	}
}

func TestNotifyListenerToAgent(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan agentResult, 1)
	go runAgent(l, done)

	s := allowDefault(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActNotify})
	s.ListenerPath = sock
	if !NeedsListener(s) {
		t.Fatal("NeedsListener is false for a NOTIFY rule")
	}
	prog := mustCompile(t, s)
	r := runHelper(t, prog, helperOpts{listenerPath: sock,
		flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}},
		[]string{"mkdir#refused", filepath.Join(dir, "refused"), "0755"},
		[]string{"mkdir#continued", filepath.Join(dir, "continued"), "0755"},
	)
	l.Close() // unblocks the agent if the helper never connected
	res := <-done
	r.wantExited(t)
	if res.err != nil {
		t.Fatalf("agent: %v", res.err)
	}
	if len(res.state.Fds) != 1 || res.state.Fds[0] != specs.SeccompFdName || res.state.Pid == 0 ||
		res.state.Metadata != "helper" || res.state.Version == "" {
		t.Errorf("process state %+v", res.state)
	}
	if len(res.nrs) != 2 || res.nrs[0] != unix.SYS_MKDIRAT {
		t.Errorf("agent saw syscalls %v, want two mkdirat (%d)", res.nrs, unix.SYS_MKDIRAT)
	}
	r.want(t, "mkdir#refused", unix.EXDEV)
	r.want(t, "mkdir#continued", 0)
	if _, err := os.Stat(filepath.Join(dir, "refused")); !os.IsNotExist(err) {
		t.Errorf("refused mkdir ran: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "continued")); err != nil {
		t.Errorf("continued mkdir did not run: %v", err)
	}
}

func TestSendListenerErrors(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st := &specs.ContainerProcessState{Pid: 1}
	if err := SendListener("", f, st); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty path: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nobody.sock")
	if err := SendListener(missing, f, st); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("no agent: %v, want ErrUnavailable", err)
	}
}
