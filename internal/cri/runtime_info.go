package cri

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/runtime"
)

const (
	runtimeName       = "hull"
	criVersion        = "v1"
	kubeletAPIVersion = "0.1.0"
)

func nowNanos() int64 { return time.Now().UnixNano() }

// Version reports the runtime's name and versions.
func (s *Service) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	v := s.opts.Version
	if v == "" {
		v = "dev"
	}
	return &runtimeapi.VersionResponse{
		Version: kubeletAPIVersion, RuntimeName: runtimeName, RuntimeVersion: v, RuntimeApiVersion: criVersion,
	}, nil
}

// Status reports the RuntimeReady and NetworkReady conditions and the
// configured runtime handlers.
func (s *Service) Status(_ context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	rt := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	nw := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if s.opts.Network == nil {
		nw.Status, nw.Reason, nw.Message = false, "NetworkPluginNotReady", "no CNI manager configured"
	} else if err := s.opts.Network.Status(); err != nil {
		nw.Status, nw.Reason, nw.Message = false, "NetworkPluginNotReady", err.Error()
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{rt, nw}},
	}
	names := make([]string, 0, len(s.opts.Handlers))
	for n := range s.opts.Handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	feat := func(n string) *runtimeapi.RuntimeHandlerFeatures {
		h, _, err := s.handler(n)
		if err != nil {
			return &runtimeapi.RuntimeHandlerFeatures{}
		}
		u := s.usernsSupport(h)
		return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: supportsRRO(h), UserNamespaces: u.join && u.idmap}
	}
	resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: "", Features: feat("")})
	for _, n := range names {
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: n, Features: feat(n)})
	}
	resp.Features = &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}
	if r.GetVerbose() {
		resp.Info = map[string]string{"defaultRuntime": s.opts.DefaultHandler, "cgroupDriver": s.cgroupDriver(), "config": s.infoConfig()}
	}
	return resp, nil
}

// UpdateRuntimeConfig accepts the pod CIDR the kubelet hands out; CNI
// configurations carry their own ranges, so there is nothing to change.
func (s *Service) UpdateRuntimeConfig(_ context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := r.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		s.log.Info("pod CIDR from the kubelet (CNI configuration decides addresses)", "cidr", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// RuntimeConfig reports the cgroup driver so the kubelet can match it.
func (s *Service) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	d := runtimeapi.CgroupDriver_CGROUPFS
	if s.cgroupDriver() == "systemd" {
		d = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: d}}, nil
}

func (s *Service) cgroupDriver() string {
	if s.opts.CgroupDriver == "systemd" {
		return "systemd"
	}
	return "cgroupfs"
}

// rroSupport caches, per runtime binary, whether the handler applies the
// OCI "rro" mount option: Status is polled often and asking an OCI runtime
// means running `RUNTIME features`.
var rroSupport struct {
	mu sync.Mutex
	m  map[string]bool
}

// supportsRRO says whether containers of h can get recursive read-only
// mounts: hullrt needs mount_setattr(2) (Linux 5.12); an OCI runtime must
// list "rro" among the mount options of `features` (runc ≥ 1.1).
func supportsRRO(h runtime.Handler) bool {
	info := h.Info()
	key := info.Type + ":" + info.Path
	rroSupport.mu.Lock()
	defer rroSupport.mu.Unlock()
	if v, ok := rroSupport.m[key]; ok {
		return v
	}
	var v bool
	if info.Type == "hullrt" {
		// An invalid fd tells "implemented" (EBADF) from ENOSYS without
		// touching any mount.
		err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{})
		v = !errors.Is(err, unix.ENOSYS)
	} else if info.Path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, info.Path, "features").Output()
		cancel()
		var f struct {
			MountOptions []string `json:"mountOptions"`
		}
		v = err == nil && json.Unmarshal(out, &f) == nil && slices.Contains(f.MountOptions, "rro")
	}
	if rroSupport.m == nil {
		rroSupport.m = map[string]bool{}
	}
	rroSupport.m[key] = v
	return v
}

// infoConfig is Status's verbose "config": containerd's keys where hull
// has the same thing. stateDir holds the containers' upper and work dirs,
// inside the image store whose filesystem the idmapped layers live on
// (critest probes idmapped mounts on its parent).
func (s *Service) infoConfig() string {
	cfg := map[string]any{
		"rootDir": s.opts.Root, "defaultRuntimeName": s.opts.DefaultHandler, "cgroupDriver": s.cgroupDriver(),
	}
	if s.opts.Images != nil {
		cfg["stateDir"] = filepath.Join(s.opts.Images.Root(), "rootfs")
	} else {
		cfg["stateDir"] = s.opts.State
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}
