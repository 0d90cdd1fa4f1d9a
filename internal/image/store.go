// Package image is hull's image service core: a content store of blobs by
// digest, registry pulls (go-containerregistry), one overlay lower directory
// per layer keyed by chain ID, image records (names → manifest → config),
// container rootfs preparation, removal, garbage collection and OCI /
// `docker save` import and export. hulld's CRI ImageService sits on it.
//
// On-disk layout under Options.Root:
//
//	blobs/sha256/<hex>       verified content (manifests, configs, compressed layers)
//	snapshots/<chain hex>/   one unpacked layer each: an overlay lower directory
//	images/<config hex>.json image records, written last and atomically
//	rootfs/<container id>/   upper/ + work/ + rootfs.json per container
//	tmp/                     downloads and unpacks in progress; wiped by Open
//	l/                       short symlinks to snapshots for long overlay mount data
//
// Crash safety comes from ordering: blobs and snapshots are built in tmp/
// and renamed into place, and an image becomes visible only when its record
// is renamed into images/. Anything a crash leaves behind is either in tmp/
// (removed by Open) or unreferenced (removed by GC).
//
// Layers are unpacked by hull's own tar extractor (unpack_linux.go), not
// moby/go-archive's Untar: Untar resolves each entry by path and relies on
// a chroot (docker's chrootarchive) to stop a layer's own symlinks from
// redirecting later entries out of the directory; hull instead reaches
// every parent with openat(O_NOFOLLOW) from a directory fd, which needs no
// chroot and no extra process.
package image

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"hull/internal/errdefs"
)

// RegistryHost configures how one registry host is reached.
type RegistryHost struct {
	// Mirrors are endpoints such as "http://127.0.0.1:5000" or
	// "https://mirror.example", tried in order before the upstream host.
	Mirrors []string
	// NoUpstreamFallback makes a pull fail once every mirror failed instead of
	// trying the upstream host (offline nodes must fail fast).
	NoUpstreamFallback bool
	// Insecure allows plain http and unverified TLS for this host.
	Insecure bool
	// CAFiles are extra PEM CA bundles trusted for this host and its mirrors.
	CAFiles []string
}

// Options configure a Store.
type Options struct {
	// Root holds all of the store's state, e.g. /var/lib/hull/image.
	Root string
	// Hosts maps a registry host ("docker.io", "127.0.0.1:5000") to its
	// configuration.
	Hosts map[string]RegistryHost
	// Insecure lists registry hosts reachable over plain http.
	Insecure []string
	// Platform selects a manifest from an index: "os/arch[/variant]";
	// linux/amd64 by default.
	Platform string
	// Logger receives warnings (skipped device nodes, failed mirrors...).
	Logger *slog.Logger
	// MaxConcurrentLayers bounds parallel layer downloads per pull (default 10).
	MaxConcurrentLayers int
	// AllowDeviceNodes lets layers create character and block device nodes;
	// otherwise such entries are skipped with a warning (whiteouts, 0/0
	// character devices, are always allowed).
	AllowDeviceNodes bool
	// SyncLayers fsyncs every unpacked file and blob before it is committed.
	// Off by default: a kill -9 cannot lose page-cache data, and records are
	// fsynced, so only a power loss could leave a damaged layer.
	SyncLayers bool
}

// Store is the image store rooted at Options.Root.
//
// Lifecycle: Open recovers the on-disk state (removing leftovers of
// interrupted pulls, then collecting what no record or container uses) and
// loads all image records into memory; the Store is
// then safe for concurrent use by any number of goroutines. There is no
// Close: all state is on disk after each call returns.
//
// Locking: mu guards the in-memory record index (images) and the lease
// counts; it is never held during network or disk-heavy work except by GC,
// which holds it while it decides what to delete so that no pull can commit
// a record referencing something being deleted. Pulls of the same reference
// are deduplicated by flights; unpacks of the same chain ID by layerFlights.
type Store struct {
	root     string
	opts     Options
	log      *slog.Logger
	platform platform
	hosts    *hostResolver

	mu     sync.RWMutex
	images map[string]*record // by ID "sha256:..."
	// leases count in-flight uses of snapshots (by chain ID) and blobs (by
	// digest) that are not yet referenced by a record; GC keeps them.
	leases map[string]int

	directIO bool // layer data with O_DIRECT: faster on this machine (probeDirectIO)

	flightMu     sync.Mutex
	flights      map[string]*flight
	layerFlights map[string]*layerFlight
}

// Open opens (creating it if needed) the store at o.Root and cleans up what an
// interrupted run left behind.
func Open(o Options) (*Store, error) {
	if o.Root == "" {
		return nil, fmt.Errorf("image store root: %w", errdefs.ErrInvalidArgument)
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("image store root %q: %w", o.Root, err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Platform == "" {
		o.Platform = "linux/amd64"
	}
	if o.MaxConcurrentLayers <= 0 {
		o.MaxConcurrentLayers = 10
	}
	p, err := parsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	s := &Store{
		root:         root,
		opts:         o,
		log:          o.Logger,
		platform:     p,
		hosts:        newHostResolver(o),
		images:       map[string]*record{},
		leases:       map[string]int{},
		flights:      map[string]*flight{},
		layerFlights: map[string]*layerFlight{},
	}
	// A crash can leave partial downloads and unpacks only in tmp/.
	if err := os.RemoveAll(s.path("tmp")); err != nil {
		return nil, fmt.Errorf("clean image store tmp: %w", err)
	}
	for _, d := range []string{"blobs/sha256", "snapshots", "images", "rootfs", "tmp", "l"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return nil, fmt.Errorf("create image store dir: %w", err)
		}
	}
	markTopDir(s.path("tmp"))
	markTopDir(s.path("rootfs"))
	var bufRate, directRate float64
	s.directIO, bufRate, directRate = probeDirectIO(s.path("tmp"))
	s.log.Info("image store write mode", "direct", s.directIO, "bufferedMBps", int(bufRate), "directMBps", int(directRate))
	if err := s.loadRecords(); err != nil {
		return nil, err
	}
	// Layers and blobs a crash committed without their record are garbage.
	if err := s.gc(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root returns the store's absolute root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// blobPath returns the content path of a "sha256:<hex>" digest.
func (s *Store) blobPath(dgst string) string {
	return s.path("blobs", "sha256", strings.TrimPrefix(dgst, "sha256:"))
}

// snapshotPath returns the lower directory of a "sha256:<hex>" chain ID.
func (s *Store) snapshotPath(chainID string) string {
	return s.path("snapshots", strings.TrimPrefix(chainID, "sha256:"))
}

// tempDir creates a fresh directory under tmp/.
func (s *Store) tempDir(prefix string) (string, error) {
	d, err := os.MkdirTemp(s.path("tmp"), prefix)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	return d, nil
}

// lease marks keys (chain IDs, digests) as in use until the returned func runs.
func (s *Store) lease(keys ...string) func() {
	s.mu.Lock()
	for _, k := range keys {
		s.leases[k]++
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		for _, k := range keys {
			if s.leases[k]--; s.leases[k] <= 0 {
				delete(s.leases, k)
			}
		}
		s.mu.Unlock()
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
