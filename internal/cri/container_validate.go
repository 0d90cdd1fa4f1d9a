package cri

import (
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
)

// The checks here turn requests a runtime would fail on half-way through
// create (or, worse, apply to the host) into an InvalidArgument naming the
// field, before CreateContainer or RunPodSandbox makes anything. The
// kubelet validates most of this itself; crictl and other CRI clients do
// not.

func invalidf(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

// noNUL rejects a string the kernel would cut short or refuse (execve,
// mount, open all take C strings).
func noNUL(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return invalidf("%s %q holds a NUL byte", field, s)
	}
	return nil
}

// validatePodSandboxConfig rejects pod settings no runtime can apply
// safely, before RunPodSandbox creates anything.
func validatePodSandboxConfig(cfg *runtimeapi.PodSandboxConfig) error {
	lx := cfg.GetLinux()
	if err := validateCgroupParent(lx.GetCgroupParent()); err != nil {
		return err
	}
	// Container log paths are joined to it and their directories created:
	// a relative one would land in hulld's working directory.
	if d := cfg.GetLogDirectory(); d != "" && (!filepath.IsAbs(d) || noNUL("", d) != nil) {
		return invalidf("log_directory %q must be an absolute path", d)
	}
	if err := validateDNS(cfg.GetDnsConfig()); err != nil {
		return err
	}
	for i, p := range cfg.GetPortMappings() {
		if p.GetContainerPort() <= 0 || p.GetContainerPort() > 65535 || p.GetHostPort() < 0 || p.GetHostPort() > 65535 {
			return invalidf("port_mappings[%d]: container port %d / host port %d outside 1..65535", i, p.GetContainerPort(), p.GetHostPort())
		}
		if ip := p.GetHostIp(); ip != "" && net.ParseIP(ip) == nil {
			return invalidf("port_mappings[%d]: host_ip %q is not an IP address", i, ip)
		}
	}
	ns := lx.GetSecurityContext().GetNamespaceOptions()
	return validateSysctls(lx.GetSysctls(), ns.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		ns.GetIpc() == runtimeapi.NamespaceMode_NODE)
}

// validateDNS keeps each server, search domain and option one word, so
// none can add lines of its own to the pod's resolv.conf.
func validateDNS(dns *runtimeapi.DNSConfig) error {
	for _, f := range []struct {
		field string
		vs    []string
	}{{"servers", dns.GetServers()}, {"searches", dns.GetSearches()}, {"options", dns.GetOptions()}} {
		for i, v := range f.vs {
			if v == "" || strings.ContainsAny(v, " \t\r\n\x00#;") {
				return invalidf("dns_config.%s[%d] %q must be one non-empty word", f.field, i, v)
			}
		}
	}
	for i, v := range dns.GetServers() {
		if net.ParseIP(v) == nil {
			return invalidf("dns_config.servers[%d] %q is not an IP address", i, v)
		}
	}
	return nil
}

// validateCgroupParent keeps a cgroupfs parent inside the cgroup
// hierarchy: ".." would place the container's cgroup anywhere on the host.
func validateCgroupParent(p string) error {
	if err := noNUL("linux.cgroup_parent", p); err != nil {
		return err
	}
	if p == "" || strings.HasSuffix(p, ".slice") && !strings.Contains(p, "/") {
		return nil // unset, or a systemd slice name
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return invalidf("linux.cgroup_parent %q must be an absolute clean path (or a systemd .slice name)", p)
	}
	return nil
}

