package cri

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
)

// TestSpecRejects: the requests a runtime would fail on (or apply to the
// host) are refused by spec generation with InvalidArgument and a message
// naming the field, and create nothing.
func TestSpecRejects(t *testing.T) {
	fx := newSpecFixture(t)
	base := fuzzIn{arg: "true"}
	for _, tc := range []struct {
		name string
		edit func(*fuzzIn)
		want string
	}{
		{"relative container path", func(in *fuzzIn) { in.ctrPath, in.hostPath = "data", "/src" }, `mount "data": container path must be absolute`},
		{"mount over root", func(in *fuzzIn) { in.ctrPath, in.hostPath = "/x/..", "/src" }, "cannot mount over the container's root"},
		{"relative host path", func(in *fuzzIn) { in.ctrPath, in.hostPath = "/data", "../../etc" }, `host path "../../etc" must be absolute`},
		{"empty host path", func(in *fuzzIn) { in.ctrPath = "/data" }, `mount "/data": host path is empty`},
		{"NUL in container path", func(in *fuzzIn) { in.ctrPath, in.hostPath = "/da\x00ta", "/src" }, "mounts[0].container_path"},
		{"bidirectional unprivileged", func(in *fuzzIn) { in.ctrPath, in.hostPath, in.propagation = "/data", "/src", 2 }, "bidirectional propagation needs a privileged container"},
		{"relative working dir", func(in *fuzzIn) { in.cwd = "work" }, `working_dir "work" must be an absolute path`},
		{"NUL in args", func(in *fuzzIn) { in.arg = "a\x00b" }, "command/args[0]"},
		{"empty env key", func(in *fuzzIn) { in.envVal = "v" }, `envs[0]: key "" must be non-empty`},
		{"env key with =", func(in *fuzzIn) { in.envKey = "A=B" }, `envs[0]: key "A=B"`},
		{"unknown user name", func(in *fuzzIn) { in.username = "mallory" }, `resolve user "mallory"`},
		{"negative uid", func(in *fuzzIn) { in.uid = -1 }, "security_context.run_as_user -1 is out of range"},
		{"huge gid", func(in *fuzzIn) { in.uid, in.gid = 1, 1<<40 }, "security_context.run_as_group 1099511627776 is out of range"},
		{"group without user", func(in *fuzzIn) { in.gid = 5 }, "run_as_group is set without run_as_user"},
		{"missing device", func(in *fuzzIn) { in.devHost = "/dev/does-not-exist" }, `device "/dev/does-not-exist"`},
		{"not a device", func(in *fuzzIn) { in.devHost = "/etc/hostname" }, "is not a character or block device"},
		{"bad device permissions", func(in *fuzzIn) { in.devHost, in.devPerms = "/dev/null", "rwx" }, `devices[0].permissions "rwx"`},
		{"relative device path", func(in *fuzzIn) { in.devHost, in.devCtr = "/dev/null", "dev/null" }, `devices[0].container_path "dev/null"`},
		{"host sysctl", func(in *fuzzIn) { in.sysKey, in.sysVal = "vm.swappiness", "0" }, `"vm.swappiness" is not namespaced`},
		{"kernel sysctl", func(in *fuzzIn) { in.sysKey, in.sysVal = "kernel.panic", "1" }, `"kernel.panic" is not namespaced`},
		{"sysctl path escape", func(in *fuzzIn) { in.sysKey, in.sysVal = "net/../../vm/swappiness", "0" }, "is not a sysctl name"},
		{"net sysctl on host network", func(in *fuzzIn) { in.sysKey, in.sysVal, in.hostNet = "net.ipv4.ip_forward", "1", true }, "needs the pod's own network namespace"},
		{"cgroup parent escape", func(in *fuzzIn) { in.cgroupParent = "/kubepods/../../../tmp" }, `linux.cgroup_parent "/kubepods/../../../tmp"`},
		{"oom score too high", func(in *fuzzIn) { in.oom = 1001 }, "resources.oom_score_adj 1001 is outside -1000..1000"},
		{"oom score too low", func(in *fuzzIn) { in.oom = -5000 }, "resources.oom_score_adj -5000"},
		{"swap below memory", func(in *fuzzIn) { in.mem, in.swap = 1<<30, 1<<20 }, "memory_swap_limit_in_bytes 1048576 is below memory_limit_in_bytes"},
		{"bad cpuset", func(in *fuzzIn) { in.cpus = "0-3;rm" }, `resources.cpuset_cpus "0-3;rm"`},
		{"bad hugepage size", func(in *fuzzIn) { in.pageSize = "../../memory" }, `page size "../../memory"`},
		{"unified key escape", func(in *fuzzIn) { in.unifiedKey = "../memory.max" }, `resources.unified: "../memory.max"`},
		{"relative masked path", func(in *fuzzIn) { in.username = "alice" }, "security_context.masked_paths[0] \"proc/kcore\""},
		{"unknown capability", func(in *fuzzIn) { in.capAdd = "CAP_WIZARD" }, `capability "CAP_WIZARD" is unknown`},
		{"privileged in unprivileged pod", func(in *fuzzIn) { in.privileged = true }, ""},
		{"seccomp profile not a file", func(in *fuzzIn) { in.seccompType, in.seccompRef = 2, "/" }, "seccomp localhost profile"},
		{"seccomp profile garbage", func(in *fuzzIn) { in.seccompType, in.seccompRef = 2, "/seccomp-bad.json" }, "seccomp localhost profile"},
		{"seccomp relative profile", func(in *fuzzIn) { in.seccompType, in.seccompRef = 2, "prof.json" }, `seccomp localhost profile "prof.json" must be an absolute path`},
		{"image volume missing image", func(in *fuzzIn) { in.ctrPath, in.hostPath, in.imageVol, in.readonly = "/vol", "nosuch:1", true, true }, `image volume "/vol": image "nosuch:1"`},
		{"image volume writable", func(in *fuzzIn) { in.ctrPath, in.hostPath, in.imageVol = "/vol", "nosuch:1", true }, `image volume "/vol" must be read-only`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.edit(&in)
			sbCfg, cfg, img := fx.request(in)
			if tc.name == "relative masked path" {
				cfg.Linux.SecurityContext.MaskedPaths = []string{"proc/kcore"}
			}
			if tc.name == "privileged in unprivileged pod" {
				sbCfg.Linux.SecurityContext.Privileged = false
				tc.want = `container "c" is privileged but its pod is not`
			}
			_, err := fx.build(sbCfg, cfg, img)
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("got %v, want an InvalidArgument (or NotFound) error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name the field (want %q)", err, tc.want)
			}
		})
	}
	if ents, err := os.ReadDir(filepath.Join(fx.dir, "host")); err == nil && len(ents) > 0 {
		t.Errorf("rejected requests created host paths: %v", ents)
	}
}

