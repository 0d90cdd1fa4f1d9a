package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/oci/cgroups"
	"hull/internal/oci/seccomp"
)

// MaybeInit must be the first call in main() of any binary that uses
// Runtime.Create/Exec: when the process was re-executed as a container init
// or exec helper it does that job and never returns; otherwise it returns
// at once.
func MaybeInit() {
	mode := os.Getenv(envInit)
	if mode == "" {
		return
	}
	trace(mode + ": start")
	// Namespaces, credentials, capabilities and seccomp filters set below
	// are per thread; everything runs on this thread up to execve.
	runtime.LockOSThread()
	base, err := strconv.Atoi(os.Getenv(envFDBase))
	if err != nil || base < 3 {
		fmt.Fprintf(os.Stderr, "hullrt %s: bad %s\n", mode, envFDBase)
		os.Exit(1)
	}
	os.Unsetenv(envInit)
	os.Unsetenv(envFDBase)
	closeLeakedFDs(base)
	syncf := os.NewFile(uintptr(base+fdSync), "sync")
	unix.CloseOnExec(base + fdSync)
	trees, err := recvMountFDs(base + fdSync)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hullrt %s: %v\n", mode, err)
		os.Exit(1)
	}
	var cfg initConfig
	dec := json.NewDecoder(syncf)
	if err := readJSON(dec, &cfg, jsonDecodeInitConfig); err != nil {
		fmt.Fprintf(os.Stderr, "hullrt %s: read config: %v\n", mode, err)
		os.Exit(1)
	}
	trace(mode + ": config received")
	c := &initProc{cfg: &cfg, base: base, sync: syncf, dec: dec, trees: trees}
	switch mode {
	case "init":
		err = c.runInit()
	case "exec":
		err = c.runExec()
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if c.send(syncMsg{Type: "error", Msg: err.Error()}) != nil {
		// After "ready" the parent is gone: stderr is all that is left.
		fmt.Fprintf(os.Stderr, "hullrt %s: %v\n", mode, err)
	}
	os.Exit(127)
}

// initProc is the state of the re-executed child while it sets up.
type initProc struct {
	cfg   *initConfig
	base  int
	sync  *os.File
	dec   *json.Decoder
	tty   *os.File   // pty slave when process.terminal
	trees []*os.File // idmapped mounts, for cfg.IDMapMounts

	cgroupsReady bool
}

// send writes a message to the parent.
func (c *initProc) send(m syncMsg) error { return writeJSON(c.sync, &m, jsonEncodeSyncMsg) }

// waitCgroups blocks until the parent reports the cgroup placement done
// (once; later calls return at once).
func (c *initProc) waitCgroups() error {
	if c.cgroupsReady {
		return nil
	}
	var m syncMsg
	if err := readJSON(c.dec, &m, jsonDecodeSyncMsg); err != nil || m.Type != "cgroups" {
		return fmt.Errorf("parent did not finish the cgroup setup")
	}
	c.cgroupsReady = true
	return nil
}

