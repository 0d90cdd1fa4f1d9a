// Package nsutil creates and enters namespaces that no process holds, the way
// CRI-O's pinns does: a locked OS thread unshares the namespaces and bind
// mounts its /proc/thread-self/ns/<kind> files onto plain files, which keep
// the namespaces alive until unmounted. The thread then setns()es back into
// the namespaces it came from before other goroutines may run on it; if that
// fails it is thrown away (its goroutine exits while still locked).
//
// A pod's net, ipc and uts namespaces can be pinned this way. A PID namespace
// cannot: it dies with its first process, so pods sharing one need a process.
package nsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Namespace kinds that Pin supports, and their clone flags.
var pinnable = map[string]int{
	"net": unix.CLONE_NEWNET,
	"ipc": unix.CLONE_NEWIPC,
	"uts": unix.CLONE_NEWUTS,
}

// enterable are the kinds Enter can join from a multi-threaded Go process
// with a plain setns on one thread.
var enterable = map[string]int{
	"net":    unix.CLONE_NEWNET,
	"ipc":    unix.CLONE_NEWIPC,
	"uts":    unix.CLONE_NEWUTS,
	"cgroup": unix.CLONE_NEWCGROUP,
}

// Pin creates new namespaces of the given kinds ("net", "ipc", "uts") and
// pins each on dir/<kind> (dir is created). When hostname is not empty it is
// set inside the new uts namespace, which kinds must then include. It returns
// kind → pinned path. On error nothing stays mounted.
func Pin(dir string, kinds []string, hostname string) (map[string]string, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("pin namespaces: directory %q is not absolute: %w", dir, errdefs.ErrInvalidArgument)
	}
	flags := 0
	seen := map[string]bool{}
	for _, k := range kinds {
		f, ok := pinnable[k]
		if !ok {
			return nil, fmt.Errorf("pin namespaces: kind %q cannot be pinned (want net, ipc or uts): %w", k, errdefs.ErrInvalidArgument)
		}
		if seen[k] {
			return nil, fmt.Errorf("pin namespaces: kind %q given twice: %w", k, errdefs.ErrInvalidArgument)
		}
		seen[k] = true
		flags |= f
	}
	if flags == 0 {
		return nil, fmt.Errorf("pin namespaces: no kinds given: %w", errdefs.ErrInvalidArgument)
	}
	if hostname != "" && !seen["uts"] {
		return nil, fmt.Errorf("pin namespaces: hostname %q needs a uts namespace: %w", hostname, errdefs.ErrInvalidArgument)
	}
	if len(hostname) > 64 {
		return nil, fmt.Errorf("pin namespaces: hostname %q is longer than 64 bytes: %w", hostname, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	paths := make(map[string]string, len(kinds))
	for _, k := range kinds {
		paths[k] = filepath.Join(dir, k)
	}

	// created collects the files this call made, so that a failure removes
	// them and never a pin that already existed.
	created := map[string]string{}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := pinOnThread(flags, hostname, paths, created)
		// A thread that could not return to the host namespaces stays
		// locked: the goroutine exits and the runtime ends the thread (or
		// parks it for good when it is the main thread).
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		_ = Unpin(created)
		return nil, err
	}
	return paths, nil
}

// pinOnThread runs on a locked thread: it unshares, binds the new namespaces
// and moves the thread back into the namespaces it started in, reporting
// whether that worked (so the thread may be reused).
func pinOnThread(flags int, hostname string, paths, created map[string]string) (restored bool, err error) {
	tid := unix.Gettid()
	kinds := sortedKinds(paths)
	origs, err := openThreadNS(tid, kinds)
	if err != nil {
		return true, err
	}
	defer closeAll(origs)
	if err := unix.Unshare(flags); err != nil {
		return true, fmt.Errorf("pin namespaces: unshare: %w", err)
	}
	defer func() { restored = restoreNS(origs, kinds) }()
	if hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			return false, fmt.Errorf("pin namespaces: set hostname %q: %w", hostname, err)
		}
	}
	for _, k := range kinds {
		target := paths[k]
		// O_EXCL: never bind over a file some other pod still uses.
		f, err := os.OpenFile(target, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				err = fmt.Errorf("%w: %w", errdefs.ErrAlreadyExists, err)
			}
			return false, fmt.Errorf("pin namespaces: create %s: %w", target, err)
		}
		f.Close()
		created[k] = target
		src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, k)
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return false, fmt.Errorf("pin namespaces: bind %s on %s: %w", src, target, err)
		}
	}
	return false, nil
}

// openThreadNS opens thread tid's namespaces of the given kinds.
func openThreadNS(tid int, kinds []string) ([]*os.File, error) {
	var fs []*os.File
	for _, k := range kinds {
		f, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, k))
		if err != nil {
			closeAll(fs)
			return nil, fmt.Errorf("open current %s namespace: %w", k, err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// restoreNS moves the calling thread back into origs (parallel to kinds).
func restoreNS(origs []*os.File, kinds []string) bool {
	ok := true
	for i, k := range kinds {
		if err := unix.Setns(int(origs[i].Fd()), enterable[k]); err != nil {
			ok = false
		}
	}
	return ok
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// Unpin unmounts and removes pinned namespace files. Paths already gone or no
// longer mounted are fine, so calling it twice succeeds.
func Unpin(paths map[string]string) error {
	var errs []error
	for _, k := range sortedKinds(paths) {
		p := paths[k]
		if p == "" {
			continue
		}
		// MNT_DETACH: a process still inside keeps the namespace, we only
		// drop the pin.
		err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unpin %s: unmount: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("unpin %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Enter runs fn on a locked OS thread that has joined the namespaces in paths
// (kind → namespace file: pinned files or /proc/PID/ns/KIND; kinds net, ipc,
// uts, cgroup). The thread returns to the caller's namespaces afterwards; if
// that fails it is discarded rather than reused. fn must not start goroutines
// expecting them to share the namespaces.
func Enter(paths map[string]string, fn func() error) error {
	for k := range paths {
		if _, ok := enterable[k]; !ok {
			return fmt.Errorf("enter namespaces: kind %q is not supported: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := enterOnThread(paths, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func enterOnThread(paths map[string]string, fn func() error) (restored bool, err error) {
	kinds := sortedKinds(paths)
	// Keep handles on the current namespaces to come back to.
	origs, err := openThreadNS(unix.Gettid(), kinds)
	if err != nil {
		return true, fmt.Errorf("enter namespaces: %w", err)
	}
	defer closeAll(origs)
	for _, k := range kinds {
		if err := setnsPath(paths[k], enterable[k]); err != nil {
			return restoreNS(origs, kinds), fmt.Errorf("enter %s namespace %s: %w", k, paths[k], err)
		}
	}
	err = fn()
	return restoreNS(origs, kinds), err
}

func setnsPath(path string, flag int) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
		}
		return err
	}
	defer f.Close()
	return unix.Setns(int(f.Fd()), flag)
}

func sortedKinds(paths map[string]string) []string {
	kinds := make([]string, 0, len(paths))
	for k := range paths {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}
