package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"hull/internal/errdefs"
)

// Image is what callers see of a stored image.
type Image struct {
	// ID is "sha256:<config digest>".
	ID string
	// RepoTags are normalized names: "docker.io/library/busybox:1.29".
	RepoTags []string
	// RepoDigests are "repo@sha256:<manifest or index digest>".
	RepoDigests []string
	// Size is the sum of the compressed layer sizes (what the CRI reports).
	Size int64
	// Config is the image's runtime configuration.
	Config ocispec.ImageConfig
	// Pinned images are never garbage collected by the kubelet.
	Pinned bool
	// ChainIDs are the snapshot keys, bottom layer first.
	ChainIDs []string
	// ManifestDigest is the digest of the platform manifest.
	ManifestDigest string
	// Platform is "os/arch[/variant]" from the image config.
	Platform string
}

// record is the persisted form of an image: images/<config hex>.json.
type record struct {
	ID             string               `json:"id"`
	Names          []string             `json:"names,omitempty"`
	RepoDigests    []string             `json:"repoDigests,omitempty"`
	ManifestDigest string               `json:"manifestDigest"`
	IndexDigest    string               `json:"indexDigest,omitempty"`
	Layers         []ocispec.Descriptor `json:"layers"`
	ChainIDs       []string             `json:"chainIDs"`
	Config         ocispec.Image        `json:"config"`
	Pinned         bool                 `json:"pinned,omitempty"`
	// Updated orders records when a crash left one name on two images
	// (commitRecord writes the new owner of a tag before the old one).
	Updated time.Time `json:"updated"`
}

func (r *record) image() *Image {
	var size int64
	for _, l := range r.Layers {
		size += l.Size
	}
	p := r.Config.OS + "/" + r.Config.Architecture
	if r.Config.Variant != "" {
		p += "/" + r.Config.Variant
	}
	return &Image{
		ID:             r.ID,
		RepoTags:       slices.Clone(r.Names),
		RepoDigests:    slices.Clone(r.RepoDigests),
		Size:           size,
		Config:         r.Config.Config,
		Pinned:         r.Pinned,
		ChainIDs:       slices.Clone(r.ChainIDs),
		ManifestDigest: r.ManifestDigest,
		Platform:       p,
	}
}

func (r *record) clone() *record {
	c := *r
	c.Names = slices.Clone(r.Names)
	c.RepoDigests = slices.Clone(r.RepoDigests)
	return &c
}

func (s *Store) recordPath(id string) string {
	return s.path("images", strings.TrimPrefix(id, "sha256:")+".json")
}

func (s *Store) loadRecords() error {
	ents, err := os.ReadDir(s.path("images"))
	if err != nil {
		return fmt.Errorf("read image records: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(s.path("images"), e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			// A crash between write and rename leaves a temp file.
			_ = os.Remove(p)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read image record %s: %w", p, err)
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil {
			s.log.Warn("dropping unreadable image record", "path", p, "err", err)
			_ = os.Remove(p)
			continue
		}
		if !s.recordComplete(&r) {
			s.log.Warn("dropping image record with missing content", "id", r.ID)
			_ = os.Remove(p)
			continue
		}
		s.images[r.ID] = &r
	}
	s.dedupNamesLocked()
	return nil
}

// dedupNamesLocked leaves each name on the most recently updated image.
func (s *Store) dedupNamesLocked() {
	owner := map[string]*record{}
	for _, r := range s.images {
		for _, n := range r.Names {
			if o, ok := owner[n]; !ok || r.Updated.After(o.Updated) {
				owner[n] = r
			}
		}
	}
	for id, r := range s.images {
		kept := slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return owner[n] != r })
		if len(kept) != len(r.Names) {
			c := r.clone()
			c.Names = kept
			if err := s.writeRecord(c); err != nil {
				s.log.Warn("cannot rewrite image record", "id", id, "err", err)
				continue
			}
			s.images[id] = c
		}
	}
}

// recordComplete reports whether every snapshot of r exists.
func (s *Store) recordComplete(r *record) bool {
	for _, c := range r.ChainIDs {
		if !exists(s.snapshotPath(c)) {
			return false
		}
	}
	return true
}

// writeRecord persists r atomically (temp file, fsync, rename, fsync dir).
func (s *Store) writeRecord(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode image record %s: %w", r.ID, err)
	}
	return writeFileAtomic(s.recordPath(r.ID), b)
}

