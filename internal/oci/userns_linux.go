package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// rawNamespaces are the namespaces of a container process started through
// the raw fork (rawfork_linux.go): opened by the parent, joined by the
// forked child.
type rawNamespaces struct {
	joins      []nsFD
	user       *os.File
	newUser    *idMaps // a new user namespace, created after the joins
	cloneFlags uintptr
}

func (n *rawNamespaces) Close() {
	for _, j := range n.joins {
		j.f.Close()
	}
	if n.user != nil {
		n.user.Close()
	}
}

func (n *rawNamespaces) names() []string {
	var out []string
	for _, j := range n.joins {
		out = append(out, j.desc)
	}
	return out
}

// needsRawFork reports whether a container's namespaces can only be
// entered by a single-threaded process: a user or time namespace given by
// path. Everything else keeps the os/exec spawn.
func needsRawFork(nss []specs.LinuxNamespace) bool {
	for _, ns := range nss {
		if ns.Path != "" && (ns.Type == specs.UserNamespace || ns.Type == specs.TimeNamespace) {
			return true
		}
	}
	return false
}

// rawNamespaceSetup is namespaceSetup for the raw fork: every namespace
// given by path is opened (and its type checked) here, joined by the forked
// child in spec order with the user namespace after all of them (as host root the child may join any of
// them; after the user namespace it could not); the new ones are created
// by the init's clone inside the joined user namespace, except the cgroup
// and time namespaces, which the init unshares itself as on the os/exec
// path.
func rawNamespaceSetup(spec *specs.Spec, cfg *initConfig) (ret *rawNamespaces, retErr error) {
	n := &rawNamespaces{}
	defer func() {
		if retErr != nil {
			n.Close()
		}
	}()
	hasMount, newUser := false, false
	for _, ns := range spec.Linux.Namespaces {
		flag := nsFlags[ns.Type]
		hasMount = hasMount || ns.Type == specs.MountNamespace
		if ns.Path == "" {
			switch ns.Type {
			case specs.CgroupNamespace:
				cfg.NewCgroupNS = true
			case specs.TimeNamespace:
				cfg.NewTimeNS = true
			case specs.UserNamespace:
				newUser = true
			default:
				n.cloneFlags |= flag
			}
			continue
		}
		f, err := openNamespace(ns.Type, ns.Path)
		if err != nil {
			return nil, err
		}
		switch ns.Type {
		case specs.UserNamespace:
			if sameAsOwn(f, "user") {
				// setns refuses the caller's own user namespace; staying
				// in it is what the spec asks.
				f.Close()
				continue
			}
			n.user = f
		case specs.MountNamespace:
			// Joined by the init after execve (the runtime binary may
			// need the host's dynamic loader); opened here for the check.
			f.Close()
			cfg.Join = append(cfg.Join, nsJoin{Type: ns.Type, Path: ns.Path})
		default:
			n.joins = append(n.joins, nsFD{f: f, flag: flag, desc: string(ns.Type) + " namespace " + ns.Path})
		}
	}
	if !hasMount {
		return nil, fmt.Errorf("linux.namespaces has no mount namespace; hull always needs one: %w", errdefs.ErrInvalidArgument)
	}
	if newUser {
		// Created by the forked child after joining the time namespace
		// (which it could no longer join from inside the new one).
		n.newUser = &idMaps{uids: spec.Linux.UIDMappings, gids: spec.Linux.GIDMappings}
	}
	if n.user != nil {
		if err := checkJoinedMappings(n.user, spec.Linux); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// openNamespace opens a namespace file and checks that it is one of type t.
func openNamespace(t specs.LinuxNamespaceType, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("linux.namespaces: %s namespace path %s does not exist: %w", t, path, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("linux.namespaces: open %s namespace %s: %w", t, path, err)
	}
	got, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("linux.namespaces: %s is not a namespace file (%v): %w", path, err, errdefs.ErrInvalidArgument)
	}
	if uintptr(got) != nsFlags[t] {
		f.Close()
		return nil, fmt.Errorf("linux.namespaces: %s is a %s namespace, not a %s namespace: %w", path, nsTypeName(uintptr(got)), t, errdefs.ErrInvalidArgument)
	}
	return f, nil
}

func nsTypeName(flag uintptr) string {
	for t, f := range nsFlags {
		if f == flag {
			return string(t)
		}
	}
	return "0x" + strconv.FormatUint(uint64(flag), 16)
}

// checkJoinedMappings: mappings given together with a user namespace path
// must be the namespace's own (as runc checks); none at all is fine.
func checkJoinedMappings(user *os.File, l *specs.Linux) error {
	if len(l.UIDMappings) == 0 && len(l.GIDMappings) == 0 {
		return nil
	}
	for _, m := range []struct {
		file string
		want []specs.LinuxIDMapping
	}{{"uid_map", l.UIDMappings}, {"gid_map", l.GIDMappings}} {
		got, err := userNSMap(user, m.file)
		if err != nil {
			return fmt.Errorf("read %s of the user namespace to join: %w", m.file, err)
		}
		if !sameMappings(got, m.want) {
			return fmt.Errorf("linux.%s given with a user namespace path do not match the namespace's (%s): %w",
				map[string]string{"uid_map": "uidMappings", "gid_map": "gidMappings"}[m.file], formatMappings(got), errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func sameMappings(a, b []specs.LinuxIDMapping) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(m specs.LinuxIDMapping) string { return fmt.Sprint(m.ContainerID, m.HostID, m.Size) }
	seen := map[string]int{}
	for _, m := range a {
		seen[key(m)]++
	}
	for _, m := range b {
		if seen[key(m)] == 0 {
			return false
		}
		seen[key(m)]--
	}
	return true
}

func formatMappings(ms []specs.LinuxIDMapping) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %d %d", m.ContainerID, m.HostID, m.Size)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func parseMappings(s string) ([]specs.LinuxIDMapping, error) {
	var out []specs.LinuxIDMapping
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed id map line %q", line)
		}
		var v [3]uint64
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("malformed id map line %q", line)
			}
			v[i] = n
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: uint32(v[0]), HostID: uint32(v[1]), Size: uint32(v[2])})
	}
	return out, nil
}

