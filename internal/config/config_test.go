package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"hull/internal/errdefs"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hull.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.DefaultRuntime != RuntimeHullrt || c.Runtimes[RuntimeHullrt].Type != RuntimeHullrt {
		t.Errorf("default runtime = %q, runtimes = %v; want hullrt defined", c.DefaultRuntime, c.Runtimes)
	}
	if _, err := os.Stat("/usr/sbin/runc"); err == nil {
		if r := c.Runtimes["runc"]; r.Type != RuntimeOCI || r.Path != "/usr/sbin/runc" {
			t.Errorf("runc handler = %+v, want oci at /usr/sbin/runc", r)
		}
	}
	if c.CNI.ConfDir != "/etc/cni/net.d" || !reflect.DeepEqual(c.CNI.BinDirs, []string{"/opt/cni/bin", "/usr/lib/cni"}) {
		t.Errorf("cni defaults = %+v", c.CNI)
	}
	if c.CgroupDriver != CgroupfsDriver || !c.RestrictOOMScoreAdj || c.Streaming.Address != "127.0.0.1" || c.Streaming.Port != 0 {
		t.Errorf("defaults: cgroup %q restrict %v streaming %+v", c.CgroupDriver, c.RestrictOOMScoreAdj, c.Streaming)
	}
	if got := c.RuntimeRoot("runc"); got != "/run/hull/runtimes/runc" {
		t.Errorf("RuntimeRoot(runc) = %q", got)
	}
	if got := c.NetworkConfig(); got.CacheDir != "/var/lib/hull/cni-cache" || got.ConfDir != c.CNI.ConfDir {
		t.Errorf("NetworkConfig() = %+v", got)
	}
	c.CNI.CacheDir = "/x/cache"
	if got := c.NetworkConfig().CacheDir; got != "/x/cache" {
		t.Errorf("NetworkConfig().CacheDir = %q, want the configured one", got)
	}
	if got := c.ListenPath(); got != "/run/hull/hull.sock" {
		t.Errorf("ListenPath = %q", got)
	}
}

func TestDefaults(t *testing.T) {
	a, b := Default(), Default()
	a.Runtimes["x"] = Runtime{Type: RuntimeOCI, Path: "/x"}
	a.CNI.BinDirs[0] = "/changed"
	if _, ok := b.Runtimes["x"]; ok || b.CNI.BinDirs[0] != "/opt/cni/bin" {
		t.Fatal("Default() values share maps or slices")
	}
}

func TestLoadMissingFileIsDefault(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load(missing) = %+v, want Default()", c)
	}
}

