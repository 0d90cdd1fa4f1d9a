package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
	"hull/internal/oci/cgroups"
	"hull/internal/oci/seccomp"
	"hull/internal/oci/unixsock"
)

// CreateOptions are the per-create options of runc's create command.
type CreateOptions struct {
	Bundle        string
	ConsoleSocket string
	PidFile       string
	PreserveFDs   int
	NoPivot       bool
	NoNewKeyring  bool
	// Stdio of the container process; nil inherits the caller's.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Create creates container id from o.Bundle and leaves its init blocked
// until Start. On any error nothing of the container is left behind.
func (r *Runtime) Create(ctx context.Context, id string, o CreateOptions) error {
	_, err := r.create(ctx, id, o)
	return err
}

func (r *Runtime) create(ctx context.Context, id string, o CreateOptions) (retProc *os.Process, retErr error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	bundle := o.Bundle
	if bundle == "" {
		bundle = "."
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", o.Bundle, errdefs.ErrInvalidArgument)
	}
	trace("create: begin")
	mounts := hostMounts()
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	trace("create: spec loaded")
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("rootfs %q does not exist or is not a directory: %w", rootfs, errdefs.ErrInvalidArgument)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, fmt.Errorf("resolve rootfs: %w", err)
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	if terminal && o.ConsoleSocket == "" {
		return nil, fmt.Errorf("process.terminal is true but no console socket was given: %w", errdefs.ErrInvalidArgument)
	}

	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create state dir for %q: %w", id, err)
	}
	var mgr cgroups.Manager
	var ch *child
	// The v1 cgroup directories are made during the spawn; waitDirs
	// returns once they are (at once if that never started).
	var dirsDone chan error
	var dirsErr error
	waitDirs := func() error {
		if dirsDone != nil {
			dirsErr, dirsDone = <-dirsDone, nil
		}
		return dirsErr
	}
	defer func() {
		if retErr == nil {
			return
		}
		if ch != nil {
			ch.kill()
		}
		if mgr != nil {
			waitDirs() // never remove the directories while they are made
			mgr.Destroy()
		}
		os.RemoveAll(dir)
	}()

	s := &saved{ID: id, Bundle: bundle, Rootfs: rootfs, Created: time.Now().UTC(), Annotations: spec.Annotations}
	cfg := &initConfig{Mode: "init", ID: id, Spec: initSpec(spec), Process: spec.Process, Rootfs: rootfs,
		NoPivot: o.NoPivot, NoNewKeyring: o.NoNewKeyring, Console: terminal,
		State: stateForHooks(s, specs.StateCreating, 0)}
	var sys *syscall.SysProcAttr
	var joinPid string
	var raw *rawNamespaces
	if needsRawFork(spec.Linux.Namespaces) {
		if raw, err = rawNamespaceSetup(spec, cfg); err != nil {
			return nil, err
		}
		defer raw.Close()
	} else if sys, joinPid, err = namespaceSetup(spec, cfg); err != nil {
		return nil, err
	}
	if hasNamespace(spec.Linux.Namespaces, specs.UserNamespace) {
		premakeMountPoints(spec, rootfs, bundle)
	}
	var mountFDs []*os.File
	if hasIDMapped(spec.Mounts) {
		var joined *os.File
		if raw != nil {
			joined = raw.user
		}
		im, err := prepareIDMapMounts(spec, bundle, joined)
		if err != nil {
			return nil, err
		}
		defer im.Close()
		cfg.IDMapMounts, mountFDs = im.index, im.trees
	}
	if spec.Linux.Seccomp != nil {
		prog, err := seccomp.Compile(spec.Linux.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
		cfg.Seccomp, cfg.SeccompFlags = prog, spec.Linux.Seccomp.Flags
	}
	h := spec.Hooks
	//lint:ignore SA1019 prestart is deprecated but still part of the spec and the validation suite
	cfg.ParentHooks = h != nil && (len(h.Prestart) > 0 || len(h.CreateRuntime) > 0)

	fifoPath := filepath.Join(dir, fifoName)
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	// Writable by anyone (past the umask): the init may run as an
	// unprivileged or user-namespaced uid by the time it opens it.
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()
	var console *os.File
	if terminal {
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, err
		}
		defer console.Close()
	}
	if mgr, err = cgroups.New(spec.Linux.CgroupsPath, id, cgroups.Options{Systemd: r.systemd}); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	// Without a user namespace the init can move its own exec thread into
	// the v1 cgroups, which skips the migration's RCU grace period; the
	// directories must exist before it runs. What still migrates (the
	// cgroup2 part on hybrid hosts, everything elsewhere) waits for a
	// grace period: start it now (cgroups.PrimeMigration), after the
	// mkdirs, which would otherwise wait behind it for cgroup_mutex.
	if !hasNamespace(spec.Linux.Namespaces, specs.UserNamespace) {
		if dirs := cgroups.SelfJoinDirs(mgr); len(dirs) > 0 {
			if err := cgroups.MakeUnifiedDir(mgr); err != nil {
				return nil, fmt.Errorf("cgroups: %w", err)
			}
			dirsDone = make(chan error, 1)
			go func() { dirsDone <- cgroups.MakeV1Dirs(mgr) }()
			cfg.CgroupSelfJoin = dirs
		}
	}
	// The cgroup2 part of a hybrid host: the init is born there
	// (clone3 CLONE_INTO_CGROUP, which takes the rwsem only for reading).
	unifiedAtFork := false
	if len(cfg.CgroupSelfJoin) > 0 && mgr.Path("") != "" && sys != nil {
		fd, err := unix.Open(mgr.Path(""), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("cgroups: open %s: %w", mgr.Path(""), err)
		}
		defer unix.Close(fd)
		sys.UseCgroupFD, sys.CgroupFD, unifiedAtFork = true, fd, true
	}
	if len(cfg.CgroupSelfJoin) == 0 || mgr.Path("") != "" && !unifiedAtFork {
		go cgroups.PrimeMigration()
	}
	trace("create: cgroup dirs made")
	so := spawnOptions{mode: "init", exe: r.initPath, preserve: o.PreserveFDs, fifo: fifo, console: console,
		sys: sys, joinPidPath: joinPid, raw: raw, mountFDs: mountFDs}
	so.stdin, so.stdout, so.stderr = stdio(o.Stdin, o.Stdout, o.Stderr)
	if ch, err = spawn(so); err != nil && unifiedAtFork {
		// A kernel without clone3 or CLONE_INTO_CGROUP (before 5.7):
		// the parent migrates the init instead.
		sys.UseCgroupFD, unifiedAtFork = false, false
		go cgroups.PrimeMigration()
		ch, err = spawn(so)
	}
	if err != nil {
		return nil, err
	}
	pid := ch.proc.Pid
	s.Pid = pid
	trace("create: init spawned")
	// The init sets up its rootfs while the (slow) cgroup placement runs;
	// it waits for the "cgroups" message before anything that needs it.
	if mps, err := mounts(); err == nil {
		cfg.CgroupBinds = cgroupBinds(mgr, mps)
	}
	cfg.State.Pid = pid
	// The init uses the directories as soon as it has its config.
	if err := waitDirs(); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := ch.send(cfg); err != nil {
		return nil, err
	}
	trace("create: config sent")
	apply := mgr.Apply
	if len(cfg.CgroupSelfJoin) > 0 {
		apply = func(pid int) error {
			if unifiedAtFork {
				return nil
			}
			return cgroups.ApplyRest(mgr, pid)
		}
	}
	if err := apply(pid); err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	if err := checkControllers(spec.Linux.Resources, mgr); err != nil {
		return nil, err
	}
	if spec.Linux.Resources != nil {
		if err := mgr.Set(withDefaultDevices(spec)); err != nil {
			return nil, fmt.Errorf("cgroups: %w", err)
		}
	}
	s.CgroupPaths = mgr.Paths()
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		setOOMScoreAdj(pid, *spec.Process.OOMScoreAdj)
	}
	if err := ch.send(syncMsg{Type: "cgroups"}); err != nil {
		return nil, err
	}
	trace("create: cgroups applied")
	// The state to save, prepared while the init sets itself up.
	if _, start, ok := procStat(pid); ok {
		s.StartTime = start
	}
	if s.Config, err = encodeJSON(spec, jsonEncodeSpec); err != nil {
		return nil, fmt.Errorf("encode config of %q: %w", id, err)
	}
	for {
		m, err := ch.recv()
		if err != nil {
			return nil, fmt.Errorf("create container %q: %w", id, err)
		}
		if m.Type == "ready" {
			break
		}
		if m.Type != "hooks" {
			return nil, fmt.Errorf("create container %q: unexpected message %q from init", id, m.Type)
		}
		st := stateForHooks(s, specs.StateCreated, pid)
		//lint:ignore SA1019 see above
		if err := runHooks(ctx, "prestart", h.Prestart, st); err != nil {
			return nil, err
		}
		if err := runHooks(ctx, "createRuntime", h.CreateRuntime, st); err != nil {
			return nil, err
		}
		if err := ch.send(syncMsg{Type: "continue"}); err != nil {
			return nil, err
		}
	}
	ch.sync.Close()
	trace("create: init ready")
	if err := r.writeSaved(s); err != nil {
		return nil, err
	}
	trace("create: state written")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.children[id] = ch.proc
	r.mu.Unlock()
	return ch.proc, nil
}

