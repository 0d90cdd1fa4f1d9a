package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// envExecShim marks a process started as the exec shim: its arguments are
// the runtime's command line, its pid file is the last but one argument
// pair.
const envExecShim = "_HULL_EXEC_SHIM"

// runc refuses a console socket unless it detaches ("cannot use console
// socket if runc will not detach or allocate tty"), and a detached exec
// leaves the process to be reaped by whoever adopts it. The shim is that
// adopter: a subreaper that runs the runtime with --detach, waits for the
// process named in the pid file and exits with its status, so OCI.Exec
// sees the same exit codes with or without a terminal.
//
// It is hooked in init so every binary driving an OCI handler (hulld, the
// tests) can re-execute itself as the shim without its main knowing.
func init() {
	if os.Getenv(envExecShim) != "1" {
		return
	}
	os.Exit(execShim(os.Args[1:]))
}

// shimCommand is the command running args (runtime path first, an exec
// with --pid-file) detached under the shim.
func shimCommand(args []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("exec shim: find own executable: %w", err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), envExecShim+"=1")
	return cmd, nil
}

// execShim runs the runtime (args[0] with args[1:]) and then waits for the
// detached process; it returns the exit code to leave with.
func execShim(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "exec shim: no runtime command")
		return 125
	}
	pidFile := ""
	for i, a := range args {
		if a == "--pid-file" && i+1 < len(args) {
			pidFile = args[i+1]
		}
	}
	if pidFile == "" {
		fmt.Fprintln(os.Stderr, "exec shim: the runtime command has no --pid-file")
		return 125
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "exec shim: become subreaper:", err)
		return 125
	}
	rt := exec.Command(args[0], args[1:]...)
	rt.Stdin, rt.Stdout, rt.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := rt.Run(); err != nil {
		// The runtime's own failure: its text is on stderr; no pid file
		// tells OCI.Exec this is not the process's status.
		_ = os.Remove(pidFile)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "exec shim:", err)
		return 125
	}
	b, err := os.ReadFile(pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil || pid <= 0 {
		fmt.Fprintf(os.Stderr, "exec shim: runtime left no usable pid file %s: %v %v\n", pidFile, err, perr)
		_ = os.Remove(pidFile)
		return 125
	}
	// The process and any of its orphans are ours now; reap them all until
	// the process itself exits.
	for {
		var st syscall.WaitStatus
		got, err := syscall.Wait4(-1, &st, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "exec shim: wait for %d: %v\n", pid, err)
			_ = os.Remove(pidFile)
			return 125
		}
		if got != pid {
			continue
		}
		if st.Signaled() {
			return 128 + int(st.Signal())
		}
		return st.ExitStatus()
	}
}
