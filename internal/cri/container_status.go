package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
)

func containerState(c *store.Container) runtimeapi.ContainerState {
	switch c.State {
	case store.ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case store.ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case store.ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func (s *Service) containerStatus(c *store.Container) *runtimeapi.ContainerStatus {
	cfg := &runtimeapi.ContainerConfig{}
	_ = unmarshal(c.Config, cfg)
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    cfg.GetMetadata(),
		State:       containerState(c),
		CreatedAt:   c.CreatedAt,
		StartedAt:   c.StartedAt,
		FinishedAt:  c.FinishedAt,
		ExitCode:    c.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: cfg.GetImage().GetUserSpecifiedImage()},
		ImageRef:    c.ImageRef,
		ImageId:     c.ImageID,
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      c.Labels,
		Annotations: c.Annotations,
		Mounts:      cfg.GetMounts(),
		LogPath:     c.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: cfg.GetLinux().GetResources()},
	}
	if st.Metadata == nil {
		st.Metadata = &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: c.Attempt}
	}
	// The identity the process runs as (KEP-3619), as resolved at create.
	u := &runtimeapi.LinuxContainerUser{Uid: int64(c.UID), Gid: int64(c.GID)}
	for _, g := range append([]uint32{c.GID}, c.Groups...) {
		u.SupplementalGroups = append(u.SupplementalGroups, int64(g))
	}
	st.User = &runtimeapi.ContainerUser{Linux: u}
	return st
}

// ContainerStatus reports one container.
func (s *Service) ContainerStatus(_ context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("container status: %w", err)
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(c)}
	if r.GetVerbose() {
		resp.Info = map[string]string{
			"pid": fmt.Sprint(c.Pid), "monitorPid": fmt.Sprint(c.MonitorPID), "bundle": c.Bundle,
			"runtimeHandler": c.RuntimeHandler, "sandboxID": c.SandboxID,
		}
	}
	return resp, nil
}

// ListContainers lists containers matching the filter (id prefix, state,
// pod, labels).
func (s *Service) ListContainers(_ context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range s.store.Containers() {
		if !c.Complete {
			continue
		}
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().State != containerState(c) {
			continue
		}
		if !labelsMatch(c.Labels, f.GetLabelSelector()) {
			continue
		}
		st := s.containerStatus(c)
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.SandboxID, Metadata: st.Metadata, Image: st.Image,
			ImageRef: c.ImageRef, ImageId: c.ImageID, State: st.State, CreatedAt: c.CreatedAt,
			Labels: c.Labels, Annotations: c.Annotations,
		})
	}
	return resp, nil
}
