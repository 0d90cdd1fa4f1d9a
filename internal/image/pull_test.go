package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

func whiteoutImage(t *testing.T) v1.Image {
	base := layer(t, "gzip",
		dir("a/"), file("a/x", "x1"), file("a/y", "y1"),
		dir("c/"), file("c/old", "old"),
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/suid", typ: tar.TypeReg, body: "#!", mode: 0o4755, uid: 1000, gid: 1000},
		entry{name: "bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
		entry{name: "bin/hard", typ: tar.TypeLink, link: "bin/suid"},
		entry{name: "cap", typ: tar.TypeReg, body: "c", mode: 0o755, xattrs: map[string]string{"user.hull": "yes"}},
	)
	top := layer(t, "gzip",
		dir("a/"), entry{name: "a/.wh.x", typ: tar.TypeReg},
		dir("c/"), entry{name: "c/.wh..wh..opq", typ: tar.TypeReg}, file("c/new", "new"),
		file("a/y", "y2"),
	)
	return image(t, v1.Config{
		Env: []string{"PATH=/bin", "A=b"}, Cmd: []string{"/bin/sh"}, Entrypoint: []string{"/init"},
		User: "1000:1000", WorkingDir: "/work", StopSignal: "SIGINT",
		Labels: map[string]string{"l": "v"}, Volumes: map[string]struct{}{"/data": {}},
	}, base, top)
}

func TestPullWhiteoutsAndMount(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	ref := reg.push(t, "test/white:1", whiteoutImage(t))
	s := openStore(t, Options{})
	var progMu sync.Mutex
	prog := map[string]Progress{}
	img, err := s.Pull(context.Background(), ref, nil, func(p Progress) {
		progMu.Lock()
		prog[p.Layer] = p
		progMu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.RepoTags, []string{ref}) || len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], reg.host+"/test/white@sha256:") {
		t.Fatalf("names: tags %v digests %v", img.RepoTags, img.RepoDigests)
	}
	if len(img.ChainIDs) != 2 || img.Config.User != "1000:1000" || img.Config.WorkingDir != "/work" ||
		img.Config.StopSignal != "SIGINT" || img.Config.Labels["l"] != "v" || !slices.Equal(img.Config.Cmd, []string{"/bin/sh"}) ||
		!slices.Equal(img.Config.Entrypoint, []string{"/init"}) || len(img.Config.Volumes) != 1 {
		t.Fatalf("config not carried: %+v", img.Config)
	}
	var sum int64
	for _, p := range prog {
		if p.Done != p.Total {
			t.Errorf("progress of %s ended at %d/%d", p.Layer, p.Done, p.Total)
		}
		sum += p.Total
	}
	if len(prog) != 2 || sum != img.Size || img.Size <= 0 {
		t.Fatalf("progress %v, size %d", prog, img.Size)
	}

	// Whiteouts in the top snapshot are overlay's.
	topDir := s.snapshotPath(img.ChainIDs[1])
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(topDir, "a/x"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout a/x: %v mode %o rdev %d", err, st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(topDir, "c"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque c: %v %q", err, buf[:n])
	}
	baseDir := s.snapshotPath(img.ChainIDs[0])
	if err := unix.Lstat(filepath.Join(baseDir, "bin/suid"), &st); err != nil || st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Nlink != 2 {
		t.Fatalf("bin/suid: %v mode %o uid %d nlink %d", err, st.Mode&0o7777, st.Uid, st.Nlink)
	}
	if l, err := os.Readlink(filepath.Join(baseDir, "bin/sh")); err != nil || l != "/bin/busybox" {
		t.Fatalf("symlink: %q %v", l, err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(baseDir, "cap"), "user.hull", buf); err != nil || string(buf[:n]) != "yes" {
		t.Fatalf("xattr: %v", err)
	}

	// The container view applies them.
	rfs, err := s.PrepareRootfs("ctr1", img.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("ctr1") })
	root := mount(t, rfs)
	if _, err := os.Lstat(filepath.Join(root, "a/x")); !os.IsNotExist(err) {
		t.Errorf("a/x visible through whiteout: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "c/old")); !os.IsNotExist(err) {
		t.Errorf("c/old visible through opaque dir: %v", err)
	}
	if got := readFile(t, filepath.Join(root, "a/y")); got != "y2" {
		t.Errorf("a/y = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "c/new")); got != "new" {
		t.Errorf("c/new = %q", got)
	}
	if err := os.WriteFile(filepath.Join(root, "written"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(rfs.Upper, "written")); got != "w" {
		t.Errorf("upper did not get the write: %q", got)
	}
	if _, err := s.PrepareRootfs("ctr1", img.ID); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("second PrepareRootfs: %v", err)
	}

	// Read-only view.
	view, err := s.View(ref)
	if err != nil {
		t.Fatal(err)
	}
	vroot := mount(t, view)
	if got := readFile(t, filepath.Join(vroot, "a/y")); got != "y2" {
		t.Errorf("view a/y = %q", got)
	}
	if err := os.WriteFile(filepath.Join(vroot, "nope"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into view: %v, want EROFS", err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp not empty after pull: %v", left)
	}
}

func TestPullIndexSelectsPlatform(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	mk := func(arch, variant string) mutate.IndexAddendum {
		img := image(t, v1.Config{Cmd: []string{arch + variant}}, layer(t, "gzip", file("arch", arch+variant)))
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Architecture, cf.Variant = arch, variant
		img, _ = mutate.ConfigFile(img, cf)
		return mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch, Variant: variant}}}
	}
	idx := mutate.AppendManifests(empty.Index, mk("arm64", ""), mk("amd64", ""), mk("arm", "v6"), mk("arm", "v7"),
		mutate.IndexAddendum{Add: image(t, v1.Config{}, layer(t, "gzip", file("att", "x"))),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}})
	ref := reg.pushIndex(t, "test/multi:1", idx)
	idxDigest, _ := idx.Digest()
	// The same index as a Docker manifest list.
	dockerIdx := mutate.IndexMediaType(idx, types.DockerManifestList)
	dockerRef := reg.pushIndex(t, "test/multi:docker", dockerIdx)
	s := openStore(t, Options{Platform: "linux/arm/v6"})
	if img, err := s.Pull(context.Background(), dockerRef, nil, nil); err != nil {
		t.Fatalf("manifest list: %v", err)
	} else if got := readFile(t, filepath.Join(s.snapshotPath(img.ChainIDs[0]), "arch")); got != "armv6" {
		t.Errorf("manifest list for arm/v6 gave %q", got)
	}

	for _, tc := range []struct{ platform, want string }{
		{"", "amd64"}, {"linux/arm/v7", "armv7"}, {"linux/arm64/v8", "arm64"},
	} {
		s := openStore(t, Options{Platform: tc.platform})
		img, err := s.Pull(context.Background(), ref, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.platform, err)
		}
		if got := readFile(t, filepath.Join(s.snapshotPath(img.ChainIDs[0]), "arch")); got != tc.want {
			t.Errorf("platform %q got layer of %q", tc.platform, got)
		}
		if want := reg.host + "/test/multi@" + idxDigest.String(); !slices.Equal(img.RepoDigests, []string{want}) {
			t.Errorf("repo digests %v, want the index digest %s", img.RepoDigests, want)
		}
		if _, err := s.Get(img.RepoDigests[0]); err != nil {
			t.Errorf("Get by repo digest: %v", err)
		}
	}
	s = openStore(t, Options{Platform: "linux/s390x"})
	if _, err := s.Pull(context.Background(), ref, nil, nil); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("pull for a missing platform: %v, want NotFound", err)
	}
}

