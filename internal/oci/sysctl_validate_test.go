package oci

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

func TestValidateSysctls(t *testing.T) {
	withNS := func(types ...specs.LinuxNamespaceType) *specs.Spec {
		s := &specs.Spec{Version: "1.0.2", Root: &specs.Root{Path: "rootfs"}, Linux: &specs.Linux{}}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})
		for _, ty := range types {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: ty})
		}
		return s
	}
	cases := []struct {
		key  string
		ns   []specs.LinuxNamespaceType
		okay bool
	}{
		{"vm.swappiness", []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace}, false},
		{"kernel.core_pattern", []specs.LinuxNamespaceType{specs.UTSNamespace}, false},
		{"net.ipv4.ip_forward", nil, false},
		{"net.ipv4.ip_forward", []specs.LinuxNamespaceType{specs.NetworkNamespace}, true},
		{"net/ipv4/ip_forward", []specs.LinuxNamespaceType{specs.NetworkNamespace}, true},
		{"kernel.shmmax", nil, false},
		{"kernel.shmmax", []specs.LinuxNamespaceType{specs.IPCNamespace}, true},
		{"fs.mqueue.msg_max", []specs.LinuxNamespaceType{specs.IPCNamespace}, true},
		{"kernel.domainname", []specs.LinuxNamespaceType{specs.UTSNamespace}, true},
		{"../../etc/passwd", []specs.LinuxNamespaceType{specs.NetworkNamespace}, false},
	}
	for _, c := range cases {
		s := withNS(c.ns...)
		s.Linux.Sysctl = map[string]string{c.key: "1"}
		err := validateSpec(s)
		if c.okay && err != nil {
			t.Errorf("%s with %v: %v", c.key, c.ns, err)
		}
		if !c.okay && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s with %v: got %v, want an invalid-argument error", c.key, c.ns, err)
		}
	}
}
