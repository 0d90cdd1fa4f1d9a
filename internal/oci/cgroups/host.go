package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"hull/internal/errdefs"
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	mountpoint string // e.g. /sys/fs/cgroup/memory
	root       string // the hierarchy path mounted there, usually "/"
}

// system is the host's cgroup mounts and the calling process's own cgroups,
// read once per process: mounts do not move under a running runtime.
type system struct {
	layout Layout
	v1     map[string]hierarchy // controller (or "name=systemd") → mount
	v2     *hierarchy           // nil when no cgroup2 is mounted
	self   map[string]string    // controller → own cgroup path; "" = cgroup2
}

var (
	hostOnce sync.Once
	hostSys  *system
	hostErr  error
)

func hostSystem() (*system, error) {
	hostOnce.Do(func() {
		hostSys, hostErr = readSystem("/proc/self/mountinfo", "/proc/self/cgroup")
	})
	return hostSys, hostErr
}

// readSystem builds a system from a mountinfo and a /proc/PID/cgroup file.
func readSystem(mountinfo, selfCgroup string) (*system, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("cgroups: read mounts: %w", err)
	}
	defer f.Close()
	s, err := parseMountinfo(f)
	if err != nil {
		return nil, err
	}
	g, err := os.Open(selfCgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroups: read own cgroup: %w", err)
	}
	defer g.Close()
	if s.self, err = parseProcCgroup(g); err != nil {
		return nil, err
	}
	return s, nil
}

// preferred reports whether a mount under /sys/fs/cgroup should win over an
// earlier one: bind mounts of a hierarchy elsewhere (a container's view, a
// test) must not be picked over the canonical one.
func preferred(mountpoint string) bool {
	return mountpoint == "/sys/fs/cgroup" || strings.HasPrefix(mountpoint, "/sys/fs/cgroup/")
}

func parseMountinfo(r io.Reader) (*system, error) {
	s := &system{v1: map[string]hierarchy{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - cgroup cgroup rw,memory
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		fstype, super := fields[sep+1], fields[sep+3]
		h := hierarchy{root: unescapeMount(fields[3]), mountpoint: unescapeMount(fields[4])}
		switch fstype {
		case "cgroup2":
			if s.v2 == nil || (!preferred(s.v2.mountpoint) && preferred(h.mountpoint)) {
				hh := h
				s.v2 = &hh
			}
		case "cgroup":
			for _, opt := range strings.Split(super, ",") {
				if !isV1Controller(opt) {
					continue
				}
				if old, ok := s.v1[opt]; !ok || (!preferred(old.mountpoint) && preferred(h.mountpoint)) {
					s.v1[opt] = h
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read mounts: %w", err)
	}
	realV1 := false
	for c := range s.v1 {
		if !strings.HasPrefix(c, "name=") {
			realV1 = true
		}
	}
	switch {
	case realV1 && s.v2 != nil:
		s.layout = Hybrid
	case realV1:
		s.layout = Legacy
	case s.v2 != nil:
		s.layout = Unified
	default:
		return nil, fmt.Errorf("cgroups: no cgroup hierarchy is mounted: %w", errdefs.ErrFailedPrecondition)
	}
	return s, nil
}

// isV1Controller reports whether a cgroup v1 super option names a controller
// (or a named hierarchy) rather than a mount flag.
func isV1Controller(opt string) bool {
	switch opt {
	case "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer",
		"hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc":
		return true
	}
	return strings.HasPrefix(opt, "name=")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup reads /proc/PID/cgroup ("4:memory:/a/b", "0::/c").
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read own cgroup: %w", err)
	}
	return out, nil
}

// dirFor maps a cgroup path (relative to the hierarchy root, as in
// /proc/self/cgroup) to its directory under the hierarchy's mount.
func (h hierarchy) dirFor(cgPath string) string {
	if h.root != "/" && (cgPath == h.root || strings.HasPrefix(cgPath, h.root+"/")) {
		cgPath = strings.TrimPrefix(cgPath, h.root)
	}
	return filepath.Join(h.mountpoint, cgPath)
}
