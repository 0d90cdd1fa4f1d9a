package monitor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"hull/internal/oci"
)

// createHullrt creates the container in-process with hull/internal/oci. The
// init is re-executed from this binary (cmd/hull-monitor calls oci.MaybeInit
// first) and is our own child, so reap finds it like runc's.
func (m *monitor) createHullrt(sio stdio) (int, error) {
	s := &m.spec
	r, err := oci.New(oci.Options{Root: s.RuntimeRoot})
	if err != nil {
		return 0, fmt.Errorf("hullrt: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	// nil would mean "inherit the monitor's stdio" (its own log file).
	pick := func(f *os.File) *os.File {
		if f == nil {
			return devnull
		}
		return f
	}
	pidPath := filepath.Join(s.StateDir, pidFile)
	o := oci.CreateOptions{Bundle: s.Bundle, ConsoleSocket: sio.consoleSocket, PidFile: pidPath,
		Stdin: pick(sio.in), Stdout: pick(sio.out), Stderr: pick(sio.err)}
	if err := r.Create(context.Background(), s.ID, o); err != nil {
		return 0, fmt.Errorf("hullrt create %s: %w", s.ID, err)
	}
	return readPidFile(pidPath)
}
