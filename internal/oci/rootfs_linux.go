package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rootfsSetup builds the container's mount tree. prepare runs in the new
// mount namespace while the host tree is still visible (so that bind
// sources and hook paths resolve on the host); enter switches the root;
// finish applies what must be done from inside (masked and read-only
// paths, read-only root, root propagation).
type rootfsSetup struct {
	rootfs      string
	spec        *specs.Spec
	bundle      string
	cgroupBinds []cgroupBind
	waitCgroups func() error     // the cgroup directories exist once it returns
	idmapped    map[int]*os.File // detached idmapped mounts by index in spec.Mounts
	root        *os.File         // O_PATH handle of the rootfs, for race-free lookups
	cur         *os.File         // idmapped tree of the mount being made, if any
}

// mountTarget is a mount point held as an O_PATH handle resolved inside the
// rootfs (openat2 RESOLVE_IN_ROOT, see inroot_linux.go): mount(2)
// is given /proc/self/fd/N, so a symlink swapped in after the lookup (by
// another container sharing a volume) cannot redirect the mount.
type mountTarget struct {
	root *os.File
	dest string
	h    *os.File
}

func (t *mountTarget) path() string { return "/proc/self/fd/" + strconv.Itoa(int(t.h.Fd())) }

// reopen resolves dest again, so that the handle names what was just
// mounted on it rather than the directory underneath.
func (t *mountTarget) reopen() (string, error) {
	h, err := openInRoot(t.root, t.dest)
	if err != nil {
		return "", fmt.Errorf("resolve %s in rootfs: %w", t.dest, err)
	}
	t.h.Close()
	t.h = h
	return t.path(), nil
}

// newMountTarget creates the mount point (a directory, or an empty file for
// a file bind mount) without following symlinks out of the rootfs.
func (r *rootfsSetup) newMountTarget(dest string, dir bool) (*mountTarget, error) {
	if dir {
		h, err := r.mkdirAllHandle(dest)
		if err != nil {
			return nil, fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return &mountTarget{root: r.root, dest: dest, h: h}, nil
	}
	parent, err := r.mkdirAllHandle(filepath.Dir(dest))
	if err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	// O_EXCL: an existing file (or symlink, resolved below) is left as it
	// is; opening it for writing would need write access to it, which the
	// root of a user namespace lacks on a file of an unmapped owner.
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	parent.Close()
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.EISDIR) {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	h, err := openInRoot(r.root, dest)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in rootfs: %w", dest, err)
	}
	return &mountTarget{root: r.root, dest: dest, h: h}, nil
}

func (r *rootfsSetup) prepare() error {
	// Nothing done in this namespace may propagate back to the host. A
	// shared root is restored after pivot_root, which refuses shared
	// mounts.
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	switch r.spec.Linux.RootfsPropagation {
	case "private", "rprivate":
		prop = unix.MS_PRIVATE | unix.MS_REC
	case "shared", "rshared":
		// Like runc: bidirectional mounts (CRI PROPAGATION_BIDIRECTIONAL)
		// need the host's peer groups kept; the rootfs parent is still
		// made private below for pivot_root.
		prop = unix.MS_SHARED | unix.MS_REC
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("make / %s: %w", propName(prop), err)
	}
	if err := makeParentPrivate(r.rootfs); err != nil {
		return err
	}
	if err := unix.Mount(r.rootfs, r.rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s onto itself: %w", r.rootfs, err)
	}
	root, err := os.OpenFile(r.rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	r.root = root
	bindDev := false
	for _, m := range r.spec.Mounts {
		if filepath.Clean("/"+m.Destination) == "/dev" && (m.Type == "bind" || hasOpt(m.Options, "bind") || hasOpt(m.Options, "rbind")) {
			bindDev = true
		}
	}
	for i, m := range r.spec.Mounts {
		r.cur = r.idmapped[i]
		if err := r.mount(m); err != nil {
			return err
		}
	}
	trace("init: mounts made")
	if !bindDev {
		if err := r.createDevices(); err != nil {
			return err
		}
	}
	return nil
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

func propName(f uintptr) string {
	for n, v := range propagationFlags {
		if v == f {
			return n
		}
	}
	return fmt.Sprintf("%#x", f)
}

// makeParentPrivate makes the mount holding rootfs private: pivot_root
// needs the new root's parent mount to be non-shared.
func makeParentPrivate(rootfs string) error {
	mp, err := mountPointOf(rootfs)
	if err != nil {
		return err
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mp, err)
	}
	return nil
}

// mountPointOf returns the longest mount point in /proc/self/mountinfo that
// contains path.
func mountPointOf(path string) (string, error) {
	mps, err := mountPoints()
	if err != nil {
		return "", err
	}
	return longestPrefix(mps, path), nil
}

// mountPoints lists the mount points of /proc/self/mountinfo.
func mountPoints() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 {
			out = append(out, unescapeOctal(f[4]))
		}
	}
	return out, nil
}

