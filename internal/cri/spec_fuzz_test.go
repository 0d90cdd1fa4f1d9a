package cri

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/image"
)

// specFixture is a Service with just what spec generation reads (a
// metadata store for target pid namespaces, an empty image store for image
// volumes), a pod record and a rootfs with passwd/group files, all under
// one temp dir.
type specFixture struct {
	s      *Service
	dir    string
	rootfs string
	sb     *store.Sandbox
}

func newSpecFixture(t testing.TB) *specFixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	imgs, err := image.Open(image.Options{Root: filepath.Join(dir, "image")})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{opts: Options{RestrictOOMScoreAdj: true, CgroupDriver: "cgroupfs", Images: imgs, State: dir}, store: st}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"rootfs/etc/passwd": "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"rootfs/etc/group":  "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\n",
		"seccomp.json":      `{"defaultAction":"SCMP_ACT_ALLOW"}`,
		"seccomp-bad.json":  `{"defaultAction":`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb := &store.Sandbox{ID: "fuzzpod", Dir: filepath.Join(dir, "pod"),
		Namespaces: map[string]string{"net": "/proc/self/ns/net", "ipc": "/proc/self/ns/ipc", "uts": "/proc/self/ns/uts"}}
	return &specFixture{s: s, dir: dir, rootfs: rootfs, sb: sb}
}

// build runs what CreateContainer runs on the request before anything
// reaches the runtime: the request checks, image volumes, the spec.
func (fx *specFixture) build(sbCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig, img ocispec.ImageConfig) (*specs.Spec, error) {
	if err := validatePodSandboxConfig(sbCfg); err != nil {
		return nil, err
	}
	sb := *fx.sb
	sb.CgroupParent = sbCfg.GetLinux().GetCgroupParent()
	if sbCfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE {
		sb.Namespaces = map[string]string{"ipc": "/proc/self/ns/ipc"}
		sb.HostNetwork = true
	}
	if err := fx.s.resolveImageVolumes(cfg); err != nil {
		return nil, err
	}
	return fx.s.buildSpec(specInput{id: "fuzzctr", sb: &sb, sbCfg: sbCfg, cfg: cfg, img: img, rootfs: fx.rootfs, hostname: "h"})
}

// errClasses are the errdefs classes a rejected request may carry.
var errClasses = []error{errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrFailedPrecondition,
	errdefs.ErrAlreadyExists, errdefs.ErrResourceExhausted, errdefs.ErrPermissionDenied}

func classified(err error) bool {
	return slices.ContainsFunc(errClasses, func(c error) bool { return errors.Is(err, c) })
}

var fuzzPageSizeRe = regexp.MustCompile(`^[0-9]+[KMG]B$`)

// checkSpec asserts what a runtime needs of a spec hulld writes, so that a
// bad request fails CreateContainer with InvalidArgument rather than the
// runtime's create later: absolute clean paths without NUL bytes, env
// entries with a key, namespaced sysctls, sane resource values.
func checkSpec(t *testing.T, sp *specs.Spec) {
	t.Helper()
	noNUL := func(what, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Fatalf("%s %q holds a NUL byte", what, s)
		}
	}
	absClean := func(what, p string) {
		noNUL(what, p)
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			t.Fatalf("%s %q is not an absolute clean path", what, p)
		}
	}
	p := sp.Process
	if p == nil || len(p.Args) == 0 {
		t.Fatal("spec without process args")
	}
	for _, a := range p.Args {
		noNUL("arg", a)
	}
	for _, e := range p.Env {
		noNUL("env", e)
		if i := strings.IndexByte(e, '='); i <= 0 {
			t.Fatalf("env entry %q has no key", e)
		}
	}
	noNUL("cwd", p.Cwd)
	if !filepath.IsAbs(p.Cwd) {
		t.Fatalf("cwd %q is not absolute", p.Cwd)
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		t.Fatalf("oom_score_adj %d out of range", *p.OOMScoreAdj)
	}
	for _, m := range sp.Mounts {
		absClean("mount destination", m.Destination)
		if m.Destination == "/" {
			t.Fatal("a mount over the container's root")
		}
		noNUL("mount source", m.Source)
	}
	for _, d := range sp.Linux.Devices {
		absClean("device path", d.Path)
	}
	for _, r := range sp.Linux.Resources.Devices {
		if r.Access == "" || strings.Trim(r.Access, "rwm") != "" {
			t.Fatalf("device rule access %q is not made of r, w, m", r.Access)
		}
	}
	for k, v := range sp.Linux.Sysctl {
		noNUL("sysctl", k+v)
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") || k == "" {
			t.Fatalf("sysctl key %q", k)
		}
		if !strings.HasPrefix(k, "net.") && !strings.HasPrefix(k, "fs.mqueue.") && !strings.HasPrefix(k, "kernel.") {
			t.Fatalf("sysctl %q is not namespaced", k)
		}
	}
	// cgroupfs paths (systemd ones are slice:prefix:name) stay inside the
	// hierarchy; a systemd-style slice parent gives a relative one.
	if cp := sp.Linux.CgroupsPath; !strings.Contains(cp, ":") {
		noNUL("cgroups path", cp)
		if filepath.Clean(cp) != cp || slices.Contains(strings.Split(cp, "/"), "..") {
			t.Fatalf("cgroups path %q leaves the cgroup hierarchy", cp)
		}
	}
	res := sp.Linux.Resources
	if m := res.Memory; m != nil && m.Limit != nil && m.Swap != nil && *m.Swap < *m.Limit {
		t.Fatalf("memory+swap %d below memory %d", *m.Swap, *m.Limit)
	}
	for _, h := range res.HugepageLimits {
		if !fuzzPageSizeRe.MatchString(h.Pagesize) {
			t.Fatalf("hugepage size %q", h.Pagesize)
		}
	}
	for k := range res.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			t.Fatalf("unified key %q", k)
		}
	}
	if c := res.CPU; c != nil && strings.Trim(c.Cpus+c.Mems, "0123456789,-") != "" {
		t.Fatalf("cpuset %q/%q", c.Cpus, c.Mems)
	}
	if _, err := json.Marshal(sp); err != nil {
		t.Fatalf("spec does not encode: %v", err)
	}
}

