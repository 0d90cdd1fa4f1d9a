package oci

import (
	"fmt"
	"os"
	"time"
)

// HULLRT_TRACE=1 prints phase timings to stderr (for tuning; off by
// default): wall-clock milliseconds modulo 100 s, so that the lines of the
// runtime and of the container's init (another process) line up.
var traceOn = os.Getenv("HULLRT_TRACE") == "1"

func trace(what string) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "trace %d %-8s %9.3fms %s\n", os.Getpid(), os.Args[len(os.Args)-1], float64(time.Now().UnixMicro()%100000000)/1000, what)
	}
}
