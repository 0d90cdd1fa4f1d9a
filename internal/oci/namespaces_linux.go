package oci

import (
	"fmt"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// namespaceSetup turns linux.namespaces into clone flags (new namespaces
// the fork creates), joins the child performs itself, and the pid
// namespace path the parent joins before the fork. The cgroup namespace is
// unshared by the init after it was moved into its cgroup, so that the
// namespace root is the container's cgroup; the time namespace likewise,
// after writing its offsets.
func namespaceSetup(spec *specs.Spec, cfg *initConfig) (*syscall.SysProcAttr, string, error) {
	sys := &syscall.SysProcAttr{}
	joinPid := ""
	hasMount, hasUser := false, false
	for _, ns := range spec.Linux.Namespaces {
		flag := nsFlags[ns.Type]
		switch {
		case ns.Type == specs.MountNamespace:
			hasMount = true
		case ns.Type == specs.UserNamespace:
			hasUser = true
		}
		if ns.Path == "" {
			switch ns.Type {
			case specs.CgroupNamespace:
				cfg.NewCgroupNS = true
			case specs.TimeNamespace:
				cfg.NewTimeNS = true
			default:
				sys.Cloneflags |= flag
			}
			continue
		}
		switch ns.Type {
		case specs.PIDNamespace:
			joinPid = ns.Path
		case specs.UserNamespace:
			return nil, "", fmt.Errorf("joining an existing user namespace (%s) is not supported: %w", ns.Path, errdefs.ErrNotImplemented)
		case specs.TimeNamespace:
			return nil, "", fmt.Errorf("joining an existing time namespace (%s) is not supported: %w", ns.Path, errdefs.ErrNotImplemented)
		default:
			cfg.Join = append(cfg.Join, nsJoin{Type: ns.Type, Path: ns.Path})
		}
	}
	if !hasMount {
		return nil, "", fmt.Errorf("linux.namespaces has no mount namespace; hull always needs one: %w", errdefs.ErrInvalidArgument)
	}
	if hasUser {
		for _, m := range spec.Linux.UIDMappings {
			sys.UidMappings = append(sys.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			sys.GidMappings = append(sys.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		sys.GidMappingsEnableSetgroups = true
		// The host uid of the caller is usually unmapped in the new
		// namespace; without becoming its root before execve the init
		// would start with no capabilities there.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	return sys, joinPid, nil
}

// joinNamespaces is run by the child on its locked thread: setns into
// every namespace given by path. The mount namespace needs a private fs
// struct first (Go threads share one).
func joinNamespaces(js []nsJoin) error {
	type opened struct {
		fd int
		j  nsJoin
	}
	var fds []opened
	defer func() {
		for _, o := range fds {
			unix.Close(o.fd)
		}
	}()
	// Open everything first: after joining the mount namespace the paths
	// may no longer resolve.
	for _, j := range js {
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", j.Type, j.Path, err)
		}
		fds = append(fds, opened{fd, j})
	}
	for _, o := range fds {
		flag := int(nsFlags[o.j.Type])
		if flag == unix.CLONE_NEWNS {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unshare fs before joining mount namespace: %w", err)
			}
		}
		if err := unix.Setns(o.fd, flag); err != nil {
			return fmt.Errorf("join %s namespace %s: %w", o.j.Type, o.j.Path, err)
		}
	}
	return nil
}
