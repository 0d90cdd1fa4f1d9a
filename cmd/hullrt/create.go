package main

import (
	"context"

	"hull/internal/oci"
)

var createFlags = []flagDef{
	{name: "bundle", short: "b"}, {name: "console-socket"}, {name: "pid-file"}, {name: "preserve-fds"},
	{name: "no-pivot", isBool: true}, {name: "no-new-keyring", isBool: true},
}

func init() {
	register(&command{name: "create", usage: "[--bundle DIR] [--console-socket SOCK] [--pid-file F] [--preserve-fds N] [--no-pivot] [--no-new-keyring] ID",
		flags: createFlags, run: runCreate})
}

func createOptions(f *flags) (oci.CreateOptions, error) {
	n, err := f.int("preserve-fds")
	if err != nil {
		return oci.CreateOptions{}, err
	}
	return oci.CreateOptions{
		Bundle: f.values["bundle"], ConsoleSocket: f.values["console-socket"], PidFile: f.values["pid-file"],
		PreserveFDs: n, NoPivot: f.bools["no-pivot"], NoNewKeyring: f.bools["no-new-keyring"],
	}, nil
}

func runCreate(g *globals, f *flags) error {
	id, err := f.id("create")
	if err != nil {
		return err
	}
	o, err := createOptions(f)
	if err != nil {
		return err
	}
	r, err := newRuntime(g)
	if err != nil {
		return err
	}
	return r.Create(context.Background(), id, o)
}
