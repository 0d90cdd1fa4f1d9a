package cgroups

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// SignalAll sends sig to every process in the cgroup and its sub-cgroups
// (hullrt kill --all, delete --force). For SIGKILL on cgroup2 it writes
// cgroup.kill, which the kernel applies atomically; otherwise the cgroup is
// frozen while the pids are listed and signalled, so nothing forks away
// from the signal, then thawed (SIGKILL is delivered as the tasks thaw).
// A cgroup that cannot be frozen is signalled without freezing.
func SignalAll(m Manager, sig unix.Signal) error {
	if v2, ok := m.(*v2Manager); ok && sig == unix.SIGKILL && exists(v2.dir, "cgroup.kill") {
		return writeFile(v2.dir, "cgroup.kill", "1")
	}
	wasFrozen := false
	if st, err := FreezerState(m); err == nil && st == "FROZEN" {
		wasFrozen = true
	}
	frozen := wasFrozen || m.Freeze() == nil
	pids, err := m.Pids()
	if err != nil {
		if frozen && !wasFrozen {
			_ = m.Thaw()
		}
		return err
	}
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("cgroups: signal %d: %w", pid, err))
		}
	}
	// A paused container stays paused for other signals; SIGKILL must
	// thaw it or the processes can never die.
	if frozen && (!wasFrozen || sig == unix.SIGKILL) {
		if err := m.Thaw(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
