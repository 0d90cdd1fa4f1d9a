// Command hull-monitor is hulld's per-container monitor: started by
// monitor.Spawn, it creates one container, owns its stdio and CRI log, reaps
// it and records its exit, outliving hulld. See hull/internal/monitor.
package main

import (
	"os"

	"hull/internal/monitor"
)

func main() {
	os.Exit(monitor.Main(os.Args))
}
