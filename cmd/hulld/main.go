// Command hulld is hull's CRI daemon: it serves the CRI v1 RuntimeService
// and ImageService on a unix socket for the kubelet and crictl.
//
//	hulld [--config FILE] [--listen unix:///run/hull/hull.sock] [--root DIR] [--state DIR] [--log-level LEVEL]
//	hulld config default    print the full default configuration
//
// main only wires the packages together: config → image store, CNI
// manager, runtime handlers → cri.Service → gRPC server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"hull/internal/config"
	"hull/internal/cri"
	"hull/internal/oci"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

func main() {
	// hulld re-executes itself as hullrt's exec helper (ExecSync on hullrt
	// containers): that must happen before anything else runs.
	oci.MaybeInit()
	if err := markInheritedCloexec(); err != nil {
		fmt.Fprintln(os.Stderr, "hulld:", err)
		os.Exit(1)
	}
	if len(os.Args) > 1 && os.Args[1] == "config" {
		os.Exit(configCmd(os.Args[2:]))
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "hulld:", err)
		os.Exit(1)
	}
}

func configCmd(args []string) int {
	if len(args) == 1 && args[0] == "default" {
		fmt.Print(config.DefaultTOML())
		return 0
	}
	fmt.Fprintln(os.Stderr, "usage: hulld config default")
	return 2
}

func run(args []string) error {
	fs := flag.NewFlagSet("hulld", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/hull/hull.toml", "configuration file (missing: defaults)")
	listen := fs.String("listen", "", "CRI endpoint, unix:///path (default from config: unix:///run/hull/hull.sock)")
	root := fs.String("root", "", "persistent state directory (default /var/lib/hull)")
	state := fs.String("state", "", "runtime state directory (default /run/hull)")
	level := fs.String("log-level", "", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: hulld [flags]\n       hulld config default\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see hulld --help)", fs.Arg(0))
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{*listen, &cfg.Listen}, {*root, &cfg.Root}, {*state, &cfg.State}, {*level, &cfg.LogLevel}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	slog.SetDefault(log)
	opts, err := wire(cfg, log)
	if err != nil {
		return err
	}
	opts.Version = version
	svc, err := cri.New(*opts)
	if err != nil {
		return err
	}
	defer svc.Close()
	return serve(cfg, svc, log)
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// serve listens on the CRI socket until SIGTERM or SIGINT.
func serve(cfg *config.Config, svc *cri.Service, log *slog.Logger) error {
	sock := cfg.ListenPath()
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stale socket %s: %w", sock, err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o660); err != nil {
		l.Close()
		return fmt.Errorf("chmod %s: %w", sock, err)
	}
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(cri.UnaryInterceptor(log)),
		grpc.ChainStreamInterceptor(cri.StreamInterceptor(log)),
		grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20),
	)
	svc.Register(g)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	log.Info("hulld serving", "listen", "unix://"+sock, "root", cfg.Root, "state", cfg.State, "version", version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("hulld stopping; containers keep running under their monitors")
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	os.Remove(sock)
	return nil
}
