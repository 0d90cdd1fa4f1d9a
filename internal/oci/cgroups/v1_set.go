package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Set writes r into the v1 hierarchies. A resource whose controller is not
// mounted is skipped (as runc does: hosts differ in what they mount); a
// resource the mounted controller cannot express is an error.
func (m *v1Manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validateResources(r); err != nil {
		return err
	}
	steps := []struct {
		controller string
		set        func(dir string, r *specs.LinuxResources) error
	}{
		{"cpuset", setCpusetV1},
		{"cpu", setCPUV1},
		{"memory", setMemoryV1},
		{"pids", setPidsV1},
		{"blkio", setBlkioV1},
		{"hugetlb", setHugetlbV1},
		{"net_cls", setNetClsV1},
		{"net_prio", setNetPrioV1},
		{"rdma", setRdma},
		{"devices", setDevicesV1},
	}
	for _, s := range steps {
		dir := m.paths[s.controller]
		if dir == "" {
			continue
		}
		if err := s.set(dir, r); err != nil {
			return err
		}
	}
	if m.unified != nil {
		// Controllers bound to the cgroup2 side of a hybrid host. Where
		// the kernel would not enable hugetlb for this directory (an
		// ancestor with processes), it is skipped like an unmounted v1
		// controller.
		if _, v1 := m.paths["hugetlb"]; !v1 && len(r.HugepageLimits) > 0 && hasController(m.unified.dir, "hugetlb") {
			if err := m.unified.setHugetlb(r); err != nil {
				return err
			}
		}
		if err := m.unified.setUnified(r.Unified); err != nil {
			return err
		}
	} else if len(r.Unified) > 0 {
		return fmt.Errorf("cgroups: unified resources need a cgroup2 hierarchy, this host has none: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// validateResources rejects values no cgroup version accepts.
func validateResources(r *specs.LinuxResources) error {
	if mem := r.Memory; mem != nil {
		if mem.Swappiness != nil && *mem.Swappiness > 100 {
			return fmt.Errorf("cgroups: memory swappiness %d is above 100: %w", *mem.Swappiness, errdefs.ErrInvalidArgument)
		}
		if mem.Limit != nil && mem.Swap != nil && *mem.Limit > 0 && *mem.Swap > 0 && *mem.Swap < *mem.Limit {
			return fmt.Errorf("cgroups: memory+swap limit %d is below the memory limit %d: %w", *mem.Swap, *mem.Limit, errdefs.ErrInvalidArgument)
		}
	}
	if bio := r.BlockIO; bio != nil {
		if bio.Weight != nil && *bio.Weight != 0 && (*bio.Weight < 10 || *bio.Weight > 1000) {
			return fmt.Errorf("cgroups: blkio weight %d is outside 10-1000: %w", *bio.Weight, errdefs.ErrInvalidArgument)
		}
	}
	for k := range r.Unified {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
	}
	return nil
}

func i64(v int64) string  { return strconv.FormatInt(v, 10) }
func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func setCpusetV1(dir string, r *specs.LinuxResources) error {
	if r.CPU == nil {
		return nil
	}
	if r.CPU.Mems != "" {
		if err := writeFile(dir, "cpuset.mems", r.CPU.Mems); err != nil {
			return err
		}
	}
	if r.CPU.Cpus != "" {
		return writeFile(dir, "cpuset.cpus", r.CPU.Cpus)
	}
	return nil
}

func setCPUV1(dir string, r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(dir, "cpu.shares", u64(*c.Shares)); err != nil {
			return err
		}
		// The kernel clamps shares to [2, 262144]; report the value it took.
		got, err := readUint(dir, "cpu.shares")
		if err == nil && got != *c.Shares {
			return fmt.Errorf("cgroups: cpu.shares %d is out of range (kernel set %d): %w", *c.Shares, got, errdefs.ErrInvalidArgument)
		}
	}
	quota := c.Quota != nil && *c.Quota != 0
	periodPending := false
	if c.Period != nil && *c.Period != 0 {
		if err := writeFile(dir, "cpu.cfs_period_us", u64(*c.Period)); err != nil {
			// A period shorter than the current one can be refused
			// (EINVAL) while the old quota stands; retry after the quota.
			if !errors.Is(err, unix.EINVAL) || !quota {
				return err
			}
			periodPending = true
		}
	}
	if quota {
		if err := writeFile(dir, "cpu.cfs_quota_us", i64(*c.Quota)); err != nil {
			return err
		}
		if periodPending {
			if err := writeFile(dir, "cpu.cfs_period_us", u64(*c.Period)); err != nil {
				return err
			}
		}
	}
	if c.Burst != nil {
		if err := writeOptional(dir, "cpu.cfs_burst_us", u64(*c.Burst), "cpu burst"); err != nil {
			return err
		}
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		if err := writeOptional(dir, "cpu.rt_period_us", u64(*c.RealtimePeriod), "realtime period"); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		if err := writeOptional(dir, "cpu.rt_runtime_us", i64(*c.RealtimeRuntime), "realtime runtime"); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeOptional(dir, "cpu.idle", i64(*c.Idle), "cpu idle"); err != nil {
			return err
		}
	}
	return nil
}

// writeOptional writes a file that only some kernels have, turning its
// absence into a clear ErrFailedPrecondition.
func writeOptional(dir, name, value, what string) error {
	if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroups: %s is not supported by this kernel (no %s): %w", what, name, errdefs.ErrFailedPrecondition)
	}
	return writeFile(dir, name, value)
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func setMemoryV1(dir string, r *specs.LinuxResources) error {
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
	if err := checkBeforeUpdate(mem, dir, "memory.usage_in_bytes"); err != nil {
		return err
	}
	if mem.UseHierarchy != nil {
		v := "0"
		if *mem.UseHierarchy {
			v = "1"
		}
		// Kernels since 5.x are always hierarchical and refuse "0".
		if err := writeFile(dir, "memory.use_hierarchy", v); err != nil {
			return err
		}
	}
	hasMemsw := exists(dir, "memory.memsw.limit_in_bytes")
	// Unlimited memory without a swap value means unlimited memory+swap.
	if limit == -1 && swap == 0 && hasMemsw {
		swap = -1
	}
	if !hasMemsw {
		// No swap accounting (swapaccount=0): there is nothing to limit.
		swap = 0
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		return writeFile(dir, "memory.limit_in_bytes", i64(limit))
	}
	setSwap := func() error {
		if swap == 0 {
			return nil
		}
		return writeFile(dir, "memory.memsw.limit_in_bytes", i64(swap))
	}
	// memsw must stay >= limit at every step: raise memsw first when the
	// new memsw is above the current limit, else lower the limit first.
	first, second := setLimit, setSwap
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return err
		}
		if swap == -1 || cur < uint64(swap) {
			first, second = setSwap, setLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", i64(*mem.Reservation)); err != nil {
			return err
		}
	}
	// Kernel memory limits are obsolete: kernels since 5.16 accept and
	// ignore them, later ones drop the files; neither is an error.
	//lint:ignore SA1019 honoured while the kernel still has the file
	kmem := mem.Kernel
	for _, kv := range []struct {
		v    *int64
		file string
	}{{kmem, "memory.kmem.limit_in_bytes"}, {mem.KernelTCP, "memory.kmem.tcp.limit_in_bytes"}} {
		if kv.v == nil || *kv.v == 0 || !exists(dir, kv.file) {
			continue
		}
		if err := writeFile(dir, kv.file, i64(*kv.v)); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
	}
	if mem.Swappiness != nil {
		if err := writeFile(dir, "memory.swappiness", u64(*mem.Swappiness)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := writeFile(dir, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	return nil
}

func setPidsV1(dir string, r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	return writeFile(dir, "pids.max", pidsMax(*r.Pids.Limit))
}

// pidsMax maps the spec's limit (<= 0: unlimited) to pids.max.
func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return i64(limit)
}

func setBlkioV1(dir string, r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	// CFQ is gone from modern kernels; BFQ exposes its weight under its
	// own name with the same 10-1000 range.
	weightFile, weightDevFile := "blkio.weight", "blkio.weight_device"
	if !exists(dir, weightFile) && exists(dir, "blkio.bfq.weight") {
		weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeOptional(dir, weightFile, strconv.Itoa(int(*b.Weight)), "blkio weight (needs the CFQ or BFQ I/O scheduler)"); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := writeOptional(dir, "blkio.leaf_weight", strconv.Itoa(int(*b.LeafWeight)), "blkio leaf weight (CFQ only)"); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)
			if err := writeOptional(dir, weightDevFile, v, "blkio per-device weight"); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)
			if err := writeOptional(dir, "blkio.leaf_weight_device", v, "blkio per-device leaf weight"); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := writeFile(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func setHugetlbV1(dir string, r *specs.LinuxResources) error {
	for _, h := range r.HugepageLimits {
		if err := checkPageSize(dir, h.Pagesize, ".limit_in_bytes"); err != nil {
			return err
		}
		if err := writeFile(dir, "hugetlb."+h.Pagesize+".limit_in_bytes", u64(h.Limit)); err != nil {
			return err
		}
	}
	return nil
}

// checkPageSize rejects a page size this kernel has no hugetlb files for
// (and any name that is not a plain size such as "2MB").
func checkPageSize(dir, size, suffix string) error {
	if err := checkName("hugepage size", size); err != nil {
		return err
	}
	if !exists(dir, "hugetlb."+size+suffix) {
		return fmt.Errorf("cgroups: hugepage size %q is not supported by this host: %w", size, errdefs.ErrInvalidArgument)
	}
	return nil
}

func setNetClsV1(dir string, r *specs.LinuxResources) error {
	if r.Network == nil || r.Network.ClassID == nil {
		return nil
	}
	return writeFile(dir, "net_cls.classid", strconv.FormatUint(uint64(*r.Network.ClassID), 10))
}

func setNetPrioV1(dir string, r *specs.LinuxResources) error {
	if r.Network == nil {
		return nil
	}
	for _, p := range r.Network.Priorities {
		if err := checkName("network interface", p.Name); err != nil {
			return err
		}
		if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
			return err
		}
	}
	return nil
}

// setRdma writes rdma.max, whose format is the same in v1 and v2.
func setRdma(dir string, r *specs.LinuxResources) error {
	for dev, l := range r.Rdma {
		if err := checkName("rdma device", dev); err != nil {
			return err
		}
		v := dev
		if l.HcaHandles != nil {
			v += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			v += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if v == dev {
			continue
		}
		if err := writeFile(dir, "rdma.max", v); err != nil {
			return err
		}
	}
	return nil
}

// checkBeforeUpdate implements the spec's checkBeforeUpdate: a new memory
// limit below the current usage is refused instead of triggering reclaim
// or the OOM killer.
func checkBeforeUpdate(mem *specs.LinuxMemory, dir, usageFile string) error {
	if mem.CheckBeforeUpdate == nil || !*mem.CheckBeforeUpdate || mem.Limit == nil || *mem.Limit <= 0 {
		return nil
	}
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return err
	}
	if usage > uint64(*mem.Limit) {
		return fmt.Errorf("cgroups: memory limit %d is below the current usage %d: %w", *mem.Limit, usage, errdefs.ErrFailedPrecondition)
	}
	return nil
}
