package cri

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/oci/cgroups"
	"hull/internal/runtime"
)

// baseLabels start every metric's label keys, as cAdvisor's and CRI-O's do;
// a metric's extra keys follow them in the order its descriptor lists.
var baseLabels = []string{"id", "name", "image"}

type metricDesc struct {
	name, help string
	extra      []string
	counter    bool
}

// metricDescs are the cAdvisor-named metrics hulld reports (the kubelet's
// /metrics/cadvisor when it uses CRI stats). CRI carries uint64 values, so
// *_seconds metrics are whole seconds.
var metricDescs = []metricDesc{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", []string{"cpu"}, true},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", nil, true},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", nil, true},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", nil, true},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", nil, true},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", nil, true},
	{"container_memory_cache", "Number of bytes of page cache memory.", nil, false},
	{"container_memory_rss", "Size of RSS in bytes.", nil, false},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", nil, false},
	{"container_memory_swap", "Container swap usage in bytes.", nil, false},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", nil, false},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", nil, false},
	{"container_memory_working_set_bytes", "Current working set in bytes.", nil, false},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", nil, false},
	{"container_memory_failcnt", "Number of memory usage hits limits.", nil, true},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", []string{"failure_type", "scope"}, true},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", nil, true},
	{"container_spec_cpu_period", "CPU period of the container.", nil, false},
	{"container_spec_cpu_quota", "CPU quota of the container.", nil, false},
	{"container_spec_cpu_shares", "CPU share of the container.", nil, false},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", nil, false},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", nil, false},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", nil, false},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", nil, false},
	{"container_last_seen", "Last time a container was seen by the exporter.", nil, false},
	{"container_processes", "Number of processes running inside the container.", nil, false},
	{"container_threads", "Number of threads running inside the container.", nil, false},
	{"container_threads_max", "Maximum number of threads allowed inside the container, 0 when unlimited.", nil, false},
	{"container_file_descriptors", "Number of open file descriptors for the container.", nil, false},
	{"container_sockets", "Number of open sockets for the container.", nil, false},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", []string{"device"}, false},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", []string{"device"}, false},
	{"container_fs_inodes_total", "Number of available Inodes.", []string{"device"}, false},
	{"container_fs_inodes_free", "Number of available Inodes.", []string{"device"}, false},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", []string{"device"}, true},
	{"container_fs_reads_total", "Cumulative count of reads completed.", []string{"device"}, true},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", []string{"device"}, true},
	{"container_fs_writes_total", "Cumulative count of writes completed.", []string{"device"}, true},
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", []string{"device", "major", "minor", "operation"}, true},
	{"container_hugetlb_usage_bytes", "Hugepage usage in bytes.", []string{"pagesize"}, false},
	{"container_hugetlb_max_usage_bytes", "Hugepage maximum usage in bytes.", []string{"pagesize"}, false},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", []string{"interface"}, true},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", []string{"interface"}, true},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", []string{"interface"}, true},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", []string{"interface"}, true},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", []string{"interface"}, true},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", []string{"interface"}, true},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", []string{"interface"}, true},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", []string{"interface"}, true},
}

// ListMetricDescriptors lists the metrics ListPodSandboxMetrics reports.
func (s *Service) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	resp := &runtimeapi.ListMetricDescriptorsResponse{}
	for _, d := range metricDescs {
		keys := append(append([]string{}, baseLabels...), d.extra...)
		resp.Descriptors = append(resp.Descriptors, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: keys})
	}
	return resp, nil
}

// metricSet collects one pod's or container's metrics; each value carries
// the base label values followed by the metric's extra ones.
type metricSet struct {
	now  int64
	base []string
	out  []*runtimeapi.Metric
}

func (m *metricSet) add(name string, counter bool, v uint64, extra ...string) {
	t := runtimeapi.MetricType_GAUGE
	if counter {
		t = runtimeapi.MetricType_COUNTER
	}
	m.out = append(m.out, &runtimeapi.Metric{
		Name: name, Timestamp: m.now, MetricType: t,
		LabelValues: append(append([]string{}, m.base...), extra...), Value: &runtimeapi.UInt64Value{Value: v},
	})
}