// fuzzIn is one fuzzed request, flattened into the types go test -fuzz
// mutates.
type fuzzIn struct {
	ctrPath, hostPath   string
	propagation         int32
	readonly, imageVol  bool
	username            string
	uid, gid            int64
	devHost, devCtr     string
	devPerms            string
	sysKey, sysVal      string
	envKey, envVal      string
	cwd, arg, imageUser string
	capAdd              string
	oom, shares, quota  int64
	mem, swap           int64
	cpus, pageSize      string
	unifiedKey          string
	seccompType         int32
	seccompRef          string
	pidMode             int32
	cgroupParent        string
	privileged, hostNet bool
}

func (fx *specFixture) request(in fuzzIn) (*runtimeapi.PodSandboxConfig, *runtimeapi.ContainerConfig, ocispec.ImageConfig) {
	// Host paths stay inside the fixture: a missing hostPath source is
	// created, and a fuzzer must not create directories all over the host.
	host := in.hostPath
	if filepath.IsAbs(host) {
		host = filepath.Join(fx.dir, "host", filepath.Clean(host))
	}
	ref := in.seccompRef
	if filepath.IsAbs(ref) {
		ref = filepath.Join(fx.dir, filepath.Clean(ref))
	}
	m := &runtimeapi.Mount{ContainerPath: in.ctrPath, HostPath: host, Readonly: in.readonly,
		Propagation: runtimeapi.MountPropagation(in.propagation)}
	if in.imageVol {
		m.Image = &runtimeapi.ImageSpec{Image: in.hostPath}
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{
		RunAsUsername: in.username, Privileged: in.privileged,
		Capabilities:       &runtimeapi.Capability{AddCapabilities: []string{in.capAdd}},
		SupplementalGroups: []int64{in.gid},
		NamespaceOptions:   &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode(in.pidMode), TargetId: in.username},
		Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_ProfileType(in.seccompType), LocalhostRef: ref},
	}
	if in.uid != 0 {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: in.uid}
	}
	if in.gid != 0 {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: in.gid}
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "img"},
		Args: []string{in.arg}, WorkingDir: in.cwd, Mounts: []*runtimeapi.Mount{m},
		Envs:    []*runtimeapi.KeyValue{{Key: in.envKey, Value: []byte(in.envVal)}},
		Devices: []*runtimeapi.Device{{HostPath: in.devHost, ContainerPath: in.devCtr, Permissions: in.devPerms}},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: sc, Resources: &runtimeapi.LinuxContainerResources{
			OomScoreAdj: in.oom, CpuShares: in.shares, CpuQuota: in.quota, MemoryLimitInBytes: in.mem,
			MemorySwapLimitInBytes: in.swap, CpusetCpus: in.cpus,
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: in.pageSize, Limit: uint64(in.mem)}},
			Unified:        map[string]string{in.unifiedKey: in.sysVal},
		}},
	}
	if in.hostPath == "" && in.ctrPath == "" {
		cfg.Mounts = nil
	}
	if in.devHost == "" && in.devCtr == "" {
		cfg.Devices = nil
	}
	if in.envKey == "" && in.envVal == "" {
		cfg.Envs = nil
	}
	if in.unifiedKey == "" {
		cfg.Linux.Resources.Unified = nil
	}
	if in.pageSize == "" {
		cfg.Linux.Resources.HugepageLimits = nil
	}
	if in.capAdd == "" {
		sc.Capabilities = nil
	}
	netMode := runtimeapi.NamespaceMode_POD
	if in.hostNet {
		netMode = runtimeapi.NamespaceMode_NODE
	}
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "p"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{CgroupParent: in.cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: in.privileged,
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: netMode}}},
	}
	if in.sysKey != "" {
		sbCfg.Linux.Sysctls = map[string]string{in.sysKey: in.sysVal}
	}
	return sbCfg, cfg, ocispec.ImageConfig{User: in.imageUser, Entrypoint: []string{"/bin/sh"}}
}

