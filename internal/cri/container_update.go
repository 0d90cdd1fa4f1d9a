package cri

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/monitor"
)

// UpdateContainerResources changes a container's cgroup limits and records
// them so ContainerStatus reports the new values.
func (s *Service) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("update container resources: %w", err)
	}
	unlock := s.locks.lock(c.ID)
	defer unlock()
	if c.State == store.ContainerExited {
		return nil, fmt.Errorf("update container resources of %s: container has exited: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	lr := r.GetLinux()
	if lr == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if err := validateResources(lr); err != nil {
		return nil, fmt.Errorf("update container resources of %s: %w", c.ID, err)
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	res := &specs.LinuxResources{}
	applyResources(res, lr)
	if err := h.Update(ctx, c.ID, res); err != nil {
		return nil, fmt.Errorf("update container resources of %s: %w", c.ID, err)
	}
	_, err = s.store.UpdateContainer(c.ID, func(x *store.Container) error {
		cfg := &runtimeapi.ContainerConfig{}
		if err := unmarshal(x.Config, cfg); err != nil {
			return err
		}
		if cfg.Linux == nil {
			cfg.Linux = &runtimeapi.LinuxContainerConfig{}
		}
		cfg.Linux.Resources = lr
		x.Config = marshal(cfg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog asks the container's monitor to reopen its log file
// (after the kubelet rotated it).
func (s *Service) ReopenContainerLog(_ context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("reopen container log: %w", err)
	}
	if c.State != store.ContainerRunning {
		return nil, fmt.Errorf("reopen log of %s: container is not running: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	s.mu.Lock()
	mh := s.monitors[c.ID]
	s.mu.Unlock()
	if mh == nil {
		if mh, err = monitor.Attach(c.MonitorDir); err != nil {
			return nil, fmt.Errorf("reopen log of %s: %w", c.ID, err)
		}
	}
	if err := mh.ReopenLog(); err != nil {
		return nil, fmt.Errorf("reopen log of %s: %w", c.ID, err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
