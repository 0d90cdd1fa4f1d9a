package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// unpackOptions tune unpackLayer.
type unpackOptions struct {
	allowDevices bool
	sync         bool
	directIO     bool // big files with O_DIRECT (Store.directIO)
	log          *slog.Logger
}

// unpacker extracts one layer tar into an empty directory, converting
// whiteouts to overlay's format (.wh.x → 0/0 char device, .wh..wh..opq →
// trusted.overlay.opaque=y).
//
// Safety: every file operation is relative to a directory fd reached from
// the root by openat(O_NOFOLLOW) one component at a time, so no symlink (in
// this layer) can redirect a write outside the directory; names with ".."
// that climb out are refused. Hull never unpacks on top of a lower layer, so
// the layer's own entries are the only symlinks that exist.
type unpacker struct {
	root     int // fd of the destination directory
	opts     unpackOptions
	buf      []byte
	dirTimes []dirTime
	// one-entry cache of the last parent directory opened
	lastDir string
	lastFd  int
}

type dirTime struct {
	path         string
	atime, mtime time.Time
}

var errEscape = errors.New("tar entry escapes the layer")

// unpackLayer extracts tar stream r into dest, an empty directory.
func unpackLayer(ctx context.Context, r io.Reader, dest string, o unpackOptions) error {
	fd, err := unix.Open(dest, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dest, err)
	}
	u := &unpacker{root: fd, opts: o, buf: make([]byte, 1<<20), lastFd: -1}
	defer u.close()
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
	u.applyDirTimes()
	return nil
}

func (u *unpacker) close() {
	u.dropCache()
	_ = unix.Close(u.root)
}

func (u *unpacker) dropCache() {
	if u.lastFd >= 0 {
		_ = unix.Close(u.lastFd)
	}
	u.lastFd, u.lastDir = -1, ""
}

// cleanName turns a tar name into a path relative to the layer root, or
// refuses it when it climbs out. Absolute names are taken as rooted at the
// layer, as tar itself does.
func cleanName(name string) (string, error) {
	p := path.Clean("/" + name)
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			// "a/../b" stays inside but no honest tool writes it; refuse all.
			return "", fmt.Errorf("%w: %q: %w", errEscape, name, errdefs.ErrInvalidArgument)
		}
	}
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// dir returns an fd for directory rel (relative, cleaned), creating missing
// components when create is set. The fd belongs to the cache: do not close.
func (u *unpacker) dir(rel string, create bool) (int, error) {
	if rel == "." || rel == "" {
		return u.root, nil
	}
	if rel == u.lastDir && u.lastFd >= 0 {
		return u.lastFd, nil
	}
	cur := u.root
	for _, c := range strings.Split(rel, "/") {
		next, err := unix.Openat(cur, c, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(cur, c, 0o755); err == nil || err == unix.EEXIST {
				next, err = unix.Openat(cur, c, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
			}
		}
		if cur != u.root {
			_ = unix.Close(cur)
		}
		if err != nil {
			if err == unix.ELOOP || err == unix.ENOTDIR {
				return -1, fmt.Errorf("%w: parent %q is a symlink or not a directory: %w", errEscape, rel, errdefs.ErrInvalidArgument)
			}
			return -1, fmt.Errorf("open %q in layer: %w", rel, err)
		}
		cur = next
	}
	u.dropCache()
	u.lastDir, u.lastFd = rel, cur
	return cur, nil
}

// clear removes whatever exists at (dirfd, name) unless both it and the new
// entry are directories. It reports whether a directory was kept.
func (u *unpacker) clear(dirfd int, rel, name string, newIsDir bool) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, fmt.Errorf("stat %q: %w", rel, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir && newIsDir {
		return true, nil
	}
	if !isDir {
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return false, fmt.Errorf("replace %q: %w", rel, err)
		}
		return false, nil
	}
	// Replacing a directory: the cache may point inside it.
	dirPath := fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
	if err := os.RemoveAll(dirPath); err != nil {
		return false, fmt.Errorf("replace directory %q: %w", rel, err)
	}
	if u.lastDir == rel || strings.HasPrefix(u.lastDir, rel+"/") {
		u.dropCache()
	}
	return false, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		if hdr.Typeflag == tar.TypeDir {
			return u.meta(u.root, ".", "", hdr, true)
		}
		return nil
	}
	parentRel, base := path.Split(rel)
	parentRel = strings.TrimSuffix(parentRel, "/")
	if parentRel == "" {
		parentRel = "."
	}
	// Whiteouts.
	if strings.HasPrefix(base, ".wh.") {
		pfd, err := u.dir(parentRel, true)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		switch {
		case base == ".wh..wh..opq":
			if err := unix.Fsetxattr(pfd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("opaque directory %q: %w", parentRel, err)
			}
		case strings.HasPrefix(base, ".wh..wh."):
			// aufs bookkeeping (.wh..wh.plnk and friends): meaningless to overlay.
		default:
			target := strings.TrimPrefix(base, ".wh.")
			// ".wh.." and ".wh..." would name the directory itself or its parent.
			if target == "." || target == ".." {
				return fmt.Errorf("%w: whiteout %q: %w", errEscape, hdr.Name, errdefs.ErrInvalidArgument)
			}
			if _, err := u.clear(pfd, path.Join(parentRel, target), target, false); err != nil {
				return err
			}
			if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("whiteout %q: %w", path.Join(parentRel, target), err)
			}
		}
		return nil
	}
	pfd, err := u.dir(parentRel, true)
	if err != nil {
		return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
	}
	kept, err := u.clear(pfd, rel, base, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !kept {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("mkdir %q: %w", rel, err)
			}
		}
		return u.meta(pfd, rel, base, hdr, true)
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.file(pfd, rel, base, hdr, r)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("symlink %q: %w", rel, err)
		}
		return u.meta(pfd, rel, base, hdr, false)
	case tar.TypeLink:
		return u.hardlink(pfd, rel, base, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		if hdr.Typeflag != tar.TypeFifo {
			if !u.opts.allowDevices {
				u.opts.log.Warn("skipping device node in layer", "path", rel)
				return nil
			}
			mode = unix.S_IFCHR
			if hdr.Typeflag == tar.TypeBlock {
				mode = unix.S_IFBLK
			}
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("mknod %q: %w", rel, err)
		}
		return u.meta(pfd, rel, base, hdr, false)
	default:
		// Global PAX headers and unknown types carry nothing to create.
		return nil
	}
}

