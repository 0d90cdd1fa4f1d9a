package nsutil

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// IDMap is one line of a user namespace's uid_map or gid_map: Size ids from
// ContainerID inside map to HostID on the host.
type IDMap struct {
	ContainerID, HostID, Size uint32
}

// UserPod describes the namespaces of a pod with its own user namespace.
type UserPod struct {
	UIDs, GIDs []IDMap
	// Kinds are the other namespaces to create, owned by the new user
	// namespace: any of "net", "ipc", "uts".
	Kinds []string
	// Hostname is set in the new uts namespace ("uts" must be in Kinds).
	Hostname string
	// PID also gives the holder a new pid namespace (it is then its pid
	// 1) and keeps the holder running; without it the holder is stopped
	// once the namespaces are pinned.
	PID bool
}

// PinUserns creates a user namespace with the mappings of o and, owned by
// it, new namespaces of o.Kinds (and a pid namespace when o.PID), all in one
// clone of holder, a program that waits until it is killed (the pause
// program). The user namespace and o.Kinds are pinned on dir/<kind> as Pin
// does. Owning them by the user namespace is what lets the container's root
// bind low ports, mount sysfs and mqueue, and set namespaced sysctls.
//
// A multi-threaded Go process cannot unshare a user namespace, hence the
// process. It returns kind → pinned path and, with o.PID, the running
// holder, whose /proc/PID/ns/pid the containers join; the caller stops it.
// On error nothing stays mounted or running.
func PinUserns(dir string, holder *exec.Cmd, o UserPod) (paths map[string]string, proc *os.Process, retErr error) {
	if !filepath.IsAbs(dir) {
		return nil, nil, fmt.Errorf("pin user namespace: directory %q is not absolute: %w", dir, errdefs.ErrInvalidArgument)
	}
	if err := validMaps("uid", o.UIDs); err != nil {
		return nil, nil, err
	}
	if err := validMaps("gid", o.GIDs); err != nil {
		return nil, nil, err
	}
	flags := uintptr(unix.CLONE_NEWUSER)
	seen := map[string]bool{}
	for _, k := range o.Kinds {
		f, ok := pinnable[k]
		if !ok || seen[k] {
			return nil, nil, fmt.Errorf("pin user namespace: kind %q is unknown or given twice (want net, ipc, uts): %w", k, errdefs.ErrInvalidArgument)
		}
		seen[k] = true
		flags |= uintptr(f)
	}
	if o.Hostname != "" && !seen["uts"] {
		return nil, nil, fmt.Errorf("pin user namespace: hostname %q needs a uts namespace: %w", o.Hostname, errdefs.ErrInvalidArgument)
	}
	if o.PID {
		flags |= unix.CLONE_NEWPID
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("pin user namespace: %w", err)
	}
	holder.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: flags, Setsid: true,
		UidMappings: sysMaps(o.UIDs), GidMappings: sysMaps(o.GIDs),
		// Containers set supplementary groups: "deny" would forbid that
		// in this namespace for good.
		GidMappingsEnableSetgroups: true,
	}
	holder.Stdin, holder.Stdout, holder.Stderr = nil, nil, nil
	if err := holder.Start(); err != nil {
		return nil, nil, fmt.Errorf("pin user namespace: start %s: %w", holder.Path, err)
	}
	stop := func() {
		_ = holder.Process.Kill()
		_, _ = holder.Process.Wait()
	}
	created := map[string]string{}
	defer func() {
		if retErr != nil {
			stop()
			_ = Unpin(created)
		}
	}()
	// The holder is our unreaped child: its pid cannot be reused, and if
	// it died already its ns links are gone and the binds below fail.
	pid := holder.Process.Pid
	for _, k := range append([]string{"user"}, o.Kinds...) {
		target := filepath.Join(dir, k)
		f, err := os.OpenFile(target, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				err = fmt.Errorf("%w: %w", errdefs.ErrAlreadyExists, err)
			}
			return nil, nil, fmt.Errorf("pin user namespace: create %s: %w", target, err)
		}
		f.Close()
		created[k] = target
		src := fmt.Sprintf("/proc/%d/ns/%s", pid, k)
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return nil, nil, fmt.Errorf("pin user namespace: bind %s on %s: %w", src, target, err)
		}
	}
	if o.Hostname != "" {
		// Host root holds every capability over the namespaces it made.
		err := Enter(map[string]string{"uts": created["uts"]}, func() error {
			return unix.Sethostname([]byte(o.Hostname))
		})
		if err != nil {
			return nil, nil, fmt.Errorf("pin user namespace: set hostname %q: %w", o.Hostname, err)
		}
	}
	if !o.PID {
		stop()
		return created, nil, nil
	}
	return created, holder.Process, nil
}

func validMaps(kind string, ms []IDMap) error {
	if len(ms) == 0 {
		return fmt.Errorf("pin user namespace: no %s mappings: %w", kind, errdefs.ErrInvalidArgument)
	}
	for i, m := range ms {
		if m.Size == 0 || uint64(m.ContainerID)+uint64(m.Size) > math.MaxUint32 || uint64(m.HostID)+uint64(m.Size) > math.MaxUint32 {
			return fmt.Errorf("pin user namespace: %s mapping %d (%d %d %d) is empty or overflows: %w",
				kind, i, m.ContainerID, m.HostID, m.Size, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func sysMaps(ms []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(ms))
	for i, m := range ms {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
