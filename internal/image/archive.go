package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"hull/internal/errdefs"
)

// Annotations naming an image inside an OCI layout.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// dockerManifest is one entry of a `docker save` manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// archiveDir is an unpacked import archive: plain files and directories
// under dir, plus the archive's symlinks (which `docker save` uses for
// repeated layers) resolved by name, never followed on disk.
type archiveDir struct {
	dir   string
	links map[string]string
}

// Import loads an OCI image-layout tar or a `docker save` tar. name, when
// set, names an image the archive leaves unnamed.
func (s *Store) Import(ctx context.Context, r io.Reader, name string) ([]*Image, error) {
	if name != "" {
		n, err := NormalizeRef(name)
		if err != nil {
			return nil, err
		}
		name = n
	}
	tmp, err := s.tempDir("import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	a, err := readArchive(ctx, r, tmp)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var inputs []imageInput
	if a.has("index.json") {
		inputs, err = s.ociInputs(a)
	} else if a.has("manifest.json") {
		inputs, err = dockerInputs(a)
	} else {
		err = fmt.Errorf("archive has neither index.json nor manifest.json: %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var out []*Image
	for _, in := range inputs {
		if len(in.names) == 0 && name != "" {
			in.names = []string{name}
		}
		img, err := s.store(ctx, in, func(Progress) {})
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		out = append(out, img)
	}
	return out, nil
}

// readArchive writes every regular file of the tar under dir.
func readArchive(ctx context.Context, r io.Reader, dir string) (*archiveDir, error) {
	a := &archiveDir{dir: dir, links: map[string]string{}}
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		rel, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if rel == "." {
			continue
		}
		p := filepath.Join(dir, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return nil, err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(rel), target)
			}
			t, err := cleanName(target)
			if err != nil {
				return nil, err
			}
			a.links[rel] = t
		}
	}
}

func (a *archiveDir) resolve(rel string) (string, error) {
	rel, err := cleanName(rel)
	if err != nil {
		return "", err
	}
	for i := 0; i < 16; i++ {
		t, ok := a.links[rel]
		if !ok {
			return filepath.Join(a.dir, rel), nil
		}
		rel = t
	}
	return "", fmt.Errorf("archive entry %q: too many links: %w", rel, errdefs.ErrInvalidArgument)
}

func (a *archiveDir) has(rel string) bool {
	p, err := a.resolve(rel)
	return err == nil && exists(p)
}

func (a *archiveDir) read(rel string) ([]byte, error) {
	p, err := a.resolve(rel)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("archive entry %q missing: %w", rel, errdefs.ErrInvalidArgument)
	}
	return b, err
}

func blobRel(d digest.Digest) (string, error) {
	if err := validDigest(d.String()); err != nil {
		return "", err
	}
	return "blobs/sha256/" + d.Encoded(), nil
}

func (a *archiveDir) opener(rel func(ocispec.Descriptor) (string, error)) func(ocispec.Descriptor) func(context.Context) (io.ReadCloser, error) {
	return func(d ocispec.Descriptor) func(context.Context) (io.ReadCloser, error) {
		return func(context.Context) (io.ReadCloser, error) {
			r, err := rel(d)
			if err != nil {
				return nil, err
			}
			p, err := a.resolve(r)
			if err != nil {
				return nil, err
			}
			return os.Open(p)
		}
	}
}

