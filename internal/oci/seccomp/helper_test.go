package seccomp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests load filters into a child: the test binary re-executed in
// helper mode (a filter can never be removed from a process). The child
// loads the program the parent compiled, like a container init, runs a list
// of operations and prints one "op=errno" line per operation.

const (
	envHelper   = "HULL_SECCOMP_HELPER"
	envProg     = "HULL_SECCOMP_PROG"
	envFlags    = "HULL_SECCOMP_FLAGS"
	envOps      = "HULL_SECCOMP_OPS"
	envListener = "HULL_SECCOMP_LISTENER"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperResult is what a helper run printed and how it ended.
type helperResult struct {
	lines  []string
	errno  map[string]unix.Errno // last result of each op name
	status syscall.WaitStatus
	stderr string
}

// helperOpts configure one helper run.
type helperOpts struct {
	flags []specs.LinuxSeccompFlag
	// listenerPath makes the helper load with LoadListener and send the
	// listener there before running its operations.
	listenerPath string
}

// runHelper runs ops in a child that has loaded prog. It fails the test if
// the child cannot be started or does not finish within a minute (then it
// is killed).
func runHelper(t *testing.T, prog []unix.SockFilter, o helperOpts, ops ...[]string) helperResult {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loads seccomp filters and uses namespaces)")
	}
	progJSON, err := json.Marshal(prog)
	if err != nil {
		t.Fatal(err)
	}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, f := range o.flags {
		flags = append(flags, string(f))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		envHelper+"=1",
		envProg+"="+string(progJSON),
		envFlags+"="+strings.Join(flags, ","),
		envOps+"="+string(opsJSON),
		envListener+"="+o.listenerPath,
	)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("helper: %v (stderr %q)", err, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("helper did not finish in time; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	r := helperResult{errno: map[string]unix.Errno{}, stderr: stderr.String()}
	r.status = cmd.ProcessState.Sys().(syscall.WaitStatus)
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		line := sc.Text()
		r.lines = append(r.lines, line)
		if name, val, ok := strings.Cut(line, "="); ok {
			if n, err := strconv.Atoi(val); err == nil {
				r.errno[name] = unix.Errno(n)
			}
		}
	}
	return r
}

// want asserts that op ended with errno e (0 for success).
func (r helperResult) want(t *testing.T, op string, e unix.Errno) {
	t.Helper()
	got, ok := r.errno[op]
	if !ok {
		t.Errorf("op %s did not report; output %q, stderr %q, status %v", op, r.lines, r.stderr, r.status)
		return
	}
	if got != e {
		t.Errorf("op %s: errno %d (%v), want %d (%v)", op, int(got), got, int(e), e)
	}
}

// wantExited asserts a normal exit 0.
func (r helperResult) wantExited(t *testing.T) {
	t.Helper()
	if !r.status.Exited() || r.status.ExitStatus() != 0 {
		t.Errorf("helper status %v (signaled %v), want exit 0; output %q stderr %q",
			r.status, r.status.Signaled(), r.lines, r.stderr)
	}
}

// helperMain is the child: load, then run each op.
func helperMain() int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", a...)
		return 100
	}
	var prog []unix.SockFilter
	if err := json.Unmarshal([]byte(os.Getenv(envProg)), &prog); err != nil {
		return fail("program: %v", err)
	}
	var ops [][]string
	if err := json.Unmarshal([]byte(os.Getenv(envOps)), &ops); err != nil {
		return fail("ops: %v", err)
	}
	var flags []specs.LinuxSeccompFlag
	if f := os.Getenv(envFlags); f != "" {
		for _, s := range strings.Split(f, ",") {
			flags = append(flags, specs.LinuxSeccompFlag(s))
		}
	}
	// No core files from SIGSYS kills; and set no_new_privs like a
	// container with noNewPrivileges would.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("no_new_privs: %v", err)
	}
	// Thread-directed operations (unshare) and exec stay on one thread.
	runtime.LockOSThread()
	if path := os.Getenv(envListener); path != "" {
		l, err := LoadListener(prog, flags)
		if err != nil {
			return fail("load listener: %v", err)
		}
		err = SendListener(path, l, &specs.ContainerProcessState{Pid: os.Getpid(), Metadata: "helper",
			State: specs.State{ID: "helper", Status: specs.StateCreating, Pid: os.Getpid()}})
		l.Close()
		if err != nil {
			return fail("send listener: %v", err)
		}
	} else if err := Load(prog, flags); err != nil {
		return fail("load: %v", err)
	}
	fmt.Println("loaded=0")
	for _, op := range ops {
		e, err := runOp(op)
		if err != nil {
			return fail("op %v: %v", op, err)
		}
		fmt.Printf("%s=%d\n", op[0], int(e))
	}
	return 0
}

