package cri

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Merge (the default) adds the image's /etc/group memberships of the user
// to the request's groups; Strict keeps only the request's.
func TestSupplementalGroupsPolicy(t *testing.T) {
	r := rootfsWith(t, "alice:x:1000:1000::/home/alice:/bin/sh\n", "alice:x:1000:\nimg:x:50000:alice\n")
	for _, tc := range []struct {
		policy runtimeapi.SupplementalGroupsPolicy
		want   []uint32
	}{
		{runtimeapi.SupplementalGroupsPolicy_Merge, []uint32{50000, 1234}},
		{runtimeapi.SupplementalGroupsPolicy_Strict, []uint32{1234}},
	} {
		sc := &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 1000},
			SupplementalGroups: []int64{1234}, SupplementalGroupsPolicy: tc.policy}
		u, err := resolveUser(r, sc, "")
		if err != nil || u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, tc.want) {
			t.Errorf("%s: %+v, %v; want uid/gid 1000, groups %v", tc.policy, u, err, tc.want)
		}
	}
}
