package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are created in every container's /dev (runtime-spec
// "Default Devices").
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// withDefaultDevices returns the spec's resources with device cgroup rules
// appended that allow what every container needs whatever its rules say
// (as runc does): mknod of any node, the default devices, the pty devices,
// /dev/console and /dev/net/tun, plus each node listed in linux.devices.
func withDefaultDevices(spec *specs.Spec) *specs.LinuxResources {
	res := *spec.Linux.Resources
	if len(res.Devices) == 0 {
		return &res
	}
	i64 := func(v int64) *int64 { return &v }
	rules := append([]specs.LinuxDeviceCgroup{}, res.Devices...)
	rules = append(rules,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"})
	for _, d := range defaultDevices {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	res.Devices = rules
	return &res
}

func (r *rootfsSetup) createDevices() error {
	listed := map[string]bool{}
	for _, d := range r.spec.Linux.Devices {
		listed[filepath.Clean(d.Path)] = true
		if err := r.createDevice(d); err != nil {
			return err
		}
	}
	for _, d := range defaultDevices {
		if listed[d.Path] {
			continue
		}
		mode := os.FileMode(0o666)
		d.FileMode = &mode
		if err := r.createDevice(d); err != nil {
			return err
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		t, err := r.target(l[1])
		if err != nil {
			return err
		}
		if err := os.Symlink(l[0], t); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create %s: %w", l[1], err)
		}
	}
	// /dev/ptmx must be the container's own devpts instance.
	if pts, err := r.target("/dev/pts/ptmx"); err == nil {
		if _, err := os.Lstat(pts); err == nil {
			t, _ := r.target("/dev/ptmx")
			os.Remove(t)
			if err := os.Symlink("pts/ptmx", t); err != nil {
				return fmt.Errorf("create /dev/ptmx: %w", err)
			}
		}
	}
	return nil
}

func (r *rootfsSetup) createDevice(d specs.LinuxDevice) error {
	t, err := r.target(d.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	if fi, err := os.Lstat(t); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("device %s: a directory is in the way", d.Path)
		}
		os.Remove(t)
	}
	err = unix.Mknod(t, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if errors.Is(err, unix.EPERM) {
		// In a user namespace mknod is refused: bind the host's node.
		if err := touchIn(t); err != nil {
			return err
		}
		if err := unix.Mount(d.Path, t, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind device %s: %w", d.Path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mknod %s: %w", d.Path, err)
	}
	// mknod applies the umask; the spec's mode is what counts.
	if err := unix.Chmod(t, perm); err != nil {
		return fmt.Errorf("chmod %s: %w", d.Path, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Lchown(t, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", d.Path, err)
	}
	return nil
}
