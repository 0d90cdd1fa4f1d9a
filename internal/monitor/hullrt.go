package monitor

import (
	"fmt"
	"os"
	"path/filepath"
)

// hullrtBinary is the name of hull's runtime CLI, built next to hull-monitor
// (and hulld): `go build -o DIR/ ./cmd/...` puts them side by side.
const hullrtBinary = "hullrt"

// createHullrt creates the container with hull's own runtime by running the
// hullrt binary that sits next to this one, exactly as the oci type runs
// runc: `hullrt create` starts the init (hullrt re-executed) and exits, and
// the init is re-parented to us, the child subreaper. hulld drives the
// container in-process on the same state root afterwards (start, kill,
// exec, delete). Running the create in another binary keeps this process
// free of hull/internal/oci and its cgo seccomp compiler: the monitor idles
// for the container's lifetime, and not linking libc/libseccomp saves
// ~0.3 MB of private memory per container.
func (m *monitor) createHullrt(sio stdio) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("hullrt: find own executable: %w", err)
	}
	path := filepath.Join(filepath.Dir(exe), hullrtBinary)
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("hullrt: the runtime binary must sit next to %s: %w", exe, err)
	}
	m.spec.RuntimePath = path
	return m.createOCI(sio)
}
