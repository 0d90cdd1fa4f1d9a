package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"hull/internal/errdefs"
)

// Progress reports how much of one layer has been fetched.
type Progress struct {
	Layer       string // compressed layer digest
	Done, Total int64
}

// layerFlight lets concurrent pulls sharing a layer unpack it once.
type layerFlight struct {
	done chan struct{}
	err  error
}

// layerJob is everything needed to materialize one layer.
type layerJob struct {
	desc    ocispec.Descriptor
	diffID  string
	chainID string
	// open returns the compressed blob stream (from a registry or a file).
	open func(ctx context.Context) (io.ReadCloser, error)
	// keepBlob stores the compressed blob in the content store.
	keepBlob bool
	// selfVerifying streams fail at EOF unless their content matches the
	// digest (go-containerregistry's verifying reader): hashing them a
	// second time would only cost CPU.
	selfVerifying bool
}

// chainIDs computes chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = sha256Digest([]byte(out[i-1] + " " + d))
	}
	return out
}

// ensureLayer makes sure the snapshot (and, if asked, the blob) of j exist,
// joining another goroutine already producing the same chain ID.
func (s *Store) ensureLayer(ctx context.Context, j layerJob, report func(Progress)) error {
	if s.layerReady(j) {
		report(Progress{Layer: j.desc.Digest.String(), Done: j.desc.Size, Total: j.desc.Size})
		return nil
	}
	s.flightMu.Lock()
	if f, ok := s.layerFlights[j.chainID]; ok {
		s.flightMu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err == nil && s.layerReady(j) {
			report(Progress{Layer: j.desc.Digest.String(), Done: j.desc.Size, Total: j.desc.Size})
			return nil
		}
		// The other producer failed (maybe its caller gave up): try ourselves.
		return s.ensureLayer(ctx, j, report)
	}
	f := &layerFlight{done: make(chan struct{})}
	s.layerFlights[j.chainID] = f
	s.flightMu.Unlock()

	f.err = s.fetchLayer(ctx, j, report)

	s.flightMu.Lock()
	delete(s.layerFlights, j.chainID)
	s.flightMu.Unlock()
	close(f.done)
	return f.err
}

func (s *Store) layerReady(j layerJob) bool {
	if !exists(s.snapshotPath(j.chainID)) {
		return false
	}
	return !j.keepBlob || exists(s.blobPath(j.desc.Digest.String()))
}

// countingWriter reports progress as bytes pass through it, at most once
// per MiB so a progress bar does not slow the download.
type countingWriter struct {
	layer       string
	done, total int64
	last        int64
	report      func(Progress)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.done += int64(len(p))
	if c.done-c.last >= 1<<20 {
		c.last = c.done
		c.report(Progress{Layer: c.layer, Done: c.done, Total: c.total})
	}
	return len(p), nil
}

// fetchLayer streams one blob: compressed bytes go to the content store
// file and the compressed-digest hash while the decompressed stream is
// hashed for the diffID and unpacked into a fresh directory. Both are
// renamed into place only when every digest and the size check out.
func (s *Store) fetchLayer(ctx context.Context, j layerJob, report func(Progress)) (retErr error) {
	dgst := j.desc.Digest.String()
	if err := validDigest(dgst); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	if err := validDigest(j.diffID); err != nil {
		return fmt.Errorf("layer %s diffID: %w", dgst, err)
	}
	tmp, err := s.tempDir("layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	rc, err := j.open(ctx)
	if err != nil {
		return fmt.Errorf("fetch layer %s: %w", dgst, classifyRegistryError(err))
	}
	defer rc.Close()

	sinks := []io.Writer{}
	var compHash hash.Hash
	if !j.selfVerifying {
		compHash = sha256.New()
		sinks = append(sinks, compHash)
	}
	var blobFile *directWriter
	blobTmp := filepath.Join(tmp, "blob")
	needBlob := j.keepBlob && !exists(s.blobPath(dgst))
	if needBlob {
		blobFile, err = createDirectPath(blobTmp, s.directIO)
		if err != nil {
			return fmt.Errorf("layer %s: %w", dgst, err)
		}
		defer blobFile.Close()
		sinks = append(sinks, blobFile)
	}
	cw := &countingWriter{layer: dgst, total: j.desc.Size, report: report}
	sinks = append(sinks, cw)
	compressed := io.TeeReader(rc, io.MultiWriter(sinks...))

	dr, closeDR, err := decompressor(compressed)
	if err != nil {
		return fmt.Errorf("layer %s: %w", dgst, err)
	}
	defer closeDR()
	diffHash := sha256.New()
	diff := io.TeeReader(dr, diffHash)

	snap := s.snapshotPath(j.chainID)
	fsDir := filepath.Join(tmp, "fs")
	needSnap := !exists(snap)
	if needSnap {
		if err := os.Mkdir(fsDir, 0o755); err != nil {
			return fmt.Errorf("layer %s: %w", dgst, err)
		}
		err := unpackLayer(ctx, diff, fsDir, unpackOptions{
			allowDevices: s.opts.AllowDeviceNodes, sync: s.opts.SyncLayers, directIO: s.directIO, log: s.log,
		})
		if err != nil {
			// A corrupt blob usually surfaces as a bad tar or gzip stream:
			// report the digest mismatch, the cause, when there is one.
			if _, derr := io.Copy(io.Discard, compressed); derr != nil {
				return fmt.Errorf("layer %s: corrupt or truncated blob: %v (unpack: %v): %w",
					dgst, derr, err, errdefs.ErrFailedPrecondition)
			}
			if compHash != nil {
				if cerr := checkDigest(compHash, dgst, "layer"); cerr != nil {
					return cerr
				}
			}
			return fmt.Errorf("unpack layer %s: %w", dgst, err)
		}
	}
	// Tar readers stop at the end-of-archive marker; hash whatever follows too.
	if _, err := io.Copy(io.Discard, diff); err != nil {
		return fmt.Errorf("read layer %s: %w", dgst, err)
	}
	// Drain the compressed stream as well (trailing bytes after gzip's end).
	if _, err := io.Copy(io.Discard, compressed); err != nil {
		return fmt.Errorf("read layer %s: %w", dgst, err)
	}
	if compHash != nil {
		if err := checkDigest(compHash, dgst, "layer"); err != nil {
			return err
		}
	}
	if j.desc.Size > 0 && cw.done != j.desc.Size {
		return fmt.Errorf("layer %s: got %d bytes, manifest says %d: %w", dgst, cw.done, j.desc.Size, errdefs.ErrFailedPrecondition)
	}
	if err := checkDigest(diffHash, j.diffID, "uncompressed layer (diffID) of "+dgst); err != nil {
		return err
	}
	report(Progress{Layer: dgst, Done: cw.done, Total: j.desc.Size})

	if needBlob {
		if err := blobFile.close(blobFile.finish(s.opts.SyncLayers)); err != nil {
			return fmt.Errorf("layer %s: %w", dgst, err)
		}
		if err := os.Rename(blobTmp, s.blobPath(dgst)); err != nil {
			return fmt.Errorf("commit layer blob %s: %w", dgst, err)
		}
	}
	if needSnap {
		if err := os.Rename(fsDir, snap); err != nil && !errors.Is(err, os.ErrExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			return fmt.Errorf("commit snapshot %s: %w", j.chainID, err)
		}
	}
	return nil
}

func checkDigest(h hash.Hash, want, what string) error {
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if got != want {
		return fmt.Errorf("%s: content digest is %s, want %s (corrupt or truncated blob): %w",
			what, got, want, errdefs.ErrFailedPrecondition)
	}
	return nil
}