func (c *initProc) runInit() error {
	cfg, spec := c.cfg, c.cfg.Spec
	if err := joinNamespaces(cfg.Join); err != nil {
		return err
	}
	if cfg.NewTimeNS {
		if err := setupTimeNS(spec.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	rs := &rootfsSetup{rootfs: cfg.Rootfs, spec: spec, bundle: cfg.State.Bundle, cgroupBinds: cfg.CgroupBinds,
		waitCgroups: c.waitCgroups}
	if len(cfg.CgroupSelfJoin) > 0 {
		rs.waitCgroups = nil // the parent made the directories before the spawn
	}
	if len(c.trees) != len(cfg.IDMapMounts) {
		return fmt.Errorf("got %d idmapped mounts for %d idmapped mount entries", len(c.trees), len(cfg.IDMapMounts))
	}
	if len(c.trees) > 0 {
		rs.idmapped = map[int]*os.File{}
		for i, idx := range cfg.IDMapMounts {
			rs.idmapped[idx] = c.trees[i]
		}
	}
	trace("init: namespaces joined")
	if err := rs.prepare(); err != nil {
		return err
	}
	trace("init: mounts done")
	if cfg.Console {
		if err := c.openPty(cfg.Rootfs + "/dev/ptmx"); err != nil {
			return err
		}
	}
	// As late as possible: the join waits for cgroup_mutex, which the
	// parent's migration holds through an RCU grace period meanwhile.
	if len(cfg.CgroupSelfJoin) > 0 {
		if err := joinSelf(cfg.CgroupSelfJoin); err != nil {
			return err
		}
		trace("init: joined cgroups")
	}
	if err := c.waitCgroups(); err != nil {
		return err
	}
	// The namespace root must be the container's own cgroup, which the
	// parent has just placed this process in.
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if cfg.ParentHooks {
		if err := c.send(syncMsg{Type: "hooks"}); err != nil {
			return fmt.Errorf("ask parent to run hooks: %w", err)
		}
		var m syncMsg
		if err := readJSON(c.dec, &m, jsonDecodeSyncMsg); err != nil || m.Type != "continue" {
			return fmt.Errorf("parent did not finish the prestart/createRuntime hooks")
		}
	}
	if h := spec.Hooks; h != nil {
		st := cfg.State
		st.Status = specs.StateCreated
		if err := runHooks(context.Background(), "createContainer", h.CreateContainer, st); err != nil {
			return err
		}
	}
	trace("init: hooks done")
	if err := rs.enter(cfg.NoPivot); err != nil {
		return err
	}
	trace("init: pivoted")
	// Sysctls go in before /proc/sys turns read-only.
	if err := setSysctls(spec.Linux.Sysctl); err != nil {
		return err
	}
	if err := rs.finish(); err != nil {
		return err
	}
	trace("init: masked/readonly done")
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", spec.Domainname, err)
		}
	}
	if !cfg.NoNewKeyring {
		// A fresh session keyring keeps the host's keys out of reach;
		// kernels or seccomp setups without keyrings simply skip it.
		unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID)
	}
	if spec.Linux.Personality != nil {
		if err := setPersonality(spec.Linux.Personality); err != nil {
			return err
		}
	}
	var path string
	if cfg.Process != nil {
		var err error
		if path, err = c.prepareProcess(true); err != nil {
			return err
		}
	}
	trace("init: ready")
	if err := c.send(syncMsg{Type: "ready"}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	// Wait for start: opening the fifo for writing blocks until a reader
	// (hullrt start) opens it.
	fifo, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(c.base+fdFifo), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := fifo.Write([]byte{0}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	trace("init: fifo written")
	// The write end stays open (close-on-exec): start reads EOF once the
	// user process runs, so poststart hooks follow its execve.
	unix.Close(c.base + fdFifo)
	if h := spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		st := cfg.State
		st.Status = specs.StateRunning
		if err := runHooks(context.Background(), "startContainer", h.StartContainer, st); err != nil {
			return err
		}
	}
	if cfg.Process == nil {
		os.Exit(0)
	}
	return c.execProcess(path)
}

// runExec is the exec helper: it is already in the container's pid
// namespace (the parent forked it there) and joins the others itself.
func (c *initProc) runExec() error {
	cfg := c.cfg
	// Before the mount namespace: the cgroup directories are host paths.
	if len(cfg.CgroupSelfJoin) > 0 {
		if err := joinSelf(cfg.CgroupSelfJoin); err != nil {
			return err
		}
	}
	if err := joinNamespaces(cfg.Join); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to container root: %w", err)
	}
	if cfg.Console {
		if err := c.openPty("/dev/ptmx"); err != nil {
			return err
		}
	}
	// In the container's cgroups before anything a seccomp filter (loaded
	// by prepareProcess) might forbid.
	if err := c.waitCgroups(); err != nil {
		return err
	}
	path, err := c.prepareProcess(false)
	if err != nil {
		return err
	}
	return c.execProcess(path)
}

// joinSelf moves the init into its v1 cgroups. Only this thread moves
// (the one that will execve); if it is not the thread group leader,
// /proc/PID/cgroup (the leader's, which hooks may read) would still show
// the host's cgroups, so then the whole process moves instead, paying the
// grace period.
func joinSelf(dirs []string) error {
	if unix.Gettid() == os.Getpid() {
		return cgroups.JoinSelf(dirs)
	}
	for _, d := range dirs {
		if err := os.WriteFile(d+"/cgroup.procs", []byte("0"), 0); err != nil {
			return fmt.Errorf("cgroups: join %s: %w", d, err)
		}
	}
	return nil
}

// closeLeakedFDs closes every fd the parent let through by accident (opened
// without O_CLOEXEC, as a leaked host directory fd in CVE-2024-21626):
// anything past the runtime's own fds that is not close-on-exec. Go's own
// fds are all close-on-exec and stay; stdio and preserved fds are below
// base.
func closeLeakedFDs(base int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= base+fdCons {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// setupTimeNS unshares a time namespace (entered by this task at execve)
// and writes its clock offsets.
func setupTimeNS(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	var b strings.Builder
	for clock, off := range offsets {
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := os.WriteFile("/proc/thread-self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("write time namespace offsets: %w", err)
	}
	return nil
}

func setSysctls(m map[string]string) error {
	for k, v := range m {
		if strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return invalid("sysctl %q is not a valid key", k)
		}
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("set sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

func setPersonality(p *specs.LinuxPersonality) error {
	var dom uintptr
	switch p.Domain {
	case specs.PerLinux:
		dom = 0x0000
	case specs.PerLinux32:
		dom = 0x0008
	default:
		return invalid("linux.personality.domain %q is not LINUX or LINUX32", p.Domain)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("personality %s: %w", p.Domain, e)
	}
	return nil
}

var _ = seccomp.Load