// userNSMap reads uid_map or gid_map of a user namespace that no process
// may be in (a pinned one): a raw-forked child joins it and sends its own
// /proc/self/<file>, which the kernel shows relative to the parent
// namespace.
func userNSMap(user *os.File, file string) ([]specs.LinuxIDMapping, error) {
	path, err := unix.BytePtrFromString("/proc/self/" + file)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	buf := make([]byte, 8192)
	syscall.ForkLock.Lock()
	pid, errno := rawForkReadMap(int(user.Fd()), path, buf, int(pw.Fd()))
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(path)
	pw.Close()
	if errno != 0 {
		return nil, fmt.Errorf("fork: %w", errno)
	}
	out, rerr := io.ReadAll(pr)
	var ws unix.WaitStatus
	unix.Wait4(int(pid), &ws, 0, nil)
	if rerr != nil {
		return nil, rerr
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return nil, fmt.Errorf("reader failed: %w", syscall.Errno(ws.ExitStatus()))
	}
	return parseMappings(string(out))
}

// rawForkReadMap forks a child that joins user and copies the file at path
// to fd w; its exit status is the errno of a failure.
//
//go:nosplit
//go:norace
func rawForkReadMap(user int, path *byte, buf []byte, w int) (uintptr, syscall.Errno) {
	beforeFork()
	pid, _, err := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if err != 0 || pid != 0 {
		afterFork()
		return pid, err
	}
	afterForkInChild()
	if _, _, err = syscall.RawSyscall(unix.SYS_SETNS, uintptr(user), unix.CLONE_NEWUSER, 0); err == 0 {
		var fd, n uintptr
		cwd := unix.AT_FDCWD
		fd, _, err = syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(path)), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
		if err == 0 {
			n, _, err = syscall.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			if err == 0 {
				_, _, err = syscall.RawSyscall(unix.SYS_WRITE, uintptr(w), uintptr(unsafe.Pointer(&buf[0])), n)
			}
		}
	}
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(err), 0, 0)
	}
}

