package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
	"hull/internal/oci"
)

// Hullrt is the in-process Handler on hull/internal/oci. Containers are
// created by hull-monitor with the same library and root; everything else
// runs inside hulld without forking a runtime binary. Exec re-executes
// hulld as the exec helper, so hulld's main must call oci.MaybeInit first.
type Hullrt struct {
	info Info
	rt   *oci.Runtime
}

// NewHullrt returns the hullrt handler with state under root.
func NewHullrt(name, root string, systemdCgroup bool) (*Hullrt, error) {
	rt, err := oci.New(oci.Options{Root: root, SystemdCgroup: systemdCgroup})
	if err != nil {
		return nil, fmt.Errorf("runtime %s: %w", name, err)
	}
	return &Hullrt{info: Info{Name: name, Type: "hullrt", Root: rt.Root()}, rt: rt}, nil
}

// Info implements Handler.
func (h *Hullrt) Info() Info { return h.info }

// Start implements Handler.
func (h *Hullrt) Start(ctx context.Context, id string) error { return h.rt.Start(ctx, id) }

// Kill implements Handler.
func (h *Hullrt) Kill(_ context.Context, id string, sig syscall.Signal, all bool) error {
	return h.rt.Kill(id, sig, all)
}

// State implements Handler.
func (h *Hullrt) State(_ context.Context, id string) (*State, error) {
	st, err := h.rt.State(id)
	if err != nil {
		return nil, err
	}
	return &State{ID: st.ID, Status: string(st.Status), Pid: st.Pid}, nil
}

// Delete implements Handler.
func (h *Hullrt) Delete(ctx context.Context, id string, force bool) error {
	err := h.rt.Delete(ctx, id, force)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// Exec implements Handler. Output goes through pipes this function drains,
// so the caller's writers see everything before Exec returns.
func (h *Hullrt) Exec(ctx context.Context, id string, p *specs.Process, eio ExecIO) (int, error) {
	var wg sync.WaitGroup
	var closers []*os.File
	pipe := func(w io.Writer) (*os.File, error) {
		if w == nil {
			w = io.Discard
		}
		r, wr, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		closers = append(closers, wr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = io.Copy(w, r)
			r.Close()
		}()
		return wr, nil
	}
	closeWriters := func() {
		for _, f := range closers {
			f.Close()
		}
		closers = nil
	}
	stdout, err := pipe(eio.Stdout)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	stderr, err := pipe(eio.Stderr)
	if err != nil {
		closeWriters()
		wg.Wait()
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	stdin := eio.Stdin
	if stdin == nil {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			closeWriters()
			wg.Wait()
			return -1, fmt.Errorf("exec in %s: %w", id, err)
		}
		defer devnull.Close()
		stdin = devnull
	}
	proc, err := h.rt.Exec(ctx, id, p, oci.ExecOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr, ConsoleSocket: eio.ConsoleSocket})
	closeWriters()
	if err != nil {
		wg.Wait()
		return -1, err
	}
	type result struct {
		st  *os.ProcessState
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := proc.Wait()
		done <- result{st, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		_ = proc.Kill()
		<-done
		waitTimeout(&wg, time.Second)
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	// A background child still holding the pipes must not block the caller.
	waitTimeout(&wg, 2*time.Second)
	if res.err != nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, res.err)
	}
	if ws, ok := res.st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return res.st.ExitCode(), nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-time.After(d):
	}
}

// Update implements Handler.
func (h *Hullrt) Update(_ context.Context, id string, r *specs.LinuxResources) error {
	return h.rt.Update(id, r)
}

// Stats implements Handler.
func (h *Hullrt) Stats(_ context.Context, id string) (*Stats, error) {
	st, err := h.rt.Stats(id)
	if err != nil {
		return nil, err
	}
	m := st.Memory
	s := &Stats{
		CPUUsageNanos:     st.CPU.Usage.Total,
		MemoryUsageBytes:  m.Usage.Usage,
		PidsCurrent:       st.Pids.Current,
		Cgroup:            st,
		MemoryRSS:         first(m.Raw, "total_rss", "rss", "anon"),
		MemoryPageFaults:  first(m.Raw, "total_pgfault", "pgfault"),
		MemoryMajorFaults: first(m.Raw, "total_pgmajfault", "pgmajfault"),
	}
	inactive := first(m.Raw, "total_inactive_file", "inactive_file")
	s.MemoryWorkingSet = s.MemoryUsageBytes
	if inactive < s.MemoryWorkingSet {
		s.MemoryWorkingSet -= inactive
	}
	return s, nil
}
