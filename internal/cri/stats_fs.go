package cri

import (
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// fsUsageTTL bounds how often a container's writable layer is walked: the
// kubelet asks for stats every few seconds, and a walk costs a stat per file.
const fsUsageTTL = 10 * time.Second

// fsUsageCache remembers the last walk of each container's upper dir.
// Safe for concurrent use.
type fsUsageCache struct {
	mu sync.Mutex
	m  map[string]fsUsage
}

type fsUsage struct {
	at            time.Time
	bytes, inodes uint64
}

// writableLayerUsage returns the bytes and inodes in the container's
// overlay upper dir (what it wrote on top of its image).
func (s *Service) writableLayerUsage(id string) (uint64, uint64) {
	s.fsUsage.mu.Lock()
	if u, ok := s.fsUsage.m[id]; ok && time.Since(u.at) < fsUsageTTL {
		s.fsUsage.mu.Unlock()
		return u.bytes, u.inodes
	}
	s.fsUsage.mu.Unlock()
	rf, err := s.opts.Images.Rootfs(id)
	if err != nil || rf.Upper == "" {
		return 0, 0
	}
	var u fsUsage
	_ = filepath.WalkDir(rf.Upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == rf.Upper {
			return nil
		}
		u.inodes++
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				u.bytes += uint64(st.Blocks) * 512
			}
		}
		return nil
	})
	u.at = time.Now()
	s.fsUsage.mu.Lock()
	if s.fsUsage.m == nil {
		s.fsUsage.m = map[string]fsUsage{}
	}
	s.fsUsage.m[id] = u
	s.fsUsage.mu.Unlock()
	return u.bytes, u.inodes
}

func (s *Service) forgetFsUsage(id string) {
	s.fsUsage.mu.Lock()
	delete(s.fsUsage.m, id)
	s.fsUsage.mu.Unlock()
}
