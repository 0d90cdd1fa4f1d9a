//go:build !cgo

package seccomp

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// compile needs libseccomp (cgo); this build has none, so it validates the
// config and then reports ErrNotImplemented.
func compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("seccomp: compiling filters needs a cgo build with libseccomp: %w", errdefs.ErrNotImplemented)
}

// libArchSupported cannot ask libseccomp without cgo; report every
// architecture the spec names.
func libArchSupported(string) bool { return true }

// libVersion: no libseccomp in this build.
func libVersion() string { return "none" }
