package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci"
)

func init() {
	register(&command{name: "exec", usage: "[--process FILE | flags] ID [COMMAND ARGS...]",
		flags: []flagDef{
			{name: "process", short: "p"}, {name: "tty", short: "t", isBool: true}, {name: "console-socket"},
			{name: "detach", short: "d", isBool: true}, {name: "pid-file"}, {name: "env", short: "e", isMulti: true},
			{name: "cwd"}, {name: "user", short: "u"}, {name: "cap", short: "c", isMulti: true}, {name: "preserve-fds"},
			{name: "additional-gids", short: "g", isMulti: true}, {name: "no-new-privs", isBool: true},
			{name: "apparmor"}, {name: "process-label"}, {name: "ignore-paused", isBool: true}, {name: "cgroup"},
		}, run: runExec})
}

func runExec(g *globals, f *flags) error {
	id, err := f.id("exec")
	if err != nil {
		return err
	}
	r, err := newRuntime(g)
	if err != nil {
		return err
	}
	p, err := execProcess(r, id, f)
	if err != nil {
		return err
	}
	n, err := f.int("preserve-fds")
	if err != nil {
		return err
	}
	o := oci.ExecOptions{ConsoleSocket: f.values["console-socket"], PidFile: f.values["pid-file"], Detach: f.bools["detach"], PreserveFDs: n}
	sigs := make(chan os.Signal, 16)
	if !o.Detach {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	}
	proc, err := r.Exec(context.Background(), id, p, o)
	if err != nil {
		return err
	}
	if o.Detach {
		proc.Release()
		return nil
	}
	go func() {
		for s := range sigs {
			proc.Signal(s)
		}
	}()
	ps, err := proc.Wait()
	if err != nil {
		return fmt.Errorf("wait for exec process: %w", err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitError(128 + int(ws.Signal()))
	}
	if c := ps.ExitCode(); c != 0 {
		return exitError(c)
	}
	return nil
}

// execProcess builds the process from --process, or from the container's
// own process with the command line and flags applied (as runc does).
func execProcess(r *oci.Runtime, id string, f *flags) (*specs.Process, error) {
	if pf := f.values["process"]; pf != "" {
		b, err := os.ReadFile(pf)
		if err != nil {
			return nil, fmt.Errorf("exec: read --process: %w", err)
		}
		p, err := oci.DecodeProcess(b)
		if err != nil {
			return nil, fmt.Errorf("exec: --process %s is malformed: %w", pf, err)
		}
		return p, nil
	}
	base, err := r.ProcessConfig(id)
	if err != nil {
		return nil, err
	}
	if len(f.args) < 2 {
		return nil, fmt.Errorf("exec: missing command (hullrt exec ID COMMAND [ARGS...])")
	}
	p := specs.Process{Cwd: "/", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	if base != nil {
		p = *base
	}
	p.Args = f.args[1:]
	p.Terminal = f.bools["tty"]
	p.ConsoleSize = nil
	p.Env = append(append([]string{}, p.Env...), f.multi["env"]...)
	if v := f.values["cwd"]; v != "" {
		p.Cwd = v
	}
	if v := f.values["user"]; v != "" {
		uid, gid, err := parseUser(v)
		if err != nil {
			return nil, err
		}
		p.User.UID, p.User.GID = uid, gid
	}
	for _, g := range f.multi["additional-gids"] {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec: --additional-gids %q is not a number", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
	}
	if caps := f.multi["cap"]; len(caps) > 0 {
		c := specs.LinuxCapabilities{}
		if p.Capabilities != nil {
			c = *p.Capabilities
		}
		for _, name := range caps {
			name = strings.ToUpper(name)
			if !strings.HasPrefix(name, "CAP_") {
				name = "CAP_" + name
			}
			c.Bounding = append(c.Bounding, name)
			c.Effective = append(c.Effective, name)
			c.Permitted = append(c.Permitted, name)
			c.Inheritable = append(c.Inheritable, name)
			c.Ambient = append(c.Ambient, name)
		}
		p.Capabilities = &c
	}
	if f.bools["no-new-privs"] {
		p.NoNewPrivileges = true
	}
	return &p, nil
}

// parseUser reads "uid[:gid]" (numeric, as runc requires without a passwd lookup).
func parseUser(s string) (uint32, uint32, error) {
	us, gs, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("exec: --user %q: uid must be numeric", s)
	}
	gid := uint64(0)
	if gs != "" {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("exec: --user %q: gid must be numeric", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}
