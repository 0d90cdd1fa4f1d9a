package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Compiling the default profile costs ~0.4 ms. Nearly every container uses
// one of a few profiles, so the result is cached: in memory for a
// long-lived process (hulld with the in-process runtime) and, when a
// directory is given, on disk, like crun's seccomp cache.

// memCacheMax bounds the in-memory cache; when full it starts over, which
// is plenty for the handful of distinct profiles a node runs.
const memCacheMax = 64

// Cache compiles profiles once. The zero value is not usable; use NewCache.
// It is safe for concurrent use: mu guards the in-memory map, and disk
// entries are written to a temporary file and renamed into place, so
// concurrent processes sharing dir never see a partial entry.
type Cache struct {
	dir string

	mu  sync.Mutex
	mem map[string][]unix.SockFilter
}

// NewCache returns a cache that also keeps programs under dir (created 0700
// if missing) when dir is not empty. dir must be private to the runtime (a
// directory under its state root): a program planted there would be
// installed as a container's filter, so Compile refuses a dir that is not
// owned by the current user or is writable by group or others.
func NewCache(dir string) *Cache {
	return &Cache{dir: dir, mem: map[string][]unix.SockFilter{}}
}

// Compile returns the program for s from the cache, compiling and storing
// it on a miss. Disk-cache problems never fail the call except an unsafe
// directory; they only cost a compile.
func (c *Cache) Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	key, err := cacheKey(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	prog, ok := c.mem[key]
	c.mu.Unlock()
	if ok {
		return slices.Clone(prog), nil
	}
	if c.dir != "" {
		if err := checkCacheDir(c.dir); err != nil {
			return nil, err
		}
		if prog, err := readCached(filepath.Join(c.dir, key)); err == nil {
			c.remember(key, slices.Clone(prog))
			return prog, nil
		}
	}
	prog, err = compile(s)
	if err != nil {
		return nil, err
	}
	c.remember(key, slices.Clone(prog))
	if c.dir != "" {
		_ = writeCached(c.dir, key, prog)
	}
	return prog, nil
}

func (c *Cache) remember(key string, prog []unix.SockFilter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mem) >= memCacheMax {
		c.mem = map[string][]unix.SockFilter{}
	}
	c.mem[key] = prog
}

// cacheKey hashes everything the program depends on: the profile's rules
// (not its flags or listener, which only matter at load time), the
// compiler and table version, the architecture and the kernel.
func cacheKey(s *specs.LinuxSeccomp) (string, error) {
	var u unix.Utsname
	_ = unix.Uname(&u)
	b, err := json.Marshal(struct {
		Format   int
		Lib      string
		GOARCH   string
		Kernel   string
		Default  specs.LinuxSeccompAction
		Errno    *uint
		Archs    []specs.Arch
		Syscalls []specs.LinuxSyscall
	}{1, libVersion(), runtime.GOARCH, unix.ByteSliceToString(u.Release[:]),
		s.DefaultAction, s.DefaultErrnoRet, s.Architectures, s.Syscalls})
	if err != nil {
		return "", fmt.Errorf("seccomp: cache key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]) + ".bpf", nil
}

// checkCacheDir creates dir if needed and refuses one others could write.
func checkCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seccomp: cache dir %s: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("seccomp: cache dir %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return fmt.Errorf("seccomp: cache dir %s must be a directory owned by uid %d and writable only by it (mode %#o, uid %d): %w",
			dir, os.Geteuid(), st.Mode&0o7777, st.Uid, errdefs.ErrPermissionDenied)
	}
	return nil
}

// readCached loads one entry (O_NOFOLLOW: entries are plain files).
func readCached(path string) ([]unix.SockFilter, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxProgLen*sockFilterSize {
		return nil, fs.ErrInvalid
	}
	raw := make([]byte, st.Size())
	if _, err := f.ReadAt(raw, 0); err != nil {
		return nil, err
	}
	return parseBPF(raw)
}

// writeCached stores one entry atomically.
func writeCached(dir, key string, prog []unix.SockFilter) error {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(encodeBPF(prog))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, key))
}

// sockFilterSize is sizeof(struct sock_filter).
const sockFilterSize = 8

// parseBPF decodes a native-endian sock_filter array (libseccomp's export
// format, and the cache's).
func parseBPF(raw []byte) ([]unix.SockFilter, error) {
	if len(raw) == 0 || len(raw)%sockFilterSize != 0 || len(raw) > maxProgLen*sockFilterSize {
		return nil, fmt.Errorf("seccomp: %d bytes are not a sock_filter program", len(raw))
	}
	prog := make([]unix.SockFilter, len(raw)/sockFilterSize)
	for i := range prog {
		b := raw[i*sockFilterSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return prog, nil
}

// encodeBPF is parseBPF's inverse.
func encodeBPF(prog []unix.SockFilter) []byte {
	raw := make([]byte, len(prog)*sockFilterSize)
	for i, in := range prog {
		b := raw[i*sockFilterSize:]
		binary.NativeEndian.PutUint16(b[0:2], in.Code)
		b[2], b[3] = in.Jt, in.Jf
		binary.NativeEndian.PutUint32(b[4:8], in.K)
	}
	return raw
}
