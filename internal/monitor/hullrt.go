package monitor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"hull/internal/oci"
)

// hullrtCreateArg makes hull-monitor run as the create helper (see
// createHullrt) instead of as a monitor.
const hullrtCreateArg = "--hullrt-create"

// createHullrt creates the container with hull/internal/oci in a helper: this
// binary re-executed with hullrtCreateArg. The helper is what `runc create`
// is for the oci type: it starts the init (this binary once more, through
// oci.MaybeInit) and exits, and the init is re-parented to us, the child
// subreaper. Keeping the runtime's work out of the monitor process keeps the
// monitor's heap at its idle size for the container's lifetime (about 0.8 MB
// less per container than creating in-process).
func (m *monitor) createHullrt(sio stdio) (int, error) {
	s := &m.spec
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("hullrt: error pipe: %w", err)
	}
	defer errR.Close()
	files := []*os.File{sio.in, sio.out, sio.err, errW}
	for i, f := range files {
		if f == nil {
			files[i] = devnull
		}
	}
	args := []string{"hull-monitor", hullrtCreateArg, s.StateDir, sio.consoleSocket}
	proc, err := os.StartProcess("/proc/self/exe", args, &os.ProcAttr{Dir: "/", Env: os.Environ(), Files: files})
	errW.Close()
	sio.closeChildEnds()
	if err != nil {
		return 0, fmt.Errorf("hullrt: start create helper: %w", err)
	}
	msg, _ := io.ReadAll(io.LimitReader(errR, 64<<10))
	ps, err := proc.Wait()
	if err != nil {
		return 0, fmt.Errorf("hullrt: wait for create helper: %w", err)
	}
	if !ps.Success() {
		text := strings.TrimSpace(string(msg))
		if text == "" {
			// It died without reporting (a crash prints on stderr).
			text = "create helper " + ps.String() + ": " + m.failureOutput()
		}
		return 0, fmt.Errorf("hullrt create %s: %s", s.ID, text)
	}
	return readPidFile(filepath.Join(s.StateDir, pidFile))
}

// hullrtCreateMain is the create helper: args are [stateDir, consoleSocket],
// stdio are the container's, fd 3 takes the error text on failure.
func hullrtCreateMain(args []string) int {
	errf := os.NewFile(3, "error")
	if errf != nil {
		// Inherited: keep it from the container's init.
		unix.CloseOnExec(3)
	}
	fail := func(err error) int {
		if errf != nil {
			fmt.Fprint(errf, err.Error())
		}
		return 1
	}
	if len(args) != 2 {
		return fail(fmt.Errorf("usage: hull-monitor %s STATE_DIR CONSOLE_SOCKET", hullrtCreateArg))
	}
	var s Spec
	if err := readJSON(filepath.Join(args[0], specFile), &s); err != nil {
		return fail(fmt.Errorf("spec: %w", err))
	}
	r, err := oci.New(oci.Options{Root: s.RuntimeRoot})
	if err != nil {
		return fail(err)
	}
	o := oci.CreateOptions{Bundle: s.Bundle, ConsoleSocket: args[1], PidFile: filepath.Join(s.StateDir, pidFile),
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if err := r.Create(context.Background(), s.ID, o); err != nil {
		return fail(err)
	}
	return 0
}
