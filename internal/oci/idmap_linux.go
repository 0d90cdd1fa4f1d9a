package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Idmapped bind mounts (runtime-spec 1.2 mounts[].uidMappings/gidMappings,
// options idmap/ridmap). The kernel lets only a task privileged over the
// source filesystem's owner (the host user namespace) attach an idmapping,
// which the init inside a user namespace is not. So the parent makes each
// one as a detached mount (open_tree(OPEN_TREE_CLONE) + mount_setattr(
// MOUNT_ATTR_IDMAP) with a user namespace holding the mapping), passes the
// fds over the sync socket before the config (SCM_RIGHTS; the count in
// envMountFDs), and the init moves them onto their mount points
// (move_mount) where it would have bind-mounted the source.

const envMountFDs = "_HULL_MOUNTFDS" // number of idmapped mount fds sent before the config

// isIDMapped reports whether a mount asks for an idmapping.
func isIDMapped(m specs.Mount) bool {
	return len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 || hasOpt(m.Options, "idmap") || hasOpt(m.Options, "ridmap")
}

// validateIDMapMounts: idmapped mounts are bind mounts, give both maps or
// neither, and need the container to have a user namespace (whose
// mappings they default to).
func validateIDMapMounts(s *specs.Spec, hasUser bool) error {
	for i, m := range s.Mounts {
		if !isIDMapped(m) {
			continue
		}
		o := parseMountOptions(m.Options)
		if m.Type != "bind" && o.flags&unix.MS_BIND == 0 {
			return invalid("mounts[%d] (%s): uidMappings/gidMappings or idmap are only supported on bind mounts, not type %q", i, m.Destination, m.Type)
		}
		if !hasUser {
			return invalid("mounts[%d] (%s): uidMappings/gidMappings or idmap need a user namespace in linux.namespaces", i, m.Destination)
		}
		if (len(m.UIDMappings) == 0) != (len(m.GIDMappings) == 0) {
			return invalid("mounts[%d] (%s): give both uidMappings and gidMappings or neither", i, m.Destination)
		}
		for _, ms := range [][]specs.LinuxIDMapping{m.UIDMappings, m.GIDMappings} {
			for _, x := range ms {
				if x.Size == 0 {
					return invalid("mounts[%d] (%s): an id mapping has size 0", i, m.Destination)
				}
			}
		}
	}
	return nil
}

// idmapMounts are the detached idmapped mounts of a container being
// created, in the order of their indexes in spec.Mounts.
type idmapMounts struct {
	index []int
	trees []*os.File
}

func (im *idmapMounts) Close() {
	for _, f := range im.trees {
		f.Close()
	}
}

// prepareIDMapMounts makes the detached idmapped mounts of spec. joined is
// the user namespace the container joins by path (nil for a new one).
func prepareIDMapMounts(spec *specs.Spec, bundle string, joined *os.File) (ret *idmapMounts, retErr error) {
	im := &idmapMounts{}
	defer func() {
		if retErr != nil {
			im.Close()
		}
	}()
	userns := map[string]*os.File{} // by mapping text
	defer func() {
		for _, f := range userns {
			f.Close()
		}
	}()
	for i, m := range spec.Mounts {
		if !isIDMapped(m) {
			continue
		}
		uids, gids := m.UIDMappings, m.GIDMappings
		if len(uids) == 0 {
			uids, gids = spec.Linux.UIDMappings, spec.Linux.GIDMappings
		}
		var ns *os.File
		if len(uids) == 0 {
			// idmap without mappings in a joined user namespace: its own.
			if joined == nil {
				return nil, invalid("mounts[%d] (%s): idmap without mappings needs linux.uidMappings or a user namespace path", i, m.Destination)
			}
			ns = joined
		} else {
			key := idMapText(uids) + "/" + idMapText(gids)
			if ns = userns[key]; ns == nil {
				f, err := newUserNS(uids, gids)
				if err != nil {
					return nil, fmt.Errorf("mounts[%d] (%s): user namespace for the idmapping: %w", i, m.Destination, err)
				}
				userns[key], ns = f, f
			}
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		o := parseMountOptions(m.Options)
		recursive := hasOpt(m.Options, "ridmap")
		flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
		if o.flags&unix.MS_REC != 0 {
			flags |= unix.AT_RECURSIVE
		}
		tree, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
		if err != nil {
			return nil, fmt.Errorf("mounts[%d]: open_tree %s: %w", i, src, openTreeErr(err))
		}
		f := os.NewFile(uintptr(tree), "idmapped:"+src)
		attrFlags := unix.AT_EMPTY_PATH
		if recursive {
			attrFlags |= unix.AT_RECURSIVE
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
		if err := unix.MountSetattr(tree, "", uint(attrFlags), &attr); err != nil {
			f.Close()
			return nil, fmt.Errorf("mounts[%d]: idmap %s (does its filesystem support idmapped mounts?): %w", i, src, err)
		}
		im.index = append(im.index, i)
		im.trees = append(im.trees, f)
	}
	return im, nil
}

func openTreeErr(err error) error {
	if err == unix.ENOENT {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}

// sendMountFDs passes the trees over the sync socket (before the config).
func sendMountFDs(sock *os.File, trees []*os.File) error {
	fds := make([]int, len(trees))
	for i, f := range trees {
		fds[i] = int(f.Fd())
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("send idmapped mounts: %w", err)
	}
	return nil
}

// recvMountFDs is the init's side of sendMountFDs: called before anything
// reads the socket, with the count from envMountFDs.
func recvMountFDs(sock int) ([]*os.File, error) {
	n, err := strconv.Atoi(os.Getenv(envMountFDs))
	os.Unsetenv(envMountFDs)
	if err != nil || n <= 0 {
		return nil, nil
	}
	oob := make([]byte, unix.CmsgSpace(4*n))
	buf := make([]byte, 1)
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive idmapped mounts: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive idmapped mounts: bad control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != n {
		return nil, fmt.Errorf("receive idmapped mounts: got %d of %d", len(fds), n)
	}
	out := make([]*os.File, n)
	for i, fd := range fds {
		out[i] = os.NewFile(uintptr(fd), "idmapped-mount")
	}
	return out, nil
}

// moveIDMapped attaches a detached idmapped mount on the mount point.
func moveIDMapped(tree *os.File, t *mountTarget) error {
	if err := unix.MoveMount(int(tree.Fd()), "", int(t.h.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move idmapped mount: %w", err)
	}
	return nil
}

func hasIDMapped(ms []specs.Mount) bool {
	for _, m := range ms {
		if isIDMapped(m) {
			return true
		}
	}
	return false
}
