package cri

import (
	"context"
	"os"
	"time"

	"hull/internal/cri/store"
	"hull/internal/monitor"
)

// recover brings the records of an earlier hulld up to date: half-made
// pods and containers are removed, live monitors are watched again, and
// containers that exited while hulld was down get their recorded exit codes.
func (s *Service) recover() {
	ctx := context.Background()
	for _, c := range s.store.Containers() {
		h, _, _ := s.handler(c.RuntimeHandler)
		if !c.Complete {
			s.log.Info("removing half-made container", "id", c.ID)
			s.cleanupContainer(ctx, c, h)
			_ = s.store.DeleteContainer(c.ID)
			continue
		}
		if c.State == store.ContainerExited {
			continue
		}
		mh, err := monitor.Attach(c.MonitorDir)
		if err == nil {
			s.mu.Lock()
			s.monitors[c.ID] = mh
			s.mu.Unlock()
			if c.State == store.ContainerRunning {
				s.watch(c.ID, mh)
			}
			continue
		}
		if ex, err := monitor.ReadExit(c.MonitorDir); err == nil {
			s.log.Info("container exited while hulld was down", "id", c.ID, "code", ex.Code)
			s.recordExit(c.ID, ex)
			continue
		}
		s.log.Warn("container's monitor is gone without an exit record", "id", c.ID, "err", err)
		s.markExited(c.ID, 255, "Unknown", "monitor gone", time.Now())
	}
	for _, sb := range s.store.Sandboxes() {
		if !sb.Complete {
			s.log.Info("removing half-made pod sandbox", "id", sb.ID)
			if err := s.teardownSandbox(ctx, sb); err != nil {
				s.log.Warn("undo half-made sandbox", "id", sb.ID, "err", err)
			}
			_ = os.RemoveAll(sb.Dir)
			_ = s.store.DeleteSandbox(sb.ID)
			continue
		}
		if sb.State != store.SandboxReady {
			continue
		}
		// Ready, on a CNI network, and no address: the background ADD was
		// cut short by the crash. The pod is unusable; stopping it runs DEL.
		lost := !sb.HostNetwork && len(sb.IPs) == 0
		for k, p := range sb.Namespaces {
			if k == "pid" {
				lost = lost || !pauseAlive(sb)
			} else if _, err := os.Stat(p); err != nil {
				lost = true
			}
		}
		if lost {
			s.log.Warn("pod sandbox lost its namespaces (reboot?), marking it not ready", "id", sb.ID)
			_, _ = s.store.UpdateSandbox(sb.ID, func(x *store.Sandbox) error { x.State = store.SandboxNotReady; return nil })
		}
	}
}