func TestDefaultTOMLRoundTrip(t *testing.T) {
	text := DefaultTOML()
	if !strings.Contains(text, "# ") || !strings.Contains(text, "[cni]") || !strings.Contains(text, "[registry.mirrors]") {
		t.Fatalf("DefaultTOML lacks comments or sections:\n%s", text)
	}
	c, err := Load(writeFile(t, text))
	if err != nil {
		t.Fatalf("Load(DefaultTOML()) = %v\n%s", err, text)
	}
	if want := Default(); !reflect.DeepEqual(c, want) {
		t.Fatalf("Load(DefaultTOML()) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadGood(t *testing.T) {
	p := writeFile(t, `
root = "/tmp/hull-root"
listen = "unix:///tmp/hull.sock"
log_level = "debug"
default_runtime = "runc"

[runtimes.runc]
type = "oci"
path = "/usr/sbin/runc"
root = "/run/hull-runc"

[runtimes.runsc]
type = "oci"
path = "/usr/local/bin/runsc"
options = { platform = "systrap" }

[cni]
conf_dir = "/tmp/cni"
bin_dirs = ["/usr/lib/cni"]

[registry]
insecure = ["127.0.0.1:5000"]
[registry.mirrors]
"registry.k8s.io" = ["http://127.0.0.1:5000"]
"gcr.io" = ["http://127.0.0.1:5000", "https://mirror.example:8443/v2"]
[registry.hosts."registry.k8s.io"]
no_upstream_fallback = true
ca_files = ["/etc/hull/ca.pem"]

[streaming]
port = 10010
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/tmp/hull-root" || c.State != DefaultState || c.Listen != "unix:///tmp/hull.sock" || c.LogLevel != "debug" {
		t.Errorf("top level = %q %q %q %q", c.Root, c.State, c.Listen, c.LogLevel)
	}
	if c.DefaultRuntime != "runc" || c.Runtimes["runc"].Root != "/run/hull-runc" || c.RuntimeRoot("runc") != "/run/hull-runc" {
		t.Errorf("runc = %+v", c.Runtimes["runc"])
	}
	if r := c.Runtimes["runsc"]; r.Path != "/usr/local/bin/runsc" || r.Options["platform"] != "systrap" {
		t.Errorf("runsc = %+v", r)
	}
	if _, ok := c.Runtimes[RuntimeHullrt]; !ok {
		t.Errorf("file adding runtimes dropped the default hullrt handler: %v", c.Runtimes)
	}
	if !reflect.DeepEqual(c.CNI.BinDirs, []string{"/usr/lib/cni"}) || c.CNI.ConfDir != "/tmp/cni" {
		t.Errorf("cni = %+v (bin_dirs must replace the default, not append)", c.CNI)
	}
	if !reflect.DeepEqual(c.Registry.Insecure, []string{"127.0.0.1:5000"}) ||
		!reflect.DeepEqual(c.Registry.Mirrors["gcr.io"], []string{"http://127.0.0.1:5000", "https://mirror.example:8443/v2"}) {
		t.Errorf("registry = %+v", c.Registry)
	}
	if h := c.Registry.Hosts["registry.k8s.io"]; !h.NoUpstreamFallback || !reflect.DeepEqual(h.CAFiles, []string{"/etc/hull/ca.pem"}) {
		t.Errorf("registry host = %+v", h)
	}
	if c.Streaming.Port != 10010 || c.Streaming.Address != DefaultStreamAddr {
		t.Errorf("streaming = %+v", c.Streaming)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{"malformed", "root = \"/x\"\nlisten = [unterminated\n", []string{"hull.toml:2"}},
		{"unknown top key", "root = \"/x\"\nrooot = \"/y\"\n", []string{"hull.toml:2", `"rooot"`}},
		{"unknown nested key", "[runtimes.runc]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\npathh = \"/x\"\n", []string{"hull.toml:4", "runtimes.runc.pathh"}},
		{"unknown section", "[cnii]\nconf_dir = \"/x\"\n", []string{"hull.toml:1", `"cnii"`}},
		{"wrong type", "[streaming]\nport = \"ten\"\n", []string{"hull.toml:2", "port"}},
		{"relative root", "root = \"var/lib/hull\"\n", []string{"root", "absolute"}},
		{"unknown runtime type", "[runtimes.kata]\ntype = \"vm\"\n", []string{"runtimes.kata.type", `"vm"`}},
		{"oci without path", "[runtimes.foo]\ntype = \"oci\"\n", []string{"runtimes.foo.path", "must be set"}},
		{"relative runtime path", "[runtimes.foo]\ntype = \"oci\"\npath = \"runc\"\n", []string{"runtimes.foo.path", "absolute"}},
		{"bad handler name", "[runtimes.Foo_Bar]\ntype = \"hullrt\"\n", []string{"runtimes.Foo_Bar", "DNS label"}},
		{"undefined default", "default_runtime = \"nope\"\n", []string{"default_runtime", `"nope"`}},
		{"bad mirror scheme", "[registry.mirrors]\n\"docker.io\" = [\"ftp://m\"]\n", []string{`registry.mirrors."docker.io"[0]`, "scheme"}},
		{"mirror without host", "[registry.mirrors]\n\"docker.io\" = [\"http://\"]\n", []string{`registry.mirrors."docker.io"[0]`, "host"}},
		{"insecure with scheme", "[registry]\ninsecure = [\"http://127.0.0.1:5000\"]\n", []string{"registry.insecure[0]"}},
		{"relative ca", "[registry.hosts.\"r.io\"]\nca_files = [\"ca.pem\"]\n", []string{`registry.hosts."r.io".ca_files[0]`}},
		{"relative cni dir", "[cni]\nconf_dir = \"net.d\"\n", []string{"cni.conf_dir"}},
		{"empty bin dirs", "[cni]\nbin_dirs = []\n", []string{"cni.bin_dirs"}},
		{"bad listen", "listen = \"tcp://0.0.0.0:1\"\n", []string{"listen", "unix://"}},
		{"bad log level", "log_level = \"loud\"\n", []string{"log_level"}},
		{"bad cgroup driver", "cgroup_driver = \"cgroupv3\"\n", []string{"cgroup_driver"}},
		{"bad port", "[streaming]\nport = 70000\n", []string{"streaming.port"}},
		{"half tls", "[streaming]\ntls_cert_file = \"/c.pem\"\n", []string{"streaming.tls_cert_file"}},
		{"bad stream addr", "[streaming]\naddress = \"not an ip\"\n", []string{"streaming.address"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.body))
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not ErrInvalidArgument", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateReportsAllFields(t *testing.T) {
	c := Default()
	c.Root = "rel"
	c.CgroupDriver = "x"
	err := c.Validate()
	for _, w := range []string{"root:", "cgroup_driver:"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v, want it to name %q", err, w)
		}
	}
}

func TestLoadUnreadable(t *testing.T) {
	// A directory where the file should be is an I/O error, not the defaults.
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("Load(directory) succeeded")
	}
}

func TestLoadMergesRuntimeEntries(t *testing.T) {
	// Overriding one key of a predefined handler keeps its other keys.
	c, err := Load(writeFile(t, "[runtimes.hullrt]\nroot = \"/run/custom\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Runtimes[RuntimeHullrt]; r.Type != RuntimeHullrt || r.Root != "/run/custom" {
		t.Fatalf("hullrt = %+v, want type kept and root overridden", r)
	}
}

func TestDefaultFindsRuntimesOnPath(t *testing.T) {
	if _, err := os.Stat("/usr/local/bin/runsc"); err == nil {
		t.Skip("runsc installed at its packaged path")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "runsc"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if r := Default().Runtimes["runsc"]; r.Type != RuntimeOCI || r.Path != filepath.Join(dir, "runsc") {
		t.Fatalf("runsc handler = %+v, want oci at %s", r, filepath.Join(dir, "runsc"))
	}
	t.Setenv("PATH", t.TempDir())
	if r, ok := Default().Runtimes["runsc"]; ok {
		t.Fatalf("runsc predefined although not installed: %+v", r)
	}
}