func longestPrefix(mps []string, path string) string {
	best := "/"
	for _, mp := range mps {
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// target resolves a container path inside the rootfs without following any
// symlink out of it.
func (r *rootfsSetup) target(dest string) (string, error) {
	t, err := securejoin.SecureJoin(r.rootfs, dest)
	if err != nil {
		return "", fmt.Errorf("resolve %q in rootfs: %w", dest, err)
	}
	return t, nil
}

func (r *rootfsSetup) mount(m specs.Mount) error {
	dest := m.Destination
	if !filepath.IsAbs(dest) {
		dest = "/" + dest
	}
	o := parseMountOptions(m.Options)
	isBind := m.Type == "bind" || o.flags&unix.MS_BIND != 0
	if m.Type == "" && !isBind {
		return invalid("mount %s: type is empty and it is not a bind mount", m.Destination)
	}
	dir := true
	src := m.Source
	if isBind {
		if !filepath.IsAbs(src) {
			src = filepath.Join(r.bundle, src)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("mount %s on %s: bind source: %w", m.Source, m.Destination, err)
		}
		dir = fi.IsDir()
	}
	t, err := r.newMountTarget(dest, dir)
	if err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
	}
	defer func() { t.h.Close() }()
	switch {
	case isBind:
		err = r.mountBind(src, t, o)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		err = r.mountCgroup(t, o)
	default:
		err = r.mountFS(m, t, o)
	}
	if err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
	}
	if len(o.prop) == 0 && o.rec.set == 0 && o.rec.clr == 0 {
		return nil
	}
	target, err := t.reopen()
	if err != nil {
		return err
	}
	for _, p := range o.prop {
		if err := unix.Mount("", target, "", p, ""); err != nil {
			return fmt.Errorf("set propagation %s on %s: %w", propName(p), m.Destination, err)
		}
	}
	if o.rec.set != 0 || o.rec.clr != 0 {
		attr := unix.MountAttr{Attr_set: o.rec.set, Attr_clr: o.rec.clr}
		if err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("set recursive attributes on %s: %w", m.Destination, err)
		}
	}
	return nil
}

func (r *rootfsSetup) mountFS(m specs.Mount, t *mountTarget, o parsedOpts) error {
	target := t.path()
	flags := o.flags
	// /dev/shm and similar tmpfs mounts inside a read-only /dev are fine;
	// mqueue and sysfs may be refused in a user namespace without their
	// own namespace, where the host's is bind mounted instead (as runc).
	err := unix.Mount(m.Source, target, m.Type, flags, o.data)
	if err != nil && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) && (m.Type == "sysfs" || m.Type == "mqueue") {
		src := "/sys"
		if m.Type == "mqueue" {
			src = "/dev/mqueue"
		}
		if err2 := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err2 == nil {
			p, err := t.reopen()
			if err != nil {
				return err
			}
			return remountBind(p, flags)
		}
	}
	return err
}

