package network

import (
	"encoding/json"

	"github.com/containernetworking/cni/libcni"
)

// trimmed returns list without the plugins that would do nothing for this
// pod but cost a fork+exec on ADD and again on DEL (portmap's DEL also runs
// iptables several times):
//   - "loopback": Setup brings lo up itself;
//   - "portmap" when the pod maps no host port.
//
// The list's bytes are rebuilt too, because libcni caches them at ADD and a
// later DEL (after a restart or a conf change) replays exactly that list.
// When nothing can be dropped, or dropping would leave no plugin, or the list
// pulls plugins from side files, list is returned unchanged.
func trimmed(list *libcni.NetworkConfigList, hasPorts bool) *libcni.NetworkConfigList {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return list
	}
	var plugins []json.RawMessage
	if err := json.Unmarshal(raw["plugins"], &plugins); err != nil || len(plugins) != len(list.Plugins) {
		return list
	}
	keep := make([]json.RawMessage, 0, len(plugins))
	for i, p := range list.Plugins {
		switch {
		case p.Network.Type == "loopback":
		case p.Network.Type == "portmap" && !hasPorts:
		default:
			keep = append(keep, plugins[i])
		}
	}
	if len(keep) == len(plugins) || len(keep) == 0 {
		return list
	}
	b, err := json.Marshal(keep)
	if err != nil {
		return list
	}
	raw["plugins"] = b
	data, err := json.Marshal(raw)
	if err != nil {
		return list
	}
	out, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return list
	}
	return out
}
