package cgroups

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// newRealV2 returns a manager for a fresh directory in the host's real
// cgroup2 mount (on hybrid hosts the one at /sys/fs/cgroup/unified, which
// has no resource controllers but full membership, freezer and device
// eBPF support), removed at cleanup.
func newRealV2(t *testing.T) *v2Manager {
	t.Helper()
	s := requireHost(t, Hybrid, Unified)
	m := newV2(s.v2.mountpoint, filepath.Join(s.v2.mountpoint, testName(t)))
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return m
}

func TestV2RealPlacementFreezeStats(t *testing.T) {
	m := newRealV2(t)
	// A busy loop is "R"; the v2 freezer traps it in a sleeping state.
	p := startProc(t, "while :; do :; done")
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := "/" + filepath.Base(m.dir)
	if got := procCgroups(t, p.pid())[""]; !strings.HasSuffix(got, want) {
		t.Errorf("process in %q, want ...%q", got, want)
	}
	if pids, err := m.Pids(); err != nil || !slices.Equal(pids, []int{p.pid()}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if st, _ := FreezerState(m); st != "FROZEN" {
		t.Errorf("FreezerState = %q", st)
	}
	if st := procState(t, p.pid()); !strings.HasPrefix(st, "S") {
		t.Errorf("frozen busy loop state %q, want S", st)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.CPUUsageNanoseconds() == 0 {
		t.Error("busy loop used no CPU")
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if st, _ := FreezerState(m); st != "THAWED" {
		t.Errorf("FreezerState = %q", st)
	}
	waitState(t, p.pid(), "R")
	if !hasController(m.dir, "memory") {
		if _, err := m.OOMKillCount(); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("OOMKillCount without memory controller: %v", err)
		}
	}
}

// fakeV2 builds a fake cgroup2 tree: mount/a/b with the given controller
// files (empty) in the leaf and controller lists at every level.
func fakeV2(t *testing.T, files map[string]string) *v2Manager {
	t.Helper()
	mount := t.TempDir()
	ctrls := "cpuset cpu io memory hugetlb pids rdma"
	leaf := filepath.Join(mount, "a", "b")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{mount, filepath.Join(mount, "a")} {
		write(t, d, "cgroup.controllers", ctrls)
		write(t, d, "cgroup.subtree_control", "")
	}
	write(t, leaf, "cgroup.controllers", ctrls)
	write(t, leaf, "cgroup.procs", "")
	for name, content := range files {
		write(t, leaf, name, content)
	}
	return newV2(mount, leaf)
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestV2FakeApplyEnablesControllersAlongThePath(t *testing.T) {
	m := fakeV2(t, nil)
	if err := m.Apply(-1); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := "+cpuset +cpu +io +memory +hugetlb +pids +rdma"
	for _, d := range []string{m.mount, filepath.Join(m.mount, "a")} {
		if got := readTrim(t, d, "cgroup.subtree_control"); got != want {
			t.Errorf("%s/cgroup.subtree_control = %q, want %q", d, got, want)
		}
	}
	if exists(m.dir, "cgroup.subtree_control") {
		t.Error("leaf subtree_control written: no internal processes rule broken")
	}
	// A directory outside the mount is refused.
	if err := newV2(m.mount, "/elsewhere").Apply(-1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("outside mount: %v", err)
	}
}

func TestV2FakeSetConvertsAndWrites(t *testing.T) {
	files := map[string]string{}
	for _, f := range []string{"cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems",
		"memory.max", "memory.low", "memory.swap.max", "memory.high", "pids.max", "io.weight", "io.max",
		"hugetlb.2MB.max", "rdma.max"} {
		files[f] = ""
	}
	files["cpu.max"] = "max 100000"
	files["memory.current"] = "5000\n"
	m := fakeV2(t, files)
	r := &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)),
			Burst: ptr(uint64(1000)), Idle: ptr(int64(0)), Cpus: "0-1", Mems: "0"},
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(96 << 20)), Reservation: ptr(int64(32 << 20)),
			Swappiness: ptr(uint64(30)), DisableOOMKiller: ptr(true)},
		Pids: &specs.LinuxPids{Limit: ptr(int64(42))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500)),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1048576}}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 8 << 20}},
		Rdma:           map[string]specs.LinuxRdma{"mlx4_0": {HcaHandles: ptr(uint32(2)), HcaObjects: ptr(uint32(2000))}},
		Unified:        map[string]string{"memory.high": "50000000"},
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	for file, want := range map[string]string{
		"cpu.weight":      "39", // 1 + (1024-2)*9999/262142
		"cpu.max":         "50000 100000",
		"cpu.max.burst":   "1000",
		"cpu.idle":        "0",
		"cpuset.cpus":     "0-1",
		"cpuset.mems":     "0",
		"memory.max":      "67108864",
		"memory.swap.max": "33554432", // memory+swap minus memory
		"memory.low":      "33554432",
		"memory.high":     "50000000",
		"pids.max":        "42",
		"io.weight":       "default 4950", // 1 + (500-10)*9999/990
		"io.max":          "8:0 rbps=1048576",
		"hugetlb.2MB.max": "8388608",
		"rdma.max":        "mlx4_0 hca_handle=2 hca_object=2000",
	} {
		if got := readTrim(t, m.dir, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// Period alone keeps the current quota; -1 limits become "max".
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr(uint64(200000))}, Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, m.dir, "cpu.max"); got != "50000 200000" {
		t.Errorf("cpu.max = %q, want \"50000 200000\"", got)
	}
	if got := readTrim(t, m.dir, "memory.max"); got != "max" {
		t.Errorf("memory.max = %q", got)
	}
	if got := readTrim(t, m.dir, "memory.swap.max"); got != "max" {
		t.Errorf("memory.swap.max = %q (unlimited memory means unlimited swap)", got)
	}
	errCases := []struct {
		name string
		r    *specs.LinuxResources
		want error
	}{
		{"realtime", &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1000))}}, errdefs.ErrInvalidArgument},
		{"swap without limit", &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(int64(1 << 20))}}, errdefs.ErrInvalidArgument},
		{"unified slash", &specs.LinuxResources{Unified: map[string]string{"a/memory.max": "1"}}, errdefs.ErrInvalidArgument},
		{"unified dotdot", &specs.LinuxResources{Unified: map[string]string{"..": "1"}}, errdefs.ErrInvalidArgument},
		{"unified procs", &specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, errdefs.ErrInvalidArgument},
		{"unified missing controller", &specs.LinuxResources{Unified: map[string]string{"misc.max": "1"}}, errdefs.ErrFailedPrecondition},
		{"limit below usage", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1000)), CheckBeforeUpdate: ptr(true)}}, errdefs.ErrFailedPrecondition},
		{"bad page size", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}, errdefs.ErrInvalidArgument},
	}
	for _, c := range errCases {
		if err := m.Set(c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestV2FakeBFQWeight(t *testing.T) {
	m := fakeV2(t, map[string]string{"io.bfq.weight": "", "io.weight": ""})
	if err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(500))}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, m.dir, "io.bfq.weight"); got != "500" {
		t.Errorf("io.bfq.weight = %q, want 500 (BFQ keeps the blkio scale)", got)
	}
}

