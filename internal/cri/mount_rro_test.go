package cri

import (
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
)

func TestRecursiveReadOnlyMountValidation(t *testing.T) {
	for _, tc := range []struct {
		m  *runtimeapi.Mount
		ok bool
	}{
		{&runtimeapi.Mount{ContainerPath: "/m", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true}, true},
		{&runtimeapi.Mount{ContainerPath: "/m", HostPath: "/tmp", Readonly: false, RecursiveReadOnly: true}, false},
		{&runtimeapi.Mount{ContainerPath: "/m", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, false},
		{&runtimeapi.Mount{ContainerPath: "/m", HostPath: "/tmp", Readonly: true, RecursiveReadOnly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}, false},
		{&runtimeapi.Mount{ContainerPath: "/m", HostPath: "/tmp", Readonly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, true},
	} {
		err := validateMount(0, tc.m)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("%v: got %v, want ok=%v", tc.m, err, tc.ok)
		}
	}
}
