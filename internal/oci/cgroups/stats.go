package cgroups

// Stats is a cgroup's usage, with the JSON field names and shapes runc's
// `runc events --stats` prints under "data" (runc types.Stats), so tools
// parsing runc's output parse hull's. On cgroup v2 the v1-only numbers are
// filled from their v2 equivalents the way runc does (swap reports
// memory+swap, cache is memory.stat "file").
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// CPU usage in nanoseconds and CFS throttling counters.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
}

// CPUUsage is cumulative CPU time in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// Throttling counts CFS bandwidth periods; ThrottledTime is in nanoseconds.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUSet is the cgroup's effective cpuset.
type CPUSet struct {
	CPUs []uint16 `json:"cpus,omitempty"`
	Mems []uint16 `json:"mems,omitempty"`
}

// MemoryEntry is one memory counter family in bytes.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Memory usage; Raw is memory.stat as the kernel prints it.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// Pids is the number of tasks and the pids.max limit (MaxUint64 = "max").
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one per-device, per-operation counter.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Blkio holds the recursive block I/O counters.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

// Hugetlb is the usage of one huge page size, keyed by "2MB", "1GB", ...
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// CPUUsageNanoseconds is the cumulative CPU time (CRI usage_core_nano_seconds).
func (s *Stats) CPUUsageNanoseconds() uint64 { return s.CPU.Usage.Total }

// MemoryUsageBytes is the current memory usage including page cache.
func (s *Stats) MemoryUsageBytes() uint64 { return s.Memory.Usage.Usage }

// MemoryWorkingSetBytes is usage minus inactive file pages, what the kubelet
// evicts and OOM-ranks on (CRI working_set_bytes); never below zero.
func (s *Stats) MemoryWorkingSetBytes() uint64 {
	inactive, ok := s.Memory.Raw["total_inactive_file"] // v1, hierarchical
	if !ok {
		inactive = s.Memory.Raw["inactive_file"] // v2
	}
	if inactive >= s.Memory.Usage.Usage {
		return 0
	}
	return s.Memory.Usage.Usage - inactive
}

// MemoryAvailableBytes is limit minus working set, 0 when unlimited.
func (s *Stats) MemoryAvailableBytes() uint64 {
	limit := s.Memory.Usage.Limit
	if limit == 0 || limit >= 1<<62 { // unlimited (v1 prints ~2^63, v2 "max")
		return 0
	}
	ws := s.MemoryWorkingSetBytes()
	if ws >= limit {
		return 0
	}
	return limit - ws
}

// MemoryRSSBytes is anonymous memory (CRI rss_bytes).
func (s *Stats) MemoryRSSBytes() uint64 {
	if v, ok := s.Memory.Raw["total_rss"]; ok {
		return v
	}
	return s.Memory.Raw["anon"]
}

// PageFaults and MajorPageFaults are the cumulative fault counters.
func (s *Stats) PageFaults() uint64 { return s.rawFirst("total_pgfault", "pgfault") }

// MajorPageFaults is the cumulative major fault counter.
func (s *Stats) MajorPageFaults() uint64 { return s.rawFirst("total_pgmajfault", "pgmajfault") }

func (s *Stats) rawFirst(keys ...string) uint64 {
	for _, k := range keys {
		if v, ok := s.Memory.Raw[k]; ok {
			return v
		}
	}
	return 0
}
