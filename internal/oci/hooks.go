package oci

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs hooks in order with the container state on stdin; the first
// failure stops the sequence and is returned naming the hook.
func runHooks(ctx context.Context, kind string, hooks []specs.Hook, st specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := encodeJSON(&st, jsonEncodeState)
	if err != nil {
		return fmt.Errorf("encode state for %s hooks: %w", kind, err)
	}
	for i, h := range hooks {
		if err := runHook(ctx, h, state); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// runHooksWarn runs every hook even when one fails, logging each failure:
// a failed poststart or poststop hook must not stop the lifecycle.
func runHooksWarn(ctx context.Context, kind string, hooks []specs.Hook, st specs.State) {
	for i := range hooks {
		if err := runHooks(ctx, kind, hooks[i:i+1], st); err != nil {
			logf("container %s: %v (hook #%d)", st.ID, err, i)
		}
	}
}

func runHook(ctx context.Context, h specs.Hook, state []byte) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout %d must be positive", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var errb bytes.Buffer
	cmd.Stdout = os.Stderr
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("timed out after %ds", *h.Timeout)
		}
		msg := strings.TrimSpace(errb.String())
		if msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
