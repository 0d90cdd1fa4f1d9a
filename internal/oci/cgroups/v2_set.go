package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// Set writes r into the cgroup2 directory, converting v1-style values the
// way runc and crun do (shares → cpu.weight, blkio weight → io.weight,
// memory+swap → swap.max). Values v2 has no file for (swappiness, kernel
// memory, disableOOMKiller, net_cls/net_prio) are ignored, as in runc;
// realtime CPU values are rejected because ignoring them would silently
// drop a scheduling guarantee.
func (m *v2Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validateResources(r); err != nil {
		return err
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setCPU, m.setCpuset, m.setMemory, m.setPids, m.setIO, m.setHugetlb, m.setRdma, m.setDevices,
	} {
		if err := set(r); err != nil {
			return err
		}
	}
	return m.setUnified(r.Unified)
}

// write writes a controller file, explaining a missing file as a controller
// that is not enabled for this cgroup.
func (m *v2Manager) write(name, value string) error {
	err := writeFile(m.dir, name, value)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return m.notEnabled(name)
	}
	return err
}

func (m *v2Manager) notEnabled(file string) error {
	ctrl, _, _ := strings.Cut(file, ".")
	return fmt.Errorf("cgroups: the %s controller is not enabled for %s (no %s): %w", ctrl, m.dir, file, errdefs.ErrFailedPrecondition)
}

// SharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000] with the formula runc and crun share, so a
// container gets the same weight under both runtimes. 0 stays 0 (unset).
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight converts a blkio weight [10, 1000] to io.weight [1, 10000].
func blkioToIOWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	w = min(max(w, 10), 1000)
	return 1 + (w-10)*9999/990
}