func addFuzzSeed(f *testing.F, in fuzzIn) {
	f.Add(in.ctrPath, in.hostPath, in.propagation, in.readonly, in.imageVol, in.username, in.uid, in.gid,
		in.devHost, in.devCtr, in.devPerms, in.sysKey, in.sysVal, in.envKey, in.envVal, in.cwd, in.arg,
		in.imageUser, in.capAdd, in.oom, in.shares, in.quota, in.mem, in.swap, in.cpus, in.pageSize,
		in.unifiedKey, in.seccompType, in.seccompRef, in.pidMode, in.cgroupParent, in.privileged, in.hostNet)
}

// FuzzBuildSpec: whatever the request holds, spec generation returns an
// errdefs-classified error or a spec a runtime can take, never panics, and
// creates nothing outside its own directories.
func FuzzBuildSpec(f *testing.F) {
	for _, in := range []fuzzIn{
		{ctrPath: "/data", hostPath: "/src", arg: "true", cwd: "/"},
		{ctrPath: "/../../etc", hostPath: "../rel", arg: "x"},
		{ctrPath: "/", hostPath: "/a", readonly: true, imageVol: true},
		{ctrPath: "data", hostPath: "", propagation: 2, privileged: true},
		{username: "alice", imageUser: "nobody", uid: -1, gid: 1 << 40},
		{devHost: "/dev/null", devCtr: "/dev/xnull", devPerms: "rwm"},
		{devHost: "/dev/null", devCtr: "rel/dev", devPerms: "rwx"},
		{devHost: "/etc/passwd", devPerms: "q"},
		{sysKey: "net.ipv4.ip_forward", sysVal: "1"},
		{sysKey: "vm.swappiness", sysVal: "0"},
		{sysKey: "net/../../vm/swappiness", sysVal: "0"},
		{sysKey: "net.core.somaxconn", sysVal: "1", hostNet: true},
		{envKey: "", envVal: "v", arg: "a\x00b", cwd: "rel"},
		{envKey: "K\x00", cwd: "/w\x00"},
		{oom: 1 << 40, shares: -1, quota: -5, mem: 1 << 20, swap: 1 << 10},
		{oom: -1001, mem: -1, cpus: "0-1,3", pageSize: "2MB"},
		{cpus: "zzz", pageSize: "../../memory", unifiedKey: "../memory.max"},
		{unifiedKey: "memory.high", sysVal: "max"},
		{seccompType: 2, seccompRef: "/seccomp.json"},
		{seccompType: 2, seccompRef: "/seccomp-bad.json"},
		{seccompType: 2, seccompRef: "relative.json"},
		{seccompType: 9},
		{pidMode: 3, username: "nope"},
		{pidMode: 1, capAdd: "ALL"},
		{capAdd: "NOT_A_CAP"},
		{cgroupParent: "/kubepods/pod1"},
		{cgroupParent: "../../../../tmp"},
		{cgroupParent: "relative/parent"},
		{cgroupParent: "kubepods-besteffort.slice"},
	} {
		addFuzzSeed(f, in)
	}
	fx := newSpecFixture(f)
	cwd, _ := os.Getwd()
	before, _ := os.ReadDir(cwd)
	f.Fuzz(func(t *testing.T, ctrPath, hostPath string, propagation int32, readonly, imageVol bool, username string,
		uid, gid int64, devHost, devCtr, devPerms, sysKey, sysVal, envKey, envVal, cwdIn, arg, imageUser, capAdd string,
		oom, shares, quota, mem, swap int64, cpus, pageSize, unifiedKey string, seccompType int32, seccompRef string,
		pidMode int32, cgroupParent string, privileged, hostNet bool) {
		in := fuzzIn{ctrPath, hostPath, propagation, readonly, imageVol, username, uid, gid, devHost, devCtr, devPerms,
			sysKey, sysVal, envKey, envVal, cwdIn, arg, imageUser, capAdd, oom, shares, quota, mem, swap, cpus, pageSize,
			unifiedKey, seccompType, seccompRef, pidMode, cgroupParent, privileged, hostNet}
		hostRoot := filepath.Join(fx.dir, "host")
		if err := os.RemoveAll(hostRoot); err != nil {
			t.Fatal(err)
		}
		sbCfg, cfg, img := fx.request(in)
		sp, err := fx.build(sbCfg, cfg, img)
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			if _, serr := os.Lstat(hostRoot); serr == nil {
				t.Fatalf("rejected request (%v) created its host path", err)
			}
		} else {
			checkSpec(t, sp)
		}
		after, _ := os.ReadDir(cwd)
		if len(after) != len(before) {
			t.Fatalf("spec generation created files in the working directory %s (host path %q)", cwd, hostPath)
		}
	})
}
