package network

import (
	"fmt"

	"golang.org/x/sys/unix"

	"hull/internal/nsutil"
)

// loopbackUp sets "lo" up inside the netns, so a pod has 127.0.0.1 whether
// or not the network configuration chains the loopback plugin (containerd
// runs a separate loopback network for the same reason). Doing it here saves
// a plugin exec per pod.
func loopbackUp(netnsPath string) error {
	return nsutil.Enter(map[string]string{"net": netnsPath}, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("get lo flags: %w", err)
		}
		flags := ifr.Uint16()
		if flags&unix.IFF_UP != 0 {
			return nil
		}
		ifr.SetUint16(flags | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		return nil
	})
}