// ListPodSandboxMetrics reports every ready pod's network metrics and its
// containers' cgroup, process and filesystem metrics.
func (s *Service) ListPodSandboxMetrics(ctx context.Context, _ *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	resp := &runtimeapi.ListPodSandboxMetricsResponse{}
	containers := s.store.Containers()
	for _, sb := range s.store.Sandboxes() {
		if !sb.Complete {
			continue
		}
		cfg := &runtimeapi.PodSandboxConfig{}
		_ = unmarshal(sb.Config, cfg)
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sb.ID}
		ms := &metricSet{now: nowNanos(), base: []string{sb.ID, cfg.GetMetadata().GetName(), ""}}
		// A stopped pod's pause pid may have been reused by now.
		if sb.State == store.SandboxReady && sb.PausePID > 0 {
			addNetworkMetrics(ms, sb.PausePID)
		}
		pm.Metrics = ms.out
		for _, c := range containers {
			if c.SandboxID != sb.ID || !c.Complete {
				continue
			}
			pm.ContainerMetrics = append(pm.ContainerMetrics, s.containerMetrics(ctx, c))
		}
		resp.PodMetrics = append(resp.PodMetrics, pm)
	}
	return resp, nil
}

func (s *Service) containerMetrics(ctx context.Context, c *store.Container) *runtimeapi.ContainerMetrics {
	cfg := &runtimeapi.ContainerConfig{}
	_ = unmarshal(c.Config, cfg)
	now := nowNanos()
	ms := &metricSet{now: now, base: []string{c.ID, cfg.GetMetadata().GetName(), c.Image}}
	var st *runtime.Stats
	if c.State == store.ContainerRunning {
		if h, _, err := s.handler(c.RuntimeHandler); err == nil {
			if st, err = h.Stats(ctx, c.ID); err != nil {
				s.log.Debug("container metrics", "id", c.ID, "err", err)
			}
		}
	}
	if st == nil {
		st = &runtime.Stats{}
	}
	cg := st.Cgroup
	if cg == nil {
		// A handler without a full snapshot (or a stopped container): the
		// figures it has, zeros for the rest.
		cg = &cgroups.Stats{}
		cg.CPU.Usage.Total = st.CPUUsageNanos
		cg.Memory.Usage.Usage = st.MemoryUsageBytes
		cg.Pids.Current = st.PidsCurrent
	}
	raw := cg.Memory.Raw
	sec := uint64(time.Second)
	ms.add("container_cpu_usage_seconds_total", true, cg.CPU.Usage.Total/sec, "total")
	ms.add("container_cpu_user_seconds_total", true, cg.CPU.Usage.User/sec)
	ms.add("container_cpu_system_seconds_total", true, cg.CPU.Usage.Kernel/sec)
	th := cg.CPU.Throttling
	ms.add("container_cpu_cfs_periods_total", true, th.Periods)
	ms.add("container_cpu_cfs_throttled_periods_total", true, th.ThrottledPeriods)
	ms.add("container_cpu_cfs_throttled_seconds_total", true, th.ThrottledTime/sec)
	ms.add("container_memory_cache", false, firstOf(raw, "total_cache", "file"))
	ms.add("container_memory_rss", false, st.MemoryRSS)
	ms.add("container_memory_mapped_file", false, firstOf(raw, "total_mapped_file", "file_mapped"))
	ms.add("container_memory_swap", false, firstOf(raw, "total_swap", "swap"))
	ms.add("container_memory_kernel_usage", false, cg.Memory.Kernel.Usage)
	ms.add("container_memory_usage_bytes", false, cg.Memory.Usage.Usage)
	ms.add("container_memory_working_set_bytes", false, st.MemoryWorkingSet)
	ms.add("container_memory_max_usage_bytes", false, cg.Memory.Usage.Max)
	ms.add("container_memory_failcnt", true, cg.Memory.Usage.Failcnt)
	ms.add("container_memory_failures_total", true, st.MemoryPageFaults, "pgfault", "container")
	ms.add("container_memory_failures_total", true, st.MemoryMajorFaults, "pgmajfault", "container")
	ms.add("container_oom_events_total", true, firstOf(raw, "oom_kill"))
	res := cfg.GetLinux().GetResources()
	ms.add("container_spec_cpu_period", false, uint64(max(res.GetCpuPeriod(), 0)))
	ms.add("container_spec_cpu_quota", false, uint64(max(res.GetCpuQuota(), 0)))
	ms.add("container_spec_cpu_shares", false, uint64(max(res.GetCpuShares(), 0)))
	ms.add("container_spec_memory_limit_bytes", false, uint64(max(res.GetMemoryLimitInBytes(), 0)))
	ms.add("container_spec_memory_reservation_limit_bytes", false, 0)
	ms.add("container_spec_memory_swap_limit_bytes", false, uint64(max(res.GetMemorySwapLimitInBytes(), 0)))
	ms.add("container_start_time_seconds", false, uint64(max(c.StartedAt, 0))/sec)
	ms.add("container_last_seen", false, uint64(now)/sec)
	procs, fds, socks := processCounts(c)
	ms.add("container_processes", false, procs)
	ms.add("container_threads", false, cg.Pids.Current)
	threadsMax := cg.Pids.Limit
	if threadsMax >= 1<<62 { // "max"
		threadsMax = 0
	}
	ms.add("container_threads_max", false, threadsMax)
	ms.add("container_file_descriptors", false, fds)
	ms.add("container_sockets", false, socks)
	s.addFsMetrics(ms, c.ID, cg)
	for size, h := range cg.Hugetlb {
		ms.add("container_hugetlb_usage_bytes", false, h.Usage, size)
		ms.add("container_hugetlb_max_usage_bytes", false, h.Max, size)
	}
	return &runtimeapi.ContainerMetrics{ContainerId: c.ID, Metrics: ms.out}
}

