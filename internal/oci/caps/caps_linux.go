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
// c lists: bounding first, then effective, permitted and inheritable, then
// ambient (raising an ambient capability needs it permitted and
// inheritable). Dropping from the bounding set needs CAP_SETPCAP: if the
// thread holds it only in its permitted set (a setuid with keep-caps cleared
// the effective set), Apply raises it for the drop; if it holds it not at
// all and something must be dropped, Apply fails rather than leave the
// bounding set wider than asked. A nil c leaves the thread alone.
//
// Unknown names are ErrInvalidArgument; capabilities the kernel lacks are
// skipped, as runc does, so a spec written for a newer kernel still runs.
// Capabilities the thread cannot hold because it does not have them itself
// (a runtime started without CAP_SYS_RESOURCE asked for a privileged
// container) are skipped as well: no set can grow beyond what the parent
// has, and failing the container over it would make privileged containers
// impossible in such sandboxes. Missing reports them.
func Apply(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("caps: highest capability of this kernel: %w", err)
	}
	p, err := load()
	if err != nil {
		return err
	}
	all := sets(c)
	want := make([][]capability.Cap, len(all))
	for i, set := range all {
		caps, err := resolve(set.name, set.names, last)
		if err != nil {
			return err
		}
		want[i] = clamp(p, set.which, caps)
	}
	if err := dropBoundingExcept(want[0], last); err != nil {
		return err
	}
	// Reload: raising CAP_SETPCAP for the drop changed the effective set.
	if p, err = load(); err != nil {
		return err
	}
	p.Clear(capability.CAPS | capability.AMBS)
	for i, set := range all[1:] {
		p.Set(set.which, want[i+1]...)
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
// thread's bounding set and leaves the other sets alone (except that it may
// raise CAP_SETPCAP from permitted to effective to do so, as Apply does).
// An init that changes user between the two steps may call it before
// setuid and Apply after.
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
	return dropBoundingExcept(keep, last)
}

// load reads the calling thread's capability state.
func load() (capability.Capabilities, error) {
	p, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("caps: capability state of this thread: %w", err)
	}
	if err := p.Load(); err != nil {
		return nil, fmt.Errorf("caps: load capability state: %w", err)
	}
	return p, nil
}

// dropBoundingExcept drops from the bounding set every capability up to last
// that is in it and not in keep.
func dropBoundingExcept(keep []capability.Cap, last capability.Cap) error {
	var drop []capability.Cap
	for i := capability.Cap(0); i <= last; i++ {
		if slices.Contains(keep, i) {
			continue
		}
		if in, err := capability.GetBound(i); err == nil && in {
			drop = append(drop, i)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	p, err := load()
	if err != nil {
		return err
	}
	if !p.Get(capability.EFFECTIVE, capability.CAP_SETPCAP) {
		if !p.Get(capability.PERMITTED, capability.CAP_SETPCAP) {
			return fmt.Errorf("caps: dropping %d bounding capabilities needs CAP_SETPCAP, which this thread lacks: %w",
				len(drop), errdefs.ErrPermissionDenied)
		}
		p.Set(capability.EFFECTIVE, capability.CAP_SETPCAP)
		if err := p.Apply(capability.CAPS); err != nil {
			return fmt.Errorf("caps: raise CAP_SETPCAP to drop bounding capabilities: %w", err)
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

// clamp removes from want what the thread cannot have in set which: the
// permitted, effective and ambient sets cannot grow beyond the current
// permitted set, the bounding set cannot grow at all, and the inheritable
// set stays within the current bounding set.
func clamp(p capability.Capabilities, which capability.CapType, want []capability.Cap) []capability.Cap {
	limit := capability.PERMITTED
	if which == capability.BOUNDING || which == capability.INHERITABLE {
		limit = capability.BOUNDING
	}
	out := want[:0:0]
	for _, c := range want {
		if p.Get(limit, c) {
			out = append(out, c)
		}
	}
	return out
}

// Missing lists the capabilities of c that Apply would skip because the
// calling thread does not hold them (so the runtime can warn), in the order
// of the sets bounding, effective, permitted, inheritable, ambient, without
// repeats.
func Missing(c *specs.LinuxCapabilities) ([]string, error) {
	if c == nil {
		return nil, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("caps: highest capability of this kernel: %w", err)
	}
	p, err := load()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, set := range sets(c) {
		caps, err := resolve(set.name, set.names, last)
		if err != nil {
			return nil, err
		}
		kept := clamp(p, set.which, caps)
		for _, x := range caps {
			name := "CAP_" + strings.ToUpper(x.String())
			if !slices.Contains(kept, x) && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out, nil
}
