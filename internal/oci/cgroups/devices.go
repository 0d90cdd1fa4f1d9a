package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// devRule is one normalised device cgroup rule.
type devRule struct {
	typ    byte  // 'a' (all), 'b' or 'c'
	major  int64 // -1 = any
	minor  int64 // -1 = any
	access accessSet
	allow  bool
}

// accessSet is a subset of "rwm" as bits: the same values the kernel's
// BPF_DEVCG_ACC_MKNOD/READ/WRITE use.
type accessSet uint8

const (
	accMknod accessSet = 1
	accRead  accessSet = 2
	accWrite accessSet = 4
	accAll             = accMknod | accRead | accWrite
)

func (a accessSet) String() string {
	var b strings.Builder
	if a&accRead != 0 {
		b.WriteByte('r')
	}
	if a&accWrite != 0 {
		b.WriteByte('w')
	}
	if a&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

func parseAccess(s string) (accessSet, error) {
	if s == "" {
		return accAll, nil
	}
	var a accessSet
	for _, c := range s {
		switch c {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		default:
			return 0, fmt.Errorf("cgroups: device access %q: %q is not one of r, w, m: %w", s, c, errdefs.ErrInvalidArgument)
		}
	}
	return a, nil
}

func num(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func toDevRule(d specs.LinuxDeviceCgroup) (devRule, error) {
	r := devRule{major: num(d.Major), minor: num(d.Minor), allow: d.Allow}
	switch d.Type {
	case "", "a":
		r.typ = 'a'
	case "b", "c":
		r.typ = d.Type[0]
	default:
		return r, fmt.Errorf("cgroups: device rule type %q is not a, b or c: %w", d.Type, errdefs.ErrInvalidArgument)
	}
	if r.major < -1 || r.minor < -1 || r.major > 0xffffffff || r.minor > 0xffffffff {
		return r, fmt.Errorf("cgroups: device rule %d:%d out of range: %w", r.major, r.minor, errdefs.ErrInvalidArgument)
	}
	var err error
	r.access, err = parseAccess(d.Access)
	return r, err
}

// v1String is the rule in devices.allow/deny syntax: "c 1:3 rwm".
func (r devRule) v1String() string {
	if r.typ == 'a' {
		return "a"
	}
	n := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, n(r.major), n(r.minor), r.access)
}

// devPolicy is what an ordered rule list boils down to, the way the v1
// kernel (and runc's emulator) evaluates it: a default verdict and
// exceptions that all carry the opposite verdict.
type devPolicy struct {
	defaultAllow bool
	exceptions   []devRule
}

// compileDevices folds ordered spec rules into a devPolicy, starting (as
// runc does) from "deny everything": a rule for all devices ("a") resets
// the policy; a rule agreeing with the default removes the matching access
// from an identical exception; any other rule adds (or widens) an
// exception. Set never calls it for an empty list: no rules means "leave
// the device policy alone" (runc update without devices).
func compileDevices(rules []specs.LinuxDeviceCgroup) (devPolicy, error) {
	p := devPolicy{defaultAllow: false}
	for _, d := range rules {
		r, err := toDevRule(d)
		if err != nil {
			return p, err
		}
		if r.typ == 'a' {
			p = devPolicy{defaultAllow: r.allow}
			continue
		}
		idx := -1
		for i, e := range p.exceptions {
			if e.typ == r.typ && e.major == r.major && e.minor == r.minor {
				idx = i
			}
		}
		if r.allow == p.defaultAllow {
			if idx >= 0 {
				p.exceptions[idx].access &^= r.access
				if p.exceptions[idx].access == 0 {
					p.exceptions = append(p.exceptions[:idx], p.exceptions[idx+1:]...)
				}
			}
			continue
		}
		if idx >= 0 {
			p.exceptions[idx].access |= r.access
			continue
		}
		p.exceptions = append(p.exceptions, r)
	}
	return p, nil
}

// setDevicesV1 programs the spec's device rules followed by
// DefaultAllowedDevices, as runc does.
func setDevicesV1(dir string, r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	return writeDevicesV1(dir, withDefaultDevices(r.Devices))
}

// writeDevicesV1 programs exactly rules into devices.allow/devices.deny.
// When the cgroup is already default-deny (devices.list shows no
// "a *:* rwm"), only the differences are written, so a running container
// never passes through a moment where /dev/null is denied.
func writeDevicesV1(dir string, rules []specs.LinuxDeviceCgroup) error {
	p, err := compileDevices(rules)
	if err != nil {
		return err
	}
	list, err := readFile(dir, "devices.list")
	if err != nil {
		return err
	}
	curAllowAll := strings.TrimSpace(list) == "a *:* rwm"
	want := map[string]bool{}
	for _, e := range p.exceptions {
		want[e.v1String()] = true
	}
	if p.defaultAllow {
		// devices.list hides deny exceptions of a default-allow cgroup,
		// so always reset: briefly allowing more is harmless.
		if err := writeFile(dir, "devices.allow", "a"); err != nil {
			return fmt.Errorf("%w (a parent cgroup must allow all devices)", err)
		}
		for _, e := range p.exceptions {
			if err := writeFile(dir, "devices.deny", e.v1String()); err != nil {
				return err
			}
		}
		return nil
	}
	if curAllowAll {
		if err := writeFile(dir, "devices.deny", "a"); err != nil {
			return err
		}
	} else {
		for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
			if line = strings.TrimSpace(line); line != "" && !want[line] {
				if err := writeFile(dir, "devices.deny", line); err != nil {
					return err
				}
			}
		}
	}
	for _, e := range p.exceptions {
		if err := writeFile(dir, "devices.allow", e.v1String()); err != nil {
			return err
		}
	}
	return nil
}

// DefaultAllowedDevices is the device allow-list that Set appends to every
// non-empty rule list, as runc does (so a spec cannot lock out /dev/null):
// mknod of any
// device, the standard character devices, /dev/pts/*, /dev/ptmx and
// /dev/net/tun.
func DefaultAllowedDevices() []specs.LinuxDeviceCgroup {
	dev := func(t string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: true, Type: t, Access: access}
		if major >= 0 {
			d.Major = &major
		}
		if minor >= 0 {
			d.Minor = &minor
		}
		return d
	}
	return []specs.LinuxDeviceCgroup{
		dev("c", -1, -1, "m"),
		dev("b", -1, -1, "m"),
		dev("c", 1, 3, "rwm"),    // /dev/null
		dev("c", 1, 5, "rwm"),    // /dev/zero
		dev("c", 1, 7, "rwm"),    // /dev/full
		dev("c", 5, 0, "rwm"),    // /dev/tty
		dev("c", 1, 8, "rwm"),    // /dev/random
		dev("c", 1, 9, "rwm"),    // /dev/urandom
		dev("c", 136, -1, "rwm"), // /dev/pts/*
		dev("c", 5, 2, "rwm"),    // /dev/ptmx
		dev("c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// withDefaultDevices is rules followed by DefaultAllowedDevices. Set
// always programs this (runc's specconv does the same), so the spec's
// usual leading deny-all never locks a container out of /dev/null.
func withDefaultDevices(rules []specs.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	out := make([]specs.LinuxDeviceCgroup, 0, len(rules)+11)
	out = append(out, rules...)
	return append(out, DefaultAllowedDevices()...)
}
