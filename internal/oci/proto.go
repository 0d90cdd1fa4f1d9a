package oci

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Environment variables that turn a re-executed runtime binary into a
// container init or exec helper (read by MaybeInit).
const (
	envInit   = "_HULL_INIT"   // "init" or "exec"
	envFDBase = "_HULL_FDBASE" // first runtime fd after the preserved ones
)

// Fixed child fds, relative to the fd base (3 + PreserveFDs).
const (
	fdSync = 0 // socketpair to the parent
	fdExe  = 1 // the protected runtime binary (used only as the exec path)
	fdFifo = 2 // init: O_PATH exec fifo; exec: unused (/dev/null)
	fdCons = 3 // optional: connected console socket
)

// initConfig is the first message from the parent to the init or exec
// helper. The child needs nothing else from the host.
type initConfig struct {
	Mode         string         `json:"mode"`
	ID           string         `json:"id"`
	Spec         *specs.Spec    `json:"spec,omitempty"` // init only
	Process      *specs.Process `json:"process"`
	Rootfs       string         `json:"rootfs,omitempty"`
	NoPivot      bool           `json:"noPivot,omitempty"`
	NoNewKeyring bool           `json:"noNewKeyring,omitempty"`
	Join         []nsJoin       `json:"join,omitempty"`
	NewCgroupNS  bool           `json:"newCgroupNS,omitempty"`
	NewTimeNS    bool           `json:"newTimeNS,omitempty"`
	CgroupBinds  []cgroupBind   `json:"cgroupBinds,omitempty"`
	// CgroupSelfJoin: v1 directories (already created) the init moves its
	// exec thread into itself, cheaply (cgroups.JoinSelf); the parent then
	// does only the rest of the placement.
	CgroupSelfJoin []string                 `json:"cgroupSelfJoin,omitempty"`
	IDMapMounts    []int                    `json:"idmapMounts,omitempty"` // spec.Mounts indexes of the idmapped mount fds, in order
	Seccomp        []unix.SockFilter        `json:"seccomp,omitempty"`
	SeccompFlags   []specs.LinuxSeccompFlag `json:"seccompFlags,omitempty"`
	ParentHooks    bool                     `json:"parentHooks,omitempty"` // parent runs createRuntime/prestart
	Console        bool                     `json:"console,omitempty"`
	State          specs.State              `json:"state"`
}

// nsJoin is a namespace the child joins with setns.
type nsJoin struct {
	Type specs.LinuxNamespaceType `json:"type"`
	Path string                   `json:"path"`
}

// cgroupBind is one cgroup v1 hierarchy (or the v2 mount) that a "cgroup"
// mount in the container shows: Name is the directory under the mount
// destination, Dir the container's cgroup directory on the host.
type cgroupBind struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	V2   bool   `json:"v2,omitempty"`
}

// syncMsg is exchanged over the sync socket after the config.
type syncMsg struct {
	Type string `json:"type"` // "hooks", "continue", "ready", "error"
	Msg  string `json:"msg,omitempty"`
	Pid  int    `json:"pid,omitempty"`
}
