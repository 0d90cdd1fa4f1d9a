package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/network"
	"hull/internal/nsutil"
)

// RunPodSandbox creates a pod: pinned net/ipc/uts namespaces (no process
// needed), a pause process only for a pod-level pid namespace, the pod's
// resolv.conf, hosts and hostname files, its /dev/shm, and CNI networking.
// On any failure everything made so far is undone.
func (s *Service) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, retErr error) {
	cfg := r.GetConfig()
	md := cfg.GetMetadata()
	if md == nil || md.Name == "" {
		return nil, fmt.Errorf("run pod sandbox: metadata.name is required: %w", errdefs.ErrInvalidArgument)
	}
	h, handler, err := s.handler(r.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	uids, gids, err := podUserns(nsOpts)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox: %w", err)
	}
	if uids != nil && !s.usernsSupport(h).join {
		return nil, fmt.Errorf("run pod sandbox: runtime handler %q cannot join a pod user namespace: %w", handler, errdefs.ErrInvalidArgument)
	}
	hostNet := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	// Like containerd: a pod without a hostname (the kubelet always sends
	// one) and every host-network pod gets the node's name.
	hostname := cfg.GetHostname()
	if hostname == "" || hostNet {
		if hostname, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("run pod sandbox: host name: %w", err)
		}
	}
	if err := validHostname(hostname); err != nil {
		return nil, err
	}
	if err := validatePodSandboxConfig(cfg); err != nil {
		return nil, fmt.Errorf("run pod sandbox: %w", err)
	}
	id := newID()
	sb := &store.Sandbox{
		ID: id, Name: md.Name, Namespace: md.Namespace, UID: md.Uid, Attempt: md.Attempt,
		Config: marshal(cfg), Labels: cfg.Labels, Annotations: cfg.Annotations,
		RuntimeHandler: handler, CreatedAt: nowNanos(), State: store.SandboxNotReady,
		Dir: filepath.Join(s.opts.State, "sandboxes", id), HostNetwork: hostNet,
		CgroupParent: cfg.GetLinux().GetCgroupParent(),
	}
	t := newStepTimer()
	defer func() { s.log.Debug("run pod sandbox steps", "id", id, "steps", t.String()) }()
	if err := s.store.AddSandbox(sb); err != nil {
		return nil, fmt.Errorf("run pod sandbox %s: %w", sb.Key(), err)
	}
	unlock := s.locks.lock(id)
	defer unlock()
	defer func() {
		if retErr != nil {
			if err := s.teardownSandbox(context.WithoutCancel(ctx), sb); err != nil {
				s.log.Warn("undo half-made sandbox", "id", id, "err", err)
			}
			_ = os.RemoveAll(sb.Dir)
			_ = s.store.DeleteSandbox(id)
			s.locks.forget(id)
		}
	}()
	t.step("record")
	if err := os.MkdirAll(sb.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("run pod sandbox: %w", err)
	}
	if err := writeResolvConf(sb.Dir, cfg.GetDnsConfig()); err != nil {
		return nil, err
	}
	if err := writeHosts(sb.Dir, hostNet); err != nil {
		return nil, fmt.Errorf("run pod sandbox: hosts: %w", err)
	}
	if err := writeHostname(sb.Dir, hostname); err != nil {
		return nil, fmt.Errorf("run pod sandbox: hostname: %w", err)
	}
	rootUID, rootGID := podRootIDs(cfg)
	if uids != nil {
		if err := chownPodFiles(sb.Dir, rootUID, rootGID); err != nil {
			return nil, fmt.Errorf("run pod sandbox: %w", err)
		}
	}
	t.step("files")
	var kinds []string
	if !hostNet {
		kinds = append(kinds, "net", "uts")
	}
	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		kinds = append(kinds, "ipc")
	}
	if uids != nil {
		// One clone makes them all, owned by the user namespace.
		err := s.pinUsernsPod(sb, uids, gids, hostname, nsOpts.GetPid() == runtimeapi.NamespaceMode_POD)
		if err != nil {
			return nil, fmt.Errorf("run pod sandbox: user namespace: %w", err)
		}
	} else if len(kinds) > 0 {
		utsName := hostname
		if hostNet {
			utsName = "" // the host's uts namespace keeps the node's name
		}
		paths, err := nsutil.Pin(filepath.Join(sb.Dir, "ns"), kinds, utsName)
		// Record what was pinned even on error so the undo unpins it.
		sb.Namespaces = paths
		if err != nil {
			return nil, fmt.Errorf("run pod sandbox: pin namespaces %s: %w", strings.Join(kinds, ","), err)
		}
	}
	t.step("pin")
	if nsOpts.GetIpc() != runtimeapi.NamespaceMode_NODE {
		if err := mountShm(sb.Dir, rootUID, rootGID); err != nil {
			return nil, err
		}
	}
	if nsOpts.GetPid() == runtimeapi.NamespaceMode_POD && uids == nil {
		pid, start, path, err := s.startPause(sb)
		if err != nil {
			return nil, fmt.Errorf("run pod sandbox: pid namespace: %w", err)
		}
		sb.PausePID, sb.PauseStartTime = pid, start
		if sb.Namespaces == nil {
			sb.Namespaces = map[string]string{}
		}
		sb.Namespaces["pid"] = path
	}
	// Record that CNI ADD is about to run before it runs: a hulld killed
	// during ADD then still knows what to undo (DEL of a network that was
	// never added succeeds).
	sb.NetworkReady = !hostNet && s.opts.Network != nil
	if !hostNet {
		if s.opts.Network == nil {
			return nil, fmt.Errorf("run pod sandbox: no CNI network configured: %w", errdefs.ErrFailedPrecondition)
		}
		// A missing or unusable network configuration fails the request
		// itself; only the plugins' ADD runs in the background.
		if err := s.opts.Network.Status(); err != nil {
			return nil, fmt.Errorf("run pod sandbox: %w", err)
		}
	}
	t.step("shm+persist")
	sb.State, sb.Complete = store.SandboxReady, true
	if _, err := s.store.UpdateSandbox(id, func(x *store.Sandbox) error { *x = *sb; return nil }); err != nil {
		return nil, err
	}
	if !hostNet {
		s.setupNetworkAsync(sb, cfg)
	}
	t.step("final")
	s.log.Info("pod sandbox created", "id", id, "name", sb.Key(), "handler", handler)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// setupNetworkAsync runs CNI ADD while the client goes on to create the
