// Package cgroups is hull's cgroup manager: one small Manager interface with a
// cgroup v1 implementation (which, on hybrid hosts, also places the process in
// the cgroup2 hierarchy mounted at /sys/fs/cgroup/unified) and a cgroup v2
// implementation. Both write the kernel's files directly (cgroupfs); there is
// no systemd/dbus driver: a systemd-style cgroupsPath ("slice:prefix:name") is
// mapped to the cgroupfs directory systemd itself would use.
//
// Typical use by a runtime:
//
//	m, err := cgroups.New(spec.Linux.CgroupsPath, id, cgroups.Options{Systemd: systemdFlag})
//	m.Apply(pid)                 // create the directories, move pid in
//	m.Set(spec.Linux.Resources)  // write the limits
//	state.CgroupPaths = m.Paths() // so a later process can cgroups.Load them
//	...
//	m.Destroy()                  // after every process has exited
//
// Host layouts. Legacy and Hybrid hosts get the v1 manager: one directory per
// mounted v1 hierarchy (cpuset directories initialised from their parent),
// plus, on Hybrid, the same path in the cgroup2 mount, which receives the pid
// too and carries any controller bound only there (hugetlb on hull's
// development machines) and the spec's unified map. Unified hosts get the v2
// manager, which enables every available controller in cgroup.subtree_control
// of each ancestor.
//
// What each version cannot express: v1 blkio weights need the CFQ or BFQ
// scheduler (an error otherwise, as with runc); kernel memory limits are
// written where the file exists (kernels ≥ 5.16 ignore them). On v2,
// swappiness, kernel memory, disableOOMKiller and net_cls/net_prio are
// ignored (as runc does), realtime CPU values are an error, memory.high is
// reachable only through the unified map. Device rules are enforced on both:
// devices.allow/deny on v1, an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
// assembled by hull on v2. Set appends runc's default allow-list
// (DefaultAllowedDevices) to every non-empty rule list.
package cgroups

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// Manager drives the cgroup(s) of one container.
//
// A Manager is created by New or Load and holds only the resolved directory
// names, which never change afterwards; every method reads or writes the
// kernel's files directly, so a Manager needs no locking and may be used from
// several goroutines (concurrent Set calls race the way two writers of the same
// files would). Managers are cheap: a separate process (hullrt pause, hulld
// stats) builds its own with Load from the paths saved at create time.
type Manager interface {
	// Apply creates the container's directory in every relevant hierarchy
	// and moves pid into it. pid <= 0 only creates the directories.
	Apply(pid int) error
	// Set writes runtime-spec resources. nil fields are left unchanged.
	Set(r *specs.LinuxResources) error
	// Freeze freezes every process of the cgroup and waits until the
	// kernel reports the cgroup frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Stats reads usage counters (the shapes `runc events --stats` prints).
	Stats() (*Stats, error)
	// Pids lists every process in the cgroup and its descendants.
	Pids() ([]int, error)
	// OOMKillCount returns how many processes the OOM killer killed in
	// the cgroup (v2 memory.events oom_kill, v1 memory.oom_control oom_kill).
	OOMKillCount() (uint64, error)
	// Destroy removes the directories (and any sub-cgroups the container
	// created). The processes must be gone; a missing directory is not an
	// error.
	Destroy() error
	// Path returns the absolute directory for a v1 controller ("memory",
	// "cpu", ...), or for "" the cgroup2 (unified) directory. It returns
	// "" when that hierarchy is not used.
	Path(controller string) string
	// Paths returns every directory keyed as Path takes them, for Load.
	Paths() map[string]string
}

// Options tunes how New interprets cgroupsPath.
type Options struct {
	// Systemd says cgroupsPath has the systemd form "slice:prefix:name"
	// (runc --systemd-cgroup). There is no systemd on every host, so hull
	// never talks to it over dbus: it computes the cgroupfs directory that
	// systemd would create for that unit — the slice expanded along its
	// dashes ("kubepods-burstable.slice" → "/kubepods.slice/
	// kubepods-burstable.slice"), then "prefix-name.scope" (or name itself
	// when it ends in ".slice") — and manages it as cgroupfs.
	Systemd bool
}

// Layout is how the host mounts its cgroup hierarchies.
type Layout int

// Host layouts.
const (
	// Legacy: cgroup v1 hierarchies only.
	Legacy Layout = iota + 1
	// Hybrid: v1 controllers plus a cgroup2 mount (usually
	// /sys/fs/cgroup/unified) holding at most a few controllers.
	Hybrid
	// Unified: cgroup2 only, at /sys/fs/cgroup.
	Unified
)

func (l Layout) String() string {
	switch l {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Mode reports the host's cgroup layout. It returns 0 when no cgroup
// hierarchy is mounted at all.
func Mode() Layout {
	s, err := hostSystem()
	if err != nil {
		return 0
	}
	return s.layout
}

// New resolves cgroupsPath for containerID and returns the Manager for the
// host's layout. Nothing is created until Apply.
//
// cgroupsPath follows the runtime spec: an absolute path is relative to the
// root of each hierarchy; a relative path is relative to the cgroup of the
// calling process (read from /proc/self/cgroup, per controller); an empty
// path means "/hull/<containerID>". With Options.Systemd, see Options.
// Paths with ".." components, NUL bytes, or an invalid systemd triple are
// rejected with errdefs.ErrInvalidArgument.
func New(cgroupsPath, containerID string, opts Options) (Manager, error) {
	s, err := hostSystem()
	if err != nil {
		return nil, err
	}
	return s.newManager(cgroupsPath, containerID, opts)
}

// Load rebuilds a Manager from the directories a previous Manager's Paths
// returned (saved in the container's state). Every directory must be
// absolute and clean.
func Load(paths map[string]string) (Manager, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("cgroups: load: no paths: %w", errdefs.ErrInvalidArgument)
	}
	for k, p := range paths {
		if err := checkAbsDir(p); err != nil {
			return nil, fmt.Errorf("cgroups: load %q: %w", k, err)
		}
	}
	s, err := hostSystem()
	if err != nil {
		return nil, err
	}
	return s.load(paths)
}
