package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
	"hull/internal/oci/cgroups"
	"hull/internal/oci/seccomp"
)

// ExecOptions are the options of runc's exec command.
type ExecOptions struct {
	ConsoleSocket  string
	PidFile        string
	Detach         bool
	PreserveFDs    int
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Exec starts p inside running container id and returns it once the new
// process executes (its exit status comes from Process.Wait: it is a child
// of the caller).
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, o ExecOptions) (retProc *os.Process, retErr error) {
	// The host's cgroup mounts, needed to join the container's cgroups,
	// are read while the state is loaded.
	trace("exec: begin")
	go cgroups.Mode()
	s, err := r.loadSaved(id)
	if err != nil {
		return nil, err
	}
	if st := r.status(s); st != specs.StateRunning && st != specs.StateCreated {
		return nil, fmt.Errorf("container %q is %s, cannot exec: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	if p == nil {
		return nil, fmt.Errorf("exec into %q: no process: %w", id, errdefs.ErrInvalidArgument)
	}
	if err := validateProcess(p); err != nil {
		return nil, fmt.Errorf("exec process: %w", err)
	}
	if p.Terminal && o.ConsoleSocket == "" {
		return nil, fmt.Errorf("exec with a terminal needs a console socket: %w", errdefs.ErrInvalidArgument)
	}
	spec, err := s.spec()
	if err != nil {
		return nil, err
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	ns := "/proc/" + strconv.Itoa(s.Pid) + "/ns/"
	cfg := &initConfig{Mode: "exec", ID: id, Process: p, Console: p.Terminal, State: stateForHooks(s, specs.StateRunning, s.Pid)}
	joinPid := ""
	var raw *rawNamespaces
	if hasNamespace(spec.Linux.Namespaces, specs.UserNamespace) || hasNamespace(spec.Linux.Namespaces, specs.TimeNamespace) {
		// setns(CLONE_NEWUSER/CLONE_NEWTIME) needs the raw fork; it joins
		// them all but the mount namespace.
		if raw, err = execRawNamespaces(s.Pid, spec.Linux.Namespaces); err != nil {
			return nil, fmt.Errorf("exec into %q: %w", id, err)
		}
		defer raw.Close()
	}
	for _, n := range spec.Linux.Namespaces {
		if raw != nil {
			break
		}
		switch n.Type {
		case specs.PIDNamespace:
			joinPid = ns + "pid"
		default:
			file := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
				specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time"}[n.Type]
			if file != "" && n.Type != specs.MountNamespace && n.Type != specs.TimeNamespace {
				cfg.Join = append(cfg.Join, nsJoin{Type: n.Type, Path: ns + file})
			}
		}
	}
	// The mount namespace last: after it the host paths are gone.
	cfg.Join = append(cfg.Join, nsJoin{Type: specs.MountNamespace, Path: ns + "mnt"})
	if spec.Linux.Seccomp != nil {
		prog, err := seccomp.Compile(spec.Linux.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
		cfg.Seccomp, cfg.SeccompFlags = prog, spec.Linux.Seccomp.Flags
	}
	var console *os.File
	if p.Terminal {
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, err
		}
		defer console.Close()
	}
	mgr, mgrErr := r.manager(s)
	stdin, stdout, stderr := stdio(o.Stdin, o.Stdout, o.Stderr)
	if !r.execHelperOnly && canExecRaw(p, raw, mgrErr, spec.Linux.Seccomp, stdin, stdout, stderr) {
		proc, err := r.execRaw(s, p, cfg, joinPid, mgr, o, stdin, stdout, stderr)
		if !errors.Is(err, errRawExecUnavailable) {
			return proc, err
		}
	}
	// The cgroup placement as in create: the helper moves its exec thread
	// into the v1 cgroups itself and is born in the cgroup2 one, neither
	// of which waits for an RCU grace period; what the parent still
	// migrates does, so that wait starts now (PrimeMigration).
	var sys *syscall.SysProcAttr
	unifiedAtFork := false
	if mgrErr == nil && raw == nil {
		cfg.CgroupSelfJoin = cgroups.SelfJoinDirs(mgr)
		if len(cfg.CgroupSelfJoin) > 0 && mgr.Path("") != "" {
			fd, err := unix.Open(mgr.Path(""), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err == nil {
				defer unix.Close(fd)
				sys, unifiedAtFork = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}, true
			}
		}
	}
	if mgrErr == nil && (len(cfg.CgroupSelfJoin) == 0 || mgr.Path("") != "" && !unifiedAtFork) {
		go cgroups.PrimeMigration()
	}
	so := spawnOptions{mode: "exec", exe: r.initPath, preserve: o.PreserveFDs, console: console, joinPidPath: joinPid, raw: raw, sys: sys,
		stdin: stdin, stdout: stdout, stderr: stderr}
	ch, err := spawn(so)
	if err != nil && unifiedAtFork {
		// No clone3 or CLONE_INTO_CGROUP (kernels before 5.7).
		so.sys, unifiedAtFork = nil, false
		go cgroups.PrimeMigration()
		ch, err = spawn(so)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			ch.kill()
		}
	}()
	pid := ch.proc.Pid
	trace("exec: helper spawned")
	// The helper joins the namespaces and prepares the process while the
	// cgroup placement runs; it waits for "cgroups" before execve.
	if err := ch.send(cfg); err != nil {
		return nil, err
	}
	if mgrErr == nil {
		var err error
		switch {
		case unifiedAtFork:
		case len(cfg.CgroupSelfJoin) > 0:
			err = cgroups.ApplyRest(mgr, pid)
		default:
			err = mgr.Apply(pid)
		}
		if err != nil {
			return nil, fmt.Errorf("exec: join cgroups: %w", err)
		}
	}
	trace("exec: cgroups joined")
	if p.OOMScoreAdj != nil {
		setOOMScoreAdj(pid, *p.OOMScoreAdj)
	}
	if err := ch.send(syncMsg{Type: "cgroups"}); err != nil {
		return nil, err
	}
	// Success is the sync socket closing on execve; an error arrives as a
	// message first.
	if m, err := ch.recv(); err == nil || m.Type == "error" {
		if err == nil {
			err = fmt.Errorf("unexpected message %q", m.Type)
		}
		return nil, fmt.Errorf("exec in %q: %w", id, err)
	}
	ch.sync.Close()
	trace("exec: process executed")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	return ch.proc, nil
}
