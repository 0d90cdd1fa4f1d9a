package monitor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStart returns the start time (clock ticks since boot, field 22 of
// /proc/PID/stat) and the state letter of pid. The start time tells a live
// process from a later one that reused its pid.
func procStart(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+2:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return start, f[0][0], nil
}

// alive reports whether pid is still the process that started at start and
// has not exited (a zombie counts as exited).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, st, err := procStart(pid)
	return err == nil && s == start && st != 'Z' && st != 'X'
}
