package cri

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
)

func idm(c, h, l uint32) *runtimeapi.IDMapping {
	return &runtimeapi.IDMapping{ContainerId: c, HostId: h, Length: l}
}

func TestPodUserns(t *testing.T) {
	ok := []*runtimeapi.IDMapping{idm(0, 1000, 100000)}
	pod := func(u *runtimeapi.UserNamespace) *runtimeapi.NamespaceOption {
		return &runtimeapi.NamespaceOption{UsernsOptions: u}
	}
	for _, c := range []struct {
		name string
		ns   *runtimeapi.NamespaceOption
		want string // "" accepts
		maps bool   // accepted with mappings
	}{
		{"absent", nil, "", false},
		{"no userns option", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, "", false},
		{"node", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}), "", false},
		{"pod", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ok, Gids: ok}), "", true},
		{"pod, 1-length at the edge", pod(&runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(0, 4294967294, 1)}, Gids: ok}), "", true},
		{"node with mappings", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: ok}), "mode NODE takes no", false},
		{"container", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}), "CONTAINER is not supported", false},
		{"target", pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}), "TARGET is not supported", false},
		{"two uid mappings", pod(&runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(0, 1000, 10), idm(10, 5000, 10)}, Gids: ok}), "uids: exactly one mapping", false},
		{"no gid mappings", pod(&runtimeapi.UserNamespace{Uids: ok}), "gids: exactly one mapping", false},
		{"root unmapped", pod(&runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(1, 1000, 10)}, Gids: ok}), "container id 0 is not mapped", false},
		{"empty", pod(&runtimeapi.UserNamespace{Uids: ok, Gids: []*runtimeapi.IDMapping{idm(0, 1000, 0)}}), "gids[0]: length is 0", false},
		{"overflow", pod(&runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(0, 4294967295, 2)}, Gids: ok}), "overflow", false},
		{"host root", pod(&runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(0, 0, 65536)}, Gids: ok}), "host id 0", false},
		{"host network", &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Uids: ok, Gids: ok}}, "network NODE", false},
		{"host pid", &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Uids: ok, Gids: ok}}, "pid NODE", false},
		{"host ipc", &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE, UsernsOptions: &runtimeapi.UserNamespace{Uids: ok, Gids: ok}}, "ipc NODE", false},
	} {
		uids, gids, err := podUserns(c.ns)
		if c.want == "" {
			if err != nil || (uids != nil) != c.maps || (gids != nil) != c.maps {
				t.Errorf("%s: %v, uids %v gids %v", c.name, err, uids, gids)
			}
			continue
		}
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want InvalidArgument with %q", c.name, err, c.want)
		}
	}
}

func TestCheckContainerUserns(t *testing.T) {
	ok := []*runtimeapi.IDMapping{idm(0, 1000, 100000)}
	podNS := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Uids: ok, Gids: ok}}
	same := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(0, 1000, 100000)}, Gids: ok}}
	other := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Uids: []*runtimeapi.IDMapping{idm(0, 2000, 100000)}, Gids: ok}}
	node := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}
	for _, c := range []struct {
		name     string
		pod, ctr *runtimeapi.NamespaceOption
		ok       bool
	}{
		{"inherit", podNS, nil, true},
		{"same", podNS, same, true},
		{"other mapping", podNS, other, false},
		{"node in a userns pod", podNS, node, false},
		{"node in a host pod", nil, node, true},
		{"userns in a host pod", nil, same, false},
		{"host pid in a userns pod", podNS, &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}, false},
	} {
		err := checkContainerUserns(c.pod, c.ctr)
		if (err == nil) != c.ok || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
