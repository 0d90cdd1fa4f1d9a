package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"hull/internal/errdefs"
)

// twoImages pushes two images sharing a base layer.
func twoImages(t *testing.T, reg *testRegistry) (refA, refB string, base v1.Layer) {
	base = layer(t, "gzip", file("base", "b"))
	refA = reg.push(t, "test/a:1", image(t, v1.Config{Cmd: []string{"a"}}, base, layer(t, "gzip", file("a", "a"))))
	refB = reg.push(t, "test/b:1", image(t, v1.Config{Cmd: []string{"b"}}, base, layer(t, "gzip", file("b", "b"))))
	return refA, refB, base
}

func TestGetLookups(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	refA, _, _ := twoImages(t, reg)
	s := openStore(t, Options{})
	img, err := s.Pull(context.Background(), refA, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.TrimPrefix(img.ID, "sha256:")
	for _, q := range []string{refA, img.ID, hex, hex[:12], img.RepoDigests[0], img.ManifestDigest} {
		got, err := s.Get(q)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", q, got, err)
		}
	}
	for _, q := range []string{"nothere:1", "sha256:" + strings.Repeat("0", 64), "ffffffffffff"} {
		if _, err := s.Get(q); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q): %v, want NotFound", q, err)
		}
	}
}

func TestRemoveAndGC(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	refA, refB, base := twoImages(t, reg)
	s := openStore(t, Options{})
	a, err := s.Pull(context.Background(), refA, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(context.Background(), refB, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.ChainIDs[0] != b.ChainIDs[0] {
		t.Fatal("shared base layer has different chain IDs")
	}
	if n := reg.blobGets(digestOf(t, base)); n != 1 {
		t.Errorf("shared base layer fetched %d times, want 1", n)
	}
	// A second name for a, then removing one name keeps the image.
	if err := s.Tag(refA, "example.com/other:2"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get("example.com/other:2")
	if got == nil || !slices.Equal(got.RepoTags, []string{refA, "example.com/other:2"}) {
		t.Fatalf("tag: %+v", got)
	}
	if err := s.Remove(refA); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(a.ID); err != nil {
		t.Fatalf("image gone after removing one of its names: %v", err)
	}
	// Pin a's layers with a container, then remove a by ID.
	if _, err := s.PrepareRootfs("pinner", a.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("pinner") })
	if err := s.Remove(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(a.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get after remove: %v", err)
	}
	if !exists(s.snapshotPath(a.ChainIDs[1])) {
		t.Fatal("GC removed a snapshot a container uses")
	}
	if ids, err := s.ListRootfs(); err != nil || !slices.Equal(ids, []string{"pinner"}) {
		t.Fatalf("ListRootfs = %v, %v", ids, err)
	}
	if r, err := s.Rootfs("pinner"); err != nil || len(r.Lower) != 2 || r.Lower[0] != s.snapshotPath(a.ChainIDs[1]) {
		t.Fatalf("Rootfs(pinner) = %+v, %v", r, err)
	}
	if err := s.RemoveRootfs("pinner"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rootfs("pinner"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Rootfs after removal: %v", err)
	}
	if err := s.RemoveRootfs("pinner"); err != nil {
		t.Fatalf("RemoveRootfs is not idempotent: %v", err)
	}
	if err := s.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exists(s.snapshotPath(a.ChainIDs[1])) || exists(s.blobPath(a.ID)) || exists(s.blobPath(a.ManifestDigest)) {
		t.Error("GC kept a's own snapshot or blobs")
	}
	if !exists(s.snapshotPath(b.ChainIDs[0])) || !exists(s.blobPath(digestOf(t, base))) {
		t.Error("GC removed the base layer b still uses")
	}
	bytes, inodes, mp, err := s.FsInfo()
	if err != nil || bytes == 0 || inodes == 0 || mp != s.root {
		t.Errorf("FsInfo = %d, %d, %q, %v", bytes, inodes, mp, err)
	}
	if err := s.Remove(refB); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"snapshots", "blobs/sha256", "images"} {
		if ents, _ := os.ReadDir(s.path(d)); len(ents) != 0 {
			t.Errorf("%s not empty after removing everything: %d entries", d, len(ents))
		}
	}
}

func TestOpenRecoversFromCrash(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	refA, _, _ := twoImages(t, reg)
	root := t.TempDir()
	s := openStore(t, Options{Root: root})
	a, err := s.Pull(context.Background(), refA, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Leftovers of a pull killed mid-way: a half-unpacked layer, a partial
	// blob, a record temp file; and a record whose snapshot vanished.
	if err := os.MkdirAll(filepath.Join(root, "tmp", "layer-123", "fs", "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "blob-1"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "images", ".tmp-x.json123"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := &record{ID: "sha256:" + strings.Repeat("1", 64), Names: []string{"x/broken:1"},
		ChainIDs: []string{"sha256:" + strings.Repeat("2", 64)}}
	if err := s.writeRecord(broken); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of moving a tag: two records claim it.
	stale := s.images[a.ID].clone()
	stale.ID = "sha256:" + strings.Repeat("3", 64)
	stale.Names = []string{refA}
	stale.Updated = s.images[a.ID].Updated.Add(-time.Hour)
	if err := s.writeRecord(stale); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, Options{Root: root})
	if got, _ := s2.Get(stale.ID); got == nil || len(got.RepoTags) != 0 {
		t.Errorf("stale record kept the moved tag: %+v", got)
	}
	if left := tmpEntries(t, s2); len(left) != 0 {
		t.Errorf("tmp leftovers survived Open: %v", left)
	}
	if exists(filepath.Join(root, "images", ".tmp-x.json123")) {
		t.Error("record temp file survived")
	}
	if _, err := s2.Get("x/broken:1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("incomplete record visible: %v", err)
	}
	if got, err := s2.Get(refA); err != nil || got.ID != a.ID {
		t.Errorf("complete image lost: %v", err)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	ref := reg.push(t, "test/rt:1", whiteoutImage(t))
	s := openStore(t, Options{})
	img, err := s.Pull(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Export(context.Background(), ref, &buf); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, Options{})
	imgs, err := s2.Import(context.Background(), &buf, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ID != img.ID || !slices.Equal(imgs[0].RepoTags, img.RepoTags) ||
		!slices.Equal(imgs[0].ChainIDs, img.ChainIDs) || imgs[0].Size != img.Size {
		t.Fatalf("imported %+v, want %+v", imgs, img)
	}
	if got := readFile(t, filepath.Join(s2.snapshotPath(img.ChainIDs[1]), "c/new")); got != "new" {
		t.Errorf("imported layer content %q", got)
	}
}

func TestImportDockerSave(t *testing.T) {
	needRoot(t)
	img := image(t, v1.Config{Env: []string{"X=1"}},
		layer(t, "gzip", file("one", "1")), layer(t, "none", file("two", "2")))
	var buf bytes.Buffer
	tag := name.MustParseReference("example.com/saved:3")
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Options{})
	imgs, err := s.Import(context.Background(), &buf, "")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	if len(imgs) != 1 || imgs[0].ID != id.String() || !slices.Equal(imgs[0].RepoTags, []string{"example.com/saved:3"}) ||
		!slices.Equal(imgs[0].Config.Env, []string{"X=1"}) {
		t.Fatalf("imported %+v", imgs)
	}
	if got := readFile(t, filepath.Join(s.snapshotPath(imgs[0].ChainIDs[1]), "two")); got != "2" {
		t.Errorf("layer two = %q", got)
	}
	// The imported image exports again.
	if err := s.Export(context.Background(), "example.com/saved:3", new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
}

// TestGCDuringPulls runs GC in a loop while images are pulled: whatever a
// pull has written must survive until its record is committed.
func TestGCDuringPulls(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	var refs []string
	for i := range 4 {
		refs = append(refs, reg.push(t, fmt.Sprintf("test/gc%d:1", i), image(t, v1.Config{},
			layer(t, "gzip", file("shared", "s")), layer(t, "gzip", file("own", fmt.Sprint(i))))))
	}
	s := openStore(t, Options{})
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := s.GC(context.Background()); err != nil {
				done <- err
				return
			}
		}
	}()
	for _, ref := range refs {
		if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		img, err := s.Get(ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range img.ChainIDs {
			if !exists(s.snapshotPath(c)) {
				t.Errorf("%s: snapshot %s collected during the pull", ref, c)
			}
		}
		for _, d := range []string{img.ID, img.ManifestDigest} {
			if !exists(s.blobPath(d)) {
				t.Errorf("%s: blob %s collected during the pull", ref, d)
			}
		}
	}
}

func TestRootfsArgumentsAndSyncedPull(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	big := strings.Repeat("0123456789abcdef", (directThreshold+1000)/16) // O_DIRECT path, unaligned tail
	ref := reg.push(t, "test/sync:1", image(t, v1.Config{}, layer(t, "zstd", file("big", big), file("small", "s"))))
	s := openStore(t, Options{SyncLayers: true})
	img, err := s.Pull(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.snapshotPath(img.ChainIDs[0]), "big")); got != big {
		t.Fatalf("big file: %d bytes, want %d", len(got), len(big))
	}
	for _, id := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("x", 200)} {
		if _, err := s.PrepareRootfs(id, img.ID); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("PrepareRootfs(%q): %v, want InvalidArgument", id, err)
		}
		if err := s.RemoveRootfs(id); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("RemoveRootfs(%q): %v, want InvalidArgument", id, err)
		}
	}
	if _, err := s.PrepareRootfs("c1", "no/such:image"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("PrepareRootfs of a missing image: %v", err)
	}
	if ids, _ := s.ListRootfs(); len(ids) != 0 {
		t.Errorf("failed PrepareRootfs left %v", ids)
	}
	if _, err := s.View("no/such:image"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("View of a missing image: %v", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {Root: t.TempDir(), Platform: "linux"}, {Root: t.TempDir(), Platform: "a/b/c/d"}} {
		if _, err := Open(o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Open(%+v): %v, want InvalidArgument", o, err)
		}
	}
	s, err := Open(Options{Root: t.TempDir(), Hosts: map[string]RegistryHost{"x.io": {Mirrors: []string{"ftp://m"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(context.Background(), "x.io/a:1", nil, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("pull through an ftp mirror: %v, want InvalidArgument", err)
	}
}
