package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// MountIDMapped mounts the container's overlay at target so that the
// image's files appear owned through the user namespace usernsPath (a
// pinned /proc/PID/ns/user): host uid 0 shows as the namespace's root.
// Nothing in the image's layers is chowned.
//
// overlayfs itself cannot be idmapped, but it accepts idmapped lower
// layers: the store's root is cloned (open_tree), the clone idmapped
// (mount_setattr MOUNT_ATTR_IDMAP) and attached on a temporary directory,
// and the overlay built from the lower paths under it. The temporary mount
// is detached once the overlay holds its layers. The upper and work dirs
// stay unmapped: overlay works in them with the mounter's credentials
// (hulld, host uid 0), which an idmapped mount of this namespace cannot
// map (EOVERFLOW creating work/work). The container's fresh upper dir is
// instead owned by rootUID:rootGID, the host ids of the namespace's root,
// and what the container writes lands under its own host ids, as with
// containerd 2's idmapped overlay snapshots.
func (r *Rootfs) MountIDMapped(target, usernsPath string, rootUID, rootGID int) (retErr error) {
	if r.Upper == "" || r.root == "" {
		return fmt.Errorf("idmapped rootfs: only a container rootfs can be idmapped: %w", errdefs.ErrInvalidArgument)
	}
	ns, err := os.Open(usernsPath)
	if err != nil {
		return fmt.Errorf("idmapped rootfs: user namespace: %w", err)
	}
	defer ns.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, r.root, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("idmapped rootfs: clone %s: %w", r.root, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("idmapped rootfs: idmap the clone of %s: %w (%w)", r.root, err, errdefs.ErrFailedPrecondition)
	}
	// Beside upper and work, so it goes with the container's rootfs dir.
	// Only host root may pass (0700): the mount shows the whole store.
	tmp := filepath.Join(filepath.Dir(r.Upper), "idmap")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("idmapped rootfs: %w", err)
	}
	defer os.Remove(tmp)
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, tmp, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("idmapped rootfs: attach the idmapped clone on %s: %w", tmp, err)
	}
	// The overlay keeps its own references to the layers.
	defer func() {
		if err := unix.Unmount(tmp, unix.MNT_DETACH); err != nil && retErr == nil {
			retErr = fmt.Errorf("idmapped rootfs: detach %s: %w", tmp, err)
		}
	}()
	rebase := func(p string) (string, error) {
		rel, err := filepath.Rel(r.root, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("idmapped rootfs: layer %s is outside the store %s: %w", p, r.root, errdefs.ErrFailedPrecondition)
		}
		return filepath.Join(tmp, rel), nil
	}
	mapped := &Rootfs{}
	for _, l := range r.Lower {
		p, err := rebase(l)
		if err != nil {
			return err
		}
		mapped.Lower = append(mapped.Lower, p)
	}
	if err := os.Lchown(r.Upper, rootUID, rootGID); err != nil {
		return fmt.Errorf("idmapped rootfs: hand the upper dir to the pod's root: %w", err)
	}
	mapped.Upper, mapped.Work = r.Upper, r.Work
	if err := mapped.mountNewAPI(target, false); err == nil {
		return nil
	} else if !strings.Contains(err.Error(), "lowerdir+") {
		return err
	}
	// Before Linux 6.8 (no "lowerdir+"): the data string, no short links
	// (they would point at the unmapped layers).
	return mapped.mountLegacy(target, false)
}
