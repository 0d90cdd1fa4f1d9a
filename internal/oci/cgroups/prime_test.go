package cgroups

import (
	"os"
	"testing"
)

// TestPrimeMigrationLeavesCgroupsAlone: the priming write is a no-op
// migration; the process must stay in exactly the cgroups it was in.
func TestPrimeMigrationLeavesCgroupsAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write cgroup.procs")
	}
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	PrimeMigration()
	PrimeMigration()
	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatalf("PrimeMigration moved the process:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
