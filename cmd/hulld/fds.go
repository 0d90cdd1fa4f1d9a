package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// markInheritedCloexec sets close-on-exec on every fd above stderr that
// hulld inherited from whatever started it (a shell's stray pipe, a
// supervisor's socket). Go's exec only dups 0-2 and ExtraFiles into a
// child but never closes the rest, so without this every monitor, pause
// process and container would hold those fds. It must run before anything
// spawns; fds Go opens later are close-on-exec already, so marking them
// again (the directory fd read below, the runtime's own) is harmless.
func markInheritedCloexec() error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list inherited fds: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list inherited fds: %w", err)
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd <= 2 {
			continue
		}
		// An fd listed a moment ago may be gone (the directory fd
		// itself after Close, or one the runtime closed): EBADF is fine.
		syscall.CloseOnExec(fd)
	}
	return nil
}
