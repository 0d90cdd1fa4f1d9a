package cri

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci/seccomp"
)

// defaultSeccomp is the RuntimeDefault profile for a container with these
// capabilities (CAP_SYS_ADMIN etc. unlock the syscalls they guard).
func defaultSeccomp(caps []string) *specs.LinuxSeccomp { return seccomp.DefaultProfileFor(caps) }
