package cri

import (
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FuzzBuildSpecWire feeds CreateContainer's and RunPodSandbox's configs as
// gRPC delivers them (protobuf wire bytes), so every field of the request
// is fuzzed, not only those FuzzBuildSpec names: a classified error or a
// valid spec, never a panic.
func FuzzBuildSpecWire(f *testing.F) {
	ctr := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "img"},
		Command: []string{"sh"}, Args: []string{"-c", "true"}, WorkingDir: "/w",
		Envs:    []*runtimeapi.KeyValue{{Key: "A", Value: []byte("b")}},
		Mounts:  []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/src", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}},
		Devices: []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/n", Permissions: "rw"}},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 1 << 28, OomScoreAdj: 100, CpusetCpus: "0"},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser: &runtimeapi.Int64Value{Value: 1000}, SupplementalGroups: []int64{10},
				Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"KILL"}},
				MaskedPaths:  []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"},
				Seccomp:    &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				NoNewPrivs: true, ReadonlyRootfs: true,
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
	pod := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "n", Uid: "u"}, Hostname: "h",
		LogDirectory: "/var/log/pods/p", DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}},
		Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/p", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}},
	}
	cb, _ := proto.Marshal(ctr)
	pb, _ := proto.Marshal(pod)
	f.Add(cb, pb)
	f.Add([]byte{}, []byte{})
	fx := newSpecFixture(f)
	f.Fuzz(func(t *testing.T, ctrWire, podWire []byte) {
		cfg, sbCfg := &runtimeapi.ContainerConfig{}, &runtimeapi.PodSandboxConfig{}
		if proto.Unmarshal(ctrWire, cfg) != nil || proto.Unmarshal(podWire, sbCfg) != nil {
			return // gRPC refuses these before hulld sees them
		}
		// Keep what spec generation creates or reads inside the fixture.
		for _, m := range cfg.GetMounts() {
			if filepath.IsAbs(m.HostPath) {
				m.HostPath = filepath.Join(fx.dir, "host", filepath.Clean(m.HostPath))
			}
		}
		if p := cfg.GetLinux().GetSecurityContext().GetSeccomp(); filepath.IsAbs(p.GetLocalhostRef()) {
			p.LocalhostRef = filepath.Join(fx.dir, filepath.Clean(p.LocalhostRef))
		}
		sp, err := fx.build(sbCfg, cfg, ocispec.ImageConfig{Entrypoint: []string{"/bin/sh"}})
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		checkSpec(t, sp)
		for _, p := range append(append([]string{}, sp.Linux.MaskedPaths...), sp.Linux.ReadonlyPaths...) {
			if !filepath.IsAbs(p) {
				t.Fatalf("masked/readonly path %q is not absolute", p)
			}
		}
	})
}