// initSpec is the part of spec the init works from: the resources (the
// parent applies them), the seccomp profile (compiled by the parent, sent
// as cfg.Seccomp), the process (sent as cfg.Process) and the annotations
// left out, so that the init does not decode them; a runtime's default
// seccomp profile is most of a typical config.
func initSpec(spec *specs.Spec) *specs.Spec {
	c := *spec
	c.Process, c.Annotations = nil, nil
	if spec.Linux != nil {
		l := *spec.Linux
		l.Resources, l.Seccomp = nil, nil
		c.Linux = &l
	}
	return &c
}

// checkControllers refuses limits that no mounted controller can enforce
// (net_cls/net_prio are often not mounted): silently running without a
// requested limit would be worse than not running.
func checkControllers(res *specs.LinuxResources, m cgroups.Manager) error {
	if res == nil || res.Network == nil || m.Path("") != "" && len(m.Paths()) == 1 {
		return nil
	}
	if res.Network.ClassID != nil && m.Path("net_cls") == "" {
		return fmt.Errorf("linux.resources.network.classID: the net_cls cgroup controller is not mounted: %w", errdefs.ErrFailedPrecondition)
	}
	if len(res.Network.Priorities) > 0 && m.Path("net_prio") == "" {
		return fmt.Errorf("linux.resources.network.priorities: the net_prio cgroup controller is not mounted: %w", errdefs.ErrFailedPrecondition)
	}
	return nil
}