func (u *unpacker) file(pfd int, rel, base string, hdr *tar.Header, r io.Reader) error {
	if hdr.Size >= directThreshold {
		return u.bigFile(pfd, rel, base, hdr, r)
	}
	fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %q: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if _, err := io.CopyBuffer(fileWriter{f}, r, u.buf); err != nil {
		return fmt.Errorf("write %q: %w", rel, err)
	}
	if u.opts.sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %q: %w", rel, err)
		}
	}
	if err := u.fdMeta(fd, rel, hdr); err != nil {
		return err
	}
	return u.times(pfd, base, hdr)
}

// bigFile writes a large regular file with O_DIRECT (see directio_linux.go).
func (u *unpacker) bigFile(pfd int, rel, base string, hdr *tar.Header, r io.Reader) error {
	w, err := createDirect(pfd, base, 0o600, u.opts.directIO)
	if err != nil {
		return fmt.Errorf("create %q: %w", rel, err)
	}
	if _, err := w.ReadFrom(r); err != nil {
		return w.close(fmt.Errorf("write %q: %w", rel, err))
	}
	if err := w.finish(u.opts.sync); err != nil {
		return w.close(err)
	}
	if err := u.fdMeta(w.fd, rel, hdr); err != nil {
		return w.close(err)
	}
	if err := w.close(nil); err != nil {
		return err
	}
	return u.times(pfd, base, hdr)
}

// fileWriter hides os.File's ReadFrom so io.CopyBuffer uses our buffer
// instead of trying (and failing) copy_file_range from a tar stream.
type fileWriter struct{ f *os.File }

func (w fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (u *unpacker) hardlink(pfd int, rel, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link %q: %w", rel, err)
	}
	if target == "." {
		return fmt.Errorf("hard link %q to the layer root: %w", rel, errdefs.ErrInvalidArgument)
	}
	tParent, tBase := path.Split(target)
	tParent = strings.TrimSuffix(tParent, "/")
	if tParent == "" {
		tParent = "."
	}
	// Opening the target's directory moves the cache; remember ours by fd dup.
	own, err := unix.Dup(pfd)
	if err != nil {
		return fmt.Errorf("hard link %q: %w", rel, err)
	}
	defer unix.Close(own)
	tfd, err := u.dir(tParent, false)
	if err != nil {
		return fmt.Errorf("hard link %q → %q: %w", rel, hdr.Linkname, err)
	}
	if err := unix.Linkat(tfd, tBase, own, base, 0); err != nil {
		return fmt.Errorf("hard link %q → %q: %w", rel, hdr.Linkname, err)
	}
	return nil
}

// meta applies owner, mode, xattrs and times to (pfd, base); for the root
// (base "") it applies them to pfd itself.
func (u *unpacker) meta(pfd int, rel, base string, hdr *tar.Header, isDir bool) error {
	if isDir {
		fd := pfd
		if base != "" {
			var err error
			fd, err = unix.Openat(pfd, base, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
			if err != nil {
				return fmt.Errorf("open %q: %w", rel, err)
			}
			defer unix.Close(fd)
		}
		if err := u.fdMeta(fd, rel, hdr); err != nil {
			return err
		}
		u.dirTimes = append(u.dirTimes, dirTime{rel, hdr.AccessTime, hdr.ModTime})
		return nil
	}
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %q: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("chmod %q: %w", rel, err)
		}
	}
	return u.times(pfd, base, hdr)
}

// fdMeta sets owner, then mode (chown clears set-id bits), then xattrs.
func (u *unpacker) fdMeta(fd int, rel string, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %q: %w", rel, err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %q: %w", rel, err)
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		// Overlay's own attributes come only from whiteout conversion: a layer
		// must not forge redirects or opaque markers.
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			if err == unix.ENOTSUP || err == unix.EPERM {
				u.opts.log.Warn("cannot set xattr from layer", "path", rel, "xattr", name, "err", err)
				continue
			}
			return fmt.Errorf("xattr %s on %q: %w", name, rel, err)
		}
	}
	return nil
}

func (u *unpacker) times(pfd int, base string, hdr *tar.Header) error {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %q: %w", base, err)
	}
	return nil
}

// applyDirTimes sets directory times last, since creating entries inside a
// directory changes its mtime. Deepest first so parents end up right.
func (u *unpacker) applyDirTimes() {
	for i := len(u.dirTimes) - 1; i >= 0; i-- {
		d := u.dirTimes[i]
		at := d.atime
		if at.IsZero() {
			at = d.mtime
		}
		ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(d.mtime.UnixNano())}
		if d.path == "." {
			_ = unix.UtimesNanoAt(u.root, ".", ts, 0)
			continue
		}
		parent, base := path.Split(d.path)
		pfd, err := u.dir(strings.TrimSuffix(parent, "/"), false)
		if err != nil {
			continue
		}
		_ = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
}
