package cgroups

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		d.Major = &major
	}
	if minor >= 0 {
		d.Minor = &minor
	}
	return d
}

func policyStrings(p devPolicy) []string {
	var out []string
	for _, e := range p.exceptions {
		out = append(out, e.v1String())
	}
	return out
}

func TestCompileDevices(t *testing.T) {
	cases := []struct {
		name         string
		rules        []specs.LinuxDeviceCgroup
		defaultAllow bool
		exceptions   []string
	}{
		{"none", nil, false, nil},
		{"allows alone start from deny", []specs.LinuxDeviceCgroup{dev(true, "c", 1, 3, "rwm")}, false, []string{"c 1:3 rwm"}},
		{"deny all then allow", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 3, "rwm"), dev(true, "c", 136, -1, "rw")},
			false, []string{"c 1:3 rwm", "c 136:* rw"}},
		{"later reset wins", []specs.LinuxDeviceCgroup{dev(false, "", -1, -1, "rwm"), dev(true, "c", 1, 3, "rwm"), dev(true, "a", -1, -1, "rwm")},
			true, nil},
		{"deny removes access from an allow", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 5, "rwm"), dev(false, "c", 1, 5, "w"), dev(true, "c", 1, 3, "r"), dev(false, "c", 1, 3, "r")},
			false, []string{"c 1:5 rm"}},
		{"allow widens", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm"), dev(true, "b", 8, 0, "r"), dev(true, "b", 8, 0, "w")},
			false, []string{"b 8:0 rw"}},
		{"default allow with denies", []specs.LinuxDeviceCgroup{dev(true, "a", -1, -1, "rwm"), dev(false, "c", 10, 200, "rwm")}, true, []string{"c 10:200 rwm"}},
	}
	for _, c := range cases {
		p, err := compileDevices(c.rules)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.defaultAllow != c.defaultAllow || !slices.Equal(policyStrings(p), c.exceptions) {
			t.Errorf("%s: got allow=%v %v, want allow=%v %v", c.name, p.defaultAllow, policyStrings(p), c.defaultAllow, c.exceptions)
		}
	}
}

// deviceProbe runs each line it reads as a shell command and answers "ok"
// or "denied": a real open(2) of a device node checked by the kernel.
const deviceProbe = `while read cmd; do if eval "$cmd" >/dev/null 2>&1; then echo ok; else echo denied; fi; done`

const (
	readZero  = "head -c1 /dev/zero"
	writeZero = "echo hi >/dev/zero"
)

// defaults is what a runtime programs for a spec with the usual deny-all.
func defaults() []specs.LinuxDeviceCgroup {
	return withDefaultDevices([]specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm")})
}

func withoutZero() []specs.LinuxDeviceCgroup {
	return append(defaults(), dev(false, "c", 1, 5, "rwm"))
}

func TestV1DevicesEnforced(t *testing.T) {
	requireHost(t, Legacy, Hybrid)
	m := newTestManager(t)
	p := startProc(t, deviceProbe)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// Set appends runc's allow-list to the spec's usual deny-all.
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm")}}); err != nil {
		t.Fatalf("Set devices: %v", err)
	}
	// The rest programs exact rule lists.
	set := func(rules []specs.LinuxDeviceCgroup) {
		t.Helper()
		if err := writeDevicesV1(m.Path("devices"), rules); err != nil {
			t.Fatalf("write devices: %v", err)
		}
	}
	list := readTrim(t, m.Path("devices"), "devices.list")
	for _, want := range []string{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm"} {
		if !slices.Contains(strings.Split(list, "\n"), want) {
			t.Errorf("devices.list lacks %q:\n%s", want, list)
		}
	}
	if got := p.send(t, readZero); got != "ok" {
		t.Errorf("read /dev/zero with default rules: %s", got)
	}
	// Update in place (differential: the cgroup is already default-deny).
	set(withoutZero())
	if got := p.send(t, readZero); got != "denied" {
		t.Errorf("read /dev/zero after denying it: %s", got)
	}
	if strings.Contains(readTrim(t, m.Path("devices"), "devices.list"), "c 1:5") {
		t.Error("c 1:5 still listed")
	}
	set(append([]specs.LinuxDeviceCgroup(nil), dev(true, "a", -1, -1, "rwm"), dev(false, "c", 1, 5, "w")))
	if got := p.send(t, readZero); got != "ok" {
		t.Errorf("read /dev/zero with only write denied: %s", got)
	}
	if got := p.send(t, writeZero); got != "denied" {
		t.Errorf("write /dev/zero with write denied: %s", got)
	}
}

func TestV2DevicesEBPFEnforced(t *testing.T) {
	m := newRealV2(t)
	p := startProc(t, deviceProbe)
	if err := m.Apply(p.pid()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// Set appends runc's allow-list: a bare deny-all still allows /dev/zero.
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm")}}); err != nil {
		t.Fatalf("Set devices: %v", err)
	}
	if got := p.send(t, readZero); got != "ok" {
		t.Errorf("deny-all plus defaults: read /dev/zero answered %s", got)
	}
	set := func(rules []specs.LinuxDeviceCgroup) {
		t.Helper()
		if err := m.writeDevices(rules); err != nil {
			t.Fatalf("write devices: %v", err)
		}
	}
	steps := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		cmd   string
		want  string
	}{
		{"default list allows /dev/zero", defaults(), readZero, "ok"},
		{"default list without /dev/zero", withoutZero(), readZero, "denied"},
		{"  ...and /dev/null still works", withoutZero(), "echo hi >/dev/null", "ok"},
		{"allow all, deny zero write: read", []specs.LinuxDeviceCgroup{dev(true, "a", -1, -1, "rwm"), dev(false, "c", 1, 5, "w")}, readZero, "ok"},
		{"allow all, deny zero write: write", []specs.LinuxDeviceCgroup{dev(true, "a", -1, -1, "rwm"), dev(false, "c", 1, 5, "w")}, writeZero, "denied"},
		{"deny all but zero read-only: read", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 3, "rw"), dev(true, "c", 1, 5, "r")}, readZero, "ok"},
		{"deny all but zero read-only: write", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 3, "rw"), dev(true, "c", 1, 5, "r")}, writeZero, "denied"},
		{"block rule does not match a char device", []specs.LinuxDeviceCgroup{dev(false, "a", -1, -1, "rwm"), dev(true, "c", 1, 3, "rw"), dev(true, "b", 1, 5, "rwm")}, readZero, "denied"},
		{"allow all again", []specs.LinuxDeviceCgroup{dev(true, "a", -1, -1, "rwm")}, writeZero, "ok"},
	}
	for _, s := range steps {
		set(s.rules)
		if got := p.send(t, s.cmd); got != s.want {
			t.Errorf("%s: %q answered %s, want %s", s.name, s.cmd, got, s.want)
		}
	}
	// Each Set replaced the program: exactly one stays attached.
	cg, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cg)
	fds, err := attachedDevicePrograms(cg)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	if len(fds) != 1 {
		t.Errorf("%d device programs attached, want 1", len(fds))
	}
}