// validateSysctls admits only sysctls that live in a namespace the pod
// owns (the rules of the kubelet and runc): anything else would be written
// to the host's kernel.
func validateSysctls(m map[string]string, hostNet, hostIPC bool) error {
	for k, v := range m {
		if err := noNUL("linux.sysctls key", k); err != nil {
			return err
		}
		if err := noNUL("linux.sysctls["+k+"]", v); err != nil {
			return err
		}
		if k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, "/") || strings.HasPrefix(k, ".") {
			return invalidf("linux.sysctls: %q is not a sysctl name", k)
		}
		name := strings.ReplaceAll(k, "/", ".")
		switch {
		case strings.HasPrefix(name, "net."):
			if hostNet {
				return invalidf("linux.sysctls: %q needs the pod's own network namespace (the pod uses the host's)", k)
			}
		case strings.HasPrefix(name, "fs.mqueue."), name == "kernel.sem", name == "kernel.shm_rmid_forced",
			strings.HasPrefix(name, "kernel.msg"), strings.HasPrefix(name, "kernel.shm"):
			if hostIPC {
				return invalidf("linux.sysctls: %q needs the pod's own ipc namespace (the pod uses the host's)", k)
			}
		default:
			return invalidf("linux.sysctls: %q is not namespaced: setting it would change the host", k)
		}
	}
	return nil
}

var (
	pageSizeRe = regexp.MustCompile(`^[0-9]+[KMG]B$`)
	cpusetRe   = regexp.MustCompile(`^[0-9,\-]*$`)
)

// validateContainerConfig checks the request's fields that go to the
// kernel as they are: process, mounts, devices, identities, resources.
func validateContainerConfig(cfg *runtimeapi.ContainerConfig) error {
	for i, a := range append(append([]string{}, cfg.GetCommand()...), cfg.GetArgs()...) {
		if err := noNUL(fmt.Sprintf("command/args[%d]", i), a); err != nil {
			return err
		}
	}
	for i, kv := range cfg.GetEnvs() {
		if kv.GetKey() == "" || strings.IndexByte(kv.GetKey(), '=') >= 0 {
			return invalidf("envs[%d]: key %q must be non-empty and hold no '='", i, kv.GetKey())
		}
		if err := noNUL(fmt.Sprintf("envs[%d]", i), kv.GetKey()+string(kv.GetValue())); err != nil {
			return err
		}
	}
	if wd := cfg.GetWorkingDir(); wd != "" && (!filepath.IsAbs(wd) || noNUL("working_dir", wd) != nil) {
		return invalidf("working_dir %q must be an absolute path without NUL bytes", wd)
	}
	privileged := cfg.GetLinux().GetSecurityContext().GetPrivileged()
	for i, m := range cfg.GetMounts() {
		if err := validateMount(i, m); err != nil {
			return err
		}
		if m.GetPropagation() == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL && !privileged {
			return invalidf("mount %q: bidirectional propagation needs a privileged container", m.GetContainerPath())
		}
	}
	for i, d := range cfg.GetDevices() {
		if err := noNUL(fmt.Sprintf("devices[%d].host_path", i), d.GetHostPath()); err != nil {
			return err
		}
		if c := d.GetContainerPath(); c != "" && (!filepath.IsAbs(c) || filepath.Clean(c) != c || noNUL("", c) != nil) {
			return invalidf("devices[%d].container_path %q must be an absolute clean path", i, c)
		}
		if p := d.GetPermissions(); strings.Trim(p, "rwm") != "" {
			return invalidf("devices[%d].permissions %q may only hold r, w and m", i, p)
		}
	}
	sc := cfg.GetLinux().GetSecurityContext()
	for _, id := range []struct {
		field string
		v     *runtimeapi.Int64Value
	}{{"run_as_user", sc.GetRunAsUser()}, {"run_as_group", sc.GetRunAsGroup()}} {
		if id.v != nil && !validID(id.v.GetValue()) {
			return invalidf("security_context.%s %d is out of range", id.field, id.v.GetValue())
		}
	}
	for _, g := range sc.GetSupplementalGroups() {
		if !validID(g) {
			return invalidf("security_context.supplemental_groups: %d is out of range", g)
		}
	}
	if err := noNUL("security_context.run_as_username", sc.GetRunAsUsername()); err != nil {
		return err
	}
	for _, f := range []struct {
		field string
		ps    []string
	}{{"masked_paths", sc.GetMaskedPaths()}, {"readonly_paths", sc.GetReadonlyPaths()}} {
		for i, p := range f.ps {
			if !filepath.IsAbs(p) || noNUL("", p) != nil {
				return invalidf("security_context.%s[%d] %q must be an absolute path", f.field, i, p)
			}
		}
	}
	return validateResources(cfg.GetLinux().GetResources())
}

