// Package e2e drives a real hulld with the real crictl: real registry
// (127.0.0.1:5000 from ../shared/critest/setup.sh), real CNI plugins, real
// runtimes. Each test starts its own hulld with private directories and its
// own CNI bridge, and removes everything it made, even on failure.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const busybox = "127.0.0.1:5000/e2e-test-images/busybox:1.29-2"

// harnessBin holds crictl and crane from ../shared/critest/setup.sh.
var harnessBin = harnessDir() + "/bin"

func harnessDir() string {
	if d := os.Getenv("HARNESS_DIR"); d != "" {
		return d
	}
	return "/tmp/hull-harness"
}

// binDir holds hulld, hull-monitor, hull-pause and hullrt, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, needs root")
		os.Exit(0)
	}
	if _, err := os.Stat(filepath.Join(harnessBin, "crictl")); err != nil {
		fmt.Println("e2e: skipped, no crictl: run ../shared/critest/setup.sh")
		os.Exit(0)
	}
	if err := exec.Command(filepath.Join(harnessBin, "crane"), "digest", busybox).Run(); err != nil {
		fmt.Println("e2e: skipped, the test registry on 127.0.0.1:5000 is not serving: run ../shared/critest/setup.sh")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "hull-e2e-bin-")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "hull/cmd/hulld", "hull/cmd/hull-monitor", "hull/cmd/hull-pause", "hull/cmd/hullrt")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("e2e: build failed:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var subnetSeq atomic.Int32

// daemon is one private hulld.
type daemon struct {
	t       *testing.T
	dir     string
	sock    string
	bridge  string
	subnet  string // "10.228.N"
	extra   string // extra TOML
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
	files   []*os.File // passed to hulld as fds 3... (exec.Cmd.ExtraFiles)
}

// startHulld starts a hulld with its own dirs, CNI bridge and subnet;
// extraTOML is appended to its config. Cleanup removes its pods, stops
// it, and deletes the bridge, mounts and directories.
func startHulld(t *testing.T, extraTOML string) *daemon {
	t.Helper()
	n := int(subnetSeq.Add(1)) + os.Getpid()%100*2
	d := &daemon{t: t, extra: extraTOML}
	// A short dir keeps the monitor's socket paths short.
	short, err := os.MkdirTemp("/tmp", "he")
	if err != nil {
		t.Fatal(err)
	}
	d.dir = short
	d.sock = filepath.Join(d.dir, "hull.sock")
	d.bridge = fmt.Sprintf("hte%d", n%250)
	d.subnet = fmt.Sprintf("10.228.%d", n%250)
	t.Cleanup(d.cleanup)
	for _, p := range []string{"cni", "logs"} {
		if err := os.MkdirAll(filepath.Join(d.dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"e2e-%d","plugins":[{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,
"ipam":{"type":"host-local","ranges":[[{"subnet":"%s.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}},
{"type":"portmap","capabilities":{"portMappings":true}}]}`, n, d.bridge, d.subnet, filepath.Join(d.dir, "ipam"))
	writeFile(t, filepath.Join(d.dir, "cni", "10-e2e.conflist"), conf)
	toml := fmt.Sprintf(`[registry]
insecure = ["127.0.0.1:5000"]
[cni]
conf_dir = %q
%s`, filepath.Join(d.dir, "cni"), extraTOML)
	writeFile(t, filepath.Join(d.dir, "hull.toml"), toml)
	d.start()
	return d
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start launches hulld on the daemon's dirs and waits until it answers.
func (d *daemon) start() {
	d.t.Helper()
	if err := d.startErr(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemon) startErr() error {
	lf, err := os.OpenFile(filepath.Join(d.dir, "hulld.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	d.logFile = lf
	cmd := exec.Command(filepath.Join(binDir, "hulld"), "--config", filepath.Join(d.dir, "hull.toml"),
		"--listen", "unix://"+d.sock, "--root", filepath.Join(d.dir, "root"), "--state", filepath.Join(d.dir, "state"),
		"--log-level", "debug")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.ExtraFiles = d.files
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { _ = c.Wait(); close(ch) }(cmd, d.exited)
	for i := 0; i < 200; i++ {
		select {
		case <-d.exited:
			d.cmd = nil
			return fmt.Errorf("hulld exited at start:\n%s", d.log())
		default:
		}
		if _, err := d.crictlErr("version"); err == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	d.stop()
	return fmt.Errorf("hulld did not answer on %s:\n%s", d.sock, d.log())
}

// kill9 kills hulld with SIGKILL (its monitors and containers live on).
func (d *daemon) kill9() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
	d.logFile.Close()
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "hulld.log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

// cleanup removes every pod through hulld (restarting it if it was
// killed), stops it, and deletes the bridge, mounts and directories.
func (d *daemon) cleanup() {
	if d.cmd == nil {
		if err := d.startErr(); err != nil {
			d.t.Logf("restart for cleanup: %v", err)
		}
	}
	if d.cmd != nil {
		if out, err := d.crictlErr("pods", "-q"); err == nil {
			for _, p := range strings.Fields(out) {
				_, _ = d.crictlErr("stopp", p)
				_, _ = d.crictlErr("rmp", "-f", p)
			}
		}
		d.stop()
	}
	if d.t.Failed() {
		d.t.Logf("hulld log:\n%s", d.log())
	}
	_ = exec.Command("ip", "link", "del", d.bridge).Run()
	unmountUnder(d.dir)
	_ = os.RemoveAll(d.dir)
}

func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			mps = append(mps, f[1])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mps[i], syscall.MNT_DETACH)
	}
}

// crictlErr runs crictl against this hulld.
func (d *daemon) crictlErr(args ...string) (string, error) {
	full := append([]string{"--config", "/dev/null", "--runtime-endpoint", "unix://" + d.sock,
		"--image-endpoint", "unix://" + d.sock, "--timeout", "60s"}, args...)
	cmd := exec.Command(filepath.Join(harnessBin, "crictl"), full...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// crictl runs crictl and fails the test on error.
func (d *daemon) crictl(args ...string) string {
	d.t.Helper()
	out, err := d.crictlErr(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// inspect runs an inspect verb and decodes its JSON.
func (d *daemon) inspect(verb, id string) map[string]any {
	d.t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(d.crictl(verb, id)), &v); err != nil {
		d.t.Fatalf("crictl %s %s: %v", verb, id, err)
	}
	return v
}

// field walks a decoded JSON object along dotted keys.
func field(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// podJSON writes a pod config and returns its path.
func (d *daemon) podJSON(name string, extra string) string {
	p := filepath.Join(d.dir, "pod-"+name+".json")
	if extra != "" {
		extra = "," + extra
	}
	writeFile(d.t, p, fmt.Sprintf(`{"metadata":{"name":%q,"namespace":"e2e","uid":"%s-uid","attempt":0},"log_directory":%q,"linux":{}%s}`,
		name, name, filepath.Join(d.dir, "logs", name), extra))
	return p
}

// ctrJSON writes a container config running sh -c script.
func (d *daemon) ctrJSON(name, script string, extra string) string {
	p := filepath.Join(d.dir, "ctr-"+name+".json")
	if extra != "" {
		extra = "," + extra
	}
	cmd, _ := json.Marshal([]string{"sh", "-c", script})
	writeFile(d.t, p, fmt.Sprintf(`{"metadata":{"name":%q},"image":{"image":%q},"command":%s,"log_path":"%s.log","linux":{}%s}`,
		name, busybox, cmd, name, extra))
	return p
}

// runPod starts a pod with one container running script; it returns the
// pod and container ids.
func (d *daemon) runPod(name, script string, runpArgs ...string) (string, string) {
	d.t.Helper()
	pod := d.podJSON(name, "")
	p := d.crictl(append(append([]string{"runp"}, runpArgs...), pod)...)
	c := d.crictl("create", p, d.ctrJSON(name, script, ""), pod)
	d.crictl("start", c)
	return p, c
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
