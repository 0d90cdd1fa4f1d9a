package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestPodsReachEachOther runs two pods on the CNI bridge; one serves on a
// TCP port and the other connects to it by the pod IP.
func TestPodsReachEachOther(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	pa, ca := d.runPod("server", "while true; do echo pong-from-a | nc -l -p 8080; done")
	_, cb := d.runPod("client", "exec sleep 300")
	ipA, _ := field(d.inspect("inspectp", pa), "status.network.ip").(string)
	if !strings.HasPrefix(ipA, d.subnet+".") {
		t.Fatalf("pod a ip %q", ipA)
	}
	eventually(t, "server listening", func() bool {
		out, _ := d.crictlErr("exec", "-s", ca, "sh", "-c", "netstat -ltn | grep -q :8080 && echo up")
		return strings.Contains(out, "up")
	})
	out := d.crictl("exec", "-s", "--timeout", "10", cb, "sh", "-c", "nc -w 3 "+ipA+" 8080 </dev/null")
	if !strings.Contains(out, "pong-from-a") {
		t.Fatalf("client got %q from %s:8080", out, ipA)
	}
	if out := d.crictl("exec", "-s", cb, "ping", "-c", "1", "-W", "3", ipA); !strings.Contains(out, "1 packets received") {
		t.Fatalf("ping %s: %q", ipA, out)
	}
}

// TestHostNetworkPod checks that a hostNetwork pod shares the node's
// network namespace and hostname and gets no CNI address.
func TestHostNetworkPod(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	pod := d.podJSON("hostnet", `"hostname":"ignored"`)
	// crictl has no flag for the namespace options: write them in the config.
	b, _ := os.ReadFile(pod)
	writeFile(t, pod, strings.Replace(string(b), `"linux":{}`, `"linux":{"security_context":{"namespace_options":{"network":2}}}`, 1))
	p := d.crictl("runp", pod)
	ctr := d.ctrJSON("hostnet", "exec sleep 300", "")
	b, _ = os.ReadFile(ctr)
	writeFile(t, ctr, strings.Replace(string(b), `"linux":{}`, `"linux":{"security_context":{"namespace_options":{"network":2}}}`, 1))
	c := d.crictl("create", p, ctr, pod)
	d.crictl("start", c)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.crictl("exec", "-s", c, "readlink", "/proc/self/ns/net"); got != hostNS {
		t.Fatalf("container netns %q, host %q", got, hostNS)
	}
	host, _ := os.Hostname()
	if got := d.crictl("exec", "-s", c, "hostname"); got != host {
		t.Fatalf("hostname in a host-network pod %q, node %q", got, host)
	}
	if ip := field(d.inspect("inspectp", p), "status.network.ip"); ip != "" && ip != nil {
		t.Fatalf("host-network pod has a CNI ip %v", ip)
	}
}