func TestPullCompressions(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	img := image(t, v1.Config{},
		layer(t, "gzip", file("g", "gzip")),
		layer(t, "zstd", file("z", "zstd")),
		layer(t, "none", file("n", "none")))
	oci := mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	for kind, im := range map[string]v1.Image{"docker": img, "oci": oci} {
		ref := reg.push(t, "test/comp:"+kind, im)
		s := openStore(t, Options{})
		got, err := s.Pull(context.Background(), ref, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		raw, err := s.readBlob(got.ManifestDigest)
		if err != nil {
			t.Fatal(err)
		}
		wantMT := map[string]string{"docker": string(types.DockerManifestSchema2), "oci": string(types.OCIManifestSchema1)}[kind]
		if !strings.Contains(string(raw), wantMT) {
			t.Errorf("%s: stored manifest is not %s", kind, wantMT)
		}
		for i, f := range []string{"g", "z", "n"} {
			want := map[string]string{"g": "gzip", "z": "zstd", "n": "none"}[f]
			if c := readFile(t, filepath.Join(s.snapshotPath(got.ChainIDs[i]), f)); c != want {
				t.Errorf("%s: layer %d file %s = %q", kind, i, f, c)
			}
		}
	}
}

func TestPullCorruptBlobRejected(t *testing.T) {
	needRoot(t)
	l := layer(t, "gzip", file("f", strings.Repeat("data", 1000)))
	bad := digestOf(t, l)
	// The registry serves the blob with one byte changed, same length.
	reg := newRegistry(t, func(h http.Handler) http.Handler { return corruptingHandler(h, bad) })
	ref := reg.push(t, "test/corrupt:1", image(t, v1.Config{}, l))
	s := openStore(t, Options{})
	_, err := s.Pull(context.Background(), ref, nil, nil)
	t.Logf("corrupt pull: %v", err)
	if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(bad, "sha256:")) {
		t.Fatalf("corrupt blob: err %v does not name %s", err, bad)
	}
	imgs, _ := s.List()
	if len(imgs) != 0 {
		t.Errorf("corrupt pull left images %v", imgs)
	}
	if exists(s.blobPath(bad)) {
		t.Error("corrupt blob stored")
	}
	if ents, _ := os.ReadDir(s.path("snapshots")); len(ents) != 0 {
		t.Errorf("corrupt pull left snapshots %v", ents)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp not empty: %v", left)
	}
}

