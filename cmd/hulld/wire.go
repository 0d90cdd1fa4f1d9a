package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"hull/internal/config"
	"hull/internal/cri"
	"hull/internal/image"
	"hull/internal/network"
	"hull/internal/runtime"
)

// wire builds the service's lower layers from the configuration.
func wire(cfg *config.Config, log *slog.Logger) (*cri.Options, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	monitorPath := filepath.Join(filepath.Dir(exe), "hull-monitor")
	if _, err := os.Stat(monitorPath); err != nil {
		return nil, fmt.Errorf("hull-monitor must sit next to hulld (%s): %w", monitorPath, err)
	}
	images, err := image.Open(image.Options{
		Root: filepath.Join(cfg.Root, "image"), Hosts: registryHosts(cfg.Registry),
		Insecure: cfg.Registry.Insecure, Logger: log.With("component", "image"),
	})
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	nw, err := network.New(cfg.CNI)
	if err != nil {
		return nil, fmt.Errorf("CNI: %w", err)
	}
	handlers, err := buildHandlers(cfg)
	if err != nil {
		return nil, err
	}
	var streamTLS *tls.Config
	if st := cfg.Streaming; st.TLSCertFile != "" && st.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(st.TLSCertFile, st.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("streaming TLS: %w", err)
		}
		streamTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return &cri.Options{
		Root: cfg.Root, State: cfg.State, Images: images, Network: nw, Handlers: handlers,
		DefaultHandler: cfg.DefaultRuntime, MonitorPath: monitorPath, CgroupDriver: cfg.CgroupDriver,
		RestrictOOMScoreAdj: cfg.RestrictOOMScoreAdj, Logger: log,
		StreamAddr: net.JoinHostPort(cfg.Streaming.Address, strconv.Itoa(cfg.Streaming.Port)), StreamTLS: streamTLS,
	}, nil
}

// registryHosts merges mirrors, insecure hosts and per-host settings into
// the image store's per-host form.
func registryHosts(r config.Registry) map[string]image.RegistryHost {
	out := map[string]image.RegistryHost{}
	for host, mirrors := range r.Mirrors {
		h := out[host]
		h.Mirrors = append(h.Mirrors, mirrors...)
		out[host] = h
	}
	for host, hc := range r.Hosts {
		h := out[host]
		h.NoUpstreamFallback, h.CAFiles = hc.NoUpstreamFallback, hc.CAFiles
		out[host] = h
	}
	for _, host := range r.Insecure {
		h := out[host]
		h.Insecure = true
		out[host] = h
	}
	return out
}

func buildHandlers(cfg *config.Config) (map[string]runtime.Handler, error) {
	names := make([]string, 0, len(cfg.Runtimes))
	for n := range cfg.Runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]runtime.Handler{}
	for _, name := range names {
		rt := cfg.Runtimes[name]
		root := cfg.RuntimeRoot(name)
		if err := os.MkdirAll(root, 0o700); err != nil {
			return nil, fmt.Errorf("runtime %s: state root: %w", name, err)
		}
		switch rt.Type {
		case config.RuntimeOCI:
			h, err := runtime.NewOCI(name, rt.Path, root)
			if err != nil {
				return nil, err
			}
			out[name] = h
		case config.RuntimeHullrt:
			h, err := newHullrt(cfg, name, root)
			if err != nil {
				return nil, err
			}
			out[name] = h
		default:
			return nil, fmt.Errorf("runtime %s: unknown type %q", name, rt.Type)
		}
	}
	return out, nil
}

// newHullrt returns the in-process handler for type "hullrt".
func newHullrt(cfg *config.Config, name, root string) (runtime.Handler, error) {
	return runtime.NewHullrt(name, root, cfg.CgroupDriver == config.SystemdDriver)
}
