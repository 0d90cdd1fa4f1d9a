package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// Stats reads the cgroup2 counters of every enabled controller; a
// controller that is not enabled leaves its part zero.
func (m *v2Manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]Hugetlb{}}
	for _, st := range []struct {
		name string
		get  func(dir string, s *Stats) error
	}{
		{"cpu", cpuStatsV2},
		{"cpuset", cpusetStats},
		{"memory", memoryStatsV2},
		{"pids", optional("pids.current", pidsStats)},
		{"io", ioStatsV2},
		{"hugetlb", hugetlbStatsV2},
	} {
		if err := st.get(m.dir, s); err != nil {
			return nil, fmt.Errorf("cgroups: %s stats: %w", st.name, err)
		}
	}
	return s, nil
}

// optional runs get only when dir has file (its controller is enabled).
func optional(file string, get func(string, *Stats) error) func(string, *Stats) error {
	return func(dir string, s *Stats) error {
		if !exists(dir, file) {
			return nil
		}
		return get(dir, s)
	}
}

func cpuStatsV2(dir string, s *Stats) error {
	kv, err := readKV(dir, "cpu.stat") // present even without the cpu controller
	if err != nil {
		return err
	}
	s.CPU.Usage.Total = kv["usage_usec"] * 1000
	s.CPU.Usage.User = kv["user_usec"] * 1000
	s.CPU.Usage.Kernel = kv["system_usec"] * 1000
	s.CPU.Throttling = Throttling{
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		ThrottledTime:    kv["throttled_usec"] * 1000,
	}
	return nil
}

func memoryStatsV2(dir string, s *Stats) error {
	if !exists(dir, "memory.current") {
		return nil
	}
	raw, err := readKV(dir, "memory.stat")
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["file"]
	u := &s.Memory.Usage
	if u.Usage, err = readUint(dir, "memory.current"); err != nil {
		return err
	}
	if u.Limit, err = readUint(dir, "memory.max"); err != nil {
		return err
	}
	if u.Max, err = readOptUint(dir, "memory.peak"); err != nil {
		return err
	}
	if ev, err := readKV(dir, "memory.events"); err == nil {
		u.Failcnt = ev["max"]
	}
	if exists(dir, "memory.swap.current") {
		sw := &s.Memory.Swap
		if sw.Usage, err = readUint(dir, "memory.swap.current"); err != nil {
			return err
		}
		if sw.Limit, err = readUint(dir, "memory.swap.max"); err != nil {
			return err
		}
		if sw.Max, err = readOptUint(dir, "memory.swap.peak"); err != nil {
			return err
		}
		// v1 reports memory+swap; keep that meaning for consumers.
		sw.Usage += u.Usage
		if sw.Limit != math.MaxUint64 && u.Limit != math.MaxUint64 {
			sw.Limit += u.Limit
		} else {
			sw.Limit = math.MaxUint64
		}
	}
	return nil
}

// ioStatsV2 maps io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") to
// blkio's Read/Write entries.
func ioStatsV2(dir string, s *Stats) error {
	data, err := readFile(dir, "io.stat")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDevNum(f[0])
		if !ok {
			continue
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: maj, Minor: min, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			}
		}
	}
	return nil
}

func hugetlbStatsV2(dir string, s *Stats) error {
	for _, size := range hugePageSizes() {
		p := "hugetlb." + size
		if !exists(dir, p+".current") {
			continue
		}
		var h Hugetlb
		var err error
		if h.Usage, err = readUint(dir, p+".current"); err != nil {
			return err
		}
		if ev, err := readKV(dir, p+".events"); err == nil {
			h.Failcnt = ev["max"]
		}
		s.Hugetlb[size] = h
	}
	return nil
}
