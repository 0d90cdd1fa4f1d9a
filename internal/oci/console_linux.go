package oci

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openPty allocates a pty from the container's devpts (through ptmx, a
// path inside the container), sends the master over the console socket
// with SCM_RIGHTS (as runc does) and keeps the slave for the process's
// stdio.
func (c *initProc) openPty(ptmx string) error {
	mfd, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", ptmx, err)
	}
	defer unix.Close(mfd)
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER takes open flags as its argument.
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		return fmt.Errorf("open pty slave: %w", e)
	}
	sfd := int(r)
	c.tty = os.NewFile(uintptr(sfd), "pty-slave")
	if p := c.cfg.Process; p.ConsoleSize != nil {
		ws := &unix.Winsize{Row: uint16(p.ConsoleSize.Height), Col: uint16(p.ConsoleSize.Width)}
		unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, ws)
	}
	cons := c.base + fdCons
	if err := unix.Sendmsg(cons, []byte("/dev/ptmx"), unix.UnixRights(mfd), nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	unix.Close(cons)
	return nil
}

// attachTty makes the pty slave the controlling terminal and stdio.
func (c *initProc) attachTty() error {
	if c.tty == nil {
		return nil
	}
	// prepareProcess made it a session leader already; TIOCSCTTY needs one.
	if sid, _ := unix.Getsid(0); sid != unix.Getpid() {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	fd := int(c.tty.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	return nil
}
