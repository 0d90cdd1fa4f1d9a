package cri

import (
	"context"
	"sort"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
	feat := &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: false, UserNamespaces: false}
	resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: "", Features: feat})
	for _, n := range names {
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: n, Features: feat})
	}
	resp.Features = &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: false}
	if r.GetVerbose() {
		resp.Info = map[string]string{"defaultRuntime": s.opts.DefaultHandler, "cgroupDriver": s.cgroupDriver()}
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
