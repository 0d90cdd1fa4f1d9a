package cri

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
)

// resolveUser turns the request's run_as_user/run_as_username/run_as_group
// (or the image's USER) into uid, gid and supplemental groups, reading the
// container's /etc/passwd and /etc/group without following symlinks out of
// the rootfs.
func resolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (specs.User, error) {
	spec := imageUser
	switch {
	case sc.GetRunAsUser() != nil:
		spec = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsUsername() != "":
		spec = sc.GetRunAsUsername()
	}
	if sc.GetRunAsGroup() != nil {
		if sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
			return specs.User{}, fmt.Errorf("run_as_group is set without run_as_user or run_as_username: %w", errdefs.ErrInvalidArgument)
		}
		if i := strings.IndexByte(spec, ':'); i >= 0 {
			spec = spec[:i]
		}
		if spec == "" {
			spec = "0"
		}
		spec += ":" + strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
	}
	passwd := openInRoot(rootfs, "/etc/passwd")
	group := openInRoot(rootfs, "/etc/group")
	defer closeIf(passwd)
	defer closeIf(group)
	eu, err := user.GetExecUser(spec, &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}, readerOf(passwd), readerOf(group))
	if err != nil {
		return specs.User{}, fmt.Errorf("resolve user %q in the image: %v: %w", spec, err, errdefs.ErrInvalidArgument)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	seen := map[uint32]bool{u.GID: true}
	add := func(g uint32) {
		if !seen[g] {
			seen[g] = true
			u.AdditionalGids = append(u.AdditionalGids, g)
		}
	}
	// Strict (KEP-3619) keeps exactly the request's groups: memberships the
	// image's /etc/group grants the user are what it guards against.
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		for _, g := range eu.Sgids {
			add(uint32(g))
		}
	}
	for _, g := range sc.GetSupplementalGroups() {
		add(uint32(g))
	}
	return u, nil
}

func openInRoot(root, p string) *os.File {
	if root == "" {
		return nil
	}
	// OpenInRoot gives an O_PATH handle resolved inside root; reopen it
	// for reading through that handle, never through the path again.
	h, err := pathrs.OpenInRoot(root, p)
	if err != nil {
		return nil
	}
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil
	}
	return f
}

func closeIf(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// readerOf avoids handing GetExecUser a typed-nil reader.
func readerOf(f *os.File) io.Reader {
	if f == nil {
		return nil
	}
	return f
}

func capName(c string) string {
	c = strings.ToUpper(c)
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// allCaps lists every capability the running kernel knows.
func allCaps() []string {
	names := []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
		"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK",
		"IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT",
		"SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
		"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON",
		"BPF", "CHECKPOINT_RESTORE"}
	last := len(names) - 1
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < last {
			last = n
		}
	}
	bnd := ownBoundingSet()
	out := make([]string, 0, last+1)
	for i, n := range names[:last+1] {
		// A container cannot get a capability hulld itself lacks (this host
		// drops CAP_SYS_RESOURCE): asking for it fails the runtime's capset.
		if bnd&(1<<uint(i)) != 0 {
			out = append(out, "CAP_"+n)
		}
	}
	return out
}

// ownBoundingSet is hulld's capability bounding set (all bits when unknown).
func ownBoundingSet() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ^uint64(0)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				return n
			}
		}
	}
	return ^uint64(0)
}

// capabilities applies add/drop (with "ALL") to the default set; a
// privileged container gets every capability.
func capabilities(sc *runtimeapi.LinuxContainerSecurityContext) (*specs.LinuxCapabilities, error) {
	known := map[string]bool{}
	for _, c := range allCaps() {
		known[c] = true
	}
	var set []string
	if sc.GetPrivileged() {
		set = allCaps()
	} else {
		cur := map[string]bool{}
		for _, c := range defaultCaps {
			cur[c] = true
		}
		add, drop := sc.GetCapabilities().GetAddCapabilities(), sc.GetCapabilities().GetDropCapabilities()
		for _, c := range drop {
			if strings.EqualFold(c, "ALL") {
				cur = map[string]bool{}
				continue
			}
			delete(cur, capName(c))
		}
		for _, c := range add {
			if strings.EqualFold(c, "ALL") {
				for k := range known {
					cur[k] = true
				}
				continue
			}
			n := capName(c)
			if !known[n] {
				return nil, fmt.Errorf("capability %q is unknown or not held by hulld on this host: %w", c, errdefs.ErrInvalidArgument)
			}
			cur[n] = true
		}
		for _, c := range allCaps() {
			if cur[c] {
				set = append(set, c)
			}
		}
	}
	return &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}, nil
}

