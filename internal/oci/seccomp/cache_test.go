package seccomp

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

func TestCacheMemoryAndDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := DefaultProfile()
	want := mustCompile(t, s)

	c := NewCache(dir)
	got, err := c.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatal("cached compile differs from Compile")
	}
	got[0].K ^= 1 // callers own their copy
	again, err := c.Compile(s)
	if err != nil || !slices.Equal(again, want) {
		t.Fatalf("second lookup: %v, equal %v", err, slices.Equal(again, want))
	}
	key, err := cacheKey(s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, key))
	if err != nil {
		t.Fatalf("no disk entry: %v", err)
	}
	if st.Size() != int64(len(want)*sockFilterSize) {
		t.Errorf("disk entry of %d bytes, want %d", st.Size(), len(want)*sockFilterSize)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v", fi.Mode())
	}

	// A fresh cache (a new hullrt process) reads the disk entry: plant a
	// recognizable one-instruction program under the key.
	planted := []unix.SockFilter{{Code: retK, K: unix.SECCOMP_RET_ALLOW}}
	if err := os.WriteFile(filepath.Join(dir, key), encodeBPF(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = NewCache(dir).Compile(s)
	if err != nil || !slices.Equal(got, planted) {
		t.Errorf("fresh cache did not use the disk entry: %v %v", err, got[:1])
	}
	// A damaged entry costs a compile, nothing more.
	if err := os.WriteFile(filepath.Join(dir, key), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = NewCache(dir).Compile(s)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("damaged entry: %v, equal %v", err, slices.Equal(got, want))
	}

	// Another profile, another key.
	other := DefaultProfileFor([]string{"CAP_SYS_ADMIN"})
	k2, _ := cacheKey(other)
	if k2 == key {
		t.Error("different profiles share a cache key")
	}
	// Flags and listener do not change the program, so not the key.
	withFlags := DefaultProfile()
	withFlags.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}
	if k3, _ := cacheKey(withFlags); k3 != key {
		t.Error("flags changed the cache key")
	}
}

func TestCacheRefusesUnsafeDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := NewCache(dir).Compile(DefaultProfile())
	if !errors.Is(err, errdefs.ErrPermissionDenied) {
		t.Errorf("world-writable cache dir: %v, want ErrPermissionDenied", err)
	}
	// Invalid profiles fail before the cache is consulted.
	_, err = NewCache("").Compile(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOOM"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("invalid profile through the cache: %v", err)
	}
}
