package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/runtime"
)

// StopContainer sends the image's stop signal, waits up to the timeout,
// then SIGKILLs. Stopping a missing or exited container succeeds.
func (s *Service) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, c.ID, r.GetTimeout()); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func parseSignal(name string) syscall.Signal {
	if name == "" {
		return syscall.SIGTERM
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	n := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(name), "SIG"))
	if sig := unix.SignalNum("SIG" + n); sig != 0 {
		return sig
	}
	return syscall.SIGTERM
}

func (s *Service) stopContainer(ctx context.Context, id string, timeout int64) error {
	unlock := s.locks.lock(id)
	defer unlock()
	c, err := s.store.Container(id)
	if err != nil {
		return err
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return err
	}
	switch c.State {
	case store.ContainerExited:
		return nil
	case store.ContainerCreated:
		// Never started: kill the waiting init; the record says exited.
		_ = s.waitSpawn(ctx, id)
		_ = h.Kill(ctx, id, syscall.SIGKILL, false)
		_ = h.Delete(ctx, id, true)
		s.markExited(id, 137, "Error", "stopped before it was started", time.Now())
		return nil
	}
	s.mu.Lock()
	w := s.watches[id]
	s.mu.Unlock()
	if w == nil {
		return fmt.Errorf("stop container %s: no exit watcher: %w", id, errdefs.ErrFailedPrecondition)
	}
	// A container that shares the pod's pid namespace has no init of its
	// own to take its children down: signal all its processes.
	all := c.Pid != 0 && sharesPidNS(c)
	if timeout > 0 {
		if err := h.Kill(ctx, id, parseSignal(c.StopSignal), all); err == nil {
			select {
			case <-w.done:
				return nil
			case <-time.After(time.Duration(timeout) * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := h.Kill(ctx, id, syscall.SIGKILL, true); err != nil {
		s.log.Debug("SIGKILL", "id", id, "err", err)
	}
	select {
	case <-w.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("stop container %s: still running 30s after SIGKILL: %w", id, errdefs.ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func sharesPidNS(c *store.Container) bool {
	cfg := &runtimeapi.ContainerConfig{}
	_ = unmarshal(c.Config, cfg)
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_POD
}

// RemoveContainer stops the container if needed and removes it with its
// rootfs and runtime state (its log file stays: the kubelet owns it).
// Removing a missing container succeeds.
func (s *Service) RemoveContainer(ctx context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Service) removeContainer(ctx context.Context, id string) error {
	if err := s.stopContainer(ctx, id, 0); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	c, err := s.store.Container(id)
	if err != nil {
		return err
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return err
	}
	s.cleanupContainer(ctx, c, h)
	if err := s.store.DeleteContainer(id); err != nil {
		return err
	}
	s.forgetFsUsage(id)
	s.mu.Lock()
	delete(s.watches, id)
	delete(s.monitors, id)
	delete(s.spawns, id)
	s.mu.Unlock()
	s.locks.forget(id)
	s.emit(id, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	return nil
}

// cleanupContainer undoes everything CreateContainer made; it is
// idempotent and best effort (each failure is logged).
func (s *Service) cleanupContainer(ctx context.Context, c *store.Container, h runtime.Handler) {
	if h != nil {
		if err := h.Delete(ctx, c.ID, true); err != nil {
			s.log.Warn("runtime delete", "id", c.ID, "err", err)
		}
	}
	if c.MonitorPID > 0 {
		// A monitor whose create failed or whose container is gone exits by
		// itself; give it a moment, never kill a live container's monitor
		// here (the runtime delete above already killed the container).
		for i := 0; i < 50 && pidAlive(c.MonitorPID); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	rootfs := filepath.Join(c.Bundle, "rootfs")
	for {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			break
		}
	}
	s.unmountVolumes(c.ID)
	if err := s.opts.Images.RemoveRootfs(c.ID); err != nil {
		s.log.Warn("remove rootfs", "id", c.ID, "err", err)
	}
	if err := os.RemoveAll(s.containerDir(c.ID)); err != nil {
		s.log.Warn("remove container dir", "id", c.ID, "err", err)
	}
}

func pidAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !procZombie(pid)
}