// applySeccomp sets the seccomp profile: RuntimeDefault, Unconfined, or a
// Localhost JSON profile file.
func (s *Service) applySeccomp(spec *specs.Spec, sc *runtimeapi.LinuxContainerSecurityContext, privileged bool) error {
	p := sc.GetSeccomp()
	if privileged || p == nil {
		return nil
	}
	switch p.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		spec.Linux.Seccomp = defaultSeccomp(spec.Process.Capabilities.Bounding)
		return nil
	case runtimeapi.SecurityProfile_Localhost:
		path := p.GetLocalhostRef()
		if !filepath.IsAbs(path) {
			return fmt.Errorf("seccomp localhost profile %q must be an absolute path: %w", path, errdefs.ErrInvalidArgument)
		}
		b, err := readSeccompProfile(path)
		if err != nil {
			return fmt.Errorf("seccomp localhost profile %q: %v: %w", path, err, errdefs.ErrInvalidArgument)
		}
		var prof specs.LinuxSeccomp
		if err := json.Unmarshal(b, &prof); err != nil {
			return fmt.Errorf("seccomp localhost profile %q: %v: %w", path, err, errdefs.ErrInvalidArgument)
		}
		spec.Linux.Seccomp = &prof
		return nil
	}
	return fmt.Errorf("seccomp profile type %v: %w", p.GetProfileType(), errdefs.ErrInvalidArgument)
}

// addDevices adds the requested host devices with their permissions.
func addDevices(spec *specs.Spec, devs []*runtimeapi.Device) error {
	for _, d := range devs {
		dev, err := deviceFromPath(d.HostPath, d.ContainerPath, d.Permissions)
		if err != nil {
			return err
		}
		spec.Linux.Devices = append(spec.Linux.Devices, dev.dev)
		spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, dev.rule)
	}
	return nil
}

type device struct {
	dev  specs.LinuxDevice
	rule specs.LinuxDeviceCgroup
}

func deviceFromPath(host, ctr, perms string) (*device, error) {
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		return nil, fmt.Errorf("device %q: %v: %w", host, err, errdefs.ErrInvalidArgument)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return nil, fmt.Errorf("device %q is not a character or block device: %w", host, errdefs.ErrInvalidArgument)
	}
	if ctr == "" {
		ctr = host
	}
	if perms == "" {
		perms = "rwm"
	}
	major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return &device{
		dev:  specs.LinuxDevice{Path: ctr, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid},
		rule: specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perms},
	}, nil
}

// hostDevices gives a privileged container every device of the host's /dev.
func hostDevices(spec *specs.Spec) {
	_ = filepath.WalkDir("/dev", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue":
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&os.ModeDevice == 0 || p == "/dev/console" {
			return nil
		}
		if dev, err := deviceFromPath(p, p, "rwm"); err == nil {
			spec.Linux.Devices = append(spec.Linux.Devices, dev.dev)
		}
		return nil
	})
}

// applyResources copies the CRI resources into the OCI spec.
func applyResources(out *specs.LinuxResources, r *runtimeapi.LinuxContainerResources) {
	if r == nil {
		return
	}
	cpu := &specs.LinuxCPU{}
	if r.CpuShares > 0 {
		v := uint64(r.CpuShares)
		cpu.Shares = &v
	}
	if r.CpuQuota > 0 {
		cpu.Quota = &r.CpuQuota
	}
	if r.CpuPeriod > 0 {
		v := uint64(r.CpuPeriod)
		cpu.Period = &v
	}
	cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
	if *cpu != (specs.LinuxCPU{}) {
		out.CPU = cpu
	}
	if r.MemoryLimitInBytes > 0 {
		v := r.MemoryLimitInBytes
		out.Memory = &specs.LinuxMemory{Limit: &v}
		if r.MemorySwapLimitInBytes > 0 {
			sw := r.MemorySwapLimitInBytes
			out.Memory.Swap = &sw
		}
	}
	for _, h := range r.HugepageLimits {
		out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.PageSize, Limit: h.Limit})
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
}
