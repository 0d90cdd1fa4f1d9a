package cgroups

import (
	"fmt"

	"hull/internal/errdefs"
)

// FreezerState reports a container cgroup's freezer state: "THAWED",
// "FREEZING" or "FROZEN" (hullrt state reports "paused" for FROZEN).
func FreezerState(m Manager) (string, error) {
	f, ok := m.(interface{ FreezerState() (string, error) })
	if !ok {
		return "", fmt.Errorf("cgroups: manager %T has no freezer: %w", m, errdefs.ErrNotImplemented)
	}
	return f.FreezerState()
}

var (
	_ Manager = (*v1Manager)(nil)
	_ Manager = (*v2Manager)(nil)
)
