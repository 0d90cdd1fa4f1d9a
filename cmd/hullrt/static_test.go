package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoCgoInImportGraph keeps hullrt a static binary: every container
// start runs several hullrt processes (CLI verbs and the re-executed init),
// and a cgo build pays ~1 ms of dynamic loading in each. net (its cgo
// resolver), os/user and libseccomp-golang are the usual ways back in.
func TestNoCgoInImportGraph(t *testing.T) {
	// go test puts its own toolchain's bin first in PATH.
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !slices.Contains(deps, "hull/internal/oci/unixsock") {
		t.Fatalf("go list gave an implausible dependency list: %q", deps)
	}
	for _, bad := range []string{"runtime/cgo", "net", "os/user", "github.com/seccomp/libseccomp-golang"} {
		if slices.Contains(deps, bad) {
			t.Errorf("hullrt imports %s: it must stay free of cgo (a static binary)", bad)
		}
	}
}
