package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"hull/internal/errdefs"
)

// freezeTimeout bounds how long Freeze and Thaw wait for the kernel.
const freezeTimeout = 10 * time.Second

// v1Manager manages one container's directory in every mounted cgroup v1
// hierarchy and, on hybrid hosts, its directory in the cgroup2 hierarchy
// (unified, which gets the pid too and any controller bound only there,
// such as hugetlb on this project's machines). Its fields are set once by
// New or Load and never change.
type v1Manager struct {
	paths   map[string]string // controller → directory
	unified *v2Manager        // hybrid only
}

func (m *v1Manager) controllers() []string {
	cs := make([]string, 0, len(m.paths))
	for c := range m.paths {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

func (m *v1Manager) Path(controller string) string {
	if controller == "" {
		if m.unified == nil {
			return ""
		}
		return m.unified.dir
	}
	return m.paths[controller]
}

func (m *v1Manager) Paths() map[string]string {
	out := make(map[string]string, len(m.paths)+1)
	for c, p := range m.paths {
		out[c] = p
	}
	if m.unified != nil {
		out[""] = m.unified.dir
	}
	return out
}

func (m *v1Manager) Apply(pid int) error {
	for _, c := range m.controllers() {
		dir := m.paths[c]
		var err error
		if c == "cpuset" {
			err = initCpuset(dir)
		} else {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return fmt.Errorf("cgroups: create %s cgroup: %w", c, err)
		}
		if pid > 0 {
			if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
				return fmt.Errorf("cgroups: move pid %d into %s cgroup: %w", pid, c, err)
			}
		}
	}
	if m.unified != nil {
		return m.unified.Apply(pid)
	}
	return nil
}

// initCpuset creates dir and any missing ancestor, copying cpuset.cpus and
// cpuset.mems down from the parent: a v1 cpuset cgroup starts with both
// empty and refuses tasks until they are set.
func initCpuset(dir string) error {
	parent := filepath.Dir(dir)
	if parent == dir {
		return nil
	}
	if _, err := os.Stat(filepath.Join(parent, "cpuset.cpus")); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := initCpuset(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		// Walk up past ancestors that are empty too (created by someone
		// who did not initialise them).
		var val string
		for p := parent; ; p = filepath.Dir(p) {
			v, err := readFile(p, f)
			if err != nil {
				return err
			}
			if val = strings.TrimSpace(v); val != "" || filepath.Dir(p) == p {
				break
			}
		}
		if err := writeFile(dir, f, val); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1Manager) Destroy() error {
	var errs []error
	seen := map[string]bool{}
	for _, c := range m.controllers() {
		dir := m.paths[c]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := removeTree(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if m.unified != nil {
		if err := m.unified.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *v1Manager) freezerDir() (string, error) {
	dir := m.paths["freezer"]
	if dir == "" {
		return "", fmt.Errorf("cgroups: freezer controller is not mounted: %w", errdefs.ErrFailedPrecondition)
	}
	return dir, nil
}

func (m *v1Manager) Freeze() error {
	dir, err := m.freezerDir()
	if err != nil {
		return err
	}
	n := 0
	err = waitFor(freezeTimeout, func() (bool, error) {
		// Re-issue FROZEN now and then: tasks forked while FREEZING can
		// leave the cgroup stuck there.
		if n%10 == 0 {
			if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
				return false, err
			}
		}
		n++
		s, err := readFile(dir, "freezer.state")
		return strings.TrimSpace(s) == "FROZEN", err
	})
	if err != nil {
		// Never leave a half-frozen container behind.
		_ = writeFile(dir, "freezer.state", "THAWED")
		return fmt.Errorf("cgroups: freeze %s: %w", dir, err)
	}
	return nil
}

func (m *v1Manager) Thaw() error {
	dir, err := m.freezerDir()
	if err != nil {
		return err
	}
	if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
		return err
	}
	err = waitFor(freezeTimeout, func() (bool, error) {
		s, err := readFile(dir, "freezer.state")
		return strings.TrimSpace(s) == "THAWED", err
	})
	if err != nil {
		return fmt.Errorf("cgroups: thaw %s: %w", dir, err)
	}
	return nil
}

// FreezerState reports "FROZEN", "FREEZING" or "THAWED" for hullrt state.
func (m *v1Manager) FreezerState() (string, error) {
	dir, err := m.freezerDir()
	if err != nil {
		return "", err
	}
	s, err := readFile(dir, "freezer.state")
	return strings.TrimSpace(s), err
}

func (m *v1Manager) Pids() ([]int, error) {
	for _, c := range []string{"freezer", "pids", "memory", "devices", "cpu"} {
		if dir := m.paths[c]; dir != "" {
			return walkProcs(dir)
		}
	}
	if m.unified != nil {
		return m.unified.Pids()
	}
	for _, c := range m.controllers() {
		return walkProcs(m.paths[c])
	}
	return nil, fmt.Errorf("cgroups: no hierarchy to list pids from: %w", errdefs.ErrFailedPrecondition)
}

func (m *v1Manager) OOMKillCount() (uint64, error) {
	dir := m.paths["memory"]
	if dir == "" {
		return 0, fmt.Errorf("cgroups: memory controller is not mounted: %w", errdefs.ErrFailedPrecondition)
	}
	kv, err := readKV(dir, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	n, ok := kv["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("cgroups: %s/memory.oom_control has no oom_kill counter (kernel < 4.13): %w", dir, errdefs.ErrNotImplemented)
	}
	return n, nil
}
