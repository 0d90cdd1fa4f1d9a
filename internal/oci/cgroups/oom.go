package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// OOMNotifier reports OOM kills in one container's cgroup as they happen,
// for a monitor that wants "OOMKilled" without polling.
//
// Lifecycle: NotifyOOM starts one goroutine blocked on a kernel fd (a v1
// eventfd registered through cgroup.event_control, or an inotify watch on
// v2's memory.events); each event sends the cgroup's current oom_kill
// count on C. C is closed when the cgroup is removed or Close is called.
// Sends never block: an event is dropped while the previous count is still
// unread (the count itself is cumulative, so nothing is lost). Close is
// safe to call more than once and from any goroutine.
type OOMNotifier struct {
	c    chan uint64
	f    *os.File
	once sync.Once
	done chan struct{}
}

// C delivers the cumulative oom_kill count after each OOM event.
func (n *OOMNotifier) C() <-chan uint64 { return n.c }

// Close stops the notifier, waits for its goroutine to end and releases
// the kernel fd; call it also after C was closed by the cgroup's removal.
func (n *OOMNotifier) Close() error {
	var err error
	n.once.Do(func() { err = n.f.Close() })
	<-n.done
	return err
}

// NotifyOOM starts watching m's memory cgroup for OOM kills.
func NotifyOOM(m Manager) (*OOMNotifier, error) {
	switch mm := m.(type) {
	case *v1Manager:
		dir := mm.paths["memory"]
		if dir == "" {
			return nil, fmt.Errorf("cgroups: memory controller is not mounted: %w", errdefs.ErrFailedPrecondition)
		}
		return notifyV1(dir, mm)
	case *v2Manager:
		return notifyV2(mm)
	}
	return nil, fmt.Errorf("cgroups: manager %T cannot watch OOM events: %w", m, errdefs.ErrNotImplemented)
}

func notifyV1(dir string, m Manager) (*OOMNotifier, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cgroups: eventfd: %w", err)
	}
	ef := os.NewFile(uintptr(efd), "oom-eventfd")
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		ef.Close()
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	// The registration lives as long as the eventfd; the control file's
	// fd is only needed for the write.
	err = writeFile(dir, "cgroup.event_control", strconv.Itoa(efd)+" "+strconv.Itoa(int(ctl.Fd())))
	ctl.Close()
	if err != nil {
		ef.Close()
		return nil, err
	}
	last, err := m.OOMKillCount()
	if err != nil {
		ef.Close()
		return nil, err
	}
	n := &OOMNotifier{c: make(chan uint64, 1), f: ef, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		defer close(n.c)
		buf := make([]byte, 8)
		for {
			if _, err := ef.Read(buf); err != nil {
				return
			}
			// The eventfd also fires when the cgroup is removed.
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				return
			}
			// v1 signals when the cgroup hits OOM, just before the
			// killer picks its victim: give the counter a moment. With
			// oom_kill_disable nobody is killed and nothing is sent.
			var count uint64
			_ = waitFor(time.Second, func() (bool, error) {
				var err error
				count, err = m.OOMKillCount()
				return count > last, err
			})
			if count > last {
				last = count
				n.send(count)
			}
		}
	}()
	return n, nil
}

func notifyV2(m *v2Manager) (*OOMNotifier, error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cgroups: inotify: %w", err)
	}
	f := os.NewFile(uintptr(ifd), "oom-inotify")
	events := filepath.Join(m.dir, "memory.events")
	if _, err := unix.InotifyAddWatch(ifd, events, unix.IN_MODIFY|unix.IN_IGNORED|unix.IN_DELETE_SELF); err != nil {
		f.Close()
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("cgroups: memory controller is not enabled in %s: %w", m.dir, errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("cgroups: watch %s: %w", events, err)
	}
	last, err := m.OOMKillCount()
	if err != nil {
		f.Close()
		return nil, err
	}
	n := &OOMNotifier{c: make(chan uint64, 1), f: f, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		defer close(n.c)
		buf := make([]byte, 4096)
		for {
			k, err := f.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= k; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				if ev.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF) != 0 {
					return // the cgroup is gone
				}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
			// memory.events changes on every high/max event too: only
			// a grown oom_kill counter is an OOM kill.
			count, err := m.OOMKillCount()
			if err != nil {
				return
			}
			if count > last {
				last = count
				n.send(count)
			}
		}
	}()
	return n, nil
}

func (n *OOMNotifier) send(count uint64) {
	select {
	case n.c <- count:
	default:
	}
}
