package seccomp

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	"time"

	"hull/internal/errdefs"
	"hull/internal/oci/unixsock"
)

// sendTimeout bounds connecting to and writing to the seccomp agent: a stuck
// agent must not hang container creation forever.
const sendTimeout = 10 * time.Second

// SendListener hands a notification listener (from LoadListener) to the
// seccomp agent listening on the unix socket at path (the config's
// ListenerPath), as the runtime spec describes: one message carrying the
// container process state as JSON and the fd as SCM_RIGHTS. st.Fds is set to
// ["seccompFd"] and st.Version defaults to the spec version. The caller still
// owns listener and closes it afterwards.
func SendListener(path string, listener *os.File, st *specs.ContainerProcessState) error {
	if path == "" {
		return fmt.Errorf("seccomp: no listenerPath to send the listener to: %w", errdefs.ErrInvalidArgument)
	}
	if listener == nil || st == nil {
		return fmt.Errorf("seccomp: SendListener needs a listener and a process state: %w", errdefs.ErrInvalidArgument)
	}
	msg := *st
	msg.Fds = []string{specs.SeccompFdName}
	if msg.Version == "" {
		msg.Version = specs.Version
	}
	b, err := json.Marshal(&msg)
	if err != nil {
		return fmt.Errorf("seccomp: encode process state: %w", err)
	}
	conn, err := unixsock.Dial(path, sendTimeout)
	if err != nil {
		return fmt.Errorf("seccomp: connect to seccomp agent at %s: %w: %w", path, err, errdefs.ErrUnavailable)
	}
	defer conn.Close()
	if err := unixsock.SendFds(conn, b, int(listener.Fd())); err != nil {
		return fmt.Errorf("seccomp: send listener to seccomp agent at %s: %w", path, err)
	}
	return nil
}
