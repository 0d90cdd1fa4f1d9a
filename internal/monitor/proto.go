package monitor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// The control socket speaks one JSON request line per connection, answered by
// one JSON response line. After a successful "attach" the connection carries
// the container's streams: monitor → client frames of [stream byte][uint32
// big-endian length][data], client → monitor raw stdin bytes, the client's
// half-close meaning stdin EOF. The monitor closes attach connections once the
// container has exited and its output is drained.
const (
	opWait   = "wait"
	opReopen = "reopen"
	opResize = "resize"
	opAttach = "attach"
)

// Stream ids in attach frames.
const (
	streamStdout byte = 1
	streamStderr byte = 2
)

// maxFrame bounds one attach frame so a corrupt length cannot make the client
// allocate without limit.
const maxFrame = 1 << 20

type request struct {
	Op     string `json:"op"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
}

type response struct {
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"` // errdefs class name, so the client can re-wrap it
	Exit  *Exit  `json:"exit,omitempty"`
}

var wireClasses = map[string]error{
	"not_found":           errdefs.ErrNotFound,
	"invalid_argument":    errdefs.ErrInvalidArgument,
	"failed_precondition": errdefs.ErrFailedPrecondition,
	"unavailable":         errdefs.ErrUnavailable,
}

func errResponse(err error) response {
	r := response{Error: err.Error()}
	for name, class := range wireClasses {
		if errors.Is(err, class) {
			r.Class = name
			break
		}
	}
	return r
}

func (r *response) err() error {
	if r.Error == "" {
		return nil
	}
	if class, ok := wireClasses[r.Class]; ok {
		return fmt.Errorf("monitor: %s: %w", r.Error, class)
	}
	return fmt.Errorf("monitor: %s", r.Error)
}

func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readMsg reads one JSON line. It reads byte by byte through br so that
// nothing after the line (attach data) is consumed.
func readMsg(br *bufio.Reader, v any) error {
	line, err := br.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return json.Unmarshal(line, v)
}

func writeFrame(w io.Writer, stream byte, p []byte) error {
	var hdr [5]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach frame of %d bytes exceeds %d", n, maxFrame)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return hdr[0], buf, err
}

// sunPathMax is the usable length of sockaddr_un.sun_path.
const sunPathMax = 107

// withShortPath calls fn with a path naming the same file as path but short
// enough for a unix socket address: state dirs under long roots exceed 107
// bytes, so the directory is reached through /proc/self/fd instead.
func withShortPath(path string, fn func(string) error) error {
	if len(path) <= sunPathMax {
		return fn(path)
	}
	dir, err := os.OpenFile(filepath.Dir(path), os.O_RDONLY|unix.O_PATH, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())) + "/" + filepath.Base(path))
}

func dialUnix(path string) (*net.UnixConn, error) {
	var c *net.UnixConn
	err := withShortPath(path, func(p string) error {
		var err error
		c, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
		return err
	})
	return c, err
}

func listenUnix(path string) (*net.UnixListener, error) {
	var l *net.UnixListener
	err := withShortPath(path, func(p string) error {
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		return err
	})
	if l != nil {
		// The name may be the /proc/self/fd alias; unlink by the real path.
		l.SetUnlinkOnClose(false)
	}
	return l, err
}