// newUserNS creates a user namespace with the given mappings and returns
// it open (for idmapped mounts): a raw-forked child unshares it and waits
// on a pipe while its maps are written and its namespace opened.
func newUserNS(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	syscall.ForkLock.Lock()
	pid, errno := rawForkHold(int(pr.Fd()), int(pw.Fd()))
	syscall.ForkLock.Unlock()
	pr.Close()
	if errno != 0 {
		pw.Close()
		return nil, fmt.Errorf("fork: %w", errno)
	}
	defer func() {
		pw.Close() // the child's read returns and it exits
		unix.Wait4(int(pid), nil, 0, nil)
	}()
	proc := "/proc/" + strconv.Itoa(int(pid)) + "/"
	if err := os.WriteFile(proc+"uid_map", []byte(idMapText(uids)), 0); err != nil {
		return nil, fmt.Errorf("write uid_map %s: %w", formatMappings(uids), err)
	}
	if err := os.WriteFile(proc+"gid_map", []byte(idMapText(gids)), 0); err != nil {
		return nil, fmt.Errorf("write gid_map %s: %w", formatMappings(gids), err)
	}
	f, err := os.OpenFile(proc+"ns/user", os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open new user namespace: %w", err)
	}
	return f, nil
}

func idMapText(ms []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
	}
	return b.String()
}

// rawForkHold forks a child in a new user namespace that blocks until the
// write end w of its pipe r is closed by the parent.
//
//go:nosplit
//go:norace
func rawForkHold(r, w int) (uintptr, syscall.Errno) {
	beforeFork()
	pid, _, err := syscall.RawSyscall6(syscall.SYS_CLONE, unix.CLONE_NEWUSER|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if err != 0 || pid != 0 {
		afterFork()
		return pid, err
	}
	afterForkInChild()
	var b [1]byte
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(w), 0, 0)
	syscall.RawSyscall(unix.SYS_READ, uintptr(r), uintptr(unsafe.Pointer(&b[0])), 1)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

func hasNamespace(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) bool {
	for _, ns := range nss {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// nsFile names the /proc/PID/ns entry of a namespace type.
func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	case specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		return string(t)
	}
	return ""
}

// execRawNamespaces opens the namespaces of the container whose init is pid
// for an exec through the raw fork: all of the container's but the mount
// namespace, its pid namespace for the exec'd process (pid_for_children of
// the joiner), the user namespace last. The helper joins the mount
// namespace itself after execve (it holds the rights to in the joined user
// namespace): the runtime binary may need the host's dynamic loader.
func execRawNamespaces(pid int, nss []specs.LinuxNamespace) (ret *rawNamespaces, retErr error) {
	n := &rawNamespaces{}
	defer func() {
		if retErr != nil {
			n.Close()
		}
	}()
	dir := "/proc/" + strconv.Itoa(pid) + "/ns/"
	for _, ns := range nss {
		file := nsFile(ns.Type)
		if file == "" || ns.Type == specs.MountNamespace {
			continue
		}
		f, err := os.OpenFile(dir+file, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open the container's %s namespace: %w", ns.Type, err)
		}
		j := nsFD{f: f, flag: nsFlags[ns.Type], desc: "the container's " + string(ns.Type) + " namespace"}
		if ns.Type == specs.UserNamespace {
			n.user = f
		} else {
			n.joins = append(n.joins, j)
		}
	}
	return n, nil
}

// premakeMountPoints creates, as host root before the spawn, the mount
// points that lie in the rootfs itself (not under another mount of the
// spec): the init, root of a user namespace that does not map the rootfs
// owner, could not create them there. Resolved inside the rootfs as the
// init does (newMountTarget); best effort: a failure here is reported by
// the init with the mount it belongs to.
func premakeMountPoints(spec *specs.Spec, rootfs, bundle string) {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer root.Close()
	r := &rootfsSetup{rootfs: rootfs, root: root}
	var dests []string
	for _, m := range spec.Mounts {
		dest := filepath.Clean("/" + m.Destination)
		under := false
		for _, d := range dests {
			under = under || d == "/" || dest == d || strings.HasPrefix(dest, d+"/")
		}
		dests = append(dests, dest)
		if under {
			continue
		}
		dir := true
		if m.Type == "bind" || parseMountOptions(m.Options).flags&unix.MS_BIND != 0 {
			src := m.Source
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundle, src)
			}
			fi, err := os.Stat(src)
			if err != nil {
				continue
			}
			dir = fi.IsDir()
		}
		if t, err := r.newMountTarget(dest, dir); err == nil {
			t.h.Close()
		}
	}
}

// sameAsOwn reports whether namespace file f is the caller's own namespace
// of /proc/self/ns/<name>.
func sameAsOwn(f *os.File, name string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat("/proc/self/ns/"+name, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}
