// Command hullrt is hull's OCI runtime with runc's command line, so that
// containerd, podman or any CRI daemon can use it as their runc binary.
//
//	hullrt [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND [FLAGS] ARGS
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"hull/internal/oci"
)

const version = "0.1.0"

// globals are runc's global flags.
type globals struct {
	root      string
	log       string
	logFormat string
	debug     bool
	systemd   bool
}

type command struct {
	name  string
	usage string
	flags []flagDef
	run   func(g *globals, f *flags) error
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func main() {
	// A re-executed container init or exec helper never returns from here.
	oci.MaybeInit()
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	g := &globals{root: oci.DefaultRoot, logFormat: "text"}
	gf, rest, err := parseFlags(globalFlags, args)
	if err != nil {
		return fail(g, err)
	}
	if v, ok := gf.values["root"]; ok {
		g.root = v
	}
	g.log = gf.values["log"]
	if v, ok := gf.values["log-format"]; ok {
		g.logFormat = v
	}
	g.debug = gf.bools["debug"]
	g.systemd = gf.bools["systemd-cgroup"]
	oci.Logf = func(format string, a ...any) { logLine(g, "warning", fmt.Sprintf(format, a...)) }
	if gf.bools["version"] {
		fmt.Printf("hullrt version %s\nspec: %s\n", version, specVersion())
		return 0
	}
	if len(rest) == 0 || gf.bools["help"] {
		usage()
		return 0
	}
	name := rest[0]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		f, pos, err := parseFlags(c.flags, rest[1:])
		if err != nil {
			return fail(g, fmt.Errorf("%s: %w", name, err))
		}
		if f.bools["help"] {
			fmt.Printf("usage: hullrt %s %s\n", c.name, c.usage)
			return 0
		}
		f.args = pos
		if err := c.run(g, f); err != nil {
			if e, ok := err.(exitError); ok {
				return int(e)
			}
			return fail(g, err)
		}
		return 0
	}
	return fail(g, fmt.Errorf("unknown command %q (try hullrt --help)", name))
}

// exitError is a command's exit status that is not a failure of hullrt
// itself (run and exec return the container process's status).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func fail(g *globals, err error) int {
	msg := err.Error()
	fmt.Fprintln(os.Stderr, "hullrt: "+msg)
	logLine(g, "error", msg)
	return 1
}

// logLine appends to --log; with --log-format json each line is a JSON
// object, which containerd's shim reads back when a command fails.
func logLine(g *globals, level, msg string) {
	if g.log == "" {
		if level != "error" {
			fmt.Fprintln(os.Stderr, "hullrt: "+level+": "+msg)
		}
		return
	}
	f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if g.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		f.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(f, "time=%q level=%s msg=%q\n", now, level, msg)
}

func usage() {
	var b strings.Builder
	b.WriteString("hullrt: hull's OCI runtime (runc-compatible)\n\nusage: hullrt [global flags] COMMAND [flags] ARGS\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.usage)
	}
	b.WriteString("\nglobal flags: --root DIR (default /run/hullrt), --log FILE, --log-format text|json, --debug, --systemd-cgroup\n")
	fmt.Print(b.String())
}

func newRuntime(g *globals) (*oci.Runtime, error) {
	return oci.New(oci.Options{Root: g.root, SystemdCgroup: g.systemd})
}

type runtimeT = *oci.Runtime
