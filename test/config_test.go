package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigDefault: `hulld config default` prints a configuration hulld
// accepts as is, and a malformed one is refused naming the problem.
func TestConfigDefault(t *testing.T) {
	out, err := exec.Command(filepath.Join(binDir, "hulld"), "config", "default").Output()
	if err != nil {
		t.Fatalf("hulld config default: %v", err)
	}
	for _, key := range []string{"default_runtime", "[runtimes.hullrt]", "[cni]", "[registry]", "[streaming]"} {
		if !strings.Contains(string(out), key) {
			t.Fatalf("default config lacks %s:\n%s", key, out)
		}
	}
	d := startHulld(t, "")
	// Replace the test config by the printed default (flags keep the dirs).
	writeFile(t, filepath.Join(d.dir, "hull.toml"), string(out))
	d.stop()
	d.start()
	info := d.crictl("info")
	if !strings.Contains(info, `"RuntimeReady"`) {
		t.Fatalf("crictl info with the default config:\n%s", info)
	}
	bad := filepath.Join(d.dir, "bad.toml")
	writeFile(t, bad, "no_such_key = 1\n")
	cmd := exec.Command(filepath.Join(binDir, "hulld"), "--config", bad, "--listen", "unix://"+filepath.Join(d.dir, "bad.sock"),
		"--root", filepath.Join(d.dir, "badroot"), "--state", filepath.Join(d.dir, "badstate"))
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "no_such_key") {
		t.Fatalf("hulld with an unknown key: %v: %s", err, msg)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "bad.sock")); err == nil {
		t.Fatal("a refused config still opened a socket")
	}
}
