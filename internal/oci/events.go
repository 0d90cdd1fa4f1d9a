package oci

import (
	"context"
	"fmt"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci/cgroups"
)

// Event is one line of `events` output, in runc's shape: a "stats" event
// carries the cgroup statistics, an "oom" event has no data.
type Event struct {
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Data *cgroups.Stats `json:"data,omitempty"`
}

// Events calls emit with a stats event every interval and an oom event for
// each OOM kill in the container's memory cgroup, until the container
// stops, ctx ends or emit fails. A container without a memory controller
// to watch still gets its stats events.
func (r *Runtime) Events(ctx context.Context, id string, interval time.Duration, emit func(Event) error) error {
	if interval <= 0 {
		return fmt.Errorf("events: interval must be positive, got %s", interval)
	}
	s, err := r.loadSaved(id)
	if err != nil {
		return err
	}
	if r.status(s) == specs.StateStopped {
		return fmt.Errorf("container %q is stopped", id)
	}
	m, err := r.manager(s)
	if err != nil {
		return err
	}
	var oom <-chan uint64
	if n, err := cgroups.NotifyOOM(m); err == nil {
		defer n.Close()
		oom = n.C()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-oom:
			if !ok {
				oom = nil // the cgroup is gone; the next tick ends the stream
				continue
			}
			if err := emit(Event{Type: "oom", ID: id}); err != nil {
				return err
			}
		case <-tick.C:
			if r.status(s) == specs.StateStopped {
				return nil
			}
			st, err := m.Stats()
			if err != nil {
				return fmt.Errorf("events: stats of %q: %w", id, err)
			}
			if err := emit(Event{Type: "stats", ID: id, Data: st}); err != nil {
				return err
			}
		}
	}
}
