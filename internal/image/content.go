package image

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"hull/internal/errdefs"
)

func sha256Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// validDigest checks that d is "sha256:<64 hex>", the only algorithm hull
// stores; anything else could not be a safe file name either.
func validDigest(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || !isHexPrefix(h) {
		return fmt.Errorf("digest %q: want sha256:<64 hex digits>: %w", d, errdefs.ErrInvalidArgument)
	}
	return nil
}

// writeBlob stores small content (manifests, configs) after checking it
// against its digest.
func (s *Store) writeBlob(dgst string, b []byte) error {
	if err := validDigest(dgst); err != nil {
		return err
	}
	if got := sha256Digest(b); got != dgst {
		return fmt.Errorf("blob %s: content has digest %s: %w", dgst, got, errdefs.ErrInvalidArgument)
	}
	p := s.blobPath(dgst)
	if exists(p) {
		return nil
	}
	if err := writeViaTemp(s.path("tmp"), "blob-", p, b); err != nil {
		return fmt.Errorf("store blob %s: %w", dgst, err)
	}
	return nil
}

// readBlob returns stored content, verifying it.
func (s *Store) readBlob(dgst string) ([]byte, error) {
	if err := validDigest(dgst); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.blobPath(dgst))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("blob %s: %w", dgst, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	if got := sha256Digest(b); got != dgst {
		return nil, fmt.Errorf("blob %s is corrupt (content digest %s): %w", dgst, got, errdefs.ErrFailedPrecondition)
	}
	return b, nil
}

// decompressor wraps r (a layer blob) with the decompressor its first bytes
// call for: gzip, zstd, or none. The media type is not trusted because
// tools label zstd and plain layers inconsistently.
func decompressor(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read layer header: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip layer: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd layer: %w", err)
		}
		return zr, zr.Close, nil
	default:
		return br, func() {}, nil
	}
}