func TestV2FakeStats(t *testing.T) {
	m := fakeV2(t, map[string]string{
		"cpu.stat":              "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 10\nnr_throttled 2\nthrottled_usec 50\n",
		"memory.current":        "1000000\n",
		"memory.max":            "max\n",
		"memory.peak":           "2000000\n",
		"memory.stat":           "anon 300000\nfile 500000\ninactive_file 200000\npgfault 77\npgmajfault 3\n",
		"memory.events":         "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
		"memory.swap.current":   "100\n",
		"memory.swap.max":       "max\n",
		"pids.current":          "3\n",
		"pids.max":              "max\n",
		"io.stat":               "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
		"cpuset.effective_cpus": "0-1,4\n",
		"cpuset.effective_mems": "0\n",
	})
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.CPUUsageNanoseconds() != 1e6 || st.CPU.Usage.User != 6e5 || st.CPU.Usage.Kernel != 4e5 {
		t.Errorf("cpu usage %+v", st.CPU.Usage)
	}
	if st.CPU.Throttling != (Throttling{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 50000}) {
		t.Errorf("throttling %+v", st.CPU.Throttling)
	}
	if u := st.Memory.Usage; u.Usage != 1e6 || u.Limit != math.MaxUint64 || u.Max != 2e6 || u.Failcnt != 4 {
		t.Errorf("memory usage %+v", u)
	}
	if st.MemoryWorkingSetBytes() != 8e5 || st.MemoryRSSBytes() != 3e5 || st.Memory.Cache != 5e5 {
		t.Errorf("working set %d rss %d cache %d", st.MemoryWorkingSetBytes(), st.MemoryRSSBytes(), st.Memory.Cache)
	}
	if st.PageFaults() != 77 || st.MajorPageFaults() != 3 || st.MemoryAvailableBytes() != 0 {
		t.Errorf("faults %d/%d available %d", st.PageFaults(), st.MajorPageFaults(), st.MemoryAvailableBytes())
	}
	if sw := st.Memory.Swap; sw.Usage != 1000100 || sw.Limit != math.MaxUint64 {
		t.Errorf("swap %+v (v1 meaning: memory+swap)", sw)
	}
	if st.Pids.Current != 3 || st.Pids.Limit != math.MaxUint64 {
		t.Errorf("pids %+v", st.Pids)
	}
	wantIO := []BlkioEntry{{8, 0, "Read", 4096}, {8, 0, "Write", 8192}}
	if !slices.Equal(st.Blkio.IoServiceBytesRecursive, wantIO) {
		t.Errorf("io bytes %+v", st.Blkio.IoServiceBytesRecursive)
	}
	if !slices.Equal(st.CPUSet.CPUs, []uint16{0, 1, 4}) {
		t.Errorf("cpus %v", st.CPUSet.CPUs)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 1 {
		t.Errorf("OOMKillCount = %d, %v", n, err)
	}
	// runc `events --stats` field names.
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cpu":{"usage":{"total":1000000`, `"throttling":{"periods":10`, `"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":4096}`, `"pids":{"current":3`, `"raw":{`, `"hugetlb":{`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("stats JSON lacks %s: %s", key, b)
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 39, 262144: 10000, 1 << 30: 10000} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint64]uint64{10: 1, 100: 910, 1000: 10000} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	cases := []struct {
		swap, mem, want int64
		err             bool
	}{
		{0, 0, 0, false},
		{0, -1, -1, false},
		{-1, 100, -1, false},
		{300, 100, 200, false},
		{100, 100, 0, false},
		{50, 100, 0, true},
		{100, 0, 0, true},
		{100, -1, 0, true},
	}
	for _, c := range cases {
		got, err := SwapToV2(c.swap, c.mem)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("SwapToV2(%d, %d) = %d, %v; want %d, err %v", c.swap, c.mem, got, err, c.want, c.err)
		}
	}
}

