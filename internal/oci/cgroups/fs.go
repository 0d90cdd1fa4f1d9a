package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeFile writes value to dir/name in one write(2): cgroupfs parses each
// write as one command, so it must not be split. The file is never created
// (cgroupfs files exist or the controller is absent). Raw syscalls, not
// os.File: kernfs files are pollable, and registering every one with Go's
// netpoller costs more than the write itself.
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	fd, err := openRetry(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", value, p, err)
	}
	for {
		_, err = unix.Write(fd, []byte(value))
		if err != unix.EINTR {
			break
		}
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", value, p, err)
	}
	return nil
}

func openRetry(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// readFile reads a (small) cgroup file with raw syscalls, see writeFile.
func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	fd, err := openRetry(p, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("cgroups: open %s: %w", p, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cgroups: read %s: %w", p, err)
		}
		if m == 0 {
			return string(buf[:n]), nil
		}
		n += m
	}
}

// parseUint parses a cgroup number; "max" (v2) and v1's "-1" style huge
// values map to math.MaxUint64.
func parseUint(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative values (v1 "-1" in a few files) mean unlimited.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return math.MaxUint64, nil
		}
		return 0, fmt.Errorf("cgroups: parse %q: %w", s, err)
	}
	return v, nil
}

func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(s)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", dir, name, err)
	}
	return v, nil
}

// readOptUint is readUint where an absent file (controller feature missing
// on this kernel) reads as 0.
func readOptUint(dir, name string) (uint64, error) {
	v, err := readUint(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return v, err
}

// readKV parses "key value" lines (memory.stat, cpu.stat, memory.events...).
func readKV(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := parseUint(v); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// readProcs reads the pids listed in dir/cgroup.procs.
func readProcs(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroups: %s/cgroup.procs: bad pid %q", dir, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// walkProcs collects the pids of dir and every sub-cgroup below it.
func walkProcs(dir string) ([]int, error) {
	var all []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // a sub-cgroup removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readProcs(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		all = append(all, pids...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cgroups: list pids of %s: %w", dir, err)
	}
	return all, nil
}

// removeTree removes dir and its sub-cgroups, deepest first. cgroupfs
// directories are removed with rmdir even though they hold files. EBUSY
// (a task still exiting, a css still being released) is retried for about
// a second. The common case, a leaf, is one rmdir: the listing (dozens of
// control files per hierarchy) is read only when that fails.
func removeTree(dir string) error {
	if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cgroups: remove %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for attempt := 0; ; attempt++ {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || attempt == 10 {
			return fmt.Errorf("cgroups: remove %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// waitFor polls cond until it reports done or timeout passes. Used for the
// freezer, whose state change the kernel completes asynchronously.
func waitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Microsecond
	for {
		done, err := cond()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}

var errTimeout = errors.New("timed out")
