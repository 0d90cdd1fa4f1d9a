package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"hull/internal/errdefs"
)

// FuzzLoad feeds arbitrary bytes to Load: it must never panic, every failure
// must be of class ErrInvalidArgument, and every success must be a config
// that validates. Run with `go test -fuzz FuzzLoad ./internal/config`.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(DefaultTOML()))
	f.Add([]byte("[runtimes.runc]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\n"))
	f.Add([]byte("[registry.mirrors]\n\"registry.k8s.io\" = [\"http://127.0.0.1:5000\"]\n"))
	f.Add([]byte("[registry.hosts.\"a\"]\nca_files = [\"/x\"]\n"))
	f.Add([]byte("runtimes = 3\n"))
	f.Add([]byte("[[runtimes]]\n"))
	f.Add([]byte("[cni]\nbin_dirs = [1, 2]\n"))
	f.Add([]byte("\xff\xfe"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Load error %v is not ErrInvalidArgument", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned a config that fails Validate: %v", err)
		}
		if c.Runtimes == nil {
			t.Fatal("Load returned nil runtimes")
		}
	})
}
