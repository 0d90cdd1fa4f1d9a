package cri

import (
	"context"
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
)

func (s *Service) containerStats(ctx context.Context, c *store.Container) (*runtimeapi.ContainerStats, error) {
	cfg := &runtimeapi.ContainerConfig{}
	_ = unmarshal(c.Config, cfg)
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.ID, Metadata: cfg.GetMetadata(), Labels: c.Labels, Annotations: c.Annotations,
		},
	}
	now := nowNanos()
	out.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}}
	out.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}}
	out.WritableLayer = &runtimeapi.FilesystemUsage{
		Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.opts.Images.Root()},
		UsedBytes: &runtimeapi.UInt64Value{}, InodesUsed: &runtimeapi.UInt64Value{},
	}
	out.WritableLayer.UsedBytes.Value, out.WritableLayer.InodesUsed.Value = s.writableLayerUsage(c.ID)
	if c.State != store.ContainerRunning {
		return out, nil
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	st, err := h.Stats(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.ID, err)
	}
	out.Cpu.UsageCoreNanoSeconds.Value = st.CPUUsageNanos
	out.Memory.WorkingSetBytes.Value = st.MemoryWorkingSet
	out.Memory.UsageBytes = &runtimeapi.UInt64Value{Value: st.MemoryUsageBytes}
	out.Memory.RssBytes = &runtimeapi.UInt64Value{Value: st.MemoryRSS}
	out.Memory.PageFaults = &runtimeapi.UInt64Value{Value: st.MemoryPageFaults}
	out.Memory.MajorPageFaults = &runtimeapi.UInt64Value{Value: st.MemoryMajorFaults}
	return out, nil
}

// ContainerStats reports one container's usage.
func (s *Service) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.store.Container(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("container stats: %w", err)
	}
	st, err := s.containerStats(ctx, c)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the usage of the containers matching the filter.
func (s *Service) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, c := range s.store.Containers() {
		if !c.Complete || (f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId())) ||
			(f.GetPodSandboxId() != "" && !strings.HasPrefix(c.SandboxID, f.GetPodSandboxId())) ||
			!labelsMatch(c.Labels, f.GetLabelSelector()) {
			continue
		}
		st, err := s.containerStats(ctx, c)
		if err != nil {
			// A container exiting between list and stats is not an error.
			s.log.Debug("container stats", "id", c.ID, "err", err)
			continue
		}
		resp.Stats = append(resp.Stats, st)
	}
	return resp, nil
}

func (s *Service) podStats(ctx context.Context, sb *store.Sandbox) *runtimeapi.PodSandboxStats {
	cfg := &runtimeapi.PodSandboxConfig{}
	_ = unmarshal(sb.Config, cfg)
	now := nowNanos()
	lx := &runtimeapi.LinuxPodSandboxStats{
		Cpu:    &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{}, UsageBytes: &runtimeapi.UInt64Value{}},
	}
	for _, c := range s.store.Containers() {
		if c.SandboxID != sb.ID || !c.Complete {
			continue
		}
		st, err := s.containerStats(ctx, c)
		if err != nil {
			continue
		}
		lx.Containers = append(lx.Containers, st)
		lx.Cpu.UsageCoreNanoSeconds.Value += st.Cpu.UsageCoreNanoSeconds.GetValue()
		lx.Memory.WorkingSetBytes.Value += st.Memory.WorkingSetBytes.GetValue()
		lx.Memory.UsageBytes.Value += st.Memory.GetUsageBytes().GetValue()
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: cfg.GetMetadata(), Labels: sb.Labels, Annotations: sb.Annotations},
		Linux:      lx,
	}
}

// PodSandboxStats reports a pod's usage (the sum of its containers').
func (s *Service) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.store.Sandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod sandbox stats: %w", err)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(ctx, sb)}, nil
}

// ListPodSandboxStats reports the usage of the pods matching the filter.
func (s *Service) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := r.GetFilter()
	resp := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range s.store.Sandboxes() {
		if !sb.Complete || (f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId())) || !labelsMatch(sb.Labels, f.GetLabelSelector()) {
			continue
		}
		resp.Stats = append(resp.Stats, s.podStats(ctx, sb))
	}
	return resp, nil
}
