package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/nsutil"
	"hull/internal/runtime"
)

// Kubernetes user namespaces (hostUsers: false): a pod with UsernsOptions
// mode POD gets one user namespace with the kubelet's mappings, which owns
// its net, ipc, uts (and shared pid) namespaces; its containers join it,
// their rootfs is an overlay of idmapped layers and their volumes are
// idmapped mounts. Mode NODE (or none) is the host's user namespace.

// podUserns checks a pod's user namespace option as containerd and CRI-O
// do and returns its uid and gid mappings, nil for the host's namespace.
func podUserns(ns *runtimeapi.NamespaceOption) (uids, gids []nsutil.IDMap, err error) {
	u := ns.GetUsernsOptions()
	if u == nil {
		return nil, nil, nil // mode POD is 0: an absent option is NODE
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids()) > 0 || len(u.GetGids()) > 0 {
			return nil, nil, invalidf("namespace_options.userns_options: mode NODE takes no uids/gids mappings")
		}
		return nil, nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, nil, invalidf("namespace_options.userns_options.mode %s is not supported (POD or NODE)", u.GetMode())
	}
	if uids, err = oneMapping("uids", u.GetUids()); err != nil {
		return nil, nil, err
	}
	if gids, err = oneMapping("gids", u.GetGids()); err != nil {
		return nil, nil, err
	}
	// As the kubelet: the pod's namespaces must be its own, or the host
	// root of the user namespace would reach into the host's.
	for _, f := range []struct {
		field string
		mode  runtimeapi.NamespaceMode
	}{{"network", ns.GetNetwork()}, {"pid", ns.GetPid()}, {"ipc", ns.GetIpc()}} {
		if f.mode == runtimeapi.NamespaceMode_NODE {
			return nil, nil, invalidf("namespace_options.%s NODE cannot be combined with a pod user namespace (userns_options mode POD)", f.field)
		}
	}
	return uids, gids, nil
}