// ociInputs lists the images of an OCI layout: every manifest of
// index.json, nested indexes resolved for the store's platform.
func (s *Store) ociInputs(a *archiveDir) ([]imageInput, error) {
	b, err := a.read("index.json")
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	byManifest := map[string]*imageInput{}
	var order []string
	for _, d := range idx.Manifests {
		var extra []blobData
		var indexDigest string
		if d.MediaType == ocispec.MediaTypeImageIndex || d.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
			raw, err := readVerified(a, d.Digest)
			if err != nil {
				return nil, err
			}
			var nested ocispec.Index
			if err := json.Unmarshal(raw, &nested); err != nil {
				return nil, fmt.Errorf("index %s: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
			}
			m, err := s.platform.selectManifest(&nested)
			if err != nil {
				return nil, err
			}
			extra = append(extra, blobData{d.Digest.String(), raw})
			indexDigest = d.Digest.String()
			d = ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, Annotations: d.Annotations}
		} else if d.Platform != nil && s.platform.score(d.Platform) == 0 {
			continue
		}
		raw, err := readVerified(a, d.Digest)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
		}
		cfg, err := readVerified(a, m.Config.Digest)
		if err != nil {
			return nil, err
		}
		in, ok := byManifest[d.Digest.String()]
		if !ok {
			in = &imageInput{manifest: raw, config: cfg, blobs: extra, indexDigest: indexDigest, keepBlobs: true,
				open: a.opener(func(d ocispec.Descriptor) (string, error) { return blobRel(d.Digest) })}
			byManifest[d.Digest.String()] = in
			order = append(order, d.Digest.String())
		}
		if n := ociName(d.Annotations); n != "" {
			in.names = append(in.names, n)
			if r, err := parseRef(n); err == nil {
				in.repoDigests = append(in.repoDigests, r.Repository()+"@"+d.Digest.String())
			}
		}
	}
	out := make([]imageInput, 0, len(order))
	for _, k := range order {
		out = append(out, *byManifest[k])
	}
	return out, nil
}

// ociName returns the normalized name an index entry carries, if any.
func ociName(ann map[string]string) string {
	for _, k := range []string{annotationImageName, annotationRefName} {
		v := ann[k]
		// A bare tag ("1.0") names nothing on its own.
		if v == "" || !strings.ContainsAny(v, "/:") {
			continue
		}
		if n, err := NormalizeRef(v); err == nil {
			return n
		}
	}
	return ""
}

func readVerified(a *archiveDir, d digest.Digest) ([]byte, error) {
	rel, err := blobRel(d)
	if err != nil {
		return nil, err
	}
	b, err := a.read(rel)
	if err != nil {
		return nil, err
	}
	if got := sha256Digest(b); got != d.String() {
		return nil, fmt.Errorf("blob %s: content digest is %s (corrupt): %w", d, got, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

// dockerInputs lists the images of a `docker save` archive, building an
// OCI manifest for each from its (possibly uncompressed) layer files.
func dockerInputs(a *archiveDir) ([]imageInput, error) {
	b, err := a.read("manifest.json")
	if err != nil {
		return nil, err
	}
	var dms []dockerManifest
	if err := json.Unmarshal(b, &dms); err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []imageInput
	for _, dm := range dms {
		cfg, err := a.read(dm.Config)
		if err != nil {
			return nil, err
		}
		m := ocispec.Manifest{
			MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig,
				Digest: digest.Digest(sha256Digest(cfg)), Size: int64(len(cfg))},
		}
		m.SchemaVersion = 2
		paths := map[string]string{}
		for _, l := range dm.Layers {
			p, err := a.resolve(l)
			if err != nil {
				return nil, err
			}
			d, size, gz, err := hashFile(p)
			if err != nil {
				return nil, fmt.Errorf("layer %q: %w", l, err)
			}
			mt := ocispec.MediaTypeImageLayer
			if gz {
				mt = ocispec.MediaTypeImageLayerGzip
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: digest.Digest(d), Size: size})
			paths[d] = l
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		in := imageInput{manifest: raw, config: cfg, keepBlobs: true,
			open: a.opener(func(d ocispec.Descriptor) (string, error) { return paths[d.Digest.String()], nil })}
		for _, t := range dm.RepoTags {
			if n, err := NormalizeRef(t); err == nil {
				in.names = append(in.names, n)
			}
		}
		out = append(out, in)
	}
	return out, nil
}

func hashFile(p string) (dgst string, size int64, gzipped bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, false, err
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(2)
	n, err := io.Copy(h, br)
	if err != nil {
		return "", 0, false, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, bytes.Equal(magic, []byte{0x1f, 0x8b}), nil
}
