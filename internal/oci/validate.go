package oci

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

func invalid(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

// validateSpec rejects configs hull cannot run, naming the offending field,
// before anything is created.
func validateSpec(s *specs.Spec) error {
	if s.Version == "" {
		return invalid("ociVersion is empty")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return invalid("ociVersion %q is not supported (need 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path is empty")
	}
	// A config without a process is valid (runtime spec): the container
	// gets its namespaces and mounts, and start has nothing to run.
	if s.Process != nil {
		if err := validateProcess(s.Process); err != nil {
			return err
		}
	}
	if s.Linux == nil {
		return invalid("linux section is missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	hasUser, hasUTS := false, false
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsFlags[ns.Type]; !ok {
			return invalid("linux.namespaces: unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return invalid("linux.namespaces: %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return invalid("linux.namespaces: %s path %q is not absolute", ns.Type, ns.Path)
		}
		hasUser = hasUser || ns.Type == specs.UserNamespace
		hasUTS = hasUTS || ns.Type == specs.UTSNamespace
	}
	if hasUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) && !seenPath(s, specs.UserNamespace) {
		return invalid("a new user namespace needs linux.uidMappings and linux.gidMappings")
	}
	if !hasUser && (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) {
		return invalid("linux.uidMappings/gidMappings given without a user namespace")
	}
	if err := validateIDMapMounts(s, hasUser); err != nil {
		return err
	}
	if (s.Hostname != "" || s.Domainname != "") && !hasUTS {
		return invalid("hostname/domainname need a uts namespace")
	}
	if err := validateSysctls(s.Linux.Sysctl, seen); err != nil {
		return err
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return invalid("mounts[%d]: destination is empty", i)
		}
	}
	for _, d := range s.Linux.Devices {
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid("linux.devices: %s has unknown type %q", d.Path, d.Type)
		}
		if !filepath.IsAbs(d.Path) {
			return invalid("linux.devices: path %q is not absolute", d.Path)
		}
	}
	if rp := s.Linux.RootfsPropagation; rp != "" {
		if _, ok := propagationFlags[rp]; !ok {
			return invalid("linux.rootfsPropagation %q is not one of shared, slave, private, unbindable (optionally r-prefixed)", rp)
		}
	}
	return nil
}

func seenPath(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path != "" {
			return true
		}
	}
	return false
}

// validateProcess checks the parts of a process the kernel would otherwise
// reject half-way through setup.
func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return invalid("process.args is empty")
	}
	if p.Cwd == "" {
		return invalid("process.cwd is empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalid("process.cwd %q is not absolute", p.Cwd)
	}
	seen := map[string]bool{}
	for _, rl := range p.Rlimits {
		if _, ok := rlimitNames[rl.Type]; !ok {
			return invalid("process.rlimits: unknown type %q", rl.Type)
		}
		if seen[rl.Type] {
			return invalid("process.rlimits: %q listed twice", rl.Type)
		}
		seen[rl.Type] = true
		if rl.Soft > rl.Hard {
			return invalid("process.rlimits: %s soft limit %d above hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
	}
	if c := p.Capabilities; c != nil {
		for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			for _, name := range set {
				if _, ok := capByName(name); !ok {
					return invalid("process.capabilities: unknown capability %q", name)
				}
			}
		}
	}
	return nil
}

// ipcSysctls are the kernel.* sysctls the ipc namespace holds.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// validateSysctls accepts only sysctls that a namespace the container has
// (ns) holds: anything else would be written to the host's kernel from
// inside the container's /proc/sys (as runc, hull refuses it).
func validateSysctls(m map[string]string, ns map[specs.LinuxNamespaceType]bool) error {
	for k := range m {
		if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, "/") || strings.HasPrefix(k, ".") {
			return invalid("linux.sysctl: %q is not a sysctl name", k)
		}
		name := strings.ReplaceAll(k, "/", ".")
		var need specs.LinuxNamespaceType
		switch {
		case ipcSysctls[name] || strings.HasPrefix(name, "fs.mqueue."):
			need = specs.IPCNamespace
		case strings.HasPrefix(name, "net."):
			need = specs.NetworkNamespace
		case name == "kernel.hostname" || name == "kernel.domainname":
			need = specs.UTSNamespace
		default:
			return invalid("linux.sysctl: %q is not namespaced: setting it would change the host", k)
		}
		if !ns[need] {
			return invalid("linux.sysctl: %q needs a %s namespace", k, need)
		}
	}
	return nil
}
