package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
)

// Paths of the files every container of a pod bind-mounts from the sandbox dir.
func resolvPath(dir string) string   { return filepath.Join(dir, "resolv.conf") }
func hostsPath(dir string) string    { return filepath.Join(dir, "hosts") }
func hostnamePath(dir string) string { return filepath.Join(dir, "hostname") }
func shmPath(dir string) string      { return filepath.Join(dir, "shm") }

// writeResolvConf writes the pod's resolv.conf from its DNSConfig, or a copy
// of the host's when the pod has none (the kubelet always sends one).
func writeResolvConf(dir string, dns *runtimeapi.DNSConfig) error {
	var content []byte
	if dns == nil || (len(dns.Servers) == 0 && len(dns.Searches) == 0 && len(dns.Options) == 0) {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("read host resolv.conf: %w", err)
		}
		content = b
	} else {
		var sb strings.Builder
		if len(dns.Searches) > 0 {
			fmt.Fprintf(&sb, "search %s\n", strings.Join(dns.Searches, " "))
		}
		for _, s := range dns.Servers {
			fmt.Fprintf(&sb, "nameserver %s\n", s)
		}
		if len(dns.Options) > 0 {
			fmt.Fprintf(&sb, "options %s\n", strings.Join(dns.Options, " "))
		}
		content = []byte(sb.String())
	}
	return os.WriteFile(resolvPath(dir), content, 0o644)
}

// writeHosts writes /etc/hosts: the host's for host-network pods, else the
// loopback entries (the kubelet adds pod entries through its own mount).
func writeHosts(dir string, hostNetwork bool) error {
	if hostNetwork {
		b, err := os.ReadFile("/etc/hosts")
		if err == nil {
			return os.WriteFile(hostsPath(dir), b, 0o644)
		}
	}
	const hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	return os.WriteFile(hostsPath(dir), []byte(hosts), 0o644)
}

func writeHostname(dir, hostname string) error {
	return os.WriteFile(hostnamePath(dir), []byte(hostname+"\n"), 0o644)
}

// mountShm gives a pod with its own IPC namespace its own /dev/shm, owned
// by the pod's root (host uid/gid; 0 without a user namespace).
func mountShm(dir string, uid, gid int) error {
	p := shmPath(dir)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("create shm dir: %w", err)
	}
	if err := unix.Mount("shm", p, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=65536k,uid=%d,gid=%d", uid, gid)); err != nil {
		return fmt.Errorf("mount shm tmpfs on %s: %w", p, err)
	}
	return nil
}

// unmountShm is idempotent.
func unmountShm(dir string) error {
	p := shmPath(dir)
	for {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if err == unix.EINVAL || err == unix.ENOENT {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", p, err)
		}
	}
}

// validHostname checks a pod hostname before it reaches sethostname.
func validHostname(h string) error {
	if len(h) > 64 || strings.ContainsAny(h, "/ \t\n\x00") {
		return fmt.Errorf("pod hostname %q: %w", h, errdefs.ErrInvalidArgument)
	}
	return nil
}
