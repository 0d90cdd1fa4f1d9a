// Package network attaches pods to the node's pod network through CNI
// plugins (libcni): ADD when a pod sandbox starts, DEL when it stops. The
// network configuration is the first usable file in the configured conf_dir,
// read again on every call so that a CNI installer dropping its file in later
// makes the node ready without a restart.
package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"hull/internal/config"
	"hull/internal/errdefs"
)

// IfName is the interface name every pod gets inside its network namespace.
const IfName = "eth0"

// confExtensions are the file names libcni-based runtimes read, in the
// kubelet's order of precedence after the lexical sort.
var confExtensions = []string{".conflist", ".conf", ".json"}

// Manager runs CNI plugins for pods. It holds no per-pod state in memory:
// libcni's result cache (under CNI.CacheDir) remembers what each ADD did, so
// a restarted hulld can still tear pods down. Its methods are safe for
// concurrent use; calls for different pods run in parallel (host-local
// serialises its IP allocation itself with a file lock).
type Manager struct {
	conf config.CNI
	cni  *libcni.CNIConfig
}

// New returns a Manager for c. The conf_dir need not exist yet: Status
// reports the network not ready until it holds a usable configuration.
func New(c config.CNI) (*Manager, error) {
	if c.ConfDir == "" || !filepath.IsAbs(c.ConfDir) {
		return nil, fmt.Errorf("cni conf_dir %q must be an absolute path: %w", c.ConfDir, errdefs.ErrInvalidArgument)
	}
	if len(c.BinDirs) == 0 {
		return nil, fmt.Errorf("cni bin_dirs is empty: %w", errdefs.ErrInvalidArgument)
	}
	for _, d := range c.BinDirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("cni bin_dirs entry %q must be an absolute path: %w", d, errdefs.ErrInvalidArgument)
		}
	}
	if c.CacheDir != "" && !filepath.IsAbs(c.CacheDir) {
		return nil, fmt.Errorf("cni cache_dir %q must be an absolute path: %w", c.CacheDir, errdefs.ErrInvalidArgument)
	}
	c.BinDirs = append([]string(nil), c.BinDirs...)
	// libcni fills in a nil Exec lazily on first use, which races when pods
	// are set up in parallel: give it one up front. Plugin stderr goes to
	// hulld's. An empty cache dir makes libcni use /var/lib/cni.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return &Manager{conf: c, cni: libcni.NewCNIConfigWithCacheDir(c.BinDirs, c.CacheDir, exec)}, nil
}

// Status returns nil when conf_dir holds a usable network configuration
// whose plugins are all installed, and otherwise an error (class
// errdefs.ErrFailedPrecondition) saying why, for the NetworkReady condition.
func (m *Manager) Status() error {
	_, err := m.load()
	return err
}

// NetworkName returns the name of the network pods are attached to now.
func (m *Manager) NetworkName() (string, error) {
	l, err := m.load()
	if err != nil {
		return "", err
	}
	return l.Name, nil
}

// load returns the first configuration in conf_dir that parses and whose
// plugins exist. Files that do not parse are skipped, as the kubelet did.
func (m *Manager) load() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(m.conf.ConfDir, confExtensions)
	if err != nil {
		return nil, fmt.Errorf("cni: read conf_dir %s: %v: %w", m.conf.ConfDir, err, errdefs.ErrFailedPrecondition)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("cni: no network configuration in %s: %w", m.conf.ConfDir, errdefs.ErrFailedPrecondition)
	}
	sort.Strings(files)
	var problems []string
	for _, f := range files {
		l, err := loadFile(f)
		if err == nil {
			err = m.checkPlugins(l)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		return l, nil
	}
	return nil, fmt.Errorf("cni: no usable network configuration in %s (%s): %w",
		m.conf.ConfDir, strings.Join(problems, "; "), errdefs.ErrFailedPrecondition)
}

// loadFile parses a .conflist, or a single-plugin .conf wrapped as a list.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if _, isList := probe["plugins"]; isList {
		return libcni.ConfListFromFile(path)
	}
	pc, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		return nil, err
	}
	// Wrap the single plugin in a list, as the kubelet did for .conf files.
	wrapped, err := json.Marshal(map[string]any{
		"cniVersion": pc.Network.CNIVersion,
		"name":       pc.Network.Name,
		"plugins":    []json.RawMessage{data},
	})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(wrapped)
}

func (m *Manager) checkPlugins(l *libcni.NetworkConfigList) error {
	if len(l.Plugins) == 0 {
		return errors.New("no plugins")
	}
	for _, p := range l.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.conf.BinDirs); err != nil {
			return fmt.Errorf("plugin %q not found in %s", p.Network.Type, strings.Join(m.conf.BinDirs, ":"))
		}
	}
	return nil
}
