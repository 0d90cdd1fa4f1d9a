package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// State is what `hullrt state` prints: the runtime-spec state plus runc's
// extra fields.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// saved is state.json: everything later commands need, written once by
// Create (and rewritten by pause/resume), always atomically.
type saved struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`
	StartTime   uint64            `json:"startTime"` // field 22 of /proc/PID/stat, against PID reuse
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	Paused      bool              `json:"paused,omitempty"`
	// Config is the spec as JSON, decoded only by the commands that need
	// it.
	Config json.RawMessage `json:"config"`
}

// spec decodes the saved config.
func (s *saved) spec() (*specs.Spec, error) {
	if len(s.Config) == 0 {
		return nil, fmt.Errorf("state of %q has no config: %w", s.ID, errdefs.ErrFailedPrecondition)
	}
	spec, err := decodeSpec(s.Config)
	if err != nil {
		return nil, fmt.Errorf("config in the state of %q is corrupt: %v: %w", s.ID, err, errdefs.ErrFailedPrecondition)
	}
	return spec, nil
}

// hooks returns the hooks of the saved config.
func (s *saved) hooks() (*specs.Hooks, error) {
	spec, err := s.spec()
	if err != nil {
		return nil, err
	}
	return spec.Hooks, nil
}

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// loadSaved reads the container's state.json.
func (r *Runtime) loadSaved(id string) (*saved, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("read state of %q: %w", id, err)
	}
	var s saved
	if err := decodeJSON(b, &s, jsonDecodeSaved); err != nil {
		return nil, fmt.Errorf("state of %q is corrupt: %v: %w", id, err, errdefs.ErrFailedPrecondition)
	}
	return &s, nil
}

// writeSaved writes state.json atomically (temp file + rename).
func (r *Runtime) writeSaved(s *saved) error {
	b, err := encodeJSON(s, jsonEncodeSaved)
	if err != nil {
		return fmt.Errorf("encode state of %q: %w", s.ID, err)
	}
	return writeFileAtomic(filepath.Join(r.dir(s.ID), stateFile), b, 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}

// procStat returns the state letter and start time of pid from
// /proc/PID/stat, or ok=false when the process is gone.
func procStat(pid int) (state byte, start uint64, ok bool) {
	if pid <= 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 {
		return 0, 0, false
	}
	st, _ := strconv.ParseUint(f[19], 10, 64)
	return f[0][0], st, true
}

// initAlive reports whether the container's init still runs (not gone, not
// a zombie, not a reused PID).
func initAlive(s *saved) bool {
	st, start, ok := procStat(s.Pid)
	if !ok || st == 'Z' || st == 'X' || st == 'x' {
		return false
	}
	return s.StartTime == 0 || start == s.StartTime
}

// status derives the container's runtime-spec status.
func (r *Runtime) status(s *saved) specs.ContainerState {
	if !initAlive(s) {
		return specs.StateStopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(s.ID), fifoName)); err == nil {
		return specs.StateCreated
	}
	if s.Paused {
		return "paused"
	}
	return specs.StateRunning
}

func (r *Runtime) publicState(s *saved) *State {
	st := &State{
		State: specs.State{
			Version:     specs.Version,
			ID:          s.ID,
			Status:      r.status(s),
			Bundle:      s.Bundle,
			Annotations: s.Annotations,
		},
		Rootfs:  s.Rootfs,
		Created: s.Created,
		Owner:   "",
	}
	if st.Status != specs.StateStopped {
		st.Pid = s.Pid
	}
	return st
}

// State returns the container's current state.
func (r *Runtime) State(id string) (*State, error) {
	s, err := r.loadSaved(id)
	if err != nil {
		return nil, err
	}
	return r.publicState(s), nil
}

// List returns the state of every container under the root, sorted by id.
func (r *Runtime) List() ([]State, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.root, err)
	}
	var out []State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		s, err := r.loadSaved(e.Name())
		if err != nil {
			continue // half-created or foreign directory
		}
		out = append(out, *r.publicState(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// lock takes an exclusive flock on the container's state directory; the
// returned function releases it.
func (r *Runtime) lock(id string) (func(), error) {
	fd, err := unix.Open(r.dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("container %q does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("lock %q: %w", id, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %q: %w", id, err)
	}
	return func() { unix.Close(fd) }, nil
}

// stateForHooks is the runtime-spec state passed to hooks on stdin.
func stateForHooks(s *saved, status specs.ContainerState, pid int) specs.State {
	return specs.State{Version: specs.Version, ID: s.ID, Status: status, Pid: pid, Bundle: s.Bundle, Annotations: s.Annotations}
}

// Config returns the spec the container was created with.
func (r *Runtime) Config(id string) (*specs.Spec, error) {
	s, err := r.loadSaved(id)
	if err != nil {
		return nil, err
	}
	return s.spec()
}

// ProcessConfig returns the process of the spec the container was created
// with (nil if it had none).
func (r *Runtime) ProcessConfig(id string) (*specs.Process, error) {
	s, err := r.loadSaved(id)
	if err != nil {
		return nil, err
	}
	spec, err := s.spec()
	if err != nil {
		return nil, err
	}
	return spec.Process, nil
}
