package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"hull/internal/errdefs"
)

// flight is one pull shared by every caller of the same reference. It runs
// on its own context, cancelled when the last waiting caller gives up.
type flight struct {
	done    chan struct{}
	img     *Image
	err     error
	cancel  context.CancelFunc
	waiters int

	progMu   sync.Mutex
	progress map[int]func(Progress)
	nextID   int
}

func (f *flight) report(p Progress) {
	f.progMu.Lock()
	defer f.progMu.Unlock()
	for _, fn := range f.progress {
		fn(p)
	}
}

// Pull fetches ref (normalized: "busybox" is docker.io/library/busybox:latest)
// and unpacks its layers, returning the stored image. Concurrent pulls of
// the same reference share one download; progress, if set, is called with
// per-layer byte counts from the download goroutines (it must be quick and
// safe for concurrent use).
func (s *Store) Pull(ctx context.Context, ref string, auth *Auth, progress func(Progress)) (*Image, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	// Callers with different credentials must not share a pull: one
	// caller's failed (or missing) login would fail the others.
	key := r.String() + "\x00" + auth.fingerprint()
	s.flightMu.Lock()
	f, ok := s.flights[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel, progress: map[int]func(Progress){}}
		s.flights[key] = f
		go func() {
			img, err := s.pull(fctx, r, auth, f.report)
			s.flightMu.Lock()
			if s.flights[key] == f {
				delete(s.flights, key)
			}
			s.flightMu.Unlock()
			f.progMu.Lock()
			f.img, f.err = img, err
			f.progress = nil
			f.progMu.Unlock()
			close(f.done)
			cancel()
		}()
	}
	f.waiters++
	id := -1
	if progress != nil {
		f.progMu.Lock()
		if f.progress != nil {
			id = f.nextID
			f.nextID++
			f.progress[id] = progress
		}
		f.progMu.Unlock()
	}
	s.flightMu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		img := *f.img
		return &img, nil
	case <-ctx.Done():
		f.progMu.Lock()
		delete(f.progress, id)
		f.progMu.Unlock()
		s.flightMu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			// Later callers must start afresh, not join a cancelled pull.
			if s.flights[key] == f {
				delete(s.flights, key)
			}
		}
		s.flightMu.Unlock()
		return nil, fmt.Errorf("pull %s: %w", r, ctx.Err())
	}
}

func (s *Store) pull(ctx context.Context, r imageRef, auth *Auth, report func(Progress)) (*Image, error) {
	start := time.Now()
	t, desc, err := s.resolve(ctx, r, auth)
	if err != nil {
		return nil, err
	}
	topDigest := desc.Digest.String()
	var blobs []blobData
	var img v1.Image
	var indexDigest string
	switch desc.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		var idx ocispec.Index
		if err := json.Unmarshal(desc.Manifest, &idx); err != nil {
			return nil, fmt.Errorf("pull %s: index %s: %v: %w", r, topDigest, err, errdefs.ErrInvalidArgument)
		}
		m, err := s.platform.selectManifest(&idx)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", r, err)
		}
		ii, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", r, err)
		}
		h, err := v1.NewHash(m.Digest.String())
		if err != nil {
			return nil, fmt.Errorf("pull %s: %v: %w", r, err, errdefs.ErrInvalidArgument)
		}
		if img, err = ii.Image(h); err != nil {
			return nil, fmt.Errorf("pull %s: manifest %s: %w", r, h, classifyRegistryError(err))
		}
		indexDigest = topDigest
		blobs = append(blobs, blobData{topDigest, desc.Manifest})
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return nil, fmt.Errorf("pull %s: Docker schema 1 manifests are not supported: %w", r, errdefs.ErrNotImplemented)
	default:
		if img, err = desc.Image(); err != nil {
			return nil, fmt.Errorf("pull %s: %w", r, err)
		}
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("pull %s: manifest: %w", r, classifyRegistryError(err))
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("pull %s: config: %w", r, classifyRegistryError(err))
	}
	open := func(d ocispec.Descriptor) func(ctx context.Context) (io.ReadCloser, error) {
		return func(ctx context.Context) (io.ReadCloser, error) {
			h, err := v1.NewHash(d.Digest.String())
			if err != nil {
				return nil, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
			}
			// A fresh layer per job binds the request to this job's context.
			l, err := t.puller.Layer(ctx, t.repo.Digest(h.String()))
			if err != nil {
				return nil, err
			}
			return l.Compressed()
		}
	}
	in := imageInput{
		manifest: rawManifest, config: rawConfig, blobs: blobs,
		indexDigest: indexDigest, keepBlobs: true, open: open, selfVerifying: true,
	}
	if r.tag != "" {
		in.names = []string{r.String()}
	}
	in.repoDigests = []string{r.Repository() + "@" + topDigest}
	out, err := s.store(ctx, in, report)
	if err == nil {
		s.log.Info("pulled image", "ref", r.String(), "id", out.ID, "endpoint", t.ep.host,
			"layers", len(out.ChainIDs), "bytes", out.Size, "duration", time.Since(start))
	}
	return out, err
}