// addFsMetrics reports the writable layer's usage against the filesystem
// holding the image store, and the cgroup's block I/O per device.
func (s *Service) addFsMetrics(ms *metricSet, id string, cg *cgroups.Stats) {
	root := s.opts.Images.Root()
	used, _ := s.writableLayerUsage(id)
	ms.add("container_fs_usage_bytes", false, used, root)
	var fs unix.Statfs_t
	if unix.Statfs(root, &fs) == nil {
		ms.add("container_fs_limit_bytes", false, fs.Blocks*uint64(fs.Bsize), root)
		ms.add("container_fs_inodes_total", false, fs.Files, root)
		ms.add("container_fs_inodes_free", false, fs.Ffree, root)
	} else {
		ms.add("container_fs_limit_bytes", false, 0, root)
		ms.add("container_fs_inodes_total", false, 0, root)
		ms.add("container_fs_inodes_free", false, 0, root)
	}
	type dev struct{ major, minor uint64 }
	rb, rn, wb, wn := map[dev]uint64{}, map[dev]uint64{}, map[dev]uint64{}, map[dev]uint64{}
	for _, e := range cg.Blkio.IoServiceBytesRecursive {
		d := dev{e.Major, e.Minor}
		devName := strconv.FormatUint(e.Major, 10) + ":" + strconv.FormatUint(e.Minor, 10)
		ms.add("container_blkio_device_usage_total", true, e.Value, devName, strconv.FormatUint(e.Major, 10), strconv.FormatUint(e.Minor, 10), e.Op)
		switch strings.ToLower(e.Op) {
		case "read":
			rb[d] += e.Value
		case "write":
			wb[d] += e.Value
		}
	}
	for _, e := range cg.Blkio.IoServicedRecursive {
		d := dev{e.Major, e.Minor}
		switch strings.ToLower(e.Op) {
		case "read":
			rn[d] += e.Value
		case "write":
			wn[d] += e.Value
		}
	}
	for d, v := range rb {
		n := strconv.FormatUint(d.major, 10) + ":" + strconv.FormatUint(d.minor, 10)
		ms.add("container_fs_reads_bytes_total", true, v, n)
		ms.add("container_fs_reads_total", true, rn[d], n)
		ms.add("container_fs_writes_bytes_total", true, wb[d], n)
		ms.add("container_fs_writes_total", true, wn[d], n)
	}
}

// processCounts walks the container's process tree from its init (via
// /proc/PID/task/TID/children) counting processes, open fds and sockets.
// A stopped container has none.
func processCounts(c *store.Container) (procs, fds, socks uint64) {
	if c.State != store.ContainerRunning || c.Pid <= 0 {
		return 0, 0, 0
	}
	seen := map[int]bool{}
	queue := []int{c.Pid}
	for len(queue) > 0 && len(seen) < 1<<16 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if err != nil {
			continue // exited meanwhile
		}
		procs++
		for _, e := range ents {
			fds++
			if l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
				socks++
			}
		}
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil {
					queue = append(queue, n)
				}
			}
		}
	}
	return procs, fds, socks
}

// addNetworkMetrics reads the pod network namespace's interface counters
// through the pause process (/proc/PID/net/dev), skipping loopback as
// cAdvisor does.
func addNetworkMetrics(ms *metricSet, pid int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	for _, l := range lines[min(2, len(lines)):] {
		name, rest, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if !ok || name == "lo" || len(f) < 12 {
			continue
		}
		v := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
		ms.add("container_network_receive_bytes_total", true, v(0), name)
		ms.add("container_network_receive_packets_total", true, v(1), name)
		ms.add("container_network_receive_errors_total", true, v(2), name)
		ms.add("container_network_receive_packets_dropped_total", true, v(3), name)
		ms.add("container_network_transmit_bytes_total", true, v(8), name)
		ms.add("container_network_transmit_packets_total", true, v(9), name)
		ms.add("container_network_transmit_errors_total", true, v(10), name)
		ms.add("container_network_transmit_packets_dropped_total", true, v(11), name)
	}
}

func firstOf(m map[string]uint64, keys ...string) uint64 {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return 0
}
