package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FuzzPodSandboxConfig: the pod checks RunPodSandbox runs before it makes
// anything either refuse the config with a classified error, or accept one
// whose files (resolv.conf, hostname) hold exactly the lines asked for and
// whose paths stay absolute.
func FuzzPodSandboxConfig(f *testing.F) {
	for _, s := range [][]string{
		{"pod", "10.0.0.10", "svc.cluster.local", "ndots:5", "/var/log/pods/x", "net.ipv4.ip_forward", "1", "/kubepods/pod1", "", ""},
		{"pod", "10.0.0.10\nnameserver 6.6.6.6", "a b", "x;y", "rel/logs", "kernel.panic", "1", "kubepods.slice", "::1", "1"},
		{"with space", "", "", "", "", "", "", "", "not-an-ip", "1"},
		{strings.Repeat("h", 65), "fe80::1", "", "", "/l\x00g", "net/../vm/x", "", "/a/../b", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], int32(80), int32(8080), s[9] == "1")
	}
	f.Add("", "", "", "", "", "", "", "", "", int32(0), int32(-1), false)
	f.Add("p", "", "", "", "", "", "", "", "", int32(70000), int32(1), true)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, hostname, server, search, option, logDir, sysKey, sysVal, cgroupParent, hostIP string,
		ctrPort, hostPort int32, hostNet bool) {
		cfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "p"}, Hostname: hostname, LogDirectory: logDir,
			PortMappings: []*runtimeapi.PortMapping{{ContainerPort: ctrPort, HostPort: hostPort, HostIp: hostIP}},
			Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: cgroupParent},
		}
		dns := &runtimeapi.DNSConfig{}
		for _, x := range []struct {
			v   string
			dst *[]string
		}{{server, &dns.Servers}, {search, &dns.Searches}, {option, &dns.Options}} {
			if x.v != "" {
				*x.dst = []string{x.v}
			}
		}
		cfg.DnsConfig = dns
		if sysKey != "" {
			cfg.Linux.Sysctls = map[string]string{sysKey: sysVal}
		}
		if hostNet {
			cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
		}
		err := validHostname(hostname)
		if err == nil {
			err = validatePodSandboxConfig(cfg)
		}
		if err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if logDir != "" && !filepath.IsAbs(logDir) {
			t.Fatalf("accepted relative log_directory %q", logDir)
		}
		if cp := cgroupParent; cp != "" && strings.Contains(cp, "..") {
			t.Fatalf("accepted cgroup parent %q", cp)
		}
		if err := writeResolvConf(dir, dns); err != nil {
			t.Fatal(err)
		}
		if err := writeHostname(dir, hostname); err != nil {
			t.Fatal(err)
		}
		want := len(dns.Servers) + len(dns.Searches) + len(dns.Options)
		if want > 0 {
			b, err := os.ReadFile(resolvPath(dir))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), "\n"); n != want {
				t.Fatalf("resolv.conf has %d lines for %d entries:\n%s", n, want, b)
			}
		}
		if b, _ := os.ReadFile(hostnamePath(dir)); strings.Count(string(b), "\n") != 1 {
			t.Fatalf("hostname file %q", b)
		}
	})
}
