// Package caps applies an OCI process's capability sets
// (specs.LinuxCapabilities) to the current thread, for the container init
// and exec helpers.
//
// Capabilities are per thread in Linux. Apply changes the calling OS thread
// only, so callers hold runtime.LockOSThread and execve from that same
// thread, as a container init does anyway.
package caps

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// byName maps "CAP_CHOWN" spellings to capability numbers, for every
// capability the library knows (the kernel may know fewer).
var byName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

// Known returns every capability name hull recognizes, in the spec's
// "CAP_CHOWN" spelling, ordered by number (for `hullrt features`).
func Known() []string {
	known := capability.ListKnown()
	out := make([]string, 0, len(known))
	for _, c := range known {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// Validate checks that every name in every set is a known capability, so a
// parent can reject a bad spec before it starts anything.
func Validate(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	for _, set := range sets(c) {
		if _, err := resolve(set.name, set.names, capability.Cap(1<<30)); err != nil {
			return err
		}
	}
	return nil
}

// Apply sets the five capability sets of the calling thread to exactly what
// c lists: bounding first (dropping needs CAP_SETPCAP, which the next step
// may remove), then effective, permitted and inheritable, then ambient
// (raising an ambient capability needs it permitted and inheritable). A nil
// c leaves the thread alone. Unknown names are ErrInvalidArgument;
// capabilities the kernel lacks are skipped, as runc does, so a spec written
// for a newer kernel still runs.
func Apply(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("caps: highest capability of this kernel: %w", err)
	}
	p, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("caps: capability state of this thread: %w", err)
	}
	if err := p.Load(); err != nil {
		return fmt.Errorf("caps: load capability state: %w", err)
	}
	p.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	for _, set := range sets(c) {
		caps, err := resolve(set.name, set.names, last)
		if err != nil {
			return err
		}
		p.Set(set.which, caps...)
	}
	if err := p.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("caps: apply bounding set %v: %w", c.Bounding, err)
	}
	if err := p.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("caps: apply effective/permitted/inheritable sets: %w", err)
	}
	if err := p.Apply(capability.AMBS); err != nil {
		return fmt.Errorf("caps: apply ambient set %v (each must also be permitted and inheritable): %w",
			c.Ambient, err)
	}
	return nil
}

// ApplyBounding drops every capability not in c.Bounding from the calling
// thread's bounding set and leaves the other sets alone. An init that
// changes user between the two steps calls it before setuid (while it still
// holds CAP_SETPCAP) and Apply after.
func ApplyBounding(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("caps: highest capability of this kernel: %w", err)
	}
	keep, err := resolve("bounding", c.Bounding, last)
	if err != nil {
		return err
	}
	var drop []capability.Cap
	for i := capability.Cap(0); i <= last; i++ {
		if !slices.Contains(keep, i) {
			drop = append(drop, i)
		}
	}
	if err := capability.DropBound(drop...); err != nil {
		return fmt.Errorf("caps: drop bounding capabilities: %w", err)
	}
	return nil
}

type namedSet struct {
	name  string
	which capability.CapType
	names []string
}

func sets(c *specs.LinuxCapabilities) []namedSet {
	return []namedSet{
		{"bounding", capability.BOUNDING, c.Bounding},
		{"effective", capability.EFFECTIVE, c.Effective},
		{"permitted", capability.PERMITTED, c.Permitted},
		{"inheritable", capability.INHERITABLE, c.Inheritable},
		{"ambient", capability.AMBIENT, c.Ambient},
	}
}

// resolve converts names to numbers, skipping those above last (the
// kernel's highest capability).
func resolve(set string, names []string, last capability.Cap) ([]capability.Cap, error) {
	out := make([]capability.Cap, 0, len(names))
	for _, n := range names {
		c, ok := byName[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("caps: unknown capability %q in %s set: %w", n, set, errdefs.ErrInvalidArgument)
		}
		if c > last {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}
