// Command hull-monitor is hulld's per-container monitor: started by
// monitor.Spawn, it creates one container, owns its stdio and CRI log, reaps
// it and records its exit, outliving hulld. See hull/internal/monitor.
package main

import (
	"os"

	"hull/internal/monitor"
	"hull/internal/oci"
)

func main() {
	// For runtime type "hullrt" this binary is re-executed as the container
	// init: that must happen before anything else runs.
	oci.MaybeInit()
	os.Exit(monitor.Main(os.Args))
}
