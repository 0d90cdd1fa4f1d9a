package image

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// GC deletes blobs and snapshots no image record references, keeping
// everything a container rootfs or an in-flight pull or import uses.
func (s *Store) GC(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.gc()
}

func (s *Store) gc() error {
	trash, err := s.tempDir("gc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(trash)
	// Decide and move aside under the lock, delete (slow) after it.
	s.mu.Lock()
	err = s.collectLocked(trash)
	s.mu.Unlock()
	return err
}

func (s *Store) collectLocked(trash string) error {
	keep := map[string]bool{}
	for k := range s.leases {
		keep[k] = true
	}
	for _, r := range s.images {
		keep[r.ID] = true
		keep[r.ManifestDigest] = true
		if r.IndexDigest != "" {
			keep[r.IndexDigest] = true
		}
		for _, l := range r.Layers {
			keep[l.Digest.String()] = true
		}
		for _, c := range r.ChainIDs {
			keep[c] = true
		}
	}
	used, err := s.containersUsing()
	if err != nil {
		return err
	}
	for c := range used {
		keep[c] = true
	}
	n := 0
	for _, dir := range []string{"blobs/sha256", "snapshots"} {
		ents, err := os.ReadDir(s.path(dir))
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		for _, e := range ents {
			if dir == "snapshots" && e.Name() == "empty" {
				continue
			}
			if keep["sha256:"+e.Name()] {
				continue
			}
			n++
			if err := os.Rename(s.path(dir, e.Name()), filepath.Join(trash, fmt.Sprintf("%d", n))); err != nil {
				return fmt.Errorf("gc %s/%s: %w", dir, e.Name(), err)
			}
		}
	}
	// Short links whose snapshot is gone.
	links, _ := os.ReadDir(s.path("l"))
	for _, e := range links {
		p := s.path("l", e.Name())
		if _, err := os.Stat(p); err != nil {
			_ = os.Remove(p)
		}
	}
	return nil
}

// FsInfo reports the space and inodes used by stored content and
// snapshots (what the CRI's ImageFsInfo wants) and the root directory as
// the mountpoint. Hard-linked files count once.
func (s *Store) FsInfo() (bytes, inodes uint64, mountpoint string, err error) {
	seen := map[uint64]bool{}
	for _, d := range []string{"blobs", "snapshots"} {
		err = filepath.WalkDir(s.path(d), func(p string, e fs.DirEntry, werr error) error {
			if werr != nil {
				// Entries can vanish under a concurrent GC; count what remains.
				if os.IsNotExist(werr) {
					return nil
				}
				return werr
			}
			info, err := e.Info()
			if err != nil {
				return nil
			}
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok || seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
			inodes++
			bytes += uint64(st.Blocks) * 512
			return nil
		})
		if err != nil {
			return 0, 0, "", fmt.Errorf("image fs usage: %w", err)
		}
	}
	return bytes, inodes, s.root, nil
}
