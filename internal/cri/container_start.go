package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/monitor"
)

// StartContainer starts a created container and begins watching for its exit.
func (s *Service) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	unlock := s.locks.lock(c.ID)
	defer unlock()
	if c, err = s.store.Container(c.ID); err != nil {
		return nil, err
	}
	if c.State == store.ContainerCreated || c.Reason == "CreateError" {
		// The container's own create error says more than its state.
		if err := s.waitSpawn(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("start container %s: %w", c.ID, err)
		}
	}
	if c, err = s.store.Container(c.ID); err != nil {
		return nil, err
	}
	if c.State != store.ContainerCreated || !c.Complete {
		return nil, fmt.Errorf("start container %s: it is %s, not created: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	// The container starts with its pod's network in place.
	if err := s.waitNetwork(ctx, c.SandboxID); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.ID, err)
	}
	s.mu.Lock()
	mh := s.monitors[c.ID]
	s.mu.Unlock()
	if mh == nil {
		if mh, err = monitor.Attach(c.MonitorDir); err != nil {
			return nil, fmt.Errorf("start container %s: %w", c.ID, err)
		}
	}
	if err := h.Start(ctx, c.ID); err != nil {
		s.markExited(c.ID, -1, "StartError", err.Error(), time.Now())
		return nil, fmt.Errorf("start container %s: %w", c.ID, err)
	}
	if _, err := s.store.UpdateContainer(c.ID, func(x *store.Container) error {
		x.State, x.StartedAt = store.ContainerRunning, nowNanos()
		return nil
	}); err != nil {
		return nil, err
	}
	s.watch(c.ID, mh)
	s.emit(c.ID, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtimeapi.StartContainerResponse{}, nil
}

// exitWatch is a running container's exit watcher; done closes once the
// exit is recorded.
type exitWatch struct {
	done chan struct{}
}

// watch records the container's exit when its monitor reports it.
func (s *Service) watch(id string, mh *monitor.Handle) *exitWatch {
	s.mu.Lock()
	if w, ok := s.watches[id]; ok {
		s.mu.Unlock()
		return w
	}
	w := &exitWatch{done: make(chan struct{})}
	s.watches[id] = w
	s.monitors[id] = mh
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ex, err := mh.Wait(s.ctx)
		if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
			return // hulld is stopping; the next hulld picks the exit up
		}
		if err != nil {
			s.log.Warn("container exit not recorded by its monitor", "id", id, "err", err)
			s.markExited(id, 255, "Unknown", err.Error(), time.Now())
		} else {
			s.recordExit(id, ex)
		}
		s.mu.Lock()
		delete(s.monitors, id)
		s.mu.Unlock()
		close(w.done)
	}()
	return w
}

// recordExit stores an exit reported by the monitor, with OOMKilled when
// the container's memory cgroup saw an OOM kill.
func (s *Service) recordExit(id string, ex *monitor.Exit) {
	reason := "Completed"
	if ex.Code != 0 {
		reason = "Error"
	}
	if c, err := s.store.Container(id); err == nil && s.oomKilled(c) {
		reason = "OOMKilled"
	}
	s.markExited(id, int32(ex.Code), reason, "", ex.At)
}

func (s *Service) markExited(id string, code int32, reason, msg string, at time.Time) {
	if _, err := s.store.UpdateContainer(id, func(x *store.Container) error {
		if x.State == store.ContainerExited {
			return errAlreadyExited
		}
		x.State, x.ExitCode, x.Reason, x.Message, x.FinishedAt = store.ContainerExited, code, reason, msg, at.UnixNano()
		if x.StartedAt == 0 {
			x.StartedAt = x.FinishedAt
		}
		return nil
	}); err != nil {
		return
	}
	s.log.Info("container exited", "id", id, "code", code, "reason", reason)
	s.emit(id, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
}

var errAlreadyExited = errors.New("already exited")

// oomKilled reads the container's cgroup v1 memory.oom_control (oom_kill
// counter) or v2 memory.events, if the cgroup still exists.
func (s *Service) oomKilled(c *store.Container) bool {
	sb, err := s.store.Sandbox(c.SandboxID)
	if err != nil {
		return false
	}
	rel := s.cgroupsPath(sb, c.ID)
	if strings.Contains(rel, ":") {
		return false
	}
	for _, f := range []struct{ path, key string }{
		{filepath.Join("/sys/fs/cgroup/memory", rel, "memory.oom_control"), "oom_kill"},
		{filepath.Join("/sys/fs/cgroup", rel, "memory.events"), "oom_kill"},
	} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, " ")
			if ok && k == f.key && strings.TrimSpace(v) != "0" {
				return true
			}
		}
	}
	return false
}
