// Command hull-pause holds a pod's shared pid namespace: hulld starts it as
// pid 1 of a new pid namespace when a pod asks for one (NamespaceMode POD).
// It reaps every orphan the pod's processes leave and exits on SIGTERM or
// SIGINT. It does nothing else, so it stays a few hundred kilobytes of RSS.
package main

import (
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

func main() {
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
