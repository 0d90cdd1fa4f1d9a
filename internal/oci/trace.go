package oci

import (
	"fmt"
	"os"
	"time"
)

// HULLRT_TRACE=1 prints phase timings to stderr (for tuning; off by default).
var (
	traceOn    = os.Getenv("HULLRT_TRACE") == "1"
	traceStart = time.Now()
)

func trace(what string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "trace %d %-8s %7.3fms %s\n", os.Getpid(), os.Args[len(os.Args)-1], float64(time.Since(traceStart).Microseconds())/1000, what)
	}
}