// New on a cgroup2-only host: the whole path from the mount down is
// created with controllers enabled, then limits land in the leaf.
func TestUnifiedHostNewManager(t *testing.T) {
	mount := t.TempDir()
	ctrls := "cpu memory pids"
	dirs := []string{mount, filepath.Join(mount, "kubepods"), filepath.Join(mount, "kubepods", "pod1"), filepath.Join(mount, "kubepods", "pod1", "c1")}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, d, "cgroup.controllers", ctrls)
		write(t, d, "cgroup.subtree_control", "")
	}
	leaf := dirs[len(dirs)-1]
	write(t, leaf, "memory.max", "")
	write(t, leaf, "cgroup.procs", "")
	s := &system{layout: Unified, v2: &hierarchy{mountpoint: mount, root: "/"}, self: map[string]string{"": "/user.slice"}}
	mgr, err := s.newManager("/kubepods/pod1/c1", "c1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mgr.Path("") != leaf || mgr.Path("memory") != "" || len(mgr.Paths()) != 1 {
		t.Fatalf("paths %v", mgr.Paths())
	}
	if err := mgr.Apply(-1); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs[:3] {
		if got := readTrim(t, d, "cgroup.subtree_control"); got != "+cpu +memory +pids" {
			t.Errorf("%s subtree_control %q", d, got)
		}
	}
	if err := mgr.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20))}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, leaf, "memory.max"); got != "1048576" {
		t.Errorf("memory.max %q", got)
	}
	// Relative paths go below the runtime's own cgroup.
	rel, err := s.newManager("sub/c2", "c2", Options{})
	if err != nil || rel.Path("") != filepath.Join(mount, "user.slice/sub/c2") {
		t.Errorf("relative: %v %v", rel, err)
	}
	// Load accepts only the unified directory here.
	if _, err := s.load(map[string]string{"": leaf}); err != nil {
		t.Errorf("load: %v", err)
	}
	if _, err := s.load(map[string]string{"memory": leaf}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("load v1 key on unified host: %v", err)
	}
}