// TestSeccompProfileFromDevZero: a localhost profile that is not a
// regular file (here one that never ends) is refused without reading it.
func TestSeccompProfileFromDevZero(t *testing.T) {
	if _, err := readSeccompProfile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("/dev/zero as a seccomp profile: %v", err)
	}
}

// TestSpecAccepts: ordinary requests around the rejected ones still build,
// with the values normalised.
func TestSpecAccepts(t *testing.T) {
	fx := newSpecFixture(t)
	in := fuzzIn{arg: "true", ctrPath: "/data/../vol/", hostPath: "/src", devHost: "/dev/null", devCtr: "/dev/mynull",
		devPerms: "rw", sysKey: "net.ipv4.ip_unprivileged_port_start", sysVal: "0", envKey: "A", envVal: "b",
		cwd: "/tmp", username: "alice", oom: 500, mem: 1 << 30, swap: 2 << 30, cpus: "0-1", pageSize: "2MB",
		unifiedKey: "memory.high", cgroupParent: "/kubepods/burstable/pod1", seccompType: 2, seccompRef: "/seccomp.json"}
	sbCfg, cfg, img := fx.request(in)
	sbCfg.Linux.Sysctls["kernel.shm_rmid_forced"] = "1"
	sp, err := fx.build(sbCfg, cfg, img)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range sp.Mounts {
		found = found || m.Destination == "/vol"
	}
	if !found {
		t.Errorf("mount /data/../vol/ not normalised to /vol: %+v", sp.Mounts)
	}
	if sp.Process.User.UID != 1000 || sp.Linux.Sysctl["kernel.shm_rmid_forced"] != "1" || sp.Linux.Seccomp == nil {
		t.Errorf("user %+v, sysctls %v, seccomp %v", sp.Process.User, sp.Linux.Sysctl, sp.Linux.Seccomp)
	}
}

