package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"hull/internal/errdefs"
)

// Export writes the image ref as an OCI image-layout tar (with a `docker
// save` manifest.json beside index.json, so `docker load` takes it too).
// Each of the image's names becomes an index entry.
func (s *Store) Export(ctx context.Context, ref string, w io.Writer) error {
	s.mu.RLock()
	r, err := s.lookupLocked(ref)
	if err != nil {
		s.mu.RUnlock()
		return err
	}
	r = r.clone()
	// Hold the blobs against a concurrent Remove + GC while streaming.
	keys := []string{r.ManifestDigest, r.ID}
	for _, l := range r.Layers {
		keys = append(keys, l.Digest.String())
	}
	s.mu.RUnlock()
	release := s.lease(keys...)
	defer release()

	manifest, err := s.readBlob(r.ManifestDigest)
	if err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	config, err := s.readBlob(r.ID)
	if err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return fmt.Errorf("export %s: manifest: %v: %w", ref, err, errdefs.ErrFailedPrecondition)
	}
	mt := m.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: digest.Digest(r.ManifestDigest), Size: int64(len(manifest))}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	dm := dockerManifest{Config: "blobs/sha256/" + digest.Digest(r.ID).Encoded()}
	for _, n := range r.Names {
		d := desc
		d.Annotations = map[string]string{annotationImageName: n}
		if ir, err := parseRef(n); err == nil && ir.tag != "" {
			d.Annotations[annotationRefName] = ir.tag
		}
		idx.Manifests = append(idx.Manifests, d)
		dm.RepoTags = append(dm.RepoTags, n)
	}
	if len(idx.Manifests) == 0 {
		idx.Manifests = []ocispec.Descriptor{desc}
	}
	for _, l := range r.Layers {
		dm.Layers = append(dm.Layers, "blobs/sha256/"+l.Digest.Encoded())
	}
	indexJSON, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal([]dockerManifest{dm})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"blobs/sha256/" + desc.Digest.Encoded(), manifest},
		{dm.Config, config},
	} {
		if err := put(f.name, f.b); err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
	}
	seen := map[string]bool{}
	for _, l := range r.Layers {
		if seen[l.Digest.String()] {
			continue
		}
		seen[l.Digest.String()] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.exportBlob(tw, l, now); err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", indexJSON},
		{"manifest.json", dockerJSON},
	} {
		if err := put(f.name, f.b); err != nil {
			return fmt.Errorf("export %s: %w", ref, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export %s: %w", ref, err)
	}
	return nil
}

func (s *Store) exportBlob(tw *tar.Writer, l ocispec.Descriptor, mtime time.Time) error {
	f, err := os.Open(s.blobPath(l.Digest.String()))
	if os.IsNotExist(err) {
		return fmt.Errorf("layer blob %s: %w", l.Digest, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("layer blob %s: %w", l.Digest, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != l.Size {
		return fmt.Errorf("layer blob %s is %d bytes, manifest says %d: %w", l.Digest, st.Size(), l.Size, errdefs.ErrFailedPrecondition)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + l.Digest.Encoded(), Mode: 0o644, Size: l.Size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
