package main

import (
	"fmt"
	"strconv"
	"strings"
)

// flagDef is one flag; runc's style: --name, -name, --name=value, -n value.
type flagDef struct {
	name    string
	short   string
	isBool  bool
	isMulti bool // may repeat (--env, --cap)
}

type flags struct {
	bools  map[string]bool
	values map[string]string
	multi  map[string][]string
	args   []string
}

var globalFlags = []flagDef{
	{name: "root"}, {name: "log"}, {name: "log-format"}, {name: "criu"}, {name: "rootless"},
	{name: "debug", isBool: true}, {name: "systemd-cgroup", isBool: true},
	{name: "version", short: "v", isBool: true}, {name: "help", short: "h", isBool: true},
}

// parseFlags reads flags up to the first positional argument (urfave/cli
// v1 behaviour, which runc has); everything from there on is positional,
// so that exec's command line is left untouched.
func parseFlags(defs []flagDef, args []string) (*flags, []string, error) {
	f := &flags{bools: map[string]bool{}, values: map[string]string{}, multi: map[string][]string{}}
	defs = append(defs, flagDef{name: "help", short: "h", isBool: true})
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, args[i:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		var d *flagDef
		for j := range defs {
			if defs[j].name == name || (defs[j].short != "" && defs[j].short == name) {
				d = &defs[j]
				break
			}
		}
		if d == nil {
			return nil, nil, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if d.isBool {
			b := true
			if hasVal {
				var err error
				if b, err = strconv.ParseBool(val); err != nil {
					return nil, nil, fmt.Errorf("flag %s: %q is not a boolean", a, val)
				}
			}
			f.bools[d.name] = b
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			val = args[i]
		}
		if d.isMulti {
			f.multi[d.name] = append(f.multi[d.name], val)
		}
		f.values[d.name] = val
	}
	return f, pos, nil
}

func (f *flags) int(name string) (int, error) {
	v, ok := f.values[name]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("--%s %q is not a number", name, v)
	}
	return n, nil
}

// id returns the single container id argument.
func (f *flags) id(cmd string) (string, error) {
	if len(f.args) < 1 {
		return "", fmt.Errorf("%s: missing container id", cmd)
	}
	return f.args[0], nil
}
