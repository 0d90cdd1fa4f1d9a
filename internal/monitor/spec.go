// Package monitor runs one container under a small, long-lived monitor process
// (conmon-style) and gives hulld a client API to it.
//
// The monitor (cmd/hull-monitor) is started by Spawn in its own session, so it
// survives hulld being killed. It becomes a child subreaper and runs the
// runtime's create: `RUNTIME create` for type "oci", or for type "hullrt"
// `hullrt create` with the hullrt binary next to this one. Either
// way the creating process exits and the container's init is re-parented to
// the monitor, which reaps it; the runtime's work never grows the monitor's
// own heap. The container's stdio are pipes (or a pty received on a console
// socket when Terminal is set). The monitor reports the init pid (or the
// runtime's error text) back to Spawn on a pipe, copies stdout/stderr into
// the CRI log itself (so logs keep flowing while hulld is down), reaps the
// init, drains the output, writes the exit file atomically and exits. While
// it runs it serves a unix control socket in StateDir for Wait, ReopenLog,
// Resize and attach (protocol in proto.go).
//
// One monitor per container: with pinned namespaces and no pause process the
// usual one-container pod has one monitor. It idles at about 1.2 MB of
// anonymous memory (GOMAXPROCS=1, GOGC=20; text pages are shared).
//
// Files in StateDir (all owned by the monitor except spec.json):
//
//	spec.json    the Spec, written by Spawn, read by the monitor
//	state.json   monitor pid + start time and init pid, once created
//	exit.json    the exit status, written atomically once the init is reaped
//	ctl          the control socket
//	monitor.log  the monitor's own diagnostics
//	runtime.log  the OCI runtime's --log (json), the source of create errors
//	init.pid     the runtime's pid file
package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"hull/internal/errdefs"
)

// Runtime types a Spec can name.
const (
	// RuntimeHullrt creates the container with hull's runtime: the hullrt
	// binary next to hull-monitor (hulld drives it in-process afterwards).
	RuntimeHullrt = "hullrt"
	// RuntimeOCI runs a runc-compatible binary (RuntimePath).
	RuntimeOCI = "oci"
)

// File names inside Spec.StateDir.
const (
	specFile       = "spec.json"
	stateFile      = "state.json"
	exitFile       = "exit.json"
	ctlSocket      = "ctl"
	consoleSocket  = "console"
	monitorLogFile = "monitor.log"
	runtimeLogFile = "runtime.log"
	pidFile        = "init.pid"
)

// Spec describes the container a monitor creates and watches.
type Spec struct {
	ID        string `json:"id"`
	Bundle    string `json:"bundle"`
	LogPath   string `json:"log_path,omitempty"` // CRI log file; empty: output is discarded
	Terminal  bool   `json:"terminal,omitempty"` // pty (stdout only in the log) instead of pipes
	Stdin     bool   `json:"stdin,omitempty"`    // keep a stdin open for attach
	StdinOnce bool   `json:"stdin_once,omitempty"`

	RuntimeType string `json:"runtime_type"`           // RuntimeHullrt or RuntimeOCI
	RuntimePath string `json:"runtime_path,omitempty"` // binary for RuntimeOCI
	RuntimeRoot string `json:"runtime_root,omitempty"` // runtime state root (--root)

	// StateDir holds the monitor's socket, state, pid and exit files. It is
	// created if missing; it must be absolute and dedicated to this container.
	StateDir string `json:"state_dir"`
}

// Validate checks s and names the first bad field.
func (s *Spec) Validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("monitor spec: %s %s: %w", field, why, errdefs.ErrInvalidArgument)
	}
	switch {
	case s.ID == "":
		return bad("ID", "is empty")
	case filepath.Base(s.ID) != s.ID || s.ID == "." || s.ID == "..":
		return bad("ID", fmt.Sprintf("%q is not a plain name", s.ID))
	case !filepath.IsAbs(s.Bundle):
		return bad("Bundle", fmt.Sprintf("%q is not absolute", s.Bundle))
	case !filepath.IsAbs(s.StateDir):
		return bad("StateDir", fmt.Sprintf("%q is not absolute", s.StateDir))
	case s.LogPath != "" && !filepath.IsAbs(s.LogPath):
		return bad("LogPath", fmt.Sprintf("%q is not absolute", s.LogPath))
	case s.RuntimeRoot != "" && !filepath.IsAbs(s.RuntimeRoot):
		return bad("RuntimeRoot", fmt.Sprintf("%q is not absolute", s.RuntimeRoot))
	case s.StdinOnce && !s.Stdin:
		return bad("StdinOnce", "is set without Stdin")
	}
	switch s.RuntimeType {
	case RuntimeHullrt:
	case RuntimeOCI:
		if !filepath.IsAbs(s.RuntimePath) {
			return bad("RuntimePath", fmt.Sprintf("%q is not absolute", s.RuntimePath))
		}
	default:
		return bad("RuntimeType", fmt.Sprintf("%q is not %q or %q", s.RuntimeType, RuntimeHullrt, RuntimeOCI))
	}
	return nil
}

// Exit is a container's exit status as the monitor recorded it.
type Exit struct {
	Code   int       `json:"code"`             // exit code; 128+Signal when killed by a signal
	Signal int       `json:"signal,omitempty"` // the signal that killed the init, 0 if it exited
	At     time.Time `json:"at"`               // when the monitor reaped the init
}

// ReadExit returns the exit file in stateDir, or an ErrNotFound error while the
// container runs (or was never created).
func ReadExit(stateDir string) (*Exit, error) {
	var e Exit
	if err := readJSON(filepath.Join(stateDir, exitFile), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// state is what the monitor records once the container is created, so that a
// restarted hulld can find and verify it (start times guard against pid reuse).
type state struct {
	MonitorPID   int    `json:"monitor_pid"`
	MonitorStart uint64 `json:"monitor_start"`
	InitPID      int    `json:"init_pid"`
	InitStart    uint64 `json:"init_start"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// writeJSONAtomic writes v to path through a temporary file and a rename, so
// concurrent readers see either nothing or the whole file. There is no fsync:
// these files describe processes, which a machine crash takes with it.
func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
