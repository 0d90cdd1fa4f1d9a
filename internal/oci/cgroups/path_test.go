package cgroups

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"hull/internal/errdefs"
)

func TestResolveTarget(t *testing.T) {
	cases := []struct {
		path, id string
		systemd  bool
		want     target
	}{
		{"/kubepods/pod1/c1", "c1", false, target{"/kubepods/pod1/c1", true}},
		{"/a//b/./c/", "x", false, target{"/a/b/c", true}},
		{"rel/c1", "c1", false, target{"rel/c1", false}},
		{"", "c1", false, target{"/hull/c1", true}},
		{"system.slice:docker:abc", "abc", true, target{"/system.slice/docker-abc.scope", true}},
		{"kubepods-besteffort-pod12.slice:cri-containerd:abc", "abc", true,
			target{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope", true}},
		{":hull:abc", "abc", true, target{"/system.slice/hull-abc.scope", true}},
		{"-.slice:p:sub.slice", "x", true, target{"/sub.slice", true}},
		{"machine.slice::abc", "abc", true, target{"/machine.slice/abc.scope", true}},
		{"", "c1", true, target{"/system.slice/hull-c1.scope", true}},
	}
	for _, c := range cases {
		got, err := resolveTarget(c.path, c.id, Options{Systemd: c.systemd})
		if err != nil || got != c.want {
			t.Errorf("resolveTarget(%q, %q, systemd=%v) = %+v, %v; want %+v", c.path, c.id, c.systemd, got, err, c.want)
		}
	}
	bad := []struct {
		path, id string
		systemd  bool
	}{
		{"/a/../../etc", "x", false},
		{"../escape", "x", false},
		{"a/..", "x", false},
		{".", "x", false},
		{"/", "x", false},
		{"//./", "x", false},
		{"", "", false},
		{"", "a/b", false},
		{"", "..", false},
		{"/a\x00b", "x", false},
		{"a:b", "x", true},
		{"a:b:c:d", "x", true},
		{"notaslice:p:n", "x", true},
		{"a--b.slice:p:n", "x", true},
		{"a/b.slice:p:n", "x", true},
		{"system.slice:p:../x", "x", true},
		{"system.slice:p/q:n", "x", true},
		{"system.slice:p:", "x", true},
	}
	for _, c := range bad {
		_, err := resolveTarget(c.path, c.id, Options{Systemd: c.systemd})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("resolveTarget(%q, %q, systemd=%v) err = %v, want ErrInvalidArgument", c.path, c.id, c.systemd, err)
		}
	}
}

const hybridMountinfo = `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
37 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
38 31 0:33 /docker/abc /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
90 25 0:33 / /tmp/other\040pids rw - cgroup cgroup rw,pids
`

func TestParseMountinfo(t *testing.T) {
	s, err := parseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if s.layout != Hybrid || s.v2 == nil || s.v2.mountpoint != "/sys/fs/cgroup/unified" {
		t.Fatalf("layout %v v2 %+v", s.layout, s.v2)
	}
	if s.v1["cpu"].mountpoint != "/sys/fs/cgroup/cpu,cpuacct" || s.v1["cpuacct"].mountpoint != "/sys/fs/cgroup/cpu,cpuacct" {
		t.Errorf("co-mounted cpu,cpuacct: %+v %+v", s.v1["cpu"], s.v1["cpuacct"])
	}
	if _, ok := s.v1["name=systemd"]; !ok {
		t.Error("named hierarchy missing")
	}
	if h := s.v1["pids"]; h.mountpoint != "/sys/fs/cgroup/pids" || h.root != "/docker/abc" {
		t.Errorf("pids %+v: the /sys/fs/cgroup mount must win over a later bind", h)
	}
	// A process in /docker/abc/x of a hierarchy mounted at /docker/abc.
	if got := s.v1["pids"].dirFor("/docker/abc/x"); got != "/sys/fs/cgroup/pids/x" {
		t.Errorf("dirFor = %s", got)
	}
	s2, err := parseMountinfo(strings.NewReader("30 1 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"))
	if err != nil || s2.layout != Unified {
		t.Errorf("unified: %v %v", s2, err)
	}
	s3, err := parseMountinfo(strings.NewReader("37 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"))
	if err != nil || s3.layout != Legacy {
		t.Errorf("legacy: %v %v", s3, err)
	}
	if _, err := parseMountinfo(strings.NewReader("25 30 0:23 / /sys rw - sysfs sysfs rw\n")); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("no cgroups: %v", err)
	}
	if got := unescapeMount(`/tmp/other\040pids`); got != "/tmp/other pids" {
		t.Errorf("unescape = %q", got)
	}
}

func TestParseProcCgroup(t *testing.T) {
	m, err := parseProcCgroup(strings.NewReader("9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a\n0::/u\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name=systemd": "/", "memory": "/process_api/x", "cpu": "/a", "cpuacct": "/a", "": "/u"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%q = %q, want %q", k, m[k], v)
		}
	}
}

// A relative cgroupsPath lands below the runtime's own cgroup in each
// hierarchy (on this project's hosts the memory one is not the root).
func TestNewRelativeIsBelowOwnCgroup(t *testing.T) {
	s := requireHost(t, Legacy, Hybrid, Unified)
	m, err := New("rel/c1", "c1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.layout == Unified {
		if got, want := m.Path(""), filepath.Join(s.v2.dirFor(s.self[""]), "rel/c1"); got != want {
			t.Errorf("Path = %s, want %s", got, want)
		}
		return
	}
	for c, h := range s.v1 {
		want := filepath.Join(h.dirFor(s.self[c]), "rel/c1")
		if got := m.Path(c); got != want {
			t.Errorf("Path(%s) = %s, want %s", c, got, want)
		}
	}
	abs, err := New("/abs/c1", "c1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := abs.Path("memory"); got != filepath.Join(s.v1["memory"].mountpoint, "abs/c1") {
		t.Errorf("absolute Path(memory) = %s", got)
	}
	if _, err := New("../x", "c1", Options{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("New(../x) = %v", err)
	}
	if Mode() != s.layout {
		t.Errorf("Mode() = %v, want %v", Mode(), s.layout)
	}
}

func TestLoadValidates(t *testing.T) {
	s := requireHost(t, Legacy, Hybrid, Unified)
	bad := []map[string]string{
		nil,
		{"memory": "relative/dir"},
		{"memory": "/sys/fs/cgroup/memory/../../etc"},
		{"memory": "/etc/passwd"},
		{"memory": "/sys/fs/cgroup/memory"},
	}
	if s.layout == Unified {
		bad = append(bad, map[string]string{"": "/tmp/x"})
	}
	for _, p := range bad {
		if _, err := Load(p); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Load(%v) = %v, want ErrInvalidArgument", p, err)
		}
	}
}
