package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
	"hull/internal/oci/cgroups"
)

// ErrRuntime classes a runtime command's failure that fits no errdefs class
// (it maps to gRPC Unknown).
var ErrRuntime = errors.New("runtime failed")

// OCI is a Handler driving a runc-compatible binary (runc, crun, runsc)
// through its command line. It holds no state of its own.
type OCI struct {
	info Info
}

// NewOCI returns the handler for the binary at path with state under root.
func NewOCI(name, path, root string) (*OCI, error) {
	if !filepath.IsAbs(path) {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, fmt.Errorf("runtime %s: binary %q: %w", name, path, errdefs.ErrInvalidArgument)
		}
		path = p
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("runtime %s: binary %q: %w", name, path, errdefs.ErrInvalidArgument)
	}
	return &OCI{info: Info{Name: name, Type: "oci", Path: path, Root: root}}, nil
}

// Info implements Handler.
func (o *OCI) Info() Info { return o.info }

func (o *OCI) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--root", o.info.Root}, args...)
	return exec.CommandContext(ctx, o.info.Path, full...)
}

// run runs the binary and classifies its error text.
func (o *OCI) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := o.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), o.classify(args[0], stderr.String(), err)
	}
	return stdout.Bytes(), nil
}

func (o *OCI) classify(verb, stderr string, err error) error {
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		msg = err.Error()
	}
	low := strings.ToLower(msg)
	class := ErrRuntime
	switch {
	case strings.Contains(low, "does not exist") || strings.Contains(low, "not found") ||
		strings.Contains(low, "no such file"):
		class = errdefs.ErrNotFound
	case strings.Contains(low, "not running") || strings.Contains(low, "process already finished") ||
		strings.Contains(low, "container is stopped"):
		class = errdefs.ErrFailedPrecondition
	}
	return fmt.Errorf("%s %s: %s: %w", filepath.Base(o.info.Path), verb, msg, class)
}

// Start implements Handler.
func (o *OCI) Start(ctx context.Context, id string) error {
	_, err := o.run(ctx, nil, "start", id)
	return err
}

// Kill implements Handler.
func (o *OCI) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := o.run(ctx, nil, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

// State implements Handler.
func (o *OCI) State(ctx context.Context, id string) (*State, error) {
	out, err := o.run(ctx, nil, "state", id)
	if err != nil {
		return nil, err
	}
	var st struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("%s state %s: bad output: %w", o.info.Name, id, err)
	}
	return &State{ID: st.ID, Status: st.Status, Pid: st.Pid}, nil
}

// Delete implements Handler.
func (o *OCI) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := o.run(ctx, nil, append(args, id)...)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// Exec implements Handler.
func (o *OCI) Exec(ctx context.Context, id string, p *specs.Process, eio ExecIO) (int, error) {
	dir, err := os.MkdirTemp("", "hull-exec-")
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	data, err := json.Marshal(p)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: encode process: %w", id, err)
	}
	procFile, pidFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "pid")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	// Not CommandContext: killing the runtime's exec command would leave the
	// process running inside the container; on timeout kill the process.
	args := []string{"--root", o.info.Root, "exec", "--process", procFile, "--pid-file", pidFile}
	cmd := exec.Command(o.info.Path, append(args, id)...)
	if eio.ConsoleSocket != "" {
		// A console socket needs --detach (see execShim).
		args = append(args, "--detach", "--console-socket", eio.ConsoleSocket, id)
		if cmd, err = shimCommand(append([]string{o.info.Path}, args...)); err != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, err)
		}
	}
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout = eio.Stdin, eio.Stdout
	if eio.Stderr != nil {
		cmd.Stderr = &teeWriter{w: eio.Stderr, buf: &stderr}
	} else {
		cmd.Stderr = &stderr
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if b, rerr := os.ReadFile(pidFile); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// runc passes the process's exit status through; a failure of runc
		// itself (no such container, bad cwd) shows as text on stderr.
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Exited() {
			if _, serr := os.Stat(pidFile); serr == nil {
				return st.ExitStatus(), nil
			}
		}
	}
	return -1, o.classify("exec", stderr.String(), err)
}

// teeWriter writes to w and keeps a copy for error messages.
type teeWriter struct {
	w   interface{ Write([]byte) (int, error) }
	buf *bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if t.buf.Len() < 4096 {
		t.buf.Write(p)
	}
	return t.w.Write(p)
}

// Update implements Handler.
func (o *OCI) Update(ctx context.Context, id string, r *specs.LinuxResources) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("update %s: encode resources: %w", id, err)
	}
	_, err = o.run(ctx, data, "update", "--resources", "-", id)
	return err
}

// Stats implements Handler, from `events --stats` (runc's cgroup figures).
func (o *OCI) Stats(ctx context.Context, id string) (*Stats, error) {
	out, err := o.run(ctx, nil, "events", "--stats", id)
	if err != nil {
		return nil, err
	}
	var ev struct {
		Data struct {
			CPU struct {
				Usage struct {
					Total uint64 `json:"total"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Usage uint64 `json:"usage"`
				} `json:"usage"`
				Raw map[string]uint64 `json:"raw"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
			} `json:"pids"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		return nil, fmt.Errorf("%s events --stats %s: bad output: %w", o.info.Name, id, err)
	}
	// runc's stats JSON is libcontainer's, whose field names hull's
	// cgroups.Stats shares: the full snapshot feeds the CRI metrics.
	var full struct {
		Data *cgroups.Stats `json:"data"`
	}
	_ = json.Unmarshal(out, &full)
	m := ev.Data.Memory
	s := &Stats{
		Cgroup:            full.Data,
		CPUUsageNanos:     ev.Data.CPU.Usage.Total,
		MemoryUsageBytes:  m.Usage.Usage,
		PidsCurrent:       ev.Data.Pids.Current,
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

func first(m map[string]uint64, keys ...string) uint64 {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return 0
}
