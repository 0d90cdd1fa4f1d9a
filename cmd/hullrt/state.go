package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	register(&command{name: "state", usage: "ID  (prints the state JSON)", run: func(g *globals, f *flags) error {
		id, err := f.id("state")
		if err != nil {
			return err
		}
		r, err := newRuntime(g)
		if err != nil {
			return err
		}
		st, err := r.State(id)
		if err != nil {
			return err
		}
		return printJSON(st, true)
	}})
	register(&command{name: "kill", usage: "[--all] ID [SIGNAL]  (name or number, default TERM)",
		flags: []flagDef{{name: "all", short: "a", isBool: true}}, run: func(g *globals, f *flags) error {
			id, err := f.id("kill")
			if err != nil {
				return err
			}
			sig := syscall.SIGTERM
			if len(f.args) > 1 {
				if sig, err = parseSignal(f.args[1]); err != nil {
					return err
				}
			}
			r, err := newRuntime(g)
			if err != nil {
				return err
			}
			return r.Kill(id, sig, f.bools["all"])
		}})
	register(&command{name: "delete", usage: "[--force] ID", flags: []flagDef{{name: "force", short: "f", isBool: true}},
		run: func(g *globals, f *flags) error {
			id, err := f.id("delete")
			if err != nil {
				return err
			}
			r, err := newRuntime(g)
			if err != nil {
				return err
			}
			return r.Delete(context.Background(), id, f.bools["force"])
		}})
	register(&command{name: "list", usage: "[--format table|json] [-q]",
		flags: []flagDef{{name: "format", short: "f"}, {name: "quiet", short: "q", isBool: true}}, run: runList})
}

func runList(g *globals, f *flags) error {
	r, err := newRuntime(g)
	if err != nil {
		return err
	}
	list, err := r.List()
	if err != nil {
		return err
	}
	if f.bools["quiet"] {
		for _, s := range list {
			fmt.Println(s.ID)
		}
		return nil
	}
	switch f.values["format"] {
	case "json":
		if list == nil {
			fmt.Println("null")
			return nil
		}
		return printJSON(list, false)
	case "", "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range list {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), "root")
		}
		return w.Flush()
	default:
		return fmt.Errorf("list: unknown --format %q (table or json)", f.values["format"])
	}
}

func printJSON(v any, indent bool) error {
	enc := json.NewEncoder(os.Stdout)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// parseSignal accepts KILL, SIGKILL, kill and 9.
func parseSignal(s string) (syscall.Signal, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d is out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
