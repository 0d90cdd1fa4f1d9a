package cgroups

import (
	"fmt"
	"os"
)

// Self-placement on cgroup v1. Moving another process (or a whole thread
// group) takes the kernel's global threadgroup rwsem for writing, which
// waits for an RCU grace period (5–15 ms here) while holding cgroup_mutex.
// A thread that writes "0" to a v1 hierarchy's "tasks" file moves only
// itself and skips that lock, so it costs microseconds. A container init
// that does this from the very thread that later calls execve ends up, with
// the user process, in the container's v1 cgroups; its other (Go runtime)
// threads stay behind and vanish at execve.

// SelfJoinDirs returns the v1 directories (one per distinct directory) a
// process must join with JoinSelf to be placed like Apply would place it,
// when m manages v1 hierarchies; nil otherwise (cgroup2 has no per-thread
// move between domain cgroups). Apply(0) must have created them.
func SelfJoinDirs(m Manager) []string {
	v1, ok := m.(*v1Manager)
	if !ok {
		return nil
	}
	var dirs []string
	seen := map[string]bool{}
	for _, c := range v1.controllers() {
		if d := v1.paths[c]; !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// JoinSelf moves the calling thread (only it) into every one of dirs, as
// returned by SelfJoinDirs. The caller must be locked to its OS thread.
func JoinSelf(dirs []string) error {
	for _, d := range dirs {
		f, err := os.OpenFile(d+"/tasks", os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString("0")
			f.Close()
		}
		if err != nil {
			return fmt.Errorf("cgroups: join %s: %w", d, err)
		}
	}
	return nil
}

// ApplyRest does what Apply(pid) does beyond the v1 hierarchies that
// SelfJoinDirs lists: on a hybrid host, moving pid into the cgroup2
// (unified) directory. For any other manager it is Apply(pid).
func ApplyRest(m Manager, pid int) error {
	v1, ok := m.(*v1Manager)
	if !ok {
		return m.Apply(pid)
	}
	if v1.unified != nil {
		return v1.unified.Apply(pid)
	}
	return nil
}

// MakeUnifiedDir and MakeV1Dirs are Apply(0) of a manager that has
// SelfJoinDirs in two halves that may run concurrently: the cgroup2
// directory, which a CLONE_INTO_CGROUP spawn needs first, and the v1
// ones, which the init needs only once it runs. For other managers
// MakeUnifiedDir is Apply(0) and MakeV1Dirs does nothing.
func MakeUnifiedDir(m Manager) error {
	v1, ok := m.(*v1Manager)
	if !ok {
		return m.Apply(0)
	}
	if v1.unified != nil {
		return v1.unified.Apply(0)
	}
	return nil
}

// MakeV1Dirs: see MakeUnifiedDir.
func MakeV1Dirs(m Manager) error {
	v1, ok := m.(*v1Manager)
	if !ok {
		return nil
	}
	return (&v1Manager{paths: v1.paths}).Apply(0)
}
