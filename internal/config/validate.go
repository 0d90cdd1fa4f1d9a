package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"hull/internal/errdefs"
)

// handlerName is what Kubernetes accepts as a RuntimeClass handler (a DNS label).
var handlerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Validate checks every field and returns all problems at once, each of
// class errdefs.ErrInvalidArgument and naming the TOML key at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument))
	}
	abs := func(field, p string, required bool) {
		switch {
		case p == "" && required:
			bad(field, "must be set")
		case p != "" && !filepath.IsAbs(p):
			bad(field, "%q is not an absolute path", p)
		}
	}

	abs("root", c.Root, true)
	abs("state", c.State, true)
	if err := checkListen(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}

	names := make([]string, 0, len(c.Runtimes))
	for n := range c.Runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := c.Runtimes[n]
		field := "runtimes." + n
		if !handlerName.MatchString(n) {
			bad(field, "handler name %q must be a lower-case DNS label", n)
		}
		switch r.Type {
		case RuntimeHullrt:
			abs(field+".path", r.Path, false)
		case RuntimeOCI:
			abs(field+".path", r.Path, true)
		default:
			bad(field+".type", "unknown runtime type %q (want %q or %q)", r.Type, RuntimeHullrt, RuntimeOCI)
		}
		abs(field+".root", r.Root, false)
	}
	if _, ok := c.Runtimes[c.DefaultRuntime]; !ok {
		bad("default_runtime", "%q is not defined under [runtimes]", c.DefaultRuntime)
	}

	abs("cni.conf_dir", c.CNI.ConfDir, true)
	if len(c.CNI.BinDirs) == 0 {
		bad("cni.bin_dirs", "must list at least one directory")
	}
	for i, d := range c.CNI.BinDirs {
		abs(fmt.Sprintf("cni.bin_dirs[%d]", i), d, true)
	}
	abs("cni.cache_dir", c.CNI.CacheDir, false)

	c.validateRegistry(bad, abs)

	if c.Streaming.Address != "" && net.ParseIP(c.Streaming.Address) == nil && c.Streaming.Address != "localhost" {
		bad("streaming.address", "%q is not an IP address", c.Streaming.Address)
	}
	if c.Streaming.Port < 0 || c.Streaming.Port > 65535 {
		bad("streaming.port", "%d is out of range 0-65535", c.Streaming.Port)
	}
	abs("streaming.tls_cert_file", c.Streaming.TLSCertFile, false)
	abs("streaming.tls_key_file", c.Streaming.TLSKeyFile, false)
	if (c.Streaming.TLSCertFile == "") != (c.Streaming.TLSKeyFile == "") {
		bad("streaming.tls_cert_file", "tls_cert_file and tls_key_file must be set together")
	}

	switch c.CgroupDriver {
	case CgroupfsDriver, SystemdDriver:
	default:
		bad("cgroup_driver", "%q is not %q or %q", c.CgroupDriver, CgroupfsDriver, SystemdDriver)
	}
	return errors.Join(errs...)
}

func (c *Config) validateRegistry(bad func(field, format string, args ...any), abs func(field, p string, required bool)) {
	for i, h := range c.Registry.Insecure {
		if err := checkHost(h); err != nil {
			bad(fmt.Sprintf("registry.insecure[%d]", i), "%v", err)
		}
	}
	for _, host := range sortedKeys(c.Registry.Mirrors) {
		field := fmt.Sprintf("registry.mirrors.%q", host)
		if err := checkHost(host); err != nil {
			bad(field, "%v", err)
		}
		for i, m := range c.Registry.Mirrors[host] {
			if err := checkMirror(m); err != nil {
				bad(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			}
		}
	}
	for _, host := range sortedKeys(c.Registry.Hosts) {
		field := fmt.Sprintf("registry.hosts.%q", host)
		if err := checkHost(host); err != nil {
			bad(field, "%v", err)
		}
		for i, f := range c.Registry.Hosts[host].CAFiles {
			abs(fmt.Sprintf("%s.ca_files[%d]", field, i), f, true)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkListen accepts "unix:///abs/path" or "/abs/path".
func checkListen(l string) error {
	p := strings.TrimPrefix(l, "unix://")
	if p == l && strings.Contains(l, "://") {
		return fmt.Errorf("%q: only unix:// endpoints are supported", l)
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%q: socket path must be absolute", l)
	}
	return nil
}

// ListenPath returns the socket path of Listen (without "unix://").
func (c *Config) ListenPath() string { return strings.TrimPrefix(c.Listen, "unix://") }

// checkHost accepts a registry name: "host" or "host:port", no scheme or path.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty registry host")
	}
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/ \t") {
		return fmt.Errorf("%q must be a host or host:port, without scheme or path", h)
	}
	u, err := url.Parse("//" + h)
	if err != nil || u.Host != h || u.User != nil {
		return fmt.Errorf("%q is not a valid host[:port]", h)
	}
	return nil
}

// checkMirror accepts an http(s) URL with a host and no query or fragment.
func checkMirror(m string) error {
	u, err := url.Parse(m)
	if err != nil {
		return fmt.Errorf("%q: %v", m, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", m)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: missing host", m)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: must not carry credentials, a query or a fragment", m)
	}
	return nil
}
