// Package runtime abstracts hulld's runtime handlers (CRI RuntimeClass):
// each [runtimes.NAME] entry of the config becomes one Handler. Containers
// are created by hull-monitor (so that they are the monitor's children and
// outlive hulld); a Handler does everything after that: start, signal,
// state, exec, resource updates, stats and delete.
package runtime

import (
	"context"
	"io"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci/cgroups"
)

// Handler runs containers of one runtime handler. Implementations are safe
// for concurrent use on different containers.
type Handler interface {
	// Info says how hull-monitor must create containers of this handler.
	Info() Info
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	// State reports the runtime's view; ErrNotFound when it has no such container.
	State(ctx context.Context, id string) (*State, error)
	// Delete removes the runtime's state; deleting a missing container is not an error.
	Delete(ctx context.Context, id string, force bool) error
	// Exec runs p in the container and returns its exit code; it stops the
	// process when ctx ends.
	Exec(ctx context.Context, id string, p *specs.Process, io ExecIO) (int, error)
	Update(ctx context.Context, id string, r *specs.LinuxResources) error
	Stats(ctx context.Context, id string) (*Stats, error)
}

// Info names a handler and how to create its containers.
type Info struct {
	Name string
	Type string // "hullrt" or "oci"
	Path string // the runtime binary ("oci")
	Root string // the runtime's state root
}

// State is a runtime's view of one container.
type State struct {
	ID     string
	Status string // created, running, paused, stopped
	Pid    int
}

// ExecIO are the streams of an exec'd process (nil ones are discarded).
// With ConsoleSocket set the process gets a terminal instead (its Terminal
// field must be true): the runtime sends the pty master to that socket.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	ConsoleSocket  string
}

// Stats are the resource usage figures CRI reports.
type Stats struct {
	CPUUsageNanos     uint64
	MemoryUsageBytes  uint64
	MemoryWorkingSet  uint64
	MemoryRSS         uint64
	MemoryPageFaults  uint64
	MemoryMajorFaults uint64
	PidsCurrent       uint64
	// Cgroup is the full cgroup snapshot when the handler has one (hullrt),
	// for the CRI metrics; nil otherwise.
	Cgroup *cgroups.Stats
}
