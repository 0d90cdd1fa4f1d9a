package oci

import (
	"fmt"
	"os"
)

// Logf receives the runtime's warnings (things it skipped or clamped). The
// CLI points it at its --log destination; the default writes to stderr.
var Logf = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "hullrt: warning: "+format+"\n", a...) }

func logf(format string, a ...any) { Logf(format, a...) }
