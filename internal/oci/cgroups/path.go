package cgroups

import (
	"fmt"
	"path/filepath"
	"strings"

	"hull/internal/errdefs"
)

// target is a validated cgroupsPath: when abs, path is relative to the root of
// every hierarchy; otherwise it is relative to the caller's own cgroup.
type target struct {
	path string
	abs  bool
}

// defaultParent is where containers without a cgroupsPath go.
const defaultParent = "/hull"

func resolveTarget(cgroupsPath, containerID string, opts Options) (target, error) {
	if strings.ContainsRune(cgroupsPath, 0) {
		return target{}, fmt.Errorf("cgroups: cgroupsPath %q contains a NUL byte: %w", cgroupsPath, errdefs.ErrInvalidArgument)
	}
	if opts.Systemd {
		if cgroupsPath == "" {
			if err := checkName("container id", containerID); err != nil {
				return target{}, err
			}
			cgroupsPath = "system.slice:hull:" + containerID
		}
		p, err := systemdPath(cgroupsPath)
		if err != nil {
			return target{}, err
		}
		return target{path: p, abs: true}, nil
	}
	if cgroupsPath == "" {
		if err := checkName("container id", containerID); err != nil {
			return target{}, err
		}
		return target{path: defaultParent + "/" + containerID, abs: true}, nil
	}
	if err := checkPath(cgroupsPath); err != nil {
		return target{}, err
	}
	abs := filepath.IsAbs(cgroupsPath)
	p := filepath.Clean(cgroupsPath)
	// A container never owns a hierarchy's root or the runtime's own
	// cgroup: Destroy would remove what is below them.
	if !abs && p == "." {
		return target{}, fmt.Errorf("cgroups: relative cgroupsPath %q names the runtime's own cgroup: %w", cgroupsPath, errdefs.ErrInvalidArgument)
	}
	if abs && p == "/" {
		return target{}, fmt.Errorf("cgroups: cgroupsPath %q names the root cgroup: %w", cgroupsPath, errdefs.ErrInvalidArgument)
	}
	return target{path: p, abs: abs}, nil
}

// checkPath rejects ".." components: a cgroupsPath must never climb out of
// the hierarchy (absolute) or out of the runtime's cgroup (relative).
func checkPath(p string) error {
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("cgroups: cgroupsPath %q has a \"..\" component: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// checkName validates one path component (a container id, a unit name).
func checkName(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("cgroups: invalid %s %q: %w", what, s, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkAbsDir validates a directory handed to Load.
func checkAbsDir(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return fmt.Errorf("cgroups: directory %q is not an absolute clean path: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

// systemdPath maps "slice:prefix:name" to the cgroupfs path of the unit
// systemd would create: the slice expanded, then the scope.
func systemdPath(s string) (string, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("cgroups: systemd cgroupsPath %q is not \"slice:prefix:name\": %w", s, errdefs.ErrInvalidArgument)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", err
	}
	if err := checkName("systemd unit name", name); err != nil {
		return "", err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if strings.Contains(prefix, "/") {
			return "", fmt.Errorf("cgroups: invalid systemd scope prefix %q: %w", prefix, errdefs.ErrInvalidArgument)
		}
		unit = name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
	}
	return filepath.Join(dir, unit), nil
}

// expandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice", the
// way systemd nests slices by their dash-separated name.
func expandSlice(slice string) (string, error) {
	bad := func() error {
		return fmt.Errorf("cgroups: invalid systemd slice %q: %w", slice, errdefs.ErrInvalidArgument)
	}
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || name == "" || strings.ContainsAny(name, "/\x00") {
		return "", bad()
	}
	if name == "-" {
		return "/", nil
	}
	var path strings.Builder
	prefix := ""
	for _, comp := range strings.Split(name, "-") {
		if comp == "" {
			return "", bad()
		}
		path.WriteString("/" + prefix + comp + ".slice")
		prefix += comp + "-"
	}
	return path.String(), nil
}

// v1Dir is the directory of target t in the v1 hierarchy of controller c.
func (s *system) v1Dir(c string, t target) string {
	h := s.v1[c]
	if t.abs {
		return filepath.Join(h.mountpoint, t.path)
	}
	own, ok := s.self[c]
	if !ok {
		own = "/"
	}
	return filepath.Join(h.dirFor(own), t.path)
}

// v2Dir is the directory of target t in the cgroup2 hierarchy.
func (s *system) v2Dir(t target) string {
	if t.abs {
		return filepath.Join(s.v2.mountpoint, t.path)
	}
	own, ok := s.self[""]
	if !ok {
		own = "/"
	}
	return filepath.Join(s.v2.dirFor(own), t.path)
}

func (s *system) newManager(cgroupsPath, containerID string, opts Options) (Manager, error) {
	t, err := resolveTarget(cgroupsPath, containerID, opts)
	if err != nil {
		return nil, err
	}
	if s.layout == Unified {
		return newV2(s.v2.mountpoint, s.v2Dir(t)), nil
	}
	paths := map[string]string{}
	for c := range s.v1 {
		paths[c] = s.v1Dir(c, t)
	}
	m := &v1Manager{paths: paths}
	if s.layout == Hybrid {
		m.unified = newV2(s.v2.mountpoint, s.v2Dir(t))
	}
	return m, nil
}

func (s *system) load(paths map[string]string) (Manager, error) {
	if s.layout == Unified {
		dir, ok := paths[""]
		if !ok || len(paths) != 1 {
			return nil, fmt.Errorf("cgroups: load: this host is cgroup2-only; want exactly the unified directory: %w", errdefs.ErrInvalidArgument)
		}
		if err := s.under(s.v2.mountpoint, dir); err != nil {
			return nil, err
		}
		return newV2(s.v2.mountpoint, dir), nil
	}
	m := &v1Manager{paths: map[string]string{}}
	for c, dir := range paths {
		if c == "" {
			if s.v2 == nil {
				return nil, fmt.Errorf("cgroups: load: unified directory %q but no cgroup2 mount: %w", dir, errdefs.ErrInvalidArgument)
			}
			if err := s.under(s.v2.mountpoint, dir); err != nil {
				return nil, err
			}
			m.unified = newV2(s.v2.mountpoint, dir)
			continue
		}
		h, ok := s.v1[c]
		if !ok {
			// The controller was unmounted since: nothing to manage there.
			continue
		}
		if err := s.under(h.mountpoint, dir); err != nil {
			return nil, err
		}
		m.paths[c] = dir
	}
	return m, nil
}

// under checks that dir lies strictly inside mountpoint (never the root).
func (s *system) under(mountpoint, dir string) error {
	if strings.HasPrefix(dir, mountpoint+"/") {
		return nil
	}
	return fmt.Errorf("cgroups: directory %q is outside the hierarchy at %s: %w", dir, mountpoint, errdefs.ErrInvalidArgument)
}
