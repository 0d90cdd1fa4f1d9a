// Package cri is hulld's CRI v1 server: the RuntimeService and ImageService
// the kubelet and crictl call over a unix socket. One file per RPC family;
// records live in store/, runtime handlers in hull/internal/runtime.
package cri

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
	"hull/internal/image"
	"hull/internal/monitor"
	"hull/internal/network"
	"hull/internal/runtime"
)

// Options configure a Service.
type Options struct {
	Root  string // persistent state: metadata db (images live in their own store)
	State string // runtime state: sandbox dirs, bundles, monitor dirs
	// Images, Network and Handlers are the lower layers; Network may be nil
	// only when every pod uses the host network.
	Images         *image.Store
	Network        *network.Manager
	Handlers       map[string]runtime.Handler
	DefaultHandler string
	// MonitorPath is the hull-monitor binary, found next to hulld.
	MonitorPath string
	// CgroupDriver is "cgroupfs" or "systemd".
	CgroupDriver string
	// RestrictOOMScoreAdj clamps oom_score_adj to what this host allows.
	RestrictOOMScoreAdj bool
	Logger              *slog.Logger
	Version             string
	// StreamAddr is the exec/attach/port-forward server's "ip:port" (port
	// 0 picks one); empty disables streaming.
	StreamAddr string
	// StreamTLS, when set, serves the streaming endpoints over https.
	StreamTLS *tls.Config
}

// Service implements runtimeapi.RuntimeServiceServer and ImageServiceServer.
//
// Lifecycle: New opens the metadata store and recovers every recorded object
// (reattaching to live monitors, reaping exits that happened while hulld was
// down, removing half-made objects); Register adds it to a gRPC server;
// Close stops the exit watchers and closes the store, leaving containers
// running.
//
// Locking: each pod and container is guarded by its own mutex from locks
// (held for the whole of a state-changing RPC on it); the store guards its
// own maps; mu guards monitors.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts   Options
	log    *slog.Logger
	store  *store.Store
	events *broadcaster
	locks  keyedLocks

	mu       sync.Mutex
	monitors map[string]*monitor.Handle // container id → live monitor
	watches  map[string]*exitWatch      // container id → its exit watcher
	spawns   map[string]*bgOp           // container id → its background create
	netOps   map[string]*bgOp           // sandbox id → its background CNI ADD
	pauses   map[string]*os.Process     // sandbox id → pause process this hulld started

	stream  *streamServer // nil until startStreaming
	fsUsage fsUsageCache  // writable layer sizes for stats

	ctx    context.Context // ends at Close: stops exit watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the service's state and recovers what an earlier hulld left.
func New(o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if _, ok := o.Handlers[o.DefaultHandler]; !ok {
		return nil, fmt.Errorf("default runtime %q is not configured: %w", o.DefaultHandler, errdefs.ErrInvalidArgument)
	}
	for _, d := range []string{o.Root, o.State, filepath.Join(o.State, "sandboxes"), filepath.Join(o.State, "containers")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// The root of a user-namespaced container (a host uid that is not 0)
	// must traverse to its bundle's rootfs: search, not read, for others.
	for _, d := range []string{o.State, filepath.Join(o.State, "containers")} {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				return nil, fmt.Errorf("make %s searchable: %w", d, err)
			}
		}
	}
	st, err := store.Open(filepath.Join(o.Root, "meta.db"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		opts: o, log: o.Logger, store: st, events: newBroadcaster(),
		monitors: map[string]*monitor.Handle{}, watches: map[string]*exitWatch{},
		spawns: map[string]*bgOp{}, netOps: map[string]*bgOp{},
		pauses: map[string]*os.Process{}, ctx: ctx, cancel: cancel,
	}
	s.recover()
	if o.StreamAddr != "" {
		if err := s.startStreaming(o.StreamAddr); err != nil {
			cancel()
			st.Close()
			return nil, err
		}
	}
	return s, nil
}

// Register adds both CRI services to g.
func (s *Service) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// Close stops watching containers and closes the store; containers keep
// running under their monitors.
func (s *Service) Close() error {
	if s.stream != nil {
		s.stream.l.Close()
	}
	// Let background CNI ADDs and creates finish (they take milliseconds)
	// rather than cancel them into half-made pods.
	s.mu.Lock()
	var pending []chan struct{}
	for _, op := range s.netOps {
		pending = append(pending, op.done)
	}
	for _, op := range s.spawns {
		pending = append(pending, op.done)
	}
	s.mu.Unlock()
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	for _, done := range pending {
		select {
		case <-done:
		case <-wait.Done():
		}
	}
	stop()
	s.cancel()
	s.events.close()
	s.wg.Wait()
	return s.store.Close()
}

// handler returns the runtime handler for a CRI runtime_handler name ("" is
// the default).
func (s *Service) handler(name string) (runtime.Handler, string, error) {
	if name == "" {
		name = s.opts.DefaultHandler
	}
	h, ok := s.opts.Handlers[name]
	if !ok {
		return nil, "", fmt.Errorf("runtime handler %q is not configured: %w", name, errdefs.ErrInvalidArgument)
	}
	return h, name, nil
}

// keyedLocks is a set of mutexes, one per object id, created on demand.
type keyedLocks struct{ m sync.Map }

func (k *keyedLocks) lock(id string) func() {
	v, _ := k.m.LoadOrStore(id, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// forget drops the mutex of a removed object.
func (k *keyedLocks) forget(id string) { k.m.Delete(id) }
