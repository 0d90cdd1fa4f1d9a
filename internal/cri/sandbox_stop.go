package cri

import (
	"context"
	"fmt"
	"os"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
)

// StopPodSandbox stops every container of the pod and releases its network
// and namespaces. Stopping a missing or stopped pod succeeds (CRI asks
// StopPodSandbox to be idempotent).
func (s *Service) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.store.Sandbox(r.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopSandbox(ctx, sb.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (s *Service) stopSandbox(ctx context.Context, id string) error {
	// DEL must not race the background ADD.
	_ = s.waitNetwork(ctx, id)
	for _, c := range s.store.Containers() {
		if c.SandboxID != id {
			continue
		}
		if err := s.stopContainer(ctx, c.ID, 0); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop pod sandbox %s: %w", id, err)
		}
	}
	unlock := s.locks.lock(id)
	defer unlock()
	sb, err := s.store.Sandbox(id)
	if err != nil {
		return err
	}
	if err := s.teardownSandbox(ctx, sb); err != nil {
		return err
	}
	_, err = s.store.UpdateSandbox(id, func(x *store.Sandbox) error {
		x.State, x.NetworkReady, x.PausePID = store.SandboxNotReady, false, 0
		return nil
	})
	return err
}

// RemovePodSandbox stops the pod if needed and removes it with all its
// containers. Removing a missing pod succeeds.
func (s *Service) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.store.Sandbox(r.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeSandbox(ctx, sb.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (s *Service) removeSandbox(ctx context.Context, id string) error {
	if err := s.stopSandbox(ctx, id); err != nil {
		return err
	}
	for _, c := range s.store.Containers() {
		if c.SandboxID == id {
			if err := s.removeContainer(ctx, c.ID); err != nil {
				return fmt.Errorf("remove pod sandbox %s: %w", id, err)
			}
		}
	}
	unlock := s.locks.lock(id)
	defer unlock()
	sb, err := s.store.Sandbox(id)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(sb.Dir); err != nil {
		return fmt.Errorf("remove pod sandbox %s: %w", id, err)
	}
	if err := s.store.DeleteSandbox(id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.netOps, id)
	s.mu.Unlock()
	s.locks.forget(id)
	s.log.Info("pod sandbox removed", "id", id, "name", sb.Key())
	return nil
}
