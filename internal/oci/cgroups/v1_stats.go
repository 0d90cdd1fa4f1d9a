package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of cpuacct.stat; it is 100 on every
// Linux architecture hull runs on.
const clockTicks = 100

func (m *v1Manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	steps := []struct {
		controller string
		get        func(dir string, s *Stats) error
	}{
		{"cpu", cpuStatsV1},
		{"cpuacct", cpuacctStatsV1},
		{"cpuset", cpusetStats},
		{"memory", memoryStatsV1},
		{"pids", pidsStats},
		{"blkio", blkioStatsV1},
		{"hugetlb", hugetlbStatsV1},
	}
	for _, st := range steps {
		dir := m.paths[st.controller]
		if dir == "" {
			continue
		}
		if err := st.get(dir, s); err != nil {
			return nil, fmt.Errorf("cgroups: %s stats: %w", st.controller, err)
		}
	}
	if _, v1 := m.paths["hugetlb"]; !v1 && m.unified != nil {
		if err := hugetlbStatsV2(m.unified.dir, s); err != nil {
			return nil, fmt.Errorf("cgroups: hugetlb stats: %w", err)
		}
	}
	return s, nil
}

func cpuStatsV1(dir string, s *Stats) error {
	kv, err := readKV(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_time"],
	}
	return nil
}

func cpuacctStatsV1(dir string, s *Stats) error {
	var err error
	u := &s.CPU.Usage
	if u.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if u.Percpu, err = readUintList(dir, "cpuacct.usage_percpu"); err != nil {
		return err
	}
	if u.PercpuKernel, err = readUintList(dir, "cpuacct.usage_percpu_sys"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if u.PercpuUser, err = readUintList(dir, "cpuacct.usage_percpu_user"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	kv, err := readKV(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	u.User = kv["user"] * (1e9 / clockTicks)
	u.Kernel = kv["system"] * (1e9 / clockTicks)
	return nil
}

func readUintList(dir, name string) ([]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := parseUint(f)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// cpusetStats reads the effective cpus and mems (same files in v1 and v2).
func cpusetStats(dir string, s *Stats) error {
	for _, f := range []struct {
		name string
		dst  *[]uint16
	}{{"cpuset.effective_cpus", &s.CPUSet.CPUs}, {"cpuset.effective_mems", &s.CPUSet.Mems}} {
		v, err := readFile(dir, f.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if *f.dst, err = parseCPUList(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("%s/%s: %w", dir, f.name, err)
		}
	}
	return nil
}

// parseCPUList expands "0-3,8" into [0 1 2 3 8].
func parseCPUList(s string) ([]uint16, error) {
	var out []uint16
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
				return nil, err
			}
		}
		if b < a || b-a > 65535 {
			return nil, fmt.Errorf("bad cpu range %q", part)
		}
		for i := a; i <= b; i++ {
			out = append(out, uint16(i))
		}
	}
	return out, nil
}

func memoryStatsV1(dir string, s *Stats) error {
	raw, err := readKV(dir, "memory.stat")
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["cache"]
	for _, e := range []struct {
		prefix string
		dst    *MemoryEntry
	}{
		{"memory", &s.Memory.Usage},
		{"memory.memsw", &s.Memory.Swap},
		{"memory.kmem", &s.Memory.Kernel},
		{"memory.kmem.tcp", &s.Memory.KernelTCP},
	} {
		if e.prefix != "memory" && !exists(dir, e.prefix+".usage_in_bytes") {
			continue
		}
		if err := memoryEntryV1(dir, e.prefix, e.dst); err != nil {
			return err
		}
	}
	return nil
}

func memoryEntryV1(dir, prefix string, e *MemoryEntry) error {
	var err error
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{".usage_in_bytes", &e.Usage},
		{".max_usage_in_bytes", &e.Max},
		{".limit_in_bytes", &e.Limit},
		{".failcnt", &e.Failcnt},
	} {
		if *f.dst, err = readOptUint(dir, prefix+f.name); err != nil {
			return err
		}
	}
	return nil
}

// pidsStats reads pids.current/pids.max (same files in v1 and v2).
func pidsStats(dir string, s *Stats) error {
	var err error
	if s.Pids.Current, err = readUint(dir, "pids.current"); err != nil {
		return err
	}
	s.Pids.Limit, err = readUint(dir, "pids.max")
	return err
}

func blkioStatsV1(dir string, s *Stats) error {
	// CFQ's own counters when present, else BFQ's, else the throttle
	// layer's, which every kernel keeps.
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		if !exists(dir, prefix+"io_service_bytes_recursive") {
			continue
		}
		var err error
		if s.Blkio.IoServiceBytesRecursive, err = readBlkioV1(dir, prefix+"io_service_bytes_recursive"); err != nil {
			return err
		}
		s.Blkio.IoServicedRecursive, err = readBlkioV1(dir, prefix+"io_serviced_recursive")
		return err
	}
	return nil
}

// readBlkioV1 parses "8:0 Read 4096" lines, skipping the "Total" summary.
func readBlkioV1(dir, name string) ([]BlkioEntry, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := parseDevNum(f[0])
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, BlkioEntry{Major: maj, Minor: min, Op: f[1], Value: v})
	}
	return out, nil
}

func parseDevNum(s string) (uint64, uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	min, err2 := strconv.ParseUint(b, 10, 64)
	return maj, min, err1 == nil && err2 == nil
}

// hugePageSizes lists the sizes the kernel offers ("2MB", "1GB"), from
// /sys/kernel/mm/hugepages, in the naming hugetlb cgroup files use.
func hugePageSizes() []string {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(kb, "kB"), 10, 64)
		if err != nil {
			continue
		}
		switch {
		case n >= 1<<20 && n%(1<<20) == 0:
			out = append(out, fmt.Sprintf("%dGB", n>>20))
		case n >= 1<<10 && n%(1<<10) == 0:
			out = append(out, fmt.Sprintf("%dMB", n>>10))
		default:
			out = append(out, fmt.Sprintf("%dKB", n))
		}
	}
	return out
}

func hugetlbStatsV1(dir string, s *Stats) error {
	for _, size := range hugePageSizes() {
		var h Hugetlb
		var err error
		p := "hugetlb." + size
		if h.Usage, err = readOptUint(dir, p+".usage_in_bytes"); err != nil {
			return err
		}
		if h.Max, err = readOptUint(dir, p+".max_usage_in_bytes"); err != nil {
			return err
		}
		if h.Failcnt, err = readOptUint(dir, p+".failcnt"); err != nil {
			return err
		}
		s.Hugetlb[size] = h
	}
	return nil
}
