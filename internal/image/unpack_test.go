package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

func unpackOpts() unpackOptions {
	// O_DIRECT for big files, as a store on a machine where it is faster.
	return unpackOptions{directIO: true, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	needRoot(t)
	for name, es := range map[string][]entry{
		"dotdot file":         {file("../escaped", "x")},
		"nested dotdot":       {dir("a/"), file("a/../../escaped", "x")},
		"symlink parent":      {{name: "lnk", typ: tar.TypeSymlink, link: "/"}, file("lnk/escaped", "x")},
		"relative symlink":    {{name: "up", typ: tar.TypeSymlink, link: "../.."}, file("up/escaped", "x")},
		"hardlink outside":    {{name: "h", typ: tar.TypeLink, link: "../escaped"}},
		"whiteout under link": {{name: "w", typ: tar.TypeSymlink, link: "/"}, {name: "w/.wh.escaped", typ: tar.TypeReg}},
		"whiteout of parent":  {dir("d/"), {name: "d/.wh...", typ: tar.TypeReg}},
		"whiteout of root":    {{name: ".wh...", typ: tar.TypeReg}},
		"whiteout of self":    {dir("d/"), file("d/keep", "k"), {name: "d/.wh..", typ: tar.TypeReg}},
	} {
		t.Run(name, func(t *testing.T) {
			outer := t.TempDir()
			dest := filepath.Join(outer, "layer", "fs")
			if err := os.MkdirAll(dest, 0o755); err != nil {
				t.Fatal(err)
			}
			err := unpackLayer(context.Background(), bytes.NewReader(tarBytes(t, es...)), dest, unpackOpts())
			if !errors.Is(err, errEscape) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unpack: %v, want an escape error", err)
			}
			for _, p := range []string{filepath.Join(outer, "escaped"), filepath.Join(outer, "layer", "escaped"), "/escaped"} {
				if exists(p) {
					t.Errorf("%s was written", p)
				}
			}
		})
	}
}

func TestUnpackAbsoluteNamesStayInside(t *testing.T) {
	needRoot(t)
	dest := t.TempDir()
	err := unpackLayer(context.Background(), bytes.NewReader(tarBytes(t, file("/etc/hull-abs", "in"))), dest, unpackOpts())
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "etc/hull-abs")); got != "in" {
		t.Fatalf("got %q", got)
	}
	if exists("/etc/hull-abs") {
		t.Fatal("absolute name written to the host")
	}
}

func TestUnpackDeviceNodesSkippedUnlessAllowed(t *testing.T) {
	needRoot(t)
	dev := entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666}
	es := []entry{dir("dev/"), dev, {name: "dev/fifo", typ: tar.TypeFifo, mode: 0o600}}
	dest := t.TempDir()
	if err := unpackLayer(context.Background(), bytes.NewReader(tarBytes(t, es...)), dest, unpackOpts()); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dest, "dev/null")) {
		t.Error("device node created though not allowed")
	}
	if fi, err := os.Lstat(filepath.Join(dest, "dev/fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v", err)
	}
	dest2 := t.TempDir()
	o := unpackOpts()
	o.allowDevices = true
	if err := unpackLayer(context.Background(), bytes.NewReader(tarBytes(t, es...)), dest2, o); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dest2, "dev/null")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("allowed device node: %v", err)
	}
}

func TestUnpackReplacesEntries(t *testing.T) {
	needRoot(t)
	dest := t.TempDir()
	es := []entry{
		file("f", "first"), file("f", "second"),
		dir("d/"), file("d/inner", "x"), {name: "d", typ: tar.TypeSymlink, link: "target"},
		{name: "trusted", typ: tar.TypeReg, mode: 0o644, xattrs: map[string]string{"trusted.overlay.redirect": "/etc"}},
	}
	if err := unpackLayer(context.Background(), bytes.NewReader(tarBytes(t, es...)), dest, unpackOpts()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "f")); got != "second" {
		t.Errorf("f = %q", got)
	}
	if l, err := os.Readlink(filepath.Join(dest, "d")); err != nil || l != "target" {
		t.Errorf("d: %q %v", l, err)
	}
	if buf := make([]byte, 16); getxattr(filepath.Join(dest, "trusted"), "trusted.overlay.redirect", buf) {
		t.Error("layer forged an overlay xattr")
	}
}

// TestImportRefusesEscapingLayer imports a docker-save tarball whose layer
// has a ../ entry: the import fails and nothing is stored.
func TestImportRefusesEscapingLayer(t *testing.T) {
	needRoot(t)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes(t, file("../../evil", "x")))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img := image(t, v1.Config{}, l)
	var buf bytes.Buffer
	if err := tarball.Write(name.MustParseReference("evil:1"), img, &buf); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Options{})
	_, err = s.Import(context.Background(), &buf, "evil:1")
	if !errors.Is(err, errEscape) {
		t.Fatalf("import: %v, want an escape error", err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("images after refused import: %v", imgs)
	}
	if exists(filepath.Join(s.root, "..", "evil")) || exists(filepath.Join(s.path("snapshots"), "..", "..", "evil")) {
		t.Error("escape entry written")
	}
	// An outer archive entry that escapes is refused too.
	outer := tarBytes(t, file("../outside", "x"))
	if _, err := s.Import(context.Background(), bytes.NewReader(outer), ""); !errors.Is(err, errEscape) {
		t.Fatalf("outer escape: %v", err)
	}
}

func getxattr(p, name string, buf []byte) bool {
	_, err := unix.Lgetxattr(p, name, buf)
	return err == nil
}
