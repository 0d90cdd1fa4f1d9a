// Package oci is hull's OCI runtime core: it turns a bundle (rootfs +
// config.json) into an isolated container process and drives it through the
// runtime-spec lifecycle (created → running → stopped), both for the
// runc-compatible CLI cmd/hullrt and in-process for hulld.
//
// Process model: Create re-executes the runtime binary (through a read-only
// detached mount or a sealed memfd copy, so that the container can never write
// to the host binary) as the container's init with fresh namespaces. The init
// sets up the rootfs and the process attributes, reports "ready" over a
// socketpair and then blocks opening an exec fifo in the state directory;
// Start opens the fifo's read side, which lets the init execve the user
// process. Exec re-executes the binary the same way inside the namespaces of
// a running container.
package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"hull/internal/errdefs"
)

// DefaultRoot is the state directory runc-style tools use for hullrt.
const DefaultRoot = "/run/hullrt"

// Options configures a Runtime.
type Options struct {
	// Root is the state directory (runc --root); one subdirectory per container.
	Root string
	// SystemdCgroup makes cgroupsPath use the "slice:prefix:name" form.
	SystemdCgroup bool
	// InitPath is the binary re-executed as the container init; default os.Executable().
	InitPath string
}

// Runtime creates and manages containers whose state lives under one root
// directory.
//
// A Runtime holds no per-container state in memory except the init processes
// it started itself (so that Wait can reap them); everything else is read
// from state.json on each call, so several processes (CLI invocations, hulld)
// can share one root. Operations on one container serialise on an flock of
// its state directory. A Runtime is safe for concurrent use.
type Runtime struct {
	root     string
	systemd  bool
	initPath string
	// execHelperOnly makes Exec always use the re-executed helper (tests
	// compare it with the raw exec path, exec_raw_linux.go).
	execHelperOnly bool

	mu       sync.Mutex
	children map[string]*os.Process // init processes started by this Runtime, for Wait
}

// New returns a Runtime using o.Root (created 0700 when missing).
func New(o Options) (*Runtime, error) {
	root := o.Root
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("state root %q: %w", root, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create state root %q: %w", abs, err)
	}
	init := o.InitPath
	if init == "" {
		if init, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find own executable for container init: %w", err)
		}
	}
	return &Runtime{root: abs, systemd: o.SystemdCgroup, initPath: init, children: map[string]*os.Process{}}, nil
}

// Root returns the absolute state directory.
func (r *Runtime) Root() string { return r.root }

// checkID rejects ids that are empty or could escape the state root.
func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("container id is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(id) > 1024 || !validIDChars(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q (allowed: letters, digits, _ + - .): %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.root, id) }

// validIDChars reports whether id uses only [A-Za-z0-9_+-.] (runc's rule),
// without a regexp so that the init path stays free of package-level work.
func validIDChars(id string) bool {
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '+' || c == '-' || c == '.':
		default:
			return false
		}
	}
	return true
}
