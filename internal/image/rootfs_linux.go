package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Rootfs is the overlay a container (or an image view) starts from. Mount
// it at the container's rootfs path; whoever mounts it unmounts it.
type Rootfs struct {
	// Lower lists the layer directories, top layer first.
	Lower []string
	// Upper and Work are the container's writable directories; both are
	// empty for a read-only view.
	Upper, Work string

	// linkDir holds short symlinks for the legacy mount data fallback.
	linkDir string
	// root is the store's root, which holds every layer and the upper and
	// work dirs (MountIDMapped clones it).
	root string
}

// rootfsMeta is rootfs/<container id>/rootfs.json: it keeps the snapshots
// a container uses alive even after its image is removed.
type rootfsMeta struct {
	ImageID  string   `json:"imageID"`
	ChainIDs []string `json:"chainIDs"`
}

var validContainerID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// PrepareRootfs creates the writable upper and work directories of a
// container built on imageID (any reference Get accepts) and returns its
// Rootfs. It fails with ErrAlreadyExists when containerID already has one.
func (s *Store) PrepareRootfs(containerID, imageID string) (*Rootfs, error) {
	if !validContainerID.MatchString(containerID) {
		return nil, fmt.Errorf("container id %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	// A lease keeps GC from deleting the image's snapshots between the
	// lookup and the rootfs.json that protects them from then on.
	s.mu.RLock()
	r, err := s.lookupLocked(imageID)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	release := s.lease(r.ChainIDs...)
	defer release()
	for _, c := range r.ChainIDs {
		// GC may have run between the lookup and the lease (the image was
		// removed meanwhile): refuse rather than hand out missing layers.
		if !exists(s.snapshotPath(c)) {
			return nil, fmt.Errorf("image %s: layer %s is gone: %w", r.ID, c, errdefs.ErrNotFound)
		}
	}
	dir := s.path("rootfs", containerID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("rootfs of container %s: %w", containerID, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("rootfs of container %s: %w", containerID, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	b, err := json.Marshal(rootfsMeta{ImageID: r.ID, ChainIDs: r.ChainIDs})
	if err != nil {
		return nil, fmt.Errorf("rootfs of container %s: %w", containerID, err)
	}
	// No fsync: after a power loss the container is gone anyway, and the
	// daemon removes rootfs dirs it has no record of (ListRootfs).
	if err := writeFileRename(filepath.Join(dir, "rootfs.json"), b); err != nil {
		return nil, err
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("rootfs of container %s: %w", containerID, err)
		}
	}
	ok = true
	return &Rootfs{
		Lower: s.lowers(r.ChainIDs), Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"),
		linkDir: s.path("l"), root: s.root,
	}, nil
}

// Rootfs returns the Rootfs of a container prepared earlier (after a
// restart, for instance), or ErrNotFound.
func (s *Store) Rootfs(containerID string) (*Rootfs, error) {
	if !validContainerID.MatchString(containerID) {
		return nil, fmt.Errorf("container id %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	dir := s.path("rootfs", containerID)
	b, err := os.ReadFile(filepath.Join(dir, "rootfs.json"))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("rootfs of container %s: %w", containerID, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs of container %s: %w", containerID, err)
	}
	var m rootfsMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("rootfs of container %s: %v: %w", containerID, err, errdefs.ErrFailedPrecondition)
	}
	return &Rootfs{Lower: s.lowers(m.ChainIDs), Upper: filepath.Join(dir, "upper"),
		Work: filepath.Join(dir, "work"), linkDir: s.path("l"), root: s.root}, nil
}

// ListRootfs returns the IDs of containers that have a rootfs, so a daemon
// restarting can remove those of containers it has no record of.
func (s *Store) ListRootfs() ([]string, error) {
	ents, err := os.ReadDir(s.path("rootfs"))
	if err != nil {
		return nil, fmt.Errorf("list container rootfs: %w", err)
	}
	ids := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() && validContainerID.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// View returns a read-only Rootfs of an image, for inspection. Callers must
// unmount it before removing the image.
func (s *Store) View(imageID string) (*Rootfs, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.lookupLocked(imageID)
	if err != nil {
		return nil, err
	}
	return &Rootfs{Lower: s.lowers(r.ChainIDs), linkDir: s.path("l")}, nil
}

// lowers returns snapshot dirs top first; an image without layers gets one
// empty directory so overlay still has a lower.
func (s *Store) lowers(chains []string) []string {
	if len(chains) == 0 {
		empty := s.path("snapshots", "empty")
		_ = os.MkdirAll(empty, 0o755)
		return []string{empty}
	}
	out := make([]string, 0, len(chains))
	for i := len(chains) - 1; i >= 0; i-- {
		out = append(out, s.snapshotPath(chains[i]))
	}
	return out
}

// RemoveRootfs deletes a container's writable directories. Removing one
// that does not exist succeeds.
func (s *Store) RemoveRootfs(containerID string) error {
	if !validContainerID.MatchString(containerID) {
		return fmt.Errorf("container id %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	dir := s.path("rootfs", containerID)
	// Drop rootfs.json first so a crash mid-way leaves nothing that pins snapshots.
	if err := os.Remove(filepath.Join(dir, "rootfs.json")); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove rootfs of container %s: %w", containerID, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove rootfs of container %s: %w", containerID, err)
	}
	return nil
}

// Mount mounts the overlay at target. It uses the new mount API, adding
// each lower with "lowerdir+" (Linux ≥ 6.8) so any number of layers fits,
// and falls back to mount(2) with short symlinked lower paths on older
// kernels. A view with a single layer is a read-only bind mount.
func (r *Rootfs) Mount(target string) error {
	if len(r.Lower) == 0 {
		return fmt.Errorf("rootfs has no layers: %w", errdefs.ErrInvalidArgument)
	}
	readOnly := r.Upper == ""
	if readOnly && len(r.Lower) == 1 {
		if err := unix.Mount(r.Lower[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", r.Lower[0], target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("read-only remount of %s: %w", target, err)
		}
		return nil
	}
	err := r.mountNewAPI(target, readOnly)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return r.mountLegacy(target, readOnly)
}

func (r *Rootfs) mountNewAPI(target string, readOnly bool) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fsfd)
	for _, l := range r.Lower {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			return fmt.Errorf("overlay lowerdir+ %s: %w", l, err)
		}
	}
	if !readOnly {
		if err := unix.FsconfigSetString(fsfd, "upperdir", r.Upper); err != nil {
			return fmt.Errorf("overlay upperdir %s: %w", r.Upper, err)
		}
		if err := unix.FsconfigSetString(fsfd, "workdir", r.Work); err != nil {
			return fmt.Errorf("overlay workdir %s: %w", r.Work, err)
		}
	}
	// With the inode index on (a kernel build option), overlay ties an upper
	// to the lowers it first saw; containers share lowers, so keep it off.
	// Kernels without the option just keep their default.
	_ = unix.FsconfigSetString(fsfd, "index", "off")
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}
	attrs := 0
	if readOnly {
		attrs = unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		// Not a fallback case: the target itself is the problem.
		return fmt.Errorf("move overlay mount to %s: %w (%w)", target, err, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// mountLegacy mounts with a data string, which the kernel limits to one
// page: when full paths do not fit, lowers are replaced by short symlinks.
func (r *Rootfs) mountLegacy(target string, readOnly bool) error {
	lowers := r.Lower
	data := legacyData(lowers, r.Upper, r.Work, readOnly)
	if len(data) >= os.Getpagesize() && r.linkDir != "" {
		short := make([]string, len(lowers))
		for i, l := range lowers {
			sum := sha256.Sum256([]byte(l))
			link := filepath.Join(r.linkDir, hex.EncodeToString(sum[:])[:12])
			if cur, err := os.Readlink(link); err != nil || cur != l {
				_ = os.Remove(link)
				if err := os.Symlink(l, link); err != nil {
					return fmt.Errorf("short link for %s: %w", l, err)
				}
			}
			short[i] = link
		}
		data = legacyData(short, r.Upper, r.Work, readOnly)
	}
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("overlay mount data for %d layers is %d bytes, over the page limit: %w",
			len(lowers), len(data), errdefs.ErrResourceExhausted)
	}
	flags := uintptr(0)
	if readOnly {
		flags = unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

func legacyData(lowers []string, upper, work string, readOnly bool) string {
	d := "lowerdir=" + strings.Join(lowers, ":")
	if !readOnly {
		d += ",upperdir=" + upper + ",workdir=" + work
	}
	return d
}

// containersUsing returns the chain IDs pinned by container rootfs dirs.
func (s *Store) containersUsing() (map[string]bool, error) {
	ents, err := os.ReadDir(s.path("rootfs"))
	if err != nil {
		return nil, fmt.Errorf("list container rootfs: %w", err)
	}
	used := map[string]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.path("rootfs"), e.Name(), "rootfs.json"))
		if err != nil {
			continue
		}
		var m rootfsMeta
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		for _, c := range m.ChainIDs {
			used[c] = true
		}
	}
	return used, nil
}
