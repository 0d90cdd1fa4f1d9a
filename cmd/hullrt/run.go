package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func init() {
	register(&command{name: "run", usage: "[create flags] [--detach] ID  (create + start; foreground waits and exits with the container's status)",
		flags: append(append([]flagDef{}, createFlags...), flagDef{name: "detach", short: "d", isBool: true}, flagDef{name: "keep", isBool: true}),
		run:   runRun})
	register(&command{name: "start", usage: "ID", run: func(g *globals, f *flags) error {
		id, err := f.id("start")
		if err != nil {
			return err
		}
		r, err := newRuntime(g)
		if err != nil {
			return err
		}
		return r.Start(context.Background(), id)
	}})
}

func runRun(g *globals, f *flags) error {
	id, err := f.id("run")
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
	ctx := context.Background()
	// Signals sent to a foreground run go to the container.
	sigs := make(chan os.Signal, 16)
	if !f.bools["detach"] {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	}
	if err := r.Create(ctx, id, o); err != nil {
		return err
	}
	if err := r.Start(ctx, id); err != nil {
		r.Delete(ctx, id, true)
		return err
	}
	if f.bools["detach"] {
		return nil
	}
	go func() {
		for s := range sigs {
			r.Kill(id, s.(syscall.Signal), false)
		}
	}()
	code, err := r.Wait(id)
	if !f.bools["keep"] {
		r.Delete(ctx, id, true)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}