func TestPullTruncatedBlobRejected(t *testing.T) {
	needRoot(t)
	l := layer(t, "gzip", file("f", strings.Repeat("data", 100000)))
	bad := digestOf(t, l)
	reg := newRegistry(t, func(h http.Handler) http.Handler { return damagingHandler(h, bad, true) })
	ref := reg.push(t, "test/trunc:1", image(t, v1.Config{}, l))
	s := openStore(t, Options{})
	_, err := s.Pull(context.Background(), ref, nil, nil)
	t.Logf("truncated pull: %v", err)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("truncated blob: err %v does not name %s", err, bad)
	}
	if imgs, _ := s.List(); len(imgs) != 0 || exists(s.blobPath(bad)) {
		t.Errorf("truncated pull left images %v or the blob", imgs)
	}
}

func TestConcurrentPullsFetchOnce(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	l1 := layer(t, "gzip", file("one", strings.Repeat("1", 1<<20)))
	l2 := layer(t, "gzip", file("two", strings.Repeat("2", 1<<20)))
	ref := reg.push(t, "test/conc:1", image(t, v1.Config{}, l1, l2))
	s := openStore(t, Options{})
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := s.Pull(context.Background(), ref, nil, nil)
			errs[i] = err
			if err == nil {
				ids[i] = img.ID
			}
		}()
	}
	wg.Wait()
	for i := range 10 {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("pull %d: %v id %s", i, errs[i], ids[i])
		}
	}
	for _, l := range []v1.Layer{l1, l2} {
		if n := reg.blobGets(digestOf(t, l)); n != 1 {
			t.Errorf("layer %s fetched %d times, want 1", digestOf(t, l), n)
		}
	}
	// A second pull of a present image fetches no layer again.
	if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := reg.blobGets(digestOf(t, l1)); n != 1 {
		t.Errorf("re-pull fetched the layer again (%d)", n)
	}
}

func TestPullCancelLeavesNothing(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	ref := reg.push(t, "test/cancel:1", image(t, v1.Config{}, layer(t, "gzip", file("f", "x"))))
	s := openStore(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Pull(ctx, ref, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	// The next caller starts afresh and succeeds.
	if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// TestManyLayersMount mounts an image whose lower paths exceed one page of
// mount data, with the new mount API and with the legacy short-link path.
func TestManyLayersMount(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, nil)
	var layers []v1.Layer
	for i := range 60 {
		layers = append(layers, layer(t, "gzip", file(fmt.Sprintf("f%02d", i), fmt.Sprint(i)), file("top", fmt.Sprint(i))))
	}
	ref := reg.push(t, "test/many:1", image(t, v1.Config{}, layers...))
	s := openStore(t, Options{})
	img, err := s.Pull(context.Background(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rfs, err := s.PrepareRootfs("many", img.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.RemoveRootfs("many") })
	if d := legacyData(rfs.Lower, rfs.Upper, rfs.Work, false); len(d) < os.Getpagesize() {
		t.Fatalf("test needs mount data over a page, has %d bytes", len(d))
	}
	root := mount(t, rfs)
	if got := readFile(t, filepath.Join(root, "top")); got != "59" {
		t.Errorf("top = %q, want the top layer's", got)
	}
	if got := readFile(t, filepath.Join(root, "f00")); got != "0" {
		t.Errorf("f00 = %q", got)
	}
	// The fallback for kernels without lowerdir+.
	view, err := s.View(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := view.mountLegacy(target, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	if got := readFile(t, filepath.Join(target, "top")); got != "59" {
		t.Errorf("legacy mount top = %q", got)
	}
}
