// Package config holds hulld's TOML configuration: the structs, their
// defaults and their validation. It knows nothing about the managers that use
// the values; hulld hands each section to the package that owns it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"hull/internal/errdefs"
)

// Config is hulld's whole configuration. A zero Config is not usable: start
// from Default() (Load does) and overlay a file on it.
type Config struct {
	// Root holds persistent state: metadata, images, snapshots.
	Root string `toml:"root"`
	// State holds runtime state that must not survive a reboot: sockets,
	// pinned namespaces, monitor state.
	State string `toml:"state"`
	// Listen is the CRI endpoint, "unix:///abs/path" (or a bare absolute path).
	Listen string `toml:"listen"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `toml:"log_level"`
	// DefaultRuntime names the entry of Runtimes used when a pod asks for no
	// runtime handler.
	DefaultRuntime string `toml:"default_runtime"`
	// Runtimes are the runtime handlers (Kubernetes RuntimeClass handlers).
	Runtimes map[string]Runtime `toml:"runtimes"`
	// CNI configures pod networking.
	CNI CNI `toml:"cni"`
	// Registry configures image pulls: mirrors, insecure registries, CAs.
	Registry Registry `toml:"registry"`
	// Streaming configures the exec/attach/port-forward server.
	Streaming Streaming `toml:"streaming"`
	// CgroupDriver is "cgroupfs" or "systemd".
	CgroupDriver string `toml:"cgroup_driver"`
	// RestrictOOMScoreAdj clamps a container's oom_score_adj to what the host
	// allows instead of failing (no CAP_SYS_RESOURCE inside many hosts).
	RestrictOOMScoreAdj bool `toml:"restrict_oom_score_adj"`
}

// Runtime types.
const (
	// RuntimeHullrt runs containers with hull's own runtime library, in process.
	RuntimeHullrt = "hullrt"
	// RuntimeOCI runs containers with a runc-compatible binary at Path.
	RuntimeOCI = "oci"
)

// Runtime is one runtime handler.
type Runtime struct {
	// Type is RuntimeHullrt or RuntimeOCI.
	Type string `toml:"type"`
	// Path is the runtime binary (required for RuntimeOCI, absolute).
	Path string `toml:"path"`
	// Root is the runtime's state directory (its --root). Empty means
	// RuntimeRoot's default under Config.State.
	Root string `toml:"root"`
	// Options are handler-specific settings passed through untouched.
	Options map[string]string `toml:"options,omitempty"`
}

// CNI configures pod networking through CNI plugins.
type CNI struct {
	// ConfDir holds the network configuration; the first .conflist/.conf/.json
	// file in lexical order is the pod network.
	ConfDir string `toml:"conf_dir"`
	// BinDirs are searched in order for plugin binaries.
	BinDirs []string `toml:"bin_dirs"`
	// CacheDir is libcni's result cache, used to tear networks down after the
	// configuration changed. Empty means <root>/cni-cache (see
	// Config.NetworkConfig); network.New itself falls back to /var/lib/cni.
	CacheDir string `toml:"cache_dir"`
}

// Registry configures how images are pulled.
type Registry struct {
	// Insecure lists registries ("host" or "host:port") reached over plain
	// HTTP or with unverified TLS.
	Insecure []string `toml:"insecure"`
	// Mirrors maps a registry host to the endpoints tried first, in order
	// ("http://127.0.0.1:5000").
	Mirrors map[string][]string `toml:"mirrors"`
	// Hosts holds per-registry settings, keyed by registry host.
	Hosts map[string]RegistryHost `toml:"hosts"`
}

// RegistryHost holds the settings of one registry host.
type RegistryHost struct {
	// NoUpstreamFallback stops a pull after the mirrors failed instead of
	// trying the registry itself.
	NoUpstreamFallback bool `toml:"no_upstream_fallback"`
	// CAFiles are extra PEM CA bundles trusted for this host (absolute paths).
	CAFiles []string `toml:"ca_files"`
}

// Streaming configures the exec/attach/port-forward HTTP server.
type Streaming struct {
	// Address is the IP the server binds to.
	Address string `toml:"address"`
	// Port is the TCP port; 0 picks a free one.
	Port int `toml:"port"`
	// TLSCertFile and TLSKeyFile enable TLS when both are set.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
}

// Cgroup drivers.
const (
	CgroupfsDriver = "cgroupfs"
	SystemdDriver  = "systemd"
)

// Load reads the TOML file at path over Default() and validates the result.
// A missing file yields the defaults. Malformed TOML and unknown keys are
// errors of class errdefs.ErrInvalidArgument naming path:line and the key.
func Load(path string) (*Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, c.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := decode(path, data, c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// decode overlays data on c. Tables named in the file replace nothing but the
// keys they set; maps such as runtimes merge with the defaults, so a file that
// only adds [runtimes.runsc] keeps hullrt and runc.
func decode(path string, data []byte, c *Config) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(c)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for i := range strict.Errors {
			e := &strict.Errors[i]
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", path, row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("%s: %w", strings.Join(msgs, "; "), errdefs.ErrInvalidArgument)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		key := strings.Join(de.Key(), ".")
		if key != "" {
			return fmt.Errorf("%s:%d:%d: key %q: %s: %w", path, row, col, key, de.Error(), errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("%s:%d:%d: %s: %w", path, row, col, de.Error(), errdefs.ErrInvalidArgument)
	}
	// Type mismatches on decoding into the struct come back unpositioned.
	return fmt.Errorf("%s: %v: %w", path, err, errdefs.ErrInvalidArgument)
}
