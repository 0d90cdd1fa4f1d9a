package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// blockDevice returns the major:minor of a real block device for the
// throttle tests.
func blockDevice(t *testing.T) (int64, int64) {
	t.Helper()
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		maj, min, ok := parseDevNum(strings.TrimSpace(string(b)))
		if ok {
			return int64(maj), int64(min)
		}
	}
	t.Skip("no block device")
	return 0, 0
}

func TestV1ApplyPlacesProcessEverywhere(t *testing.T) {
	s := requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	p := startProc(t, "exec sleep 1000")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := procCgroups(t, p.pid())
	for c, dir := range m.Paths() {
		if c == "" {
			want := "/" + strings.TrimPrefix(strings.TrimPrefix(dir, s.v2.mountpoint), "/")
			if got[""] != want {
				t.Errorf("unified: process in %q, want %q", got[""], want)
			}
			continue
		}
		want := strings.TrimPrefix(dir, s.v1[c].mountpoint)
		if got[c] != want {
			t.Errorf("%s: process in %q, want %q", c, got[c], want)
		}
	}
	if s.layout == Hybrid && m.Path("") == "" {
		t.Error("hybrid host: no unified directory")
	}
	// The cpuset directory must have been initialised from its parent.
	if dir := m.Path("cpuset"); dir != "" {
		if v := readTrim(t, dir, "cpuset.cpus"); v == "" {
			t.Error("cpuset.cpus left empty")
		}
		if v := readTrim(t, dir, "cpuset.mems"); v == "" {
			t.Error("cpuset.mems left empty")
		}
	}
	pids, err := m.Pids()
	if err != nil || !slices.Equal(pids, []int{p.pid()}) {
		t.Errorf("Pids = %v, %v; want [%d]", pids, err, p.pid())
	}
	// Load from the saved paths sees the same cgroup.
	l, err := Load(m.Paths())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if pids, err := l.Pids(); err != nil || !slices.Equal(pids, []int{p.pid()}) {
		t.Errorf("loaded Pids = %v, %v", pids, err)
	}
}

