package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci"
)

func specVersion() string { return specs.Version }

func init() {
	register(&command{name: "spec", usage: "[--bundle DIR] [--rootless]  (writes a default config.json)",
		flags: []flagDef{{name: "bundle", short: "b"}, {name: "rootless", isBool: true}}, run: runSpec})
}

func runSpec(g *globals, f *flags) error {
	dir := f.values["bundle"]
	if dir == "" {
		dir = "."
	}
	p := filepath.Join(dir, "config.json")
	if _, err := os.Stat(p); err == nil {
		return fmt.Errorf("spec: %s already exists; remove it first", p)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spec: %w", err)
	}
	b, err := json.MarshalIndent(oci.DefaultSpec(), "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o666)
}
