package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// PodMeta identifies a pod to the plugins (CNI_ARGS K8S_POD_*); ID is the
// sandbox ID and the CNI container ID.
type PodMeta struct {
	ID, Name, Namespace, UID string
}

// PortMapping is a hostPort of the pod, handed to the portmap plugin.
type PortMapping struct {
	Protocol      string // "tcp" (default), "udp" or "sctp"; any case
	ContainerPort int32
	HostPort      int32
	HostIP        string
}

// Result is what a pod got from its network.
type Result struct {
	// IPs are the pod's addresses without prefix length, IPv4 first; the
	// first is the primary one.
	IPs []string
	// Interface is the interface inside the pod's netns.
	Interface string
	// Network is the name of the CNI network.
	Network string
}

// portMapping is the portmap plugin's runtimeConfig entry.
type portMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (m *Manager) runtimeConf(pod PodMeta, netnsPath string, ports []PortMapping) (*libcni.RuntimeConf, error) {
	if pod.ID == "" {
		return nil, fmt.Errorf("cni: pod %s/%s has no sandbox id: %w", pod.Namespace, pod.Name, errdefs.ErrInvalidArgument)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ID,
		NetNS:       netnsPath,
		IfName:      IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
			{"K8S_POD_UID", pod.UID},
		},
		CapabilityArgs: map[string]any{},
	}
	if len(ports) > 0 {
		pm := make([]portMapping, 0, len(ports))
		for _, p := range ports {
			proto := strings.ToLower(p.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			switch proto {
			case "tcp", "udp", "sctp":
			default:
				return nil, fmt.Errorf("cni: pod %s port %d: unknown protocol %q: %w", pod.ID, p.ContainerPort, p.Protocol, errdefs.ErrInvalidArgument)
			}
			if p.HostPort <= 0 {
				// Without a host port there is nothing to map.
				continue
			}
			if p.HostPort > 65535 || p.ContainerPort <= 0 || p.ContainerPort > 65535 {
				return nil, fmt.Errorf("cni: pod %s port mapping %d→%d out of range: %w", pod.ID, p.HostPort, p.ContainerPort, errdefs.ErrInvalidArgument)
			}
			if p.HostIP != "" && net.ParseIP(p.HostIP) == nil {
				return nil, fmt.Errorf("cni: pod %s port %d: host IP %q is not an IP: %w", pod.ID, p.HostPort, p.HostIP, errdefs.ErrInvalidArgument)
			}
			pm = append(pm, portMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
		}
		if len(pm) > 0 {
			rt.CapabilityArgs["portMappings"] = pm
		}
	}
	return rt, nil
}

// Setup attaches the pod's network namespace at netnsPath to the pod network
// and returns its addresses. On error the partial attachment is removed.
func (m *Manager) Setup(ctx context.Context, pod PodMeta, netnsPath string, ports []PortMapping) (_ *Result, retErr error) {
	if err := checkNetns(netnsPath); err != nil {
		return nil, fmt.Errorf("cni: pod %s: %w", pod.ID, err)
	}
	list, err := m.load()
	if err != nil {
		return nil, err
	}
	rt, err := m.runtimeConf(pod, netnsPath, ports)
	if err != nil {
		return nil, err
	}
	if err := loopbackUp(netnsPath); err != nil {
		return nil, fmt.Errorf("cni: pod %s: netns %s: %w", pod.ID, netnsPath, err)
	}
	_, hasPorts := rt.CapabilityArgs["portMappings"]
	list = trimmed(list, hasPorts)
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	defer func() {
		if retErr != nil {
			// Release the IP and links a plugin half-made; ctx may be done,
			// so the rollback gets its own.
			_ = m.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("cni: add pod %s (%s/%s) to network %q: %w", pod.ID, pod.Namespace, pod.Name, list.Name, err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("cni: pod %s: convert result of network %q: %w", pod.ID, list.Name, err)
	}
	out := &Result{Interface: IfName, Network: list.Name}
	var v6 []string
	for _, ipc := range cur.IPs {
		// Keep addresses on the pod's interface (or with no interface given).
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(cur.Interfaces) {
			intf := cur.Interfaces[*ipc.Interface]
			if intf.Sandbox == "" || intf.Name != IfName {
				continue
			}
		}
		ip := ipc.Address.IP
		if ip.To4() != nil {
			out.IPs = append(out.IPs, ip.String())
		} else {
			v6 = append(v6, ip.String())
		}
	}
	out.IPs = append(out.IPs, v6...)
	if len(out.IPs) == 0 {
		return nil, fmt.Errorf("cni: network %q gave pod %s no IP address: %w", list.Name, pod.ID, errdefs.ErrFailedPrecondition)
	}
	return out, nil
}

// Teardown detaches the pod from every network libcni's cache says it was
// attached to, with the configuration used at ADD time (so it works after
// conf_dir changed or emptied); without a cache entry it runs DEL with the
// current configuration. It is idempotent and succeeds when the netns is
// already gone (the plugins then only release IPs and host-side state).
func (m *Manager) Teardown(ctx context.Context, pod PodMeta, netnsPath string, ports []PortMapping) error {
	// A path that is gone or no longer a namespace (unpinned, or left
	// half-made by a crash) makes plugins fail; without one they still
	// release IPs and host-side state.
	if netnsPath != "" && checkNetns(netnsPath) != nil {
		netnsPath = ""
	}
	rt, err := m.runtimeConf(pod, netnsPath, ports)
	if err != nil {
		return err
	}
	atts, err := m.cni.GetCachedAttachments(pod.ID)
	if err != nil {
		return fmt.Errorf("cni: pod %s: read result cache: %w", pod.ID, err)
	}
	var errs []error
	done := false
	for _, a := range atts {
		if a.IfName != IfName {
			continue
		}
		list, err := libcni.ConfListFromBytes(a.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("cni: pod %s: cached config of network %q: %w", pod.ID, a.Network, err))
			continue
		}
		art := *rt
		if a.CniArgs != nil {
			art.Args = a.CniArgs
		}
		if a.CapabilityArgs != nil {
			art.CapabilityArgs = a.CapabilityArgs
		}
		if err := m.cni.DelNetworkList(ctx, list, &art); err != nil {
			errs = append(errs, fmt.Errorf("cni: delete pod %s from network %q: %w", pod.ID, a.Network, err))
			continue
		}
		done = true
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if done {
		return nil
	}
	list, err := m.load()
	if err != nil {
		// No cache entry and no configuration: nothing was or can be set up.
		return nil
	}
	_, hasPorts := rt.CapabilityArgs["portMappings"]
	list = trimmed(list, hasPorts)
	if err := m.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("cni: delete pod %s from network %q: %w", pod.ID, list.Name, err)
	}
	return nil
}

// CachedPodIDs returns the sandbox IDs libcni's cache holds an attachment
// for, sorted. After a restart hulld tears down those it has no record of
// (a pod whose RunPodSandbox died half-way): Teardown needs only the ID.
func (m *Manager) CachedPodIDs() ([]string, error) {
	atts, err := m.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("cni: read result cache: %w", err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, a := range atts {
		if !seen[a.ContainerID] {
			seen[a.ContainerID] = true
			ids = append(ids, a.ContainerID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// checkNetns reports whether path is a network namespace file (a pin or a
// /proc/PID/ns/net link), not a plain file left where one was.
func checkNetns(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("netns %q: %w", path, errdefs.ErrNotFound)
		}
		return fmt.Errorf("netns %q: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("netns %q is not a namespace file: %w", path, errdefs.ErrNotFound)
	}
	return nil
}