// validID: uid/gid 0..2^32-2 (-1, i.e. 2^32-1, means "no change" to the kernel).
func validID(v int64) bool { return v >= 0 && v < math.MaxUint32 }

func validateMount(i int, m *runtimeapi.Mount) error {
	c := m.GetContainerPath()
	if err := noNUL(fmt.Sprintf("mounts[%d].container_path", i), c); err != nil {
		return err
	}
	if !filepath.IsAbs(c) {
		return invalidf("mount %q: container path must be absolute", c)
	}
	if filepath.Clean(c) == "/" {
		return invalidf("mount %q: cannot mount over the container's root", c)
	}
	// A recursive read-only mount must be read-only itself, and private:
	// mounts propagated in later would arrive writable.
	if m.GetRecursiveReadOnly() && !m.GetReadonly() {
		return invalidf("mount %q: recursive_read_only needs readonly", c)
	}
	if m.GetRecursiveReadOnly() && m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
		return invalidf("mount %q: recursive_read_only needs private propagation, not %s", c, m.GetPropagation())
	}
	if m.GetImage() != nil {
		return noNUL(fmt.Sprintf("mounts[%d].image_sub_path", i), m.GetImageSubPath())
	}
	h := m.GetHostPath()
	if err := noNUL(fmt.Sprintf("mounts[%d].host_path", i), h); err != nil {
		return err
	}
	// A relative host path would resolve (and be created) against hulld's
	// own working directory.
	if h != "" && !filepath.IsAbs(h) {
		return invalidf("mount %q: host path %q must be absolute", c, h)
	}
	return nil
}

func validateResources(r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	if r.OomScoreAdj < -1000 || r.OomScoreAdj > 1000 {
		return invalidf("resources.oom_score_adj %d is outside -1000..1000", r.OomScoreAdj)
	}
	if r.MemoryLimitInBytes > 0 && r.MemorySwapLimitInBytes > 0 && r.MemorySwapLimitInBytes < r.MemoryLimitInBytes {
		return invalidf("resources.memory_swap_limit_in_bytes %d is below memory_limit_in_bytes %d (it counts memory plus swap)",
			r.MemorySwapLimitInBytes, r.MemoryLimitInBytes)
	}
	for _, f := range []struct{ field, v string }{{"cpuset_cpus", r.CpusetCpus}, {"cpuset_mems", r.CpusetMems}} {
		if !cpusetRe.MatchString(f.v) {
			return invalidf("resources.%s %q is not a cpu list like 0-3,5", f.field, f.v)
		}
	}
	for _, h := range r.HugepageLimits {
		if !pageSizeRe.MatchString(h.GetPageSize()) {
			return invalidf("resources.hugepage_limits: page size %q is not like 2MB or 1GB", h.GetPageSize())
		}
	}
	for k, v := range r.Unified {
		// Each key names a file in the container's cgroup directory.
		if k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00") {
			return invalidf("resources.unified: %q is not a cgroup file name", k)
		}
		if err := noNUL("resources.unified["+k+"]", v); err != nil {
			return err
		}
	}
	return nil
}

// maxSeccompProfile bounds a localhost profile: a path such as /dev/zero
// must not make hulld read forever.
const maxSeccompProfile = 4 << 20

// readSeccompProfile reads a localhost seccomp profile that must be a
// regular file; O_NONBLOCK keeps a FIFO from blocking the open.
func readSeccompProfile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeccompProfile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSeccompProfile {
		return nil, fmt.Errorf("larger than %d bytes", maxSeccompProfile)
	}
	return b, nil
}