func (m *v2Manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) || (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) {
		return fmt.Errorf("cgroups: realtime CPU runtime/period are not supported on cgroup v2: %w", errdefs.ErrInvalidArgument)
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := m.write("cpu.weight", u64(SharesToWeight(*c.Shares))); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := m.write("cpu.idle", i64(*c.Idle)); err != nil {
			return err
		}
	}
	var quota int64
	var period uint64
	if c.Quota != nil {
		quota = *c.Quota
	}
	if c.Period != nil {
		period = *c.Period
	}
	if quota != 0 || period != 0 {
		q := "max"
		if quota > 0 {
			q = i64(quota)
		} else if quota == 0 {
			// Only the period changes: keep the current quota (cpu.max
			// takes both at once).
			cur, err := readFile(m.dir, "cpu.max")
			if errors.Is(err, fs.ErrNotExist) {
				return m.notEnabled("cpu.max")
			}
			if err != nil {
				return err
			}
			if f := strings.Fields(cur); len(f) > 0 {
				q = f[0]
			}
		}
		if period != 0 {
			q += " " + u64(period)
		}
		if err := m.write("cpu.max", q); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := m.write("cpu.max.burst", u64(*c.Burst)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setCpuset(r *specs.LinuxResources) error {
	if r.CPU == nil {
		return nil
	}
	if r.CPU.Mems != "" {
		if err := m.write("cpuset.mems", r.CPU.Mems); err != nil {
			return err
		}
	}
	if r.CPU.Cpus != "" {
		return m.write("cpuset.cpus", r.CPU.Cpus)
	}
	return nil
}

// SwapToV2 converts the spec's memory+swap total to cgroup v2 swap.max
// (swap alone), as runc does: 0 = unchanged, -1 = unlimited.
func SwapToV2(memorySwap, memory int64) (int64, error) {
	// Unlimited memory and no swap value: unlimited memory+swap, as v1.
	if memory == -1 && memorySwap == 0 {
		return -1, nil
	}
	if memorySwap == -1 || memorySwap == 0 {
		return memorySwap, nil
	}
	if memory == 0 || memory == -1 {
		return 0, fmt.Errorf("cgroups: a swap limit needs a memory limit: %w", errdefs.ErrInvalidArgument)
	}
	if memory < 0 || memorySwap < memory {
		return 0, fmt.Errorf("cgroups: memory+swap limit %d is below the memory limit %d: %w", memorySwap, memory, errdefs.ErrInvalidArgument)
	}
	return memorySwap - memory, nil
}

// maxOr formats a v2 limit: -1 (any negative) is "max".
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return i64(v)
}

func (m *v2Manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	var limit, swap int64
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	sw, err := SwapToV2(swap, limit)
	if err != nil {
		return err
	}
	if err := checkBeforeUpdate(mem, m.dir, "memory.current"); err != nil {
		return err
	}
	if sw != 0 {
		v := maxOr(sw)
		if err := writeFile(m.dir, "memory.swap.max", v); err != nil {
			// Without swap accounting there is no file; "no limit" and
			// "no swap" are then what the host gives anyway.
			if !errors.Is(err, fs.ErrNotExist) || (v != "max" && v != "0") {
				return err
			}
		}
	}
	if limit != 0 {
		if err := m.write("memory.max", maxOr(limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := m.write("memory.low", maxOr(*mem.Reservation)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2Manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	return m.write("pids.max", pidsMax(*r.Pids.Limit))
}

func (m *v2Manager) setIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	// BFQ takes blkio's own 10-1000 scale; io.weight needs converting.
	bfq := exists(m.dir, "io.bfq.weight")
	weightLine := func(dev string, w uint16) (string, string) {
		if bfq {
			return "io.bfq.weight", dev + strconv.Itoa(int(w))
		}
		if dev == "" {
			dev = "default "
		}
		return "io.weight", dev + u64(blkioToIOWeight(uint64(w)))
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := m.write(weightLine("", *b.Weight)); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight == nil {
			continue
		}
		if err := m.write(weightLine(fmt.Sprintf("%d:%d ", wd.Major, wd.Minor), *wd.Weight)); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			rate := "max" // v1 writes 0 to lift a limit
			if d.Rate != 0 {
				rate = u64(d.Rate)
			}
			if err := m.write("io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2Manager) setHugetlb(r *specs.LinuxResources) error {
	for _, h := range r.HugepageLimits {
		if err := checkName("hugepage size", h.Pagesize); err != nil {
			return err
		}
		if !exists(m.dir, "hugetlb."+h.Pagesize+".max") && hasController(m.dir, "hugetlb") {
			return fmt.Errorf("cgroups: hugepage size %q is not supported by this host: %w", h.Pagesize, errdefs.ErrInvalidArgument)
		}
		if err := m.write("hugetlb."+h.Pagesize+".max", u64(h.Limit)); err != nil {
			return err
		}
		// The spec prefers reservation limits where the kernel has them.
		if exists(m.dir, "hugetlb."+h.Pagesize+".rsvd.max") {
			if err := m.write("hugetlb."+h.Pagesize+".rsvd.max", u64(h.Limit)); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasController(dir, c string) bool {
	s, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(s) {
		if f == c {
			return true
		}
	}
	return false
}

func (m *v2Manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	return setRdma(m.dir, r)
}

// checkUnifiedKey accepts "controller.file" names only: the value is
// written to that file of the container's own directory, never elsewhere,
// and never the membership files.
func checkUnifiedKey(k string) error {
	bad := k == "" || strings.ContainsAny(k, "/\x00") || strings.Contains(k, "..") || !strings.Contains(k, ".")
	if bad || k == "cgroup.procs" || k == "cgroup.threads" {
		return fmt.Errorf("cgroups: unified key %q is not a cgroup file name: %w", k, errdefs.ErrInvalidArgument)
	}
	return nil
}

// setUnified writes the spec's unified map, in key order so that repeated
// runs behave the same.
func (m *v2Manager) setUnified(u map[string]string) error {
	keys := make([]string, 0, len(u))
	for k := range u {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := m.write(k, u[k]); err != nil {
			return fmt.Errorf("cgroups: unified %q: %w", k, err)
		}
	}
	return nil
}
