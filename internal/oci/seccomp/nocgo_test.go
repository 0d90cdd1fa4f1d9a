//go:build !cgo

package seccomp

import (
	"errors"
	"testing"

	"hull/internal/errdefs"
)

func TestCompileWithoutCgo(t *testing.T) {
	_, err := Compile(DefaultProfile())
	if !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("Compile without cgo: %v, want ErrNotImplemented", err)
	}
}
