package oci

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var (
	capOnce  sync.Once
	capNames map[string]int
)

// capByName maps "CAP_SYS_ADMIN" to its number.
func capByName(name string) (int, bool) {
	capOnce.Do(func() {
		capNames = map[string]int{}
		for _, c := range capability.ListKnown() {
			capNames["CAP_"+strings.ToUpper(c.String())] = int(c)
		}
	})
	n, ok := capNames[name]
	return n, ok
}

func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	known := capability.ListKnown()
	return int(known[len(known)-1])
}

// capMask turns names (validated earlier) into a 64-bit set, skipping caps
// this kernel does not know.
func capMask(names []string, last int) uint64 {
	var m uint64
	for _, n := range names {
		if c, ok := capByName(n); ok && c <= last {
			m |= 1 << uint(c)
		}
	}
	return m
}

// boundingDrops lists the capabilities this kernel knows that bounding
// does not keep.
func boundingDrops(bounding []string) []uintptr {
	last := lastCap()
	keep := capMask(bounding, last)
	var drops []uintptr
	for c := 0; c <= last; c++ {
		if keep&(1<<uint(c)) == 0 {
			drops = append(drops, uintptr(c))
		}
	}
	return drops
}

func dropBounding(bounding []string) error {
	for _, c := range boundingDrops(bounding) {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// capsetArgs are capset(2)'s arguments for c's effective, permitted and
// inheritable sets. A capability the runtime itself lacks
// (CAP_SYS_RESOURCE on some hosts) cannot be granted; it is left out
// instead of failing.
func capsetArgs(c *specs.LinuxCapabilities) (unix.CapUserHeader, [2]unix.CapUserData) {
	last := lastCap()
	eff, perm, inh := capMask(c.Effective, last), capMask(c.Permitted, last), capMask(c.Inheritable, last)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&hdr, &cur[0]); err == nil {
		have := uint64(cur[0].Permitted) | uint64(cur[1].Permitted)<<32
		eff, perm = eff&have, perm&have
		inh &= have | uint64(cur[0].Inheritable) | uint64(cur[1].Inheritable)<<32
	}
	hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // capget may rewrite it
	return hdr, [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
}

// ambientCaps are the numbers of c's ambient capabilities this kernel
// knows. The kernel refuses those missing from the permitted or
// inheritable set; runc ignores those too.
func ambientCaps(c *specs.LinuxCapabilities) []uintptr {
	last := lastCap()
	var out []uintptr
	for _, n := range c.Ambient {
		if cp, ok := capByName(n); ok && cp <= last {
			out = append(out, uintptr(cp))
		}
	}
	return out
}

// setCaps sets the effective, permitted and inheritable sets with capset
// on this thread, then the ambient set.
func setCaps(c *specs.LinuxCapabilities) error {
	hdr, data := capsetArgs(c)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return nil // kernel without ambient capabilities
	}
	for _, cp := range ambientCaps(c) {
		unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, cp, 0, 0)
	}
	return nil
}

// CapabilityNames lists every capability this build knows, as CAP_ names.
func CapabilityNames() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}
