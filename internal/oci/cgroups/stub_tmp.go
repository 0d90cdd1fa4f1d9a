package cgroups

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

func (m *v1Manager) Set(r *specs.LinuxResources) error {
	return fmt.Errorf("cgroups: v1 set: %w", errdefs.ErrNotImplemented)
}
func (m *v1Manager) Stats() (*Stats, error) {
	return nil, fmt.Errorf("cgroups: v1 stats: %w", errdefs.ErrNotImplemented)
}
func (m *v2Manager) Set(r *specs.LinuxResources) error {
	return fmt.Errorf("cgroups: v2 set: %w", errdefs.ErrNotImplemented)
}
func (m *v2Manager) Stats() (*Stats, error) {
	return nil, fmt.Errorf("cgroups: v2 stats: %w", errdefs.ErrNotImplemented)
}