// pod's containers: the namespaces exist already and creating a container
// does not need the network. Everything that does (StartContainer,
// PodSandboxStatus's IP, StopPodSandbox's DEL) waits for it with
// waitNetwork. A failed ADD leaves the pod NOT_READY with the error as its
// reason, which the kubelet answers by recreating the sandbox.
func (s *Service) setupNetworkAsync(sb *store.Sandbox, cfg *runtimeapi.PodSandboxConfig) {
	op := &bgOp{done: make(chan struct{})}
	s.mu.Lock()
	s.netOps[sb.ID] = op
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(op.done)
		start := time.Now()
		res, err := s.opts.Network.Setup(s.ctx, podMeta(sb), sb.Namespaces["net"], portMappings(cfg))
		if err != nil {
			op.err = fmt.Errorf("pod sandbox %s: CNI setup: %w", sb.ID, err)
			s.log.Warn("pod network setup failed", "id", sb.ID, "err", err)
			_, _ = s.store.UpdateSandbox(sb.ID, func(x *store.Sandbox) error {
				// Setup removed what it half-made: no DEL is owed.
				x.State, x.NetworkReady, x.NetworkError = store.SandboxNotReady, false, err.Error()
				return nil
			})
			return
		}
		_, _ = s.store.UpdateSandbox(sb.ID, func(x *store.Sandbox) error { x.IPs = res.IPs; return nil })
		s.log.Info("pod sandbox network ready", "id", sb.ID, "ips", res.IPs, "cni", time.Since(start))
	}()
}

// waitNetwork waits for the pod's background CNI ADD, if one runs, and
// returns its error.
func (s *Service) waitNetwork(ctx context.Context, id string) error {
	return s.waitOp(ctx, s.netOps, id)
}

func podMeta(sb *store.Sandbox) network.PodMeta {
	return network.PodMeta{ID: sb.ID, Name: sb.Name, Namespace: sb.Namespace, UID: sb.UID}
}

func portMappings(cfg *runtimeapi.PodSandboxConfig) []network.PortMapping {
	var out []network.PortMapping
	for _, p := range cfg.GetPortMappings() {
		if p.HostPort <= 0 {
			continue
		}
		out = append(out, network.PortMapping{
			Protocol: strings.ToLower(p.Protocol.String()), ContainerPort: p.ContainerPort,
			HostPort: p.HostPort, HostIP: p.HostIp,
		})
	}
	return out
}

// teardownSandbox releases the pod's network, namespaces, shm and pause
// process. It is idempotent and tries every step even when one fails.
func (s *Service) teardownSandbox(ctx context.Context, sb *store.Sandbox) error {
	var errs []string
	if sb.NetworkReady && !sb.HostNetwork && s.opts.Network != nil {
		cfg := &runtimeapi.PodSandboxConfig{}
		_ = unmarshal(sb.Config, cfg)
		if err := s.opts.Network.Teardown(ctx, podMeta(sb), sb.Namespaces["net"], portMappings(cfg)); err != nil {
			errs = append(errs, fmt.Sprintf("CNI teardown: %v", err))
		}
	}
	s.stopPause(sb)
	pinned := map[string]string{}
	for k, v := range sb.Namespaces {
		if k != "pid" {
			pinned[k] = v
		}
	}
	if len(pinned) > 0 {
		if err := nsutil.Unpin(pinned); err != nil {
			errs = append(errs, fmt.Sprintf("unpin namespaces: %v", err))
		}
	}
	if sb.Dir != "" {
		if err := unmountShm(sb.Dir); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sandbox %s teardown: %s", sb.ID, strings.Join(errs, "; "))
	}
	return nil
}