func (r *rootfsSetup) mountBind(src string, t *mountTarget, o parsedOpts) error {
	if r.cur != nil {
		if err := moveIDMapped(r.cur, t); err != nil {
			return err
		}
	} else if err := unix.Mount(src, t.path(), "", unix.MS_BIND|(o.flags&unix.MS_REC), ""); err != nil {
		return err
	}
	if rest := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
		p, err := t.reopen()
		if err != nil {
			return err
		}
		return remountBind(p, rest)
	}
	return nil
}

// remountBind applies flags to an existing bind mount, keeping the flags
// the kernel locks (nosuid/nodev/noexec/ro of a mount inherited from a
// more privileged namespace), whose removal would make the remount fail.
func remountBind(target string, flags uintptr) error {
	err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(target, &st); serr != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags|locked, "")
}

// mountCgroup shows the container's own cgroups: on a cgroup2 host the
// unified directory is bound at target; on v1 and hybrid hosts a tmpfs
// holds one bind per hierarchy plus the host's alias symlinks (cpu ->
// cpu,cpuacct).
func (r *rootfsSetup) mountCgroup(t *mountTarget, o parsedOpts) error {
	target := t.path()
	if r.waitCgroups != nil {
		if err := r.waitCgroups(); err != nil {
			return err
		}
	}
	flags := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if len(r.cgroupBinds) == 1 && r.cgroupBinds[0].Name == "" {
		if err := unix.Mount(r.cgroupBinds[0].Dir, target, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		p, err := t.reopen()
		if err != nil {
			return err
		}
		return remountBind(p, flags)
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	// From here on the fresh tmpfs is the parent: nothing else can write
	// to it, so plain paths under its handle are safe.
	target, err := t.reopen()
	if err != nil {
		return err
	}
	for _, b := range r.cgroupBinds {
		d := filepath.Join(target, b.Name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(b.Dir, d, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", b.Dir, err)
		}
		if err := remountBind(d, flags); err != nil {
			return fmt.Errorf("remount %s: %w", d, err)
		}
	}
	if ents, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range ents {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			if l, err := os.Readlink(filepath.Join("/sys/fs/cgroup", e.Name())); err == nil {
				os.Symlink(l, filepath.Join(target, e.Name()))
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return unix.Mount("", target, "", unix.MS_REMOUNT|flags, "mode=755")
	}
	return nil
}

// mkdirAllHandle creates dest inside the rootfs and returns an O_PATH
// handle to it. A dangling symlink on the way (an image's /var/run -> /run
// without /run) stops mkdirAllInRoot; its in-root target is then created with
// the securejoin-resolved path, which cannot leave the rootfs either, and
// the handle taken again.
func (r *rootfsSetup) mkdirAllHandle(dest string) (*os.File, error) {
	h, err := mkdirAllInRoot(r.root, dest, 0o755)
	if err == nil {
		return h, nil
	}
	p, jerr := r.target(dest)
	if jerr != nil {
		return nil, err
	}
	if merr := os.MkdirAll(p, 0o755); merr != nil {
		return nil, err
	}
	return mkdirAllInRoot(r.root, dest, 0o755)
}

// enter makes the rootfs the process's root: pivot_root with the old root
// detached, or (--no-pivot) a move mount plus chroot.
func (r *rootfsSetup) enter(noPivot bool) error {
	if noPivot {
		if err := unix.Chdir(r.rootfs); err != nil {
			return fmt.Errorf("chdir rootfs: %w", err)
		}
		if err := unix.Mount(r.rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(r.rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", r.rootfs, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// finish runs inside the new root.
func (r *rootfsSetup) finish() error {
	l := r.spec.Linux
	for _, p := range l.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range l.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	if r.spec.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("remount root read-only: %w", err)
		}
	}
	switch p := l.RootfsPropagation; p {
	case "shared", "rshared", "unbindable", "runbindable", "slave", "rslave":
		if err := unix.Mount("", "/", "", propagationFlags[p], ""); err != nil {
			return fmt.Errorf("set rootfs propagation %s: %w", p, err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind read-only path %s: %w", p, err)
	}
	if err := remountBind(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return fmt.Errorf("remount read-only path %s: %w", p, err)
	}
	return nil
}

func maskPath(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("masked path %s: %w", p, err)
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}
