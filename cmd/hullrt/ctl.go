package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/oci"
)

func init() {
	register(&command{name: "pause", usage: "ID", run: func(g *globals, f *flags) error {
		return withID(g, f, "pause", func(r runtimeT, id string) error { return r.Pause(id) })
	}})
	register(&command{name: "resume", usage: "ID", run: func(g *globals, f *flags) error {
		return withID(g, f, "resume", func(r runtimeT, id string) error { return r.Resume(id) })
	}})
	register(&command{name: "ps", usage: "[--format table|json] ID", flags: []flagDef{{name: "format", short: "f"}},
		run: func(g *globals, f *flags) error {
			return withID(g, f, "ps", func(r runtimeT, id string) error {
				pids, err := r.Processes(id)
				if err != nil {
					return err
				}
				if f.values["format"] == "json" {
					if pids == nil {
						pids = []int{}
					}
					return printJSON(pids, false)
				}
				fmt.Println("PID")
				for _, p := range pids {
					fmt.Println(p)
				}
				return nil
			})
		}})
	register(&command{name: "events", usage: "[--stats] [--interval DURATION] ID  (--stats: one JSON stats event; else a stream of stats and oom events)",
		flags: []flagDef{{name: "stats", isBool: true}, {name: "interval"}}, run: func(g *globals, f *flags) error {
			return withID(g, f, "events", func(r runtimeT, id string) error {
				if f.bools["stats"] {
					st, err := r.Stats(id)
					if err != nil {
						return err
					}
					return printJSON(oci.Event{Type: "stats", ID: id, Data: st}, false)
				}
				interval := 5 * time.Second
				if v := f.values["interval"]; v != "" {
					d, err := time.ParseDuration(v)
					if err != nil || d <= 0 {
						return fmt.Errorf("events: --interval %q is not a positive duration (like 5s)", v)
					}
					interval = d
				}
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				enc := json.NewEncoder(os.Stdout)
				return r.Events(ctx, id, interval, func(e oci.Event) error { return enc.Encode(e) })
			})
		}})
	register(&command{name: "update", usage: "[--resources FILE|-] [--memory N] [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus S] [--cpuset-mems S] [--pids-limit N] ID",
		flags: []flagDef{{name: "resources", short: "r"}, {name: "memory", short: "m"}, {name: "memory-swap"}, {name: "memory-reservation"},
			{name: "kernel-memory"}, {name: "kernel-memory-tcp"}, {name: "cpu-shares"}, {name: "cpu-quota"}, {name: "cpu-period"},
			{name: "cpu-rt-period"}, {name: "cpu-rt-runtime"}, {name: "cpuset-cpus"}, {name: "cpuset-mems"}, {name: "pids-limit"},
			{name: "blkio-weight"}, {name: "l3-cache-schema"}, {name: "mem-bw-schema"}},
		run: func(g *globals, f *flags) error {
			return withID(g, f, "update", func(r runtimeT, id string) error {
				res, err := updateResources(f)
				if err != nil {
					return err
				}
				return r.Update(id, res)
			})
		}})
}

func withID(g *globals, f *flags, cmd string, fn func(r runtimeT, id string) error) error {
	id, err := f.id(cmd)
	if err != nil {
		return err
	}
	r, err := newRuntime(g)
	if err != nil {
		return err
	}
	return fn(r, id)
}

func updateResources(f *flags) (*specs.LinuxResources, error) {
	res := &specs.LinuxResources{}
	if src := f.values["resources"]; src != "" {
		var rd io.Reader = os.Stdin
		if src != "-" {
			fh, err := os.Open(src)
			if err != nil {
				return nil, fmt.Errorf("update: %w", err)
			}
			defer fh.Close()
			rd = fh
		}
		if err := json.NewDecoder(rd).Decode(res); err != nil {
			return nil, fmt.Errorf("update: resources JSON is malformed: %w", err)
		}
	}
	i64 := func(name string) (*int64, error) {
		v, ok := f.values[name]
		if !ok {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("update: --%s %q is not a number", name, v)
		}
		return &n, nil
	}
	u64 := func(name string) (*uint64, error) {
		n, err := i64(name)
		if n == nil || err != nil {
			return nil, err
		}
		u := uint64(*n)
		return &u, nil
	}
	var err error
	mem := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	for _, x := range []struct {
		name string
		set  func() error
	}{
		{"memory", func() error {
			v, e := i64("memory")
			err = e
			if v != nil {
				mem().Limit = v
			}
			return e
		}},
		{"memory-swap", func() error {
			v, e := i64("memory-swap")
			if v != nil {
				mem().Swap = v
			}
			return e
		}},
		{"memory-reservation", func() error {
			v, e := i64("memory-reservation")
			if v != nil {
				mem().Reservation = v
			}
			return e
		}},
		{"cpu-shares", func() error {
			v, e := u64("cpu-shares")
			if v != nil {
				cpu().Shares = v
			}
			return e
		}},
		{"cpu-quota", func() error {
			v, e := i64("cpu-quota")
			if v != nil {
				cpu().Quota = v
			}
			return e
		}},
		{"cpu-period", func() error {
			v, e := u64("cpu-period")
			if v != nil {
				cpu().Period = v
			}
			return e
		}},
		{"cpu-rt-period", func() error {
			v, e := u64("cpu-rt-period")
			if v != nil {
				cpu().RealtimePeriod = v
			}
			return e
		}},
		{"cpu-rt-runtime", func() error {
			v, e := i64("cpu-rt-runtime")
			if v != nil {
				cpu().RealtimeRuntime = v
			}
			return e
		}},
		{"pids-limit", func() error {
			v, e := i64("pids-limit")
			if v != nil {
				res.Pids = &specs.LinuxPids{Limit: v}
			}
			return e
		}},
		{"blkio-weight", func() error {
			v, e := u64("blkio-weight")
			if v != nil {
				w := uint16(*v)
				res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
			}
			return e
		}},
	} {
		if e := x.set(); e != nil {
			return nil, e
		}
	}
	if v, ok := f.values["cpuset-cpus"]; ok {
		cpu().Cpus = v
	}
	if v, ok := f.values["cpuset-mems"]; ok {
		cpu().Mems = v
	}
	return res, err
}