// oneMapping accepts exactly one mapping that starts at container id 0
// (root must be mapped), is not empty, does not overflow 32 bits and does
// not map host root into the pod.
func oneMapping(field string, ms []*runtimeapi.IDMapping) ([]nsutil.IDMap, error) {
	if len(ms) != 1 {
		return nil, invalidf("namespace_options.userns_options.%s: exactly one mapping is supported, got %d", field, len(ms))
	}
	m := ms[0]
	switch {
	case m.GetLength() == 0:
		return nil, invalidf("namespace_options.userns_options.%s[0]: length is 0", field)
	case m.GetContainerId() != 0:
		return nil, invalidf("namespace_options.userns_options.%s[0]: container id 0 is not mapped (the mapping starts at %d)", field, m.GetContainerId())
	case uint64(m.GetHostId())+uint64(m.GetLength()) > math.MaxUint32:
		return nil, invalidf("namespace_options.userns_options.%s[0]: host ids %d+%d overflow 32 bits", field, m.GetHostId(), m.GetLength())
	case m.GetHostId() == 0:
		return nil, invalidf("namespace_options.userns_options.%s[0]: host id 0 would make the pod's root the host's root", field)
	}
	return []nsutil.IDMap{{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// checkContainerUserns makes a container use its pod's user namespace
// option: none (inherit) or the same mode and mappings.
func checkContainerUserns(pod, ctr *runtimeapi.NamespaceOption) error {
	if pod.GetUsernsOptions() != nil && pod.GetUsernsOptions().GetMode() == runtimeapi.NamespaceMode_POD &&
		ctr.GetPid() == runtimeapi.NamespaceMode_NODE {
		return invalidf("security_context.namespace_options.pid NODE cannot be combined with the pod's user namespace")
	}
	c := ctr.GetUsernsOptions()
	if c == nil {
		return nil
	}
	p := pod.GetUsernsOptions()
	same := func(a, b []*runtimeapi.IDMapping) bool {
		return slices.EqualFunc(a, b, func(x, y *runtimeapi.IDMapping) bool {
			return x.GetContainerId() == y.GetContainerId() && x.GetHostId() == y.GetHostId() && x.GetLength() == y.GetLength()
		})
	}
	podMode := p.GetMode()
	if p == nil {
		podMode = runtimeapi.NamespaceMode_NODE
	}
	if c.GetMode() != podMode || !same(c.GetUids(), p.GetUids()) || !same(c.GetGids(), p.GetGids()) {
		return invalidf("security_context.namespace_options.userns_options (mode %s) differs from the pod's (mode %s): containers share the pod's user namespace",
			c.GetMode(), podMode)
	}
	return nil
}

func ociMaps(ms []nsutil.IDMap) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, len(ms))
	for i, m := range ms {
		out[i] = specs.LinuxIDMapping{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size}
	}
	return out
}

func criMountMaps(ms []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}

// podRootIDs are the host uid and gid of the pod's root (0, 0 without a
// user namespace): the owner of the pod files it must be able to write.
func podRootIDs(sbCfg *runtimeapi.PodSandboxConfig) (uid, gid int) {
	uids, gids, err := podUserns(sbCfg.GetLinux().GetSecurityContext().GetNamespaceOptions())
	if err != nil || uids == nil {
		return 0, 0
	}
	return int(uids[0].HostID), int(gids[0].HostID)
}

// usernsSupport says what a handler can do with user namespaces: join a
// pinned one by path (join) and make idmapped mounts (idmap). Only both
// together make a working Kubernetes user-namespaced pod, which is what
// Status advertises. Results are cached per binary: asking means running
// `RUNTIME features`.
type usernsFeatures struct{ join, idmap bool }

var usernsCache struct {
	mu sync.Mutex
	m  map[string]usernsFeatures
}

func (s *Service) usernsSupport(h runtime.Handler) usernsFeatures {
	info := h.Info()
	bin := info.Path
	if info.Type == "hullrt" {
		// The in-process handler's features are those of the hullrt
		// binary the monitor runs, next to hulld.
		bin = filepath.Join(filepath.Dir(s.opts.MonitorPath), "hullrt")
	}
	if bin == "" {
		return usernsFeatures{}
	}
	usernsCache.mu.Lock()
	defer usernsCache.mu.Unlock()
	if v, ok := usernsCache.m[info.Type+":"+bin]; ok {
		return v
	}
	v := probeUserns(bin, info.Type == "hullrt")
	if usernsCache.m == nil {
		usernsCache.m = map[string]usernsFeatures{}
	}
	usernsCache.m[info.Type+":"+bin] = v
	return v
}

// probeUserns reads the runtime-spec features of bin. A runtime that lists
// the user namespace can join one by path (runc, crun); hullrt joins one
// only from the build that also makes idmapped mounts.
func probeUserns(bin string, hullrt bool) usernsFeatures {
	if _, err := os.Stat(bin); err != nil {
		return usernsFeatures{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "features").Output()
	if err != nil {
		return usernsFeatures{}
	}
	var f struct {
		Annotations map[string]string `json:"annotations"`
		Linux       struct {
			Namespaces      []string `json:"namespaces"`
			MountExtensions struct {
				IDMap struct {
					Enabled *bool `json:"enabled"`
				} `json:"idmap"`
			} `json:"mountExtensions"`
		} `json:"linux"`
	}
	if json.Unmarshal(out, &f) != nil {
		return usernsFeatures{}
	}
	v := usernsFeatures{
		join:  slices.Contains(f.Linux.Namespaces, "user"),
		idmap: f.Linux.MountExtensions.IDMap.Enabled != nil && *f.Linux.MountExtensions.IDMap.Enabled,
	}
	if hullrt {
		v.join = v.join && v.idmap
	}
	for k := range f.Annotations {
		// gVisor lists both, but runs the pod in its own kernel: joining
		// the host-side pod user namespace is not what it does, and it is
		// not verified here.
		if strings.HasPrefix(k, "dev.gvisor.") {
			return usernsFeatures{}
		}
	}
	return v
}

// pinUsernsPod creates the pod's user namespace and the net, ipc and uts
// namespaces it owns (and, with pid, the pause process as pid 1 of a pid
// namespace it owns too: proc can only be mounted by the owner's root),
// recording them in sb as they are made so an undo finds them.
func (s *Service) pinUsernsPod(sb *store.Sandbox, uids, gids []nsutil.IDMap, hostname string, pid bool) error {
	bin, err := s.pauseBinary()
	if err != nil {
		return err
	}
	paths, proc, err := nsutil.PinUserns(filepath.Join(sb.Dir, "ns"), exec.Command(bin), nsutil.UserPod{
		UIDs: uids, GIDs: gids, Kinds: []string{"net", "ipc", "uts"}, Hostname: hostname, PID: pid,
	})
	if err != nil {
		return err
	}
	sb.Namespaces = paths
	if proc == nil {
		return nil
	}
	st, err := procStartTime(proc.Pid)
	if err != nil {
		_ = proc.Kill()
		_, _ = proc.Wait()
		return err
	}
	s.mu.Lock()
	s.pauses[sb.ID] = proc
	s.mu.Unlock()
	sb.PausePID, sb.PauseStartTime = proc.Pid, st
	sb.Namespaces["pid"] = fmt.Sprintf("/proc/%d/ns/pid", proc.Pid)
	return nil
}

// chownPodFiles hands the pod's hosts, hostname and resolv.conf to the
// pod's root, which may rewrite them as in any pod.
func chownPodFiles(dir string, uid, gid int) error {
	for _, p := range []string{hostsPath(dir), hostnamePath(dir), resolvPath(dir)} {
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("pod file for the user namespace: %w", err)
		}
	}
	return nil
}
