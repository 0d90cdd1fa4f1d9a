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
	// The spec's modes are exact: no umask on mknod (a later chmod by path
	// could be redirected). The process's own umask is set before execve.
	unix.Umask(0)
	// One handle per parent directory (all of them /dev, mostly): the
	// in-root resolution costs several syscalls, and a held directory fd
	// is as safe for the next node as for the first.
	dirs := map[string]int{}
	defer func() {
		for _, fd := range dirs {
			unix.Close(fd)
		}
	}()
	listed := map[string]bool{}
	for _, d := range r.spec.Linux.Devices {
		listed[filepath.Clean(d.Path)] = true
		if err := r.createDevice(d, dirs); err != nil {
			return err
		}
	}
	for _, d := range defaultDevices {
		if listed[d.Path] {
			continue
		}
		mode := os.FileMode(0o666)
		d.FileMode = &mode
		if err := r.createDevice(d, dirs); err != nil {
			return err
		}
	}
	dev, err := r.dirFD("/dev", dirs)
	if err != nil {
		return fmt.Errorf("device links: %w", err)
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create /dev/%s: %w", l[1], err)
		}
	}
	// /dev/ptmx must be the container's own devpts instance.
	var st unix.Stat_t
	if unix.Fstatat(dev, "pts/ptmx", &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		unix.Unlinkat(dev, "ptmx", 0)
		if err := unix.Symlinkat("pts/ptmx", dev, "ptmx"); err != nil {
			return fmt.Errorf("create /dev/ptmx: %w", err)
		}
	}
	return nil
}

// dirFD returns a directory fd of dir inside the rootfs (created if
// missing), from dirs or resolved and added to it.
func (r *rootfsSetup) dirFD(dir string, dirs map[string]int) (int, error) {
	if fd, ok := dirs[dir]; ok {
		return fd, nil
	}
	h, err := r.mkdirAllHandle(dir)
	if err != nil {
		return -1, err
	}
	defer h.Close()
	// Reopened as a real directory fd: mknodat and friends refuse O_PATH.
	fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir, err)
	}
	dirs[dir] = fd
	return fd, nil
}

// createDevice makes the node with *at calls relative to a handle of its
// parent directory resolved inside the rootfs (see dirFD): no path
// component is looked up again after the check, and the final one is never
// followed.
func (r *rootfsSetup) createDevice(d specs.LinuxDevice, dirs map[string]int) error {
	dest := filepath.Clean(d.Path)
	dfd, err := r.dirFD(filepath.Dir(dest), dirs)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	base := filepath.Base(dest)
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
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("device %s: a directory is in the way", d.Path)
		}
		unix.Unlinkat(dfd, base, 0)
	}
	err = unix.Mknodat(dfd, base, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if errors.Is(err, unix.EPERM) {
		// In a user namespace mknod is refused: bind the host's node.
		t, err := r.newMountTarget(dest, false)
		if err != nil {
			return err
		}
		defer t.h.Close()
		if err := unix.Mount(d.Path, t.path(), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind device %s: %w", d.Path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mknod %s: %w", d.Path, err)
	}

	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", d.Path, err)
	}
	return nil
}
