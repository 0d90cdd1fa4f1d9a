package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
)

func (s *Service) sandboxStatus(sb *store.Sandbox) *runtimeapi.PodSandboxStatus {
	cfg := &runtimeapi.PodSandboxConfig{}
	_ = unmarshal(sb.Config, cfg)
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       cfg.GetMetadata(),
		State:          sandboxState(sb),
		CreatedAt:      sb.CreatedAt,
		Labels:         sb.Labels,
		Annotations:    sb.Annotations,
		RuntimeHandler: sb.RuntimeHandler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if st.Metadata == nil {
		st.Metadata = &runtimeapi.PodSandboxMetadata{Name: sb.Name, Namespace: sb.Namespace, Uid: sb.UID, Attempt: sb.Attempt}
	}
	if len(sb.IPs) > 0 && sb.State == store.SandboxReady {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: sb.IPs[0]}
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	} else {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{}
	}
	return st
}

func sandboxState(sb *store.Sandbox) runtimeapi.PodSandboxState {
	if sb.State == store.SandboxReady && sb.Complete {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// PodSandboxStatus reports one pod.
func (s *Service) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.store.Sandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod sandbox status: %w", err)
	}
	// The IP (or the CNI failure) must be final when it is reported.
	if err := s.waitNetwork(ctx, sb.ID); err == nil || ctx.Err() == nil {
		if sb, err = s.store.Sandbox(sb.ID); err != nil {
			return nil, fmt.Errorf("pod sandbox status: %w", err)
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: s.sandboxStatus(sb)}
	if r.GetVerbose() {
		resp.Info = map[string]string{
			"dir": sb.Dir, "netns": sb.Namespaces["net"], "hostNetwork": fmt.Sprint(sb.HostNetwork),
			"cgroupParent": sb.CgroupParent, "pausePid": fmt.Sprint(sb.PausePID),
		}
		if sb.NetworkError != "" {
			resp.Info["networkError"] = sb.NetworkError
		}
	}
	for _, c := range s.store.Containers() {
		if c.SandboxID == sb.ID {
			resp.ContainersStatuses = append(resp.ContainersStatuses, s.containerStatus(c))
		}
	}
	return resp, nil
}

// ListPodSandbox lists pods matching the filter (id prefix, state, labels).
func (s *Service) ListPodSandbox(_ context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range s.store.Sandboxes() {
		if !sb.Complete {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().State != sandboxState(sb) {
			continue
		}
		if !labelsMatch(sb.Labels, f.GetLabelSelector()) {
			continue
		}
		st := s.sandboxStatus(sb)
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: sb.ID, Metadata: st.Metadata, State: st.State, CreatedAt: sb.CreatedAt,
			Labels: sb.Labels, Annotations: sb.Annotations, RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return resp, nil
}

func labelsMatch(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// UpdatePodSandboxResources accepts the pod's new resources: hull keeps no
// pod-level cgroup of its own (the kubelet owns the pod cgroup and updates
// each container), so there is nothing more to apply.
func (s *Service) UpdatePodSandboxResources(_ context.Context, r *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if _, err := s.store.Sandbox(r.GetPodSandboxId()); err != nil {
		return nil, fmt.Errorf("update pod sandbox resources: %w", err)
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
