package cri

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"}}
	for _, tc := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/ep", "c1", "c2"}},
		{nil, []string{"a"}, []string{"/ep", "a"}},
		{[]string{"/bin/sh"}, nil, []string{"/bin/sh"}},
		{[]string{"/bin/sh"}, []string{"-c", "x"}, []string{"/bin/sh", "-c", "x"}},
	} {
		got, err := processArgs(&runtimeapi.ContainerConfig{Command: tc.command, Args: tc.args}, img)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("command %v args %v: got %v, %v; want %v", tc.command, tc.args, got, err, tc.want)
		}
	}
	if _, err := processArgs(&runtimeapi.ContainerConfig{}, ocispec.ImageConfig{}); err == nil {
		t.Error("no command anywhere must be an error")
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/img", "A=1"}, []*runtimeapi.KeyValue{{Key: "A", Value: []byte("2")}, {Key: "B", Value: []byte("3")}}, "h")
	want := []string{"PATH=/img", "HOSTNAME=h", "A=2", "B=3"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// rootfsWith builds a rootfs with passwd and group files.
func rootfsWith(t *testing.T, passwd, group string) string {
	t.Helper()
	r := t.TempDir()
	if err := os.MkdirAll(filepath.Join(r, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		writeTestFile(t, filepath.Join(r, "etc", "passwd"), passwd)
	}
	if group != "" {
		writeTestFile(t, filepath.Join(r, "etc", "group"), group)
	}
	return r
}

func writeTestFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveUser(t *testing.T) {
	r := rootfsWith(t, "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"root:x:0:\nalice:x:1000:\nwheel:x:10:alice\n")
	u, err := resolveUser(r, nil, "alice")
	if err != nil || u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{10}) {
		t.Fatalf("image user alice: %+v, %v", u, err)
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: 1234},
		RunAsGroup: &runtimeapi.Int64Value{Value: 55}, SupplementalGroups: []int64{7}}
	u, err = resolveUser(r, sc, "alice")
	if err != nil || u.UID != 1234 || u.GID != 55 || !slices.Equal(u.AdditionalGids, []uint32{7}) {
		t.Fatalf("run_as_user 1234 group 55: %+v, %v", u, err)
	}
	if _, err := resolveUser(r, nil, "nobody-here"); err == nil {
		t.Fatal("an unknown user name must be an error")
	}
	if _, err := resolveUser(r, &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 1}}, ""); err == nil {
		t.Fatal("run_as_group without a user must be an error")
	}
}

// A symlinked /etc/passwd pointing out of the rootfs must resolve inside it.
func TestResolveUserSymlinkStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	writeTestFile(t, filepath.Join(outside, "passwd"), "evil:x:4242:4242::/:/bin/sh\n")
	r := rootfsWith(t, "", "")
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(r, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if u, err := resolveUser(r, nil, "evil"); err == nil {
		t.Fatalf("user from outside the rootfs resolved: %+v", u)
	}
}

func TestCapabilities(t *testing.T) {
	sc := &runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{
		AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"CAP_KILL", "chown"}}}
	c, err := capabilities(sc)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Bounding, "CAP_NET_ADMIN") || slices.Contains(c.Bounding, "CAP_KILL") || slices.Contains(c.Bounding, "CAP_CHOWN") {
		t.Fatalf("add NET_ADMIN, drop KILL+CHOWN: %v", c.Bounding)
	}
	c, err = capabilities(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}})
	if err != nil || len(c.Bounding) != 0 {
		t.Fatalf("drop ALL: %v, %v", c.Bounding, err)
	}
	if _, err := capabilities(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NOPE"}}}); err == nil {
		t.Fatal("an unknown capability must be an error")
	}
	// Privileged gets only what hulld holds itself.
	c, _ = capabilities(&runtimeapi.LinuxContainerSecurityContext{Privileged: true})
	bnd := ownBoundingSet()
	for _, name := range c.Bounding {
		if name == "CAP_SYS_RESOURCE" && bnd&(1<<24) == 0 {
			t.Fatal("privileged set holds CAP_SYS_RESOURCE that hulld lacks")
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "quit": syscall.SIGQUIT,
		"9": syscall.SIGKILL, "bogus": syscall.SIGTERM} {
		if got := parseSignal(in); got != want {
			t.Errorf("parseSignal(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLogPath(t *testing.T) {
	sb := &runtimeapi.PodSandboxConfig{LogDirectory: "/var/log/pods/x"}
	if got := logPath(sb, &runtimeapi.ContainerConfig{LogPath: "c/0.log"}); got != "/var/log/pods/x/c/0.log" {
		t.Errorf("got %q", got)
	}
	if got := logPath(sb, &runtimeapi.ContainerConfig{LogPath: "../../../etc/passwd"}); got != "/var/log/pods/x/etc/passwd" {
		t.Errorf("log path escaping the pod log dir: %q", got)
	}
	if got := logPath(&runtimeapi.PodSandboxConfig{}, &runtimeapi.ContainerConfig{LogPath: "c.log"}); got != "" {
		t.Errorf("no log directory: %q", got)
	}
}