func TestV1SetWritesKernelFiles(t *testing.T) {
	s := requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	// Once inside, the shell grows its heap by ~200 KB and keeps it, so
	// the cgroup has a known minimum usage.
	p := startProc(t, `read x; v=$(head -c 200000 /dev/zero | tr '\0' a); echo done; read y`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if ans := p.send(t, "go"); ans != "done" {
		t.Fatalf("child said %q", ans)
	}
	maj, min := blockDevice(t)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit:            ptr(int64(64 << 20)),
			Reservation:      ptr(int64(32 << 20)),
			Swap:             ptr(int64(96 << 20)),
			Swappiness:       ptr(uint64(10)),
			DisableOOMKiller: ptr(false),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr(uint64(512)),
			Quota:  ptr(int64(50000)),
			Period: ptr(uint64(200000)),
			Cpus:   "0",
			Mems:   "0",
		},
		Pids: &specs.LinuxPids{Limit: ptr(int64(42))},
		BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1048576}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 300}},
		},
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	dev := strconv.FormatInt(maj, 10) + ":" + strconv.FormatInt(min, 10)
	checks := []struct{ controller, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"memory", "memory.soft_limit_in_bytes", strconv.Itoa(32 << 20)},
		{"memory", "memory.swappiness", "10"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "200000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"cpuset", "cpuset.mems", "0"},
		{"pids", "pids.max", "42"},
		{"blkio", "blkio.throttle.read_bps_device", dev + " 1048576"},
		{"blkio", "blkio.throttle.write_iops_device", dev + " 300"},
	}
	if exists(m.Path("memory"), "memory.memsw.limit_in_bytes") {
		checks = append(checks, struct{ controller, file, want string }{"memory", "memory.memsw.limit_in_bytes", strconv.Itoa(96 << 20)})
	}
	for _, c := range checks {
		dir := m.Path(c.controller)
		if dir == "" {
			continue // not mounted on this host
		}
		if got := readTrim(t, dir, c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}

	// Lowering memory below memsw and raising both again needs the
	// right write order; both directions must succeed.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(200 << 20)), Swap: ptr(int64(300 << 20))}}); err != nil {
		t.Errorf("raise memory+swap: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(48 << 20)), Swap: ptr(int64(48 << 20))}}); err != nil {
		t.Errorf("lower memory+swap: %v", err)
	}
	if got := readTrim(t, m.Path("memory"), "memory.limit_in_bytes"); got != strconv.Itoa(48<<20) {
		t.Errorf("after update memory.limit_in_bytes = %s", got)
	}
	// checkBeforeUpdate refuses a limit below what is in use.
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(4096)), CheckBeforeUpdate: ptr(true)}})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("limit below usage with checkBeforeUpdate: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{UseHierarchy: ptr(true)}}); err != nil {
		t.Errorf("useHierarchy: %v", err)
	}
	// Unlimited.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))}, Pids: &specs.LinuxPids{Limit: ptr(int64(0))}}); err != nil {
		t.Errorf("unlimited: %v", err)
	}
	if got := readTrim(t, m.Path("pids"), "pids.max"); got != "max" {
		t.Errorf("pids.max = %q, want max", got)
	}

	// Hugetlb: on this project's hybrid hosts the controller lives only
	// in the cgroup2 hierarchy, so the limit lands there.
	// The kernel rounds limits down to whole pages: use 2MB pages.
	if slices.Contains(hugePageSizes(), "2MB") {
		sizes := []string{"2MB"}
		err = m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: sizes[0], Limit: 4 << 21}}})
		switch {
		case m.Path("hugetlb") != "":
			if err != nil {
				t.Errorf("hugetlb v1: %v", err)
			} else if got := readTrim(t, m.Path("hugetlb"), "hugetlb."+sizes[0]+".limit_in_bytes"); got != strconv.Itoa(4<<21) {
				t.Errorf("hugetlb v1 limit = %s", got)
			}
		case s.layout == Hybrid && hasController(s.v2.mountpoint, "hugetlb"):
			if err != nil {
				t.Errorf("hugetlb via unified: %v", err)
			} else if got := readTrim(t, m.Path(""), "hugetlb."+sizes[0]+".max"); got != strconv.Itoa(4<<21) {
				t.Errorf("unified hugetlb.%s.max = %s", sizes[0], got)
			}
		}
		err = m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}})
		if m.Path("hugetlb") != "" || s.layout == Hybrid && hasController(s.v2.mountpoint, "hugetlb") {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("bogus page size: err = %v, want ErrInvalidArgument", err)
			}
		}
	}
}

func TestV1SetRejectsBadValues(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	bad := map[string]*specs.LinuxResources{
		"swap below limit": {Memory: &specs.LinuxMemory{Limit: ptr(int64(100 << 20)), Swap: ptr(int64(50 << 20))}},
		"swappiness 101":   {Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(101))}},
		"blkio weight 5":   {BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(5))}},
		"cpu shares 1":     {CPU: &specs.LinuxCPU{Shares: ptr(uint64(1))}},
		"device type x":    {Devices: []specs.LinuxDeviceCgroup{{Type: "x", Access: "rwm"}}},
		"device access q":  {Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "q"}}},
		"unified dotdot":   {Unified: map[string]string{"../memory.max": "1"}},
	}
	for name, r := range bad {
		if err := m.Set(r); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	// Block I/O weight needs CFQ or BFQ; without them a clear error.
	dir := m.Path("blkio")
	if dir != "" && !exists(dir, "blkio.weight") && !exists(dir, "blkio.bfq.weight") {
		err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500))}})
		if !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("blkio weight without CFQ/BFQ: err = %v, want ErrFailedPrecondition", err)
		}
	}
}