type blobData struct {
	digest string
	data   []byte
}

// imageInput is an image to be stored, wherever it came from.
type imageInput struct {
	manifest, config []byte
	blobs            []blobData // extra small blobs to keep (an index)
	indexDigest      string
	names            []string
	repoDigests      []string
	keepBlobs        bool
	selfVerifying    bool // open's streams verify their digest
	open             func(ocispec.Descriptor) func(context.Context) (io.ReadCloser, error)
}

// store verifies an image's manifest and config, materializes every layer
// (in parallel, bounded) and commits the record last.
func (s *Store) store(ctx context.Context, in imageInput, report func(Progress)) (*Image, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(in.manifest, &m); err != nil {
		return nil, fmt.Errorf("manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	manifestDigest := sha256Digest(in.manifest)
	if got := sha256Digest(in.config); got != m.Config.Digest.String() {
		return nil, fmt.Errorf("config blob %s: content digest is %s (corrupt): %w", m.Config.Digest, got, errdefs.ErrFailedPrecondition)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(in.config, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %v: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	diffIDs := make([]string, len(cfg.RootFS.DiffIDs))
	for i, d := range cfg.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	if len(diffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: %d layers but %d diffIDs: %w", m.Config.Digest, len(m.Layers), len(diffIDs), errdefs.ErrInvalidArgument)
	}
	// Digests become file names: refuse anything but sha256 hex up front.
	for i, d := range diffIDs {
		if err := validDigest(d); err != nil {
			return nil, fmt.Errorf("image %s diffID %d: %w", m.Config.Digest, i, err)
		}
		if err := validDigest(m.Layers[i].Digest.String()); err != nil {
			return nil, fmt.Errorf("image %s layer %d: %w", m.Config.Digest, i, err)
		}
	}
	chains := chainIDs(diffIDs)

	keys := append([]string{manifestDigest, m.Config.Digest.String()}, chains...)
	for _, l := range m.Layers {
		keys = append(keys, l.Digest.String())
	}
	for _, b := range in.blobs {
		keys = append(keys, b.digest)
	}
	release := s.lease(keys...)
	defer release()

	for _, b := range append(in.blobs, blobData{manifestDigest, in.manifest}, blobData{m.Config.Digest.String(), in.config}) {
		if err := s.writeBlob(b.digest, b.data); err != nil {
			return nil, err
		}
	}
	if err := s.materialize(ctx, m.Layers, diffIDs, chains, in, report); err != nil {
		return nil, err
	}
	rec := &record{
		ID: m.Config.Digest.String(), Names: in.names, RepoDigests: in.repoDigests,
		ManifestDigest: manifestDigest, IndexDigest: in.indexDigest,
		Layers: m.Layers, ChainIDs: chains, Config: cfg,
	}
	return s.commitRecord(rec)
}

// materialize runs one job per layer, at most MaxConcurrentLayers at once;
// the first failure cancels the rest.
func (s *Store) materialize(ctx context.Context, layers []ocispec.Descriptor, diffIDs, chains []string,
	in imageInput, report func(Progress)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.opts.MaxConcurrentLayers)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for i, l := range layers {
		j := layerJob{desc: l, diffID: diffIDs[i], chainID: chains[i], open: in.open(l), keepBlob: in.keepBlobs, selfVerifying: in.selfVerifying}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := s.ensureLayer(ctx, j, report); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
