package config

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Default values.
const (
	DefaultRoot       = "/var/lib/hull"
	DefaultState      = "/run/hull"
	DefaultListen     = "unix:///run/hull/hull.sock"
	DefaultLogLevel   = "info"
	DefaultCNIConfDir = "/etc/cni/net.d"
	DefaultStreamAddr = "127.0.0.1"
)

// DefaultCNIBinDirs are searched for CNI plugins when the file sets none.
var DefaultCNIBinDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}

// Well-known OCI runtime binaries predefined as handlers when installed: at
// their packaged path, else wherever PATH finds them (`go install` puts
// runsc in ~/go/bin).
var knownOCIRuntimes = []struct{ name, path string }{
	{"runc", "/usr/sbin/runc"},
	{"crun", "/usr/bin/crun"},
	{"runsc", "/usr/local/bin/runsc"},
}

func findRuntime(name, path string) string {
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		return path
	}
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return ""
}

// Default returns the configuration hulld runs with when no file exists:
// hullrt as the default handler, plus runc, crun and runsc handlers for the
// binaries found at their usual paths.
func Default() *Config {
	c := &Config{
		Root:           DefaultRoot,
		State:          DefaultState,
		Listen:         DefaultListen,
		LogLevel:       DefaultLogLevel,
		DefaultRuntime: RuntimeHullrt,
		Runtimes: map[string]Runtime{
			RuntimeHullrt: {Type: RuntimeHullrt},
		},
		CNI: CNI{
			ConfDir: DefaultCNIConfDir,
			BinDirs: append([]string(nil), DefaultCNIBinDirs...),
		},
		Registry: Registry{
			Insecure: []string{},
			Mirrors:  map[string][]string{},
			Hosts:    map[string]RegistryHost{},
		},
		Streaming:           Streaming{Address: DefaultStreamAddr},
		CgroupDriver:        CgroupfsDriver,
		RestrictOOMScoreAdj: true,
	}
	for _, r := range knownOCIRuntimes {
		if p := findRuntime(r.name, r.path); p != "" {
			c.Runtimes[r.name] = Runtime{Type: RuntimeOCI, Path: p}
		}
	}
	return c
}

// RuntimeRoot returns the state directory of handler name: its configured
// Root, or <State>/runtimes/<name> when that is empty.
func (c *Config) RuntimeRoot(name string) string {
	if r, ok := c.Runtimes[name]; ok && r.Root != "" {
		return r.Root
	}
	return filepath.Join(c.State, "runtimes", name)
}

// NetworkConfig returns the [cni] section with CacheDir defaulted to
// <Root>/cni-cache, so that libcni's record of each pod's ADD lives (and is
// wiped) with the rest of hulld's state. Call it after flags changed Root.
func (c *Config) NetworkConfig() CNI {
	n := c.CNI
	n.BinDirs = append([]string(nil), c.CNI.BinDirs...)
	if n.CacheDir == "" {
		n.CacheDir = filepath.Join(c.Root, "cni-cache")
	}
	return n
}

// DefaultTOML returns Default() as a commented TOML document; Load of it
// yields exactly Default().
func DefaultTOML() string {
	c := Default()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# hulld configuration. Every key is optional; this file lists the defaults.\n\n")
	w("# Persistent state: metadata, images, snapshots.\nroot = %s\n", q(c.Root))
	w("# Volatile state: sockets, pinned namespaces, monitor state.\nstate = %s\n", q(c.State))
	w("# CRI endpoint for the kubelet and crictl.\nlisten = %s\n", q(c.Listen))
	w("# debug | info | warn | error\nlog_level = %s\n", q(c.LogLevel))
	w("# Runtime handler used when a pod names none.\ndefault_runtime = %s\n", q(c.DefaultRuntime))
	w("# cgroupfs | systemd\ncgroup_driver = %s\n", q(c.CgroupDriver))
	w("# Clamp oom_score_adj to what the host allows instead of failing.\nrestrict_oom_score_adj = %t\n", c.RestrictOOMScoreAdj)

	w("\n# Runtime handlers (RuntimeClass handler names). type = \"hullrt\" runs hull's\n")
	w("# runtime in process; type = \"oci\" runs the runc-compatible binary at path.\n")
	w("# root is the runtime's state directory (default <state>/runtimes/<name>).\n")
	names := make([]string, 0, len(c.Runtimes))
	for n := range c.Runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := c.Runtimes[n]
		w("[runtimes.%s]\ntype = %s\n", n, q(r.Type))
		if r.Path != "" {
			w("path = %s\n", q(r.Path))
		}
		if r.Root != "" {
			w("root = %s\n", q(r.Root))
		}
	}
	if _, ok := c.Runtimes["runsc"]; !ok {
		w("# [runtimes.runsc]\n# type = \"oci\"\n# path = \"/usr/local/bin/runsc\"\n")
	}

	w("\n[cni]\n# The first .conflist/.conf/.json file here (lexical order) is the pod network.\n")
	w("conf_dir = %s\n", q(c.CNI.ConfDir))
	w("# Plugin binaries are searched in these directories, in order.\nbin_dirs = %s\n", qlist(c.CNI.BinDirs))
	w("# libcni's record of each pod's ADD, replayed at DEL (empty: <root>/cni-cache).\ncache_dir = %s\n", q(c.CNI.CacheDir))

	w("\n[registry]\n# Registries reached over plain HTTP or unverified TLS (\"host:port\").\n")
	w("insecure = %s\n", qlist(c.Registry.Insecure))
	w("\n# Endpoints tried before a registry itself, in order.\n[registry.mirrors]\n")
	w("# \"registry.k8s.io\" = [\"http://127.0.0.1:5000\"]\n")
	w("\n# Per-registry settings.\n[registry.hosts]\n")
	w("# [registry.hosts.\"registry.k8s.io\"]\n# no_upstream_fallback = true\n# ca_files = [\"/etc/hull/certs/ca.pem\"]\n")

	w("\n# exec / attach / port-forward server.\n[streaming]\naddress = %s\n", q(c.Streaming.Address))
	w("# 0 picks a free port.\nport = %d\n", c.Streaming.Port)
	w("# TLS is on when both files are set.\ntls_cert_file = %s\ntls_key_file = %s\n", q(c.Streaming.TLSCertFile), q(c.Streaming.TLSKeyFile))
	return b.String()
}

func q(s string) string { return strconv.Quote(s) }

func qlist(l []string) string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = q(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