func TestV1FreezeThaw(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	p := startProc(t, "exec sleep 1000")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if st, _ := FreezerState(m); st != "FROZEN" {
		t.Errorf("FreezerState = %q, want FROZEN", st)
	}
	// The v1 freezer parks tasks in uninterruptible sleep.
	if st := procState(t, p.pid()); !strings.HasPrefix(st, "D") {
		t.Errorf("frozen process state %q, want D", st)
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if st, _ := FreezerState(m); st != "THAWED" {
		t.Errorf("FreezerState = %q, want THAWED", st)
	}
	waitState(t, p.pid(), "S", "R")
}

func TestV1StatsCountsRealUsage(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	// Burn some CPU and touch some memory only once inside the cgroup.
	p := startProc(t, `read x; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo done; exec sleep 1000`)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(100 << 20))}, Pids: &specs.LinuxPids{Limit: ptr(int64(20))}}); err != nil {
		t.Fatal(err)
	}
	if ans := p.send(t, "go"); ans != "done" {
		t.Fatalf("child said %q", ans)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.CPUUsageNanoseconds() == 0 || len(st.CPU.Usage.Percpu) == 0 {
		t.Errorf("cpu usage %d, percpu %v: want > 0", st.CPUUsageNanoseconds(), st.CPU.Usage.Percpu)
	}
	if st.Memory.Usage.Limit != 100<<20 {
		t.Errorf("memory limit %d", st.Memory.Usage.Limit)
	}
	if st.MemoryUsageBytes() == 0 || st.Memory.Raw == nil {
		t.Errorf("memory usage %d raw %v", st.MemoryUsageBytes(), st.Memory.Raw)
	}
	if ws := st.MemoryWorkingSetBytes(); ws > st.MemoryUsageBytes() {
		t.Errorf("working set %d above usage %d", ws, st.MemoryUsageBytes())
	}
	if st.MemoryAvailableBytes() == 0 {
		t.Error("available bytes 0 under a 100 MiB limit")
	}
	if st.Pids.Current != 1 || st.Pids.Limit != 20 {
		t.Errorf("pids %+v, want current 1 limit 20", st.Pids)
	}
	if m.Path("cpuset") != "" && len(st.CPUSet.CPUs) == 0 {
		t.Error("no effective cpus")
	}
}

func TestV1OOMKillIsCounted(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	// tail of an endless line buffers without bound.
	p := startProc(t, "read x; exec tail /dev/zero")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Fatalf("OOMKillCount before = %d, %v", n, err)
	}
	lim := int64(16 << 20)
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim, Swap: &lim}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	var ee interface{ Sys() any }
	if !errors.As(err, &ee) {
		t.Fatalf("tail exited with %v, want a kill", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("tail exited with %v, want SIGKILL", err)
	}
	n, err := m.OOMKillCount()
	if err != nil || n < 1 {
		t.Errorf("OOMKillCount = %d, %v; want >= 1", n, err)
	}
}

func TestV1DestroyRemovesEverything(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m, err := New(testName(t), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Destroy() })
	if err := m.Apply(-1); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// A sub-cgroup the container made for itself goes too.
	if err := os.Mkdir(filepath.Join(m.Path("memory"), "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for c, dir := range m.Paths() {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s dir %s still there (%v)", c, dir, err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// A systemd-style cgroupsPath is mapped to the cgroupfs directory systemd
// would use, and the process really lands there.
func TestV1SystemdPathPlacement(t *testing.T) {
	s := requireHost(t, Legacy, Hybrid)
	slice := strings.ReplaceAll(testName(t), "-", "") + ".slice"
	m, err := New(slice+":hull:c1", "c1", Options{Systemd: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		// The slice directory is the test's own creation too.
		for _, dir := range m.Paths() {
			_ = removeTree(filepath.Dir(dir))
		}
	})
	p := startProc(t, "exec sleep 1000")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := "/" + slice + "/hull-c1.scope"
	if got := procCgroups(t, p.pid())["memory"]; got != want {
		t.Errorf("memory cgroup %q, want %q", got, want)
	}
	if s.layout == Hybrid {
		if got := procCgroups(t, p.pid())[""]; got != want {
			t.Errorf("unified cgroup %q, want %q", got, want)
		}
	}
}

// On a hybrid host the spec's unified map and the hugetlb statistics go
// through the cgroup2 directory.
func TestHybridUnifiedAndHugetlbStats(t *testing.T) {
	s := requireHost(t, Hybrid)
	if !hasController(s.v2.mountpoint, "hugetlb") || !slices.Contains(hugePageSizes(), "2MB") || s.v1["hugetlb"].mountpoint != "" {
		t.Skip("needs hugetlb bound to the cgroup2 hierarchy only")
	}
	m := newTestManager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"hugetlb.2MB.max": "4194304"}}); err != nil {
		t.Fatalf("Set unified: %v", err)
	}
	if got := readTrim(t, m.Path(""), "hugetlb.2MB.max"); got != "4194304" {
		t.Errorf("hugetlb.2MB.max = %q", got)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Hugetlb["2MB"]; !ok {
		t.Errorf("no 2MB hugetlb stats: %v", st.Hugetlb)
	}
}
