package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"hull/internal/errdefs"
)

// v2Manager manages one container's directory in a cgroup2 hierarchy. mount
// is the hierarchy's mount point (where controller enabling starts), dir the
// container's directory below it. Both are fixed at construction. Tests
// point mount at a fake tree in a temporary directory.
type v2Manager struct {
	mount string
	dir   string
}

func newV2(mount, dir string) *v2Manager { return &v2Manager{mount: mount, dir: dir} }

func (m *v2Manager) Path(controller string) string {
	if controller == "" {
		return m.dir
	}
	return ""
}

func (m *v2Manager) Paths() map[string]string { return map[string]string{"": m.dir} }

// Apply creates every missing directory from the mount down to the
// container's, enabling in each ancestor every controller its parent offers
// (cgroup.subtree_control), so the leaf gets all controllers available; the
// leaf itself enables nothing (processes live there: "no internal
// processes").
func (m *v2Manager) Apply(pid int) error {
	rel, err := filepath.Rel(m.mount, m.dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("cgroups: %s is not below the cgroup2 mount %s: %w", m.dir, m.mount, errdefs.ErrInvalidArgument)
	}
	cur := m.mount
	if rel != "." {
		for _, comp := range strings.Split(rel, "/") {
			if err := enableControllers(cur); err != nil {
				return err
			}
			cur = filepath.Join(cur, comp)
			if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cgroups: create %s: %w", cur, err)
			}
		}
	}
	if pid > 0 {
		if err := writeFile(m.dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("cgroups: move pid %d into %s: %w", pid, m.dir, err)
		}
	}
	return nil
}

// enableControllers writes "+c" for every controller of dir's
// cgroup.controllers missing from its cgroup.subtree_control. A controller
// the kernel refuses (an ancestor with processes, a threaded subtree) is
// skipped: the leaf then lacks its files, and Set reports that clearly.
func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	enabled, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(enabled) {
		have[c] = true
	}
	var want []string
	for _, c := range strings.Fields(avail) {
		if !have[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return nil
	}
	for _, w := range want {
		_ = writeFile(dir, "cgroup.subtree_control", w)
	}
	return nil
}

func (m *v2Manager) Destroy() error { return removeTree(m.dir) }

func (m *v2Manager) Pids() ([]int, error) { return walkProcs(m.dir) }

func (m *v2Manager) Freeze() error { return m.setFrozen(true) }

func (m *v2Manager) Thaw() error { return m.setFrozen(false) }

func (m *v2Manager) setFrozen(frozen bool) error {
	val, verb := "0", "thaw"
	if frozen {
		val, verb = "1", "freeze"
	}
	if err := writeFile(m.dir, "cgroup.freeze", val); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cgroups: %s has no cgroup.freeze (kernel < 5.2): %w", m.dir, errdefs.ErrFailedPrecondition)
		}
		return err
	}
	err := waitFor(freezeTimeout, func() (bool, error) {
		f, err := m.frozen()
		return f == frozen, err
	})
	if err != nil {
		if frozen {
			_ = writeFile(m.dir, "cgroup.freeze", "0")
		}
		return fmt.Errorf("cgroups: %s %s: %w", verb, m.dir, err)
	}
	return nil
}

// frozen reads the kernel's verdict, cgroup.events "frozen".
func (m *v2Manager) frozen() (bool, error) {
	kv, err := readKV(m.dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return kv["frozen"] == 1, nil
}

// FreezerState reports "FROZEN" or "THAWED" like the v1 freezer.
func (m *v2Manager) FreezerState() (string, error) {
	f, err := m.frozen()
	if err != nil {
		return "", err
	}
	if f {
		return "FROZEN", nil
	}
	want, err := readFile(m.dir, "cgroup.freeze")
	if err == nil && strings.TrimSpace(want) == "1" {
		return "FREEZING", nil
	}
	return "THAWED", nil
}

func (m *v2Manager) OOMKillCount() (uint64, error) {
	kv, err := readKV(m.dir, "memory.events")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("cgroups: memory controller is not enabled in %s: %w", m.dir, errdefs.ErrFailedPrecondition)
		}
		return 0, err
	}
	return kv["oom_kill"], nil
}