// stdio maps nil to the caller's own stdio (the documented default).
func stdio(in io.Reader, out, errw io.Writer) (io.Reader, io.Writer, io.Writer) {
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	if errw == nil {
		errw = os.Stderr
	}
	return in, out, errw
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pid file %q: %w", path, errdefs.ErrInvalidArgument)
	}
	return writeFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644)
}

// dialConsole connects to the console socket; the init sends the pty
// master over it.
func dialConsole(path string) (*os.File, error) {
	f, err := unixsock.Dial(path, 0)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %q: %w", path, err)
	}
	return f, nil
}

// setOOMScoreAdj writes oom_score_adj. Without CAP_SYS_RESOURCE lowering
// it fails; the container then keeps the inherited value rather than
// failing to start.
func setOOMScoreAdj(pid, v int) {
	p := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
	if err := os.WriteFile(p, []byte(strconv.Itoa(v)), 0); err != nil {
		logf("oom_score_adj %d not applied: %v", v, err)
	}
}

// LoadSpec reads and validates bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %q has no config.json: %w", bundle, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("read config.json: %w", err)
	}
	spec, err := decodeSpec(b)
	if err != nil {
		return nil, fmt.Errorf("config.json is malformed: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := validateSpec(spec); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return spec, nil
}

var _ = syscall.SIGKILL