// writeFileRename writes p via a temp file and rename, without fsync: a
// crash leaves the old content or the new, never a torn file.
func writeFileRename(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func writeFileAtomic(p string, b []byte) error {
	dir := filepath.Dir(p)
	if err := writeViaTemp(dir, ".tmp-"+filepath.Base(p), p, b); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// writeViaTemp writes b to a new temp file in tmpDir (named after pattern),
// syncs it and renames it to p, so p is either absent or complete. The
// temp file is removed on failure.
func writeViaTemp(tmpDir, pattern, p string, b []byte) error {
	f, err := os.CreateTemp(tmpDir, pattern)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// commitRecord stores r, merging it with an existing record of the same ID
// and moving each of r's names away from any other image. Callers hold no lock.
func (s *Store) commitRecord(r *record) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.images[r.ID]; ok {
		m := old.clone()
		for _, n := range r.Names {
			if !slices.Contains(m.Names, n) {
				m.Names = append(m.Names, n)
			}
		}
		for _, d := range r.RepoDigests {
			if !slices.Contains(m.RepoDigests, d) {
				m.RepoDigests = append(m.RepoDigests, d)
			}
		}
		m.Pinned = m.Pinned || r.Pinned
		r = m
	}
	sort.Strings(r.Names)
	sort.Strings(r.RepoDigests)
	r.Updated = time.Now()
	if err := s.writeRecord(r); err != nil {
		return nil, err
	}
	s.images[r.ID] = r
	// A tag names one image: take it away from the others.
	for id, o := range s.images {
		if id == r.ID {
			continue
		}
		var kept []string
		for _, n := range o.Names {
			if !slices.Contains(r.Names, n) {
				kept = append(kept, n)
			}
		}
		if len(kept) != len(o.Names) {
			c := o.clone()
			c.Names = kept
			if err := s.writeRecord(c); err != nil {
				return nil, err
			}
			s.images[id] = c
		}
	}
	return r.image(), nil
}

// Get finds an image by name ("busybox:1.29" is normalized), by ID, by
// config digest hex, by manifest digest, by repo digest, or by a unique
// prefix of its ID. It returns an error of class ErrNotFound otherwise.
func (s *Store) Get(ref string) (*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.lookupLocked(ref)
	if err != nil {
		return nil, err
	}
	return r.image(), nil
}

func (s *Store) lookupLocked(ref string) (*record, error) {
	if ref == "" {
		return nil, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	if r, ok := s.images[ref]; ok {
		return r, nil
	}
	if r, ok := s.images["sha256:"+ref]; ok {
		return r, nil
	}
	norm := ""
	if n, err := NormalizeRef(ref); err == nil {
		norm = n
	}
	for _, r := range s.images {
		if norm != "" && (slices.Contains(r.Names, norm) || slices.Contains(r.RepoDigests, norm)) {
			return r, nil
		}
		if slices.Contains(r.Names, ref) || slices.Contains(r.RepoDigests, ref) ||
			r.ManifestDigest == ref || r.IndexDigest == ref {
			return r, nil
		}
	}
	if h := strings.TrimPrefix(ref, "sha256:"); isHexPrefix(h) {
		var found *record
		for id, r := range s.images {
			if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), h) {
				if found != nil {
					return nil, fmt.Errorf("image %q: ambiguous ID prefix: %w", ref, errdefs.ErrNotFound)
				}
				found = r
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

func isHexPrefix(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// List returns every image, sorted by ID.
func (s *Store) List() ([]*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Image, 0, len(s.images))
	for _, r := range s.images {
		out = append(out, r.image())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Remove removes a name from its image, or the whole image when ref is its
// ID or its last name. Removing an image frees its content and snapshots
// unless a container rootfs or another image still uses them.
func (s *Store) Remove(ref string) error {
	s.mu.Lock()
	r, err := s.lookupLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	norm, _ := NormalizeRef(ref)
	byName := slices.Contains(r.Names, norm) || slices.Contains(r.Names, ref)
	if byName && len(r.Names) > 1 {
		c := r.clone()
		c.Names = slices.DeleteFunc(c.Names, func(n string) bool { return n == norm || n == ref })
		err := s.writeRecord(c)
		if err == nil {
			s.images[r.ID] = c
		}
		s.mu.Unlock()
		return err
	}
	if err := os.Remove(s.recordPath(r.ID)); err != nil && !os.IsNotExist(err) {
		s.mu.Unlock()
		return fmt.Errorf("remove image %s: %w", r.ID, err)
	}
	delete(s.images, r.ID)
	s.mu.Unlock()
	return s.gc()
}

// SetPinned marks an image pinned (or not).
func (s *Store) SetPinned(ref string, pinned bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(ref)
	if err != nil {
		return err
	}
	c := r.clone()
	c.Pinned = pinned
	if err := s.writeRecord(c); err != nil {
		return err
	}
	s.images[r.ID] = c
	return nil
}

// Tag adds the name newName to the image ref, moving it from any other image.
func (s *Store) Tag(ref, newName string) error {
	n, err := NormalizeRef(newName)
	if err != nil {
		return err
	}
	s.mu.RLock()
	r, err := s.lookupLocked(ref)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	c := r.clone()
	c.Names = []string{n}
	_, err = s.commitRecord(c)
	return err
}