// num parses a decimal, 0x hex or 0 octal operand.
func num(s string) (uintptr, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("bad operand %q: %w", s, err)
	}
	return uintptr(v), nil
}

// runOp performs one operation and returns its errno. The op names are
// syscalls, except "exec" (replace the helper with a program).
func runOp(op []string) (unix.Errno, error) {
	raw := func(nr uintptr, args ...string) (unix.Errno, error) {
		var a [6]uintptr
		for i, s := range args {
			v, err := num(s)
			if err != nil {
				return 0, err
			}
			a[i] = v
		}
		_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
		return e, nil
	}
	// "name#label" runs name; the label tells repeated ops apart.
	name, _, _ := strings.Cut(op[0], "#")
	switch name {
	case "mkdir": // path mode
		mode, err := num(op[2])
		if err != nil {
			return 0, err
		}
		return errnoOfErr(unix.Mkdirat(unix.AT_FDCWD, op[1], uint32(mode))), nil
	case "rmdir":
		return errnoOfErr(unix.Rmdir(op[1])), nil
	case "getppid": // up to six raw arguments, which getppid ignores
		return raw(unix.SYS_GETPPID, op[1:]...)
	case "personality":
		return raw(unix.SYS_PERSONALITY, op[1])
	case "unshare":
		return raw(unix.SYS_UNSHARE, op[1])
	case "clone": // flags only; callers pass flags the kernel rejects if allowed
		return raw(unix.SYS_CLONE, op[1])
	case "clone3":
		// A zero-sized struct: EINVAL from the kernel if the filter lets it by.
		return raw(unix.SYS_CLONE3, "0", "0")
	case "keyctl": // KEYCTL_GET_KEYRING_ID of the session keyring, no create
		_, _, e := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID,
			uintptr(unix.KEY_SPEC_SESSION_KEYRING&0xffffffff), 0)
		return e, nil
	case "process_vm_readv": // own pid, no iovecs: 0 bytes when allowed
		_, _, e := unix.Syscall6(unix.SYS_PROCESS_VM_READV, uintptr(os.Getpid()), 0, 0, 0, 0, 0)
		return e, nil
	case "mount": // bind / onto itself would be harmless in the child anyway
		return raw(unix.SYS_MOUNT, "0", "0", "0", "0")
	case "socket": // family; the socket is closed again
		fam, err := num(op[1])
		if err != nil {
			return 0, err
		}
		fd, _, e := unix.Syscall(unix.SYS_SOCKET, fam, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		return e, nil
	case "uname":
		var u unix.Utsname
		_, _, e := unix.Syscall(unix.SYS_UNAME, uintptr(unsafe.Pointer(&u)), 0, 0)
		return e, nil
	case "syscall": // raw number
		nr, err := num(op[1])
		if err != nil {
			return 0, err
		}
		return raw(nr)
	case "exec": // path args...
		os.Stdout.Sync()
		return errnoOfErr(unix.Exec(op[1], op[1:], os.Environ())), nil
	}
	return 0, fmt.Errorf("unknown op %q", op[0])
}

func errnoOfErr(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}
