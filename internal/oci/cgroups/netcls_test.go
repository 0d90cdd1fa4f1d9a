package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// net_cls and net_prio are not mounted on this project's hosts, and a test
// must not mount them: a v1 net_cls/net_prio hierarchy can never be
// destroyed again (every socket keeps a reference to its cgroup there), so
// it would stay in /proc/self/cgroup unmounted and break other runtimes'
// cgroup loading (containerd's shim gives up on it) until the next reboot.
// The file-writing logic is therefore checked against a fake tree.
func TestV1NetClsNetPrioFakeTree(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"net_cls.classid", "net_prio.ifpriomap"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &specs.LinuxResources{Network: &specs.LinuxNetwork{
		ClassID:    ptr(uint32(0x100001)),
		Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 5}},
	}}
	if err := setNetClsV1(dir, r); err != nil {
		t.Fatal(err)
	}
	if err := setNetPrioV1(dir, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := readFile(dir, "net_cls.classid"); strings.TrimSpace(got) != "1048577" {
		t.Errorf("net_cls.classid = %q, want 1048577", got)
	}
	if got, _ := readFile(dir, "net_prio.ifpriomap"); !strings.Contains(got, "lo 5") {
		t.Errorf("net_prio.ifpriomap = %q, want a \"lo 5\" line", got)
	}
	// Bad interface names never reach the kernel.
	bad := &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "../x", Priority: 1}}}}
	if err := setNetPrioV1(dir, bad); err == nil {
		t.Error("interface name with / accepted")
	}
}
