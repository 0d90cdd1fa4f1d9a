package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/runtime"
)

// maxExecOutput caps what ExecSync buffers per stream (the kubelet caps
// probe output at 16 MiB too).
const maxExecOutput = 16 << 20

// ExecSync runs a command in a running container and returns its output and
// exit code; a timeout kills the command.
func (s *Service) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(r.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec sync: no command: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.store.Container(r.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("exec sync: %w", err)
	}
	if c.State != store.ContainerRunning {
		return nil, fmt.Errorf("exec sync in %s: container is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	h, _, err := s.handler(c.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	proc, err := s.execProcess(c, r.GetCmd(), false)
	if err != nil {
		return nil, err
	}
	if t := r.GetTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	var stdout, stderr capped
	code, err := h.Exec(ctx, c.ID, proc, runtime.ExecIO{Stdout: &stdout, Stderr: &stderr})
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("exec sync in %s: command timed out after %ds: %w", c.ID, r.GetTimeout(), context.DeadlineExceeded)
	}
	if err != nil {
		return nil, fmt.Errorf("exec sync in %s: %w", c.ID, err)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// execProcess is the container's process spec with a new command: same
// user, env, cwd, capabilities and security settings.
func (s *Service) execProcess(c *store.Container, cmd []string, tty bool) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: read spec: %w", c.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("exec in %s: parse spec: %w", c.ID, err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("exec in %s: its spec has no process: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	for i, a := range cmd {
		if err := noNUL(fmt.Sprintf("exec in %s: cmd[%d]", c.ID, i), a); err != nil {
			return nil, err
		}
	}
	p := *spec.Process
	p.Args, p.Terminal, p.ConsoleSize = cmd, tty, nil
	return &p, nil
}

// capped is a buffer that silently stops growing at maxExecOutput.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxExecOutput - c.Len(); room > 0 {
		if len(p) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}
