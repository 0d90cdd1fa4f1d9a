package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/monitor"
	"hull/internal/runtime"
)

func (s *Service) containerDir(id string) string {
	return filepath.Join(s.opts.State, "containers", id)
}

// CreateContainer creates a container in a ready pod: its rootfs from the
// image, its OCI spec from the image config merged with the request, and a
// hull-monitor that runs the runtime's create and owns the container's
// stdio. Everything is undone when a step fails.
func (s *Service) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (_ *runtimeapi.CreateContainerResponse, retErr error) {
	cfg := r.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.Name == "" {
		return nil, fmt.Errorf("create container: metadata.name is required: %w", errdefs.ErrInvalidArgument)
	}
	ref := cfg.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("create container %q: image is required: %w", md.Name, errdefs.ErrInvalidArgument)
	}
	if err := s.resolveImageVolumes(cfg); err != nil {
		return nil, fmt.Errorf("create container %q: %w", md.Name, err)
	}
	sb, err := s.store.Sandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", md.Name, err)
	}
	if sb.State != store.SandboxReady || !sb.Complete {
		return nil, fmt.Errorf("create container %q: pod sandbox %s is not ready: %w", md.Name, sb.ID, errdefs.ErrFailedPrecondition)
	}
	sbCfg := &runtimeapi.PodSandboxConfig{}
	_ = unmarshal(sb.Config, sbCfg)
	h, handler, err := s.handler(sb.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	for _, m := range cfg.GetMounts() {
		if (len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0) && !s.usernsSupport(h).idmap {
			return nil, fmt.Errorf("create container %q: mount %q: runtime handler %q does not support idmapped mounts: %w",
				md.Name, m.GetContainerPath(), handler, errdefs.ErrInvalidArgument)
		}
		if m.GetRecursiveReadOnly() && !supportsRRO(h) {
			return nil, fmt.Errorf("create container %q: mount %q: runtime handler %q does not support recursive read-only mounts: %w",
				md.Name, m.GetContainerPath(), handler, errdefs.ErrInvalidArgument)
		}
	}
	img, err := s.opts.Images.Get(ref)
	if err != nil {
		return nil, fmt.Errorf("create container %q: image %q: %w", md.Name, ref, err)
	}
	id := newID()
	dir := s.containerDir(id)
	c := &store.Container{
		ID: id, SandboxID: sb.ID, Name: md.Name, Attempt: md.Attempt, Config: marshal(cfg),
		Labels: cfg.Labels, Annotations: cfg.Annotations, Image: ref, ImageID: img.ID, ImageRef: img.ID,
		RuntimeHandler: handler, Bundle: filepath.Join(dir, "bundle"), MonitorDir: filepath.Join(dir, "monitor"),
		LogPath: logPath(sbCfg, cfg), State: store.ContainerCreated, CreatedAt: nowNanos(),
		StopSignal: img.Config.StopSignal,
	}
	if len(img.RepoDigests) > 0 {
		c.ImageRef = img.RepoDigests[0]
	}
	if err := s.store.AddContainer(c); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	defer func() {
		if retErr != nil {
			s.cleanupContainer(context.WithoutCancel(ctx), c, h)
			_ = s.store.DeleteContainer(id)
			s.locks.forget(id)
		}
	}()
	t := newStepTimer()
	defer func() { s.log.Debug("create container steps", "id", id, "steps", t.String()) }()
	rootfs := filepath.Join(c.Bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("create container %q: %w", md.Name, err)
	}
	rf, err := s.opts.Images.PrepareRootfs(id, img.ID)
	if err != nil {
		return nil, fmt.Errorf("create container %q: rootfs: %w", md.Name, err)
	}
	t.step("prepare")
	if p := sb.Namespaces["user"]; p != "" {
		uid, gid := podRootIDs(sbCfg)
		err = rf.MountIDMapped(rootfs, p, uid, gid)
	} else {
		err = rf.Mount(rootfs)
	}
	if err != nil {
		return nil, fmt.Errorf("create container %q: mount rootfs: %w", md.Name, err)
	}
	t.step("mount")
	hostname := ""
	if b, err := os.ReadFile(hostnamePath(sb.Dir)); err == nil {
		hostname = string(trimNL(b))
	}
	spec, err := s.buildSpec(specInput{id: id, sb: sb, sbCfg: sbCfg, cfg: cfg, img: img.Config, rootfs: rootfs, hostname: hostname})
	if err != nil {
		return nil, fmt.Errorf("create container %q: %w", md.Name, err)
	}
	c.UID, c.GID, c.Groups = spec.Process.User.UID, spec.Process.User.GID, spec.Process.User.AdditionalGids
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("create container %q: encode spec: %w", md.Name, err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("create container %q: %w", md.Name, err)
	}
	if c.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o755); err != nil {
			return nil, fmt.Errorf("create container %q: log directory: %w", md.Name, err)
		}
	}
	t.step("spec")
	c.Complete = true
	if _, err := s.store.UpdateContainer(id, func(x *store.Container) error { *x = *c; return nil }); err != nil {
		return nil, err
	}
	// The runtime's create runs in the background, like containerd's (which
	// creates the runtime container only at StartContainer): the request is
	// fully validated and the bundle written by now; StartContainer waits
	// for the monitor and reports a runtime failure.
	s.spawnAsync(c, h.Info(), cfg)
	s.emit(id, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

func (s *Service) spawnAsync(c *store.Container, info runtime.Info, cfg *runtimeapi.ContainerConfig) {
	op := &bgOp{done: make(chan struct{})}
	s.mu.Lock()
	s.spawns[c.ID] = op
	s.mu.Unlock()
	spec := monitor.Spec{
		ID: c.ID, Bundle: c.Bundle, LogPath: c.LogPath, Terminal: cfg.GetTty(),
		Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdin() && cfg.GetStdinOnce(),
		RuntimeType: info.Type, RuntimePath: info.Path, RuntimeRoot: info.Root, StateDir: c.MonitorDir,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(op.done)
		mh, err := monitor.Spawn(s.ctx, s.opts.MonitorPath, spec)
		if err != nil {
			op.err = fmt.Errorf("create container %s: %w", c.ID, err)
			s.log.Warn("runtime create failed", "id", c.ID, "err", err)
			// Listed as exited with the runtime's error, not as created.
			s.markExited(c.ID, 128, "CreateError", err.Error(), time.Now())
			return
		}
		s.mu.Lock()
		s.monitors[c.ID] = mh
		s.mu.Unlock()
		_, _ = s.store.UpdateContainer(c.ID, func(x *store.Container) error {
			x.Pid, x.MonitorPID = mh.InitPID, mh.MonitorPID
			return nil
		})
	}()
}

// waitSpawn waits for a container's background create (if any) and
// returns its error.
func (s *Service) waitSpawn(ctx context.Context, id string) error {
	return s.waitOp(ctx, s.spawns, id)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// logPath is the pod's log directory joined with the container's log path.
func logPath(sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	p := cfg.GetLogPath()
	if p == "" {
		return ""
	}
	if filepath.IsAbs(p) && sbCfg.GetLogDirectory() == "" {
		return filepath.Clean(p)
	}
	if sbCfg.GetLogDirectory() == "" {
		return ""
	}
	return filepath.Join(sbCfg.GetLogDirectory(), filepath.Clean("/"+p))
}
