package monitor

import (
	"fmt"

	"hull/internal/errdefs"
)

// createHullrt creates the container in-process with hull/internal/oci.
func (m *monitor) createHullrt(sio stdio) (int, error) {
	return 0, fmt.Errorf("runtime type %q: %w", RuntimeHullrt, errdefs.ErrNotImplemented)
}
