package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
	"hull/internal/oci/cgroups"
)

// Start lets a created container's init execute the user process, then
// runs the poststart hooks.
func (r *Runtime) Start(ctx context.Context, id string) error {
	s, err := r.loadSaved(id)
	if err != nil {
		return err
	}
	if st := r.status(s); st != specs.StateCreated {
		return fmt.Errorf("container %q is %s, not created: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	fifoPath := filepath.Join(r.dir(id), fifoName)
	trace("start: begin")
	if err := r.openFifo(s, fifoPath); err != nil {
		return err
	}
	trace("start: user process executed")
	h, err := s.hooks()
	if err != nil {
		return err
	}
	if h != nil && len(h.Poststart) > 0 {
		runHooksWarn(ctx, "poststart", h.Poststart, stateForHooks(s, specs.StateRunning, s.Pid))
	}
	return nil
}

// openFifo reads the init's byte from the exec fifo. The blocking open
// waits for the init; if the init dies first, the wait ends as soon as
// that is seen.
func (r *Runtime) openFifo(s *saved, path string) error {
	type res struct {
		f   *os.File
		err error
	}
	ch := make(chan res, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- res{f, err}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	misses := 0
	for {
		select {
		case x := <-ch:
			if x.err != nil {
				if errors.Is(x.err, os.ErrNotExist) {
					return fmt.Errorf("container %q was already started: %w", s.ID, errdefs.ErrFailedPrecondition)
				}
				return fmt.Errorf("open exec fifo: %w", x.err)
			}
			defer x.f.Close()
			var b [1]byte
			n, err := x.f.Read(b[:])
			os.Remove(path)
			if n != 1 {
				return fmt.Errorf("container %q init exited before start (%v): %w", s.ID, err, errdefs.ErrFailedPrecondition)
			}
			// EOF follows when the init's write end closes at execve (or
			// its exit); either way the user process has been started.
			io.Copy(io.Discard, x.f)
			return nil
		case <-tick.C:
			// Two misses in a row: one failed read of /proc is not a death.
			if initAlive(s) {
				misses = 0
				continue
			}
			if misses++; misses < 2 {
				continue
			}
			os.Remove(path)
			st, start, ok := procStat(s.Pid)
			return fmt.Errorf("container %q init exited before start (pid %d state %q start %d/%d present %v): %w",
				s.ID, s.Pid, st, start, s.StartTime, ok, errdefs.ErrFailedPrecondition)
		}
	}
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig syscall.Signal, all bool) error {
	s, err := r.loadSaved(id)
	if err != nil {
		return err
	}
	if all {
		pids, err := r.pids(s)
		if err == nil && len(pids) > 0 {
			for _, p := range pids {
				unix.Kill(p, sig)
			}
			return nil
		}
	}
	if !initAlive(s) {
		// "container not running" is what containerd's shim looks for to
		// treat the process as already finished.
		return fmt.Errorf("container %q is stopped: container not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err := unix.Kill(s.Pid, sig); err != nil {
		return fmt.Errorf("signal %d to %q: %w", sig, id, err)
	}
	return nil
}

// Delete removes a stopped (or, with force, any) container: it kills what
// is left, removes its cgroups, runs the poststop hooks and drops its
// state.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	s, err := r.loadSaved(id)
	if err != nil {
		if force && errdefs.IsNotFound(err) && checkID(id) == nil {
			if _, serr := os.Stat(r.dir(id)); serr == nil {
				return os.RemoveAll(r.dir(id))
			}
		}
		return err
	}
	st := r.status(s)
	switch st {
	case specs.StateStopped:
	default:
		if !force {
			return fmt.Errorf("container %q is %s; stop it first or use --force: %w", id, st, errdefs.ErrFailedPrecondition)
		}
		if s.Paused {
			if m, err := r.manager(s); err == nil {
				m.Thaw()
			}
		}
		r.killAndWait(s)
	}
	trace("delete: begin")
	defer trace("delete: done")
	if m, err := r.manager(s); err == nil {
		if err := m.Destroy(); err != nil {
			// Leftover processes in the cgroup: kill them and retry once.
			if pids, _ := m.Pids(); len(pids) > 0 {
				for _, p := range pids {
					unix.Kill(p, unix.SIGKILL)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := m.Destroy(); err != nil {
				logf("container %s: remove cgroup: %v", id, err)
			}
		}
	}
	trace("delete: cgroups removed")
	h, err := s.hooks()
	if err != nil {
		// The state must still go: a corrupt config only costs the hooks.
		logf("container %s: poststop hooks not run: %v", id, err)
	}
	if h != nil && len(h.Poststop) > 0 {
		runHooksWarn(ctx, "poststop", h.Poststop, stateForHooks(s, specs.StateStopped, 0))
	}
	r.mu.Lock()
	if p := r.children[id]; p != nil {
		delete(r.children, id)
		go p.Wait() // reap our own child in the background
	}
	r.mu.Unlock()
	if err := os.RemoveAll(r.dir(id)); err != nil {
		return fmt.Errorf("remove state of %q: %w", id, err)
	}
	return nil
}

// killAndWait SIGKILLs the init (and, through the pid namespace or the
// cgroup, the rest) and waits until it is gone or a zombie.
func (r *Runtime) killAndWait(s *saved) {
	if pids, err := r.pids(s); err == nil {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
	}
	if initAlive(s) {
		unix.Kill(s.Pid, unix.SIGKILL)
	}
	for i := 0; i < 2000 && initAlive(s); i++ {
		time.Sleep(time.Millisecond)
	}
}

// Wait waits for the init of a container this Runtime created and returns
// its exit status (128+signal for a signal). For other containers it polls
// until the init is gone and returns -1.
func (r *Runtime) Wait(id string) (int, error) {
	r.mu.Lock()
	p := r.children[id]
	r.mu.Unlock()
	if p != nil {
		ps, err := p.Wait()
		trace("wait: exited")
		r.mu.Lock()
		delete(r.children, id)
		r.mu.Unlock()
		if err != nil {
			return -1, fmt.Errorf("wait for %q: %w", id, err)
		}
		return exitCode(ps), nil
	}
	s, err := r.loadSaved(id)
	if err != nil {
		return -1, err
	}
	for initAlive(s) {
		time.Sleep(10 * time.Millisecond)
	}
	return -1, nil
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func (r *Runtime) manager(s *saved) (cgroups.Manager, error) {
	if len(s.CgroupPaths) == 0 {
		return nil, fmt.Errorf("container %q has no cgroups: %w", s.ID, errdefs.ErrNotFound)
	}
	return cgroups.Load(s.CgroupPaths)
}

func (r *Runtime) pids(s *saved) ([]int, error) {
	m, err := r.manager(s)
	if err != nil {
		return nil, err
	}
	return m.Pids()
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	return r.setPaused(id, true)
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	return r.setPaused(id, false)
}

func (r *Runtime) setPaused(id string, pause bool) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := r.loadSaved(id)
	if err != nil {
		return err
	}
	st := r.status(s)
	if pause && st != specs.StateRunning {
		return fmt.Errorf("container %q is %s, not running: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	if !pause && st != "paused" {
		return fmt.Errorf("container %q is %s, not paused: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	m, err := r.manager(s)
	if err != nil {
		return err
	}
	if pause {
		err = m.Freeze()
	} else {
		err = m.Thaw()
	}
	if err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	s.Paused = pause
	return r.writeSaved(s)
}

// Update changes the container's cgroup limits.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	s, err := r.loadSaved(id)
	if err != nil {
		return err
	}
	if st := r.status(s); st == specs.StateStopped {
		return fmt.Errorf("container %q is stopped: %w", id, errdefs.ErrFailedPrecondition)
	}
	m, err := r.manager(s)
	if err != nil {
		return err
	}
	if err := m.Set(res); err != nil {
		return fmt.Errorf("update %q: %w", id, err)
	}
	return nil
}

// Stats returns the container's cgroup statistics.
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	s, err := r.loadSaved(id)
	if err != nil {
		return nil, err
	}
	m, err := r.manager(s)
	if err != nil {
		return nil, err
	}
	return m.Stats()
}

// Processes lists the host pids of every process in the container.
func (r *Runtime) Processes(id string) ([]int, error) {
	s, err := r.loadSaved(id)
	if err != nil {
		return nil, err
	}
	return r.pids(s)
}

// cgroupBinds lists what a "cgroup" mount inside the container shows: one
// directory per v1 hierarchy (named like the host's mount point), and the
// cgroup2 directory (the whole mount on a unified host, "unified" on a
// hybrid one).
func cgroupBinds(m cgroups.Manager, mounts []string) []cgroupBind {
	seen := map[string]bool{}
	var out []cgroupBind
	for key, dir := range m.Paths() {
		mp := longestPrefix(mounts, dir)
		if seen[mp] {
			continue
		}
		seen[mp] = true
		name := filepath.Base(mp)
		if key == "" && mp == "/sys/fs/cgroup" {
			name = ""
		}
		if !strings.HasPrefix(mp, "/sys/fs/cgroup") {
			continue
		}
		out = append(out, cgroupBind{Name: name, Dir: dir, V2: key == ""})
	}
	return out
}

// hostMounts reads what create needs from the host's mount table (the
// cgroup hierarchies and the mount points, two mountinfo parses) in the
// background: it runs while the spec is decoded and the init is spawned,
// instead of between the spawn and the config the init waits for. The
// returned function waits for the mount points.
func hostMounts() func() ([]string, error) {
	type res struct {
		mps []string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		cgroups.Mode() // reads and caches the host's cgroup mounts
		mps, err := mountPoints()
		ch <- res{mps, err}
	}()
	return func() ([]string, error) {
		r := <-ch
		return r.mps, r.err
	}
}