// TestPodSandboxRejects: RunPodSandbox's up-front checks name the field.
func TestPodSandboxRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *runtimeapi.PodSandboxConfig
		want string
	}{
		{"relative log directory", &runtimeapi.PodSandboxConfig{LogDirectory: "logs"}, `log_directory "logs" must be an absolute path`},
		{"resolv.conf line injection", &runtimeapi.PodSandboxConfig{DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1\nnameserver 6.6.6.6"}}}, "dns_config.servers[0]"},
		{"server not an IP", &runtimeapi.PodSandboxConfig{DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"dns.example"}}}, `dns_config.servers[0] "dns.example" is not an IP address`},
		{"search with space", &runtimeapi.PodSandboxConfig{DnsConfig: &runtimeapi.DNSConfig{Searches: []string{"a b"}}}, "dns_config.searches[0]"},
		{"container port 0", &runtimeapi.PodSandboxConfig{PortMappings: []*runtimeapi.PortMapping{{HostPort: 80}}}, "port_mappings[0]: container port 0"},
		{"host port too big", &runtimeapi.PodSandboxConfig{PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 70000}}}, "host port 70000"},
		{"bad host ip", &runtimeapi.PodSandboxConfig{PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostIp: "localhost"}}}, `host_ip "localhost"`},
		{"cgroup parent escape", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/../.."}}, "linux.cgroup_parent"},
		{"host sysctl", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.core_pattern": "|/x"}}}, `"kernel.core_pattern" is not namespaced`},
		{"ipc sysctl on host ipc", &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shm_rmid_forced": "1"},
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}}}}, "needs the pod's own ipc namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validatePodSandboxConfig(tc.cfg)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
	ok := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x",
		DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "fd00::a"}, Searches: []string{"ns.svc.cluster.local"}, Options: []string{"ndots:5"}},
		PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"}, {ContainerPort: 53}},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods/besteffort/pod1", Sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1", "kernel.shm_rmid_forced": "1"}}}
	if err := validatePodSandboxConfig(ok); err != nil {
		t.Fatalf("an ordinary kubelet pod config: %v", err)
	}
}

// TestUpdateAndExecRejects: UpdateContainerResources checks resources as
// CreateContainer does before any handler is asked, and an exec command
// with a NUL byte (or a spec without a process) is refused, not a panic.
func TestUpdateAndExecRejects(t *testing.T) {
	fx := newSpecFixture(t)
	bundle := filepath.Join(fx.dir, "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(bundle, "config.json"), `{"ociVersion":"1.0.2"}`)
	c := &store.Container{ID: "upd", Name: "upd", State: store.ContainerRunning, RuntimeHandler: "none", Bundle: bundle}
	if err := fx.s.store.AddContainer(c); err != nil {
		t.Fatal(err)
	}
	for _, lr := range []*runtimeapi.LinuxContainerResources{
		{Unified: map[string]string{"../../memory.max": "1"}},
		{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB/../x"}}},
		{OomScoreAdj: 4000},
	} {
		_, err := fx.s.UpdateContainerResources(context.Background(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "upd", Linux: lr})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "resources.") {
			t.Errorf("update with %v: %v, want InvalidArgument naming the field", lr, err)
		}
	}
	if _, err := fx.s.execProcess(c, []string{"sh"}, false); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("exec with a spec without process: %v", err)
	}
	writeTestFile(t, filepath.Join(bundle, "config.json"), `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"}}`)
	if _, err := fx.s.execProcess(c, []string{"ls", "a\x00b"}, false); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "cmd[1]") {
		t.Errorf("exec with a NUL byte: %v", err)
	}
	if p, err := fx.s.execProcess(c, []string{"ls"}, false); err != nil || p.Args[0] != "ls" {
		t.Errorf("plain exec: %v, %v", p, err)
	}
}
