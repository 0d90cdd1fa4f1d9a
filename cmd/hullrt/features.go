package main

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"hull/internal/oci"
	"hull/internal/oci/seccomp"
)

func init() {
	register(&command{name: "features", usage: "(prints the runtime-spec features JSON)", run: func(g *globals, f *flags) error {
		return printJSON(featureSet(), true)
	}})
}

func featureSet() *features.Features {
	t := true
	nss := []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
	caps := oci.CapabilityNames()
	actions, archs, ops := seccomp.Features()
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{"acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "iversion",
			"lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
			"norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime",
			"remount", "rexec", "ridmap", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
			"rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow",
			"runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable"},
		Linux: &features.Linux{
			Namespaces:   nss,
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: new(bool)},
			Seccomp: &features.Seccomp{Enabled: &t, Actions: actions, Operators: ops, Archs: archs,
				KnownFlags: seccomp.KnownFlags(), SupportedFlags: seccomp.SupportedFlags()},
			Apparmor:        &features.Apparmor{Enabled: new(bool)},
			Selinux:         &features.Selinux{Enabled: new(bool)},
			IntelRdt:        &features.IntelRdt{Enabled: new(bool)},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
		},
		Annotations: map[string]string{"org.opencontainers.runtime-spec.features.runtime": "hullrt " + version},
	}
}
