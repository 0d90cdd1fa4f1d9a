package cgroups

import (
	"os"
	"sort"
	"strconv"
)

// PrimeMigration makes the caller's next cgroup migration cheaper. Moving a
// process between cgroups takes the kernel's global threadgroup rwsem for
// writing, and the first writer after a quiet spell waits for a whole RCU
// grace period (5–15 ms on a small VM); writers that follow within about a
// grace period do not wait again. Writing the calling process into the
// cgroup it is already in (a no-op migration) starts that wait early, so a
// runtime can call this in the background while it decodes the spec and
// spawns the init, and its real migration then waits for at most the rest
// of the grace period already under way. Errors are ignored: it is only a
// hint, and a failed write changes nothing.
func PrimeMigration() {
	s, err := hostSystem()
	if err != nil {
		return
	}
	dir := ""
	// Any hierarchy will do (the rwsem is shared by all). The cgroup2 one
	// first on hybrid hosts: a thread placed with JoinSelf in v1 cgroups
	// stays where it is. Then v1, sorted so that the choice is stable.
	if s.v2 != nil {
		if own, ok := s.self[""]; ok {
			dir = s.v2.dirFor(own)
		}
	}
	ctrls := make([]string, 0, len(s.v1))
	for c := range s.v1 {
		ctrls = append(ctrls, c)
	}
	sort.Strings(ctrls)
	for _, c := range ctrls {
		if own, ok := s.self[c]; ok && dir == "" {
			dir = s.v1[c].dirFor(own)
			break
		}
	}
	if dir == "" {
		return
	}
	f, err := os.OpenFile(dir+"/cgroup.procs", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	f.WriteString(strconv.Itoa(os.Getpid()))
	f.Close()
}
