package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
)

// defaultCaps are the capabilities of an unprivileged container (the set
// containerd and CRI-O grant).
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var defaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

var defaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// ociVersion is the spec version hull writes: crun 1.8 rejects any it does
// not know (1.3.0 of runtime-spec's Go module); the fields hull sets all
// exist in 1.0.2, which runc, crun, runsc and hullrt accept.
const ociVersion = "1.0.2-dev"

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// specInput is everything the OCI spec of a container is generated from.
type specInput struct {
	id       string
	sb       *store.Sandbox
	sbCfg    *runtimeapi.PodSandboxConfig
	cfg      *runtimeapi.ContainerConfig
	img      ocispec.ImageConfig
	rootfs   string // mounted rootfs, for /etc/passwd lookups
	hostname string
}

// processArgs merges the request's command/args with the image's
// entrypoint/cmd the way the kubelet expects: command replaces the
// entrypoint (and drops the image cmd), args replace the cmd.
func processArgs(cfg *runtimeapi.ContainerConfig, img ocispec.ImageConfig) ([]string, error) {
	command, args := cfg.GetCommand(), cfg.GetArgs()
	if len(command) == 0 {
		command = img.Entrypoint
		if len(args) == 0 {
			args = img.Cmd
		}
	}
	out := append(append([]string{}, command...), args...)
	if len(out) == 0 {
		return nil, fmt.Errorf("container %q: no command given and the image has no entrypoint or cmd: %w",
			cfg.GetMetadata().GetName(), errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// mergeEnv overlays the request's variables on the image's.
func mergeEnv(img []string, req []*runtimeapi.KeyValue, hostname string) []string {
	var out []string
	idx := map[string]int{}
	set := func(kv string) {
		k := kv
		if i := strings.IndexByte(kv, '='); i >= 0 {
			k = kv[:i]
		}
		if j, ok := idx[k]; ok {
			out[j] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	set(defaultPath)
	set("HOSTNAME=" + hostname)
	for _, kv := range img {
		set(kv)
	}
	for _, kv := range req {
		set(kv.Key + "=" + string(kv.Value))
	}
	return out
}

// buildSpec generates the container's OCI runtime spec.
func (s *Service) buildSpec(in specInput) (*specs.Spec, error) {
	cfg, lx := in.cfg, in.cfg.GetLinux()
	sc := lx.GetSecurityContext()
	if err := validateContainerConfig(cfg); err != nil {
		return nil, err
	}
	// Checked at RunPodSandbox too; again here for pods an older hulld made.
	if err := validateSysctls(in.sbCfg.GetLinux().GetSysctls(), in.sb.HostNetwork, in.sb.Namespaces["ipc"] == ""); err != nil {
		return nil, err
	}
	args, err := processArgs(cfg, in.img)
	if err != nil {
		return nil, err
	}
	cwd := cfg.GetWorkingDir()
	if cwd == "" {
		cwd = in.img.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	user, err := resolveUser(in.rootfs, sc, in.img.User)
	if err != nil {
		return nil, err
	}
	privileged := sc.GetPrivileged()
	if privileged && !in.sbCfg.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, fmt.Errorf("container %q is privileged but its pod is not: %w", cfg.GetMetadata().GetName(), errdefs.ErrInvalidArgument)
	}
	caps, err := capabilities(sc)
	if err != nil {
		return nil, err
	}
	spec := &specs.Spec{
		Version: ociVersion,
		Root:    &specs.Root{Path: "rootfs", Readonly: sc.GetReadonlyRootfs()},
		Process: &specs.Process{
			Terminal: cfg.GetTty(), Args: args, Env: mergeEnv(in.img.Env, cfg.GetEnvs(), in.hostname),
			Cwd: cwd, User: user, Capabilities: caps, NoNewPrivileges: sc.GetNoNewPrivs(),
			ApparmorProfile: "", SelinuxLabel: "",
		},
		// No io.kubernetes.cri.container-type/sandbox-id annotations: with
		// them runsc expects a sandbox (pause) container to join, and hull
		// pods have none; each runsc container is its own sandbox.
		Annotations: map[string]string{"io.kubernetes.cri.container-name": cfg.GetMetadata().GetName()},
		Linux: &specs.Linux{
			Resources:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			CgroupsPath: s.cgroupsPath(in.sb, in.id),
			Sysctl:      in.sbCfg.GetLinux().GetSysctls(),
		},
	}
	if adj := int(lx.GetResources().GetOomScoreAdj()); adj != 0 {
		adj = s.clampOOMScoreAdj(adj)
		spec.Process.OOMScoreAdj = &adj
	}
	spec.Linux.Namespaces = s.namespaces(in.sb, sc)
	podNS := in.sbCfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if err := checkContainerUserns(podNS, sc.GetNamespaceOptions()); err != nil {
		return nil, err
	}
	if uids, gids, err := podUserns(podNS); err == nil && uids != nil {
		// Joined by path, with the same mappings: runc wants them to know
		// the container's root; hullrt checks they match the namespace.
		spec.Linux.UIDMappings, spec.Linux.GIDMappings = ociMaps(uids), ociMaps(gids)
	}
	spec.Mounts = defaultMounts(in.sb, privileged)
	if privileged {
		spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		hostDevices(spec)
	} else {
		spec.Linux.MaskedPaths = defaultMaskedPaths
		spec.Linux.ReadonlyPaths = defaultReadonlyPaths
		// The kubelet sends the paths to use (ProcMount Default): honour them.
		if sc.GetMaskedPaths() != nil {
			spec.Linux.MaskedPaths = sc.GetMaskedPaths()
		}
		if sc.GetReadonlyPaths() != nil {
			spec.Linux.ReadonlyPaths = sc.GetReadonlyPaths()
		}
	}
	if err := addDevices(spec, cfg.GetDevices()); err != nil {
		return nil, err
	}
	applyResources(spec.Linux.Resources, lx.GetResources())
	if err := s.applySeccomp(spec, sc, privileged); err != nil {
		return nil, err
	}
	// Last: it creates missing hostPath sources and mounts image volumes,
	// which no later check should be able to leave behind.
	if err := s.addCRIMounts(spec, in); err != nil {
		return nil, err
	}
	return spec, nil
}

func (s *Service) cgroupsPath(sb *store.Sandbox, id string) string {
	if s.cgroupDriver() == "systemd" {
		parent := sb.CgroupParent
		if parent == "" {
			parent = "system.slice"
		}
		return filepath.Base(parent) + ":hull:" + id
	}
	parent := sb.CgroupParent
	if parent == "" {
		parent = "/hull"
	}
	return filepath.Join(parent, "hull-"+id)
}

// clampOOMScoreAdj raises a requested oom_score_adj to hulld's own when the
// host forbids lowering it (no CAP_SYS_RESOURCE).
func (s *Service) clampOOMScoreAdj(adj int) int {
	if !s.opts.RestrictOOMScoreAdj {
		return adj
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return adj
	}
	var cur int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &cur); err != nil {
		return adj
	}
	if adj < cur {
		return cur
	}
	return adj
}

// namespaces joins the pod's pinned namespaces (or the host's for NODE
// modes) and gives the container new mount and (unless shared) pid ones.
func (s *Service) namespaces(sb *store.Sandbox, sc *runtimeapi.LinuxContainerSecurityContext) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, k := range []struct {
		kind string
		typ  specs.LinuxNamespaceType
	}{{"user", specs.UserNamespace}, {"net", specs.NetworkNamespace}, {"ipc", specs.IPCNamespace}, {"uts", specs.UTSNamespace}} {
		if p := sb.Namespaces[k.kind]; p != "" {
			ns = append(ns, specs.LinuxNamespace{Type: k.typ, Path: p})
		}
	}
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_NODE:
	case runtimeapi.NamespaceMode_POD:
		if p := sb.Namespaces["pid"]; p != "" {
			ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: p})
		} else {
			ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}
	case runtimeapi.NamespaceMode_TARGET:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: s.targetPidNS(sc.GetNamespaceOptions().GetTargetId())})
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	return ns
}

