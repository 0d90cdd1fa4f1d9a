package runtime

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"hull/internal/errdefs"
)

func TestNewOCIRejectsMissingBinary(t *testing.T) {
	if _, err := NewOCI("x", "/nonexistent/runc", t.TempDir()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("missing binary: %v", err)
	}
	if _, err := NewOCI("x", "no-such-runtime-binary", t.TempDir()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("binary not on PATH: %v", err)
	}
}

// handlers returns every handler that can run here: runc (real binary)
// and hullrt (in process), each on a private state root.
func handlers(t *testing.T) map[string]Handler {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	out := map[string]Handler{}
	if _, err := os.Stat("/usr/sbin/runc"); err == nil {
		h, err := NewOCI("runc", "/usr/sbin/runc", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		out["runc"] = h
	}
	h, err := NewHullrt("hullrt", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	out["hullrt"] = h
	return out
}

// Missing containers are classified NotFound (the CRI server maps that to
// the gRPC code) and deleting one is not an error.
func TestMissingContainerErrors(t *testing.T) {
	ctx := context.Background()
	for name, h := range handlers(t) {
		if _, err := h.State(ctx, "nosuch"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: state of a missing container: %v", name, err)
		}
		if err := h.Kill(ctx, "nosuch", syscall.SIGTERM, false); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("%s: kill of a missing container: %v", name, err)
		}
		if err := h.Delete(ctx, "nosuch", true); err != nil {
			t.Errorf("%s: delete of a missing container: %v", name, err)
		}
		if _, err := h.Stats(ctx, "nosuch"); err == nil {
			t.Errorf("%s: stats of a missing container succeeded", name)
		}
		if info := h.Info(); info.Name != name || info.Root == "" {
			t.Errorf("%s: info %+v", name, info)
		}
	}
}