// targetPidNS is the pid namespace of another running container.
func (s *Service) targetPidNS(id string) string {
	c, err := s.store.Container(id)
	if err != nil || c.Pid == 0 {
		return ""
	}
	return fmt.Sprintf("/proc/%d/ns/pid", c.Pid)
}

func defaultMounts(sb *store.Sandbox, privileged bool) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts[3], cgOpts[4] = "rw", "rw"
	}
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
	}
	if sb.Namespaces["ipc"] != "" {
		m = append(m, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: shmPath(sb.Dir), Options: []string{"rbind", "rw"}})
	} else {
		m = append(m, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rw"}})
	}
	return m
}

// hasMount reports whether the request mounts something at dst itself.
func hasMount(cfg *runtimeapi.ContainerConfig, dst string) bool {
	for _, m := range cfg.GetMounts() {
		if filepath.Clean(m.ContainerPath) == dst {
			return true
		}
	}
	return false
}

// addCRIMounts adds the pod's files and the request's mounts (hostPath,
// volumes) with their propagation.
func (s *Service) addCRIMounts(spec *specs.Spec, in specInput) error {
	ro := in.cfg.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	for _, f := range []struct{ dst, src string }{
		{"/etc/hosts", hostsPath(in.sb.Dir)}, {"/etc/resolv.conf", resolvPath(in.sb.Dir)},
		{"/etc/hostname", hostnamePath(in.sb.Dir)},
	} {
		if hasMount(in.cfg, f.dst) {
			continue
		}
		opts := []string{"rbind", "rprivate", "rw"}
		if ro {
			opts[2] = "ro"
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	for i, m := range in.cfg.GetMounts() {
		if m.ContainerPath == "" || !filepath.IsAbs(m.ContainerPath) {
			return fmt.Errorf("mount %q: container path must be absolute: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		if m.GetImage() != nil {
			if err := s.addImageVolume(spec, in.id, i, m); err != nil {
				return err
			}
			continue
		}
		if m.HostPath == "" {
			return fmt.Errorf("mount %q: host path is empty: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		src := m.HostPath
		_, err := os.Stat(src)
		if os.IsNotExist(err) {
			// The kubelet creates hostPath dirs itself; crictl users expect
			// docker's behaviour of creating a missing source directory.
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("mount %q: create host path %q: %w", m.ContainerPath, src, err)
			}
		} else if err != nil {
			return fmt.Errorf("mount %q: host path %q: %w", m.ContainerPath, src, errdefs.ErrInvalidArgument)
		}
		if resolved, err := filepath.EvalSymlinks(src); err == nil {
			src = resolved
		}
		opts := []string{"rbind"}
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			opts = append(opts, "rprivate")
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			opts = append(opts, "rslave")
			spec.Linux.RootfsPropagation = pickPropagation(spec.Linux.RootfsPropagation, "rslave")
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			if !in.cfg.GetLinux().GetSecurityContext().GetPrivileged() {
				return fmt.Errorf("mount %q: bidirectional propagation needs a privileged container: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
			}
			opts = append(opts, "rshared")
			spec.Linux.RootfsPropagation = "rshared"
		}
		if m.Readonly {
			opts = append(opts, "ro")
			if m.RecursiveReadOnly {
				// Applied after the bind with mount_setattr(AT_RECURSIVE), so
				// submounts of the host path are read-only too.
				opts = append(opts, "rro")
			}
		} else {
			opts = append(opts, "rw")
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: filepath.Clean(m.ContainerPath), Type: "bind", Source: src, Options: opts,
			// The kubelet maps a user-namespaced pod's volumes: an idmapped
			// bind (runtime-spec 1.2) shows host files owned by the pod's ids.
			UIDMappings: criMountMaps(m.GetUidMappings()), GIDMappings: criMountMaps(m.GetGidMappings())})
	}
	return nil
}

func pickPropagation(cur, want string) string {
	if cur == "rshared" {
		return cur
	}
	return want
}
