package caps

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// Capability changes cannot be undone, so they happen in a child: the test
// binary re-executed in helper mode, which applies the sets given in its
// environment and prints its thread's Cap* lines from /proc.

const envHelper = "HULL_CAPS_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envHelper); spec != "" {
		os.Exit(helperMain(spec))
	}
	os.Exit(m.Run())
}

func helperMain(spec string) int {
	var req struct {
		Caps         specs.LinuxCapabilities
		BoundingOnly bool
		UID          int    // switch to it (thread only, keeping caps) before Apply
		Exec         string // then exec this program to show the sets after execve
	}
	if err := json.Unmarshal([]byte(spec), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	runtime.LockOSThread()
	if req.UID != 0 {
		// What a container init does: keep capabilities across the uid
		// change (which clears the effective set), then apply the sets.
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 103
		}
		uid := uintptr(req.UID)
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uid, uid, uid); e != 0 {
			fmt.Fprintln(os.Stderr, e)
			return 104
		}
	}
	apply := Apply
	if req.BoundingOnly {
		apply = ApplyBounding
	}
	if err := apply(&req.Caps); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 101
	}
	if req.Exec != "" {
		err := unix.Exec(req.Exec, []string{req.Exec, "cat", "/proc/self/status"}, os.Environ())
		fmt.Fprintln(os.Stderr, err)
		return 105
	}
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 102
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Cap") {
			fmt.Println(line)
		}
	}
	return 0
}

// applyInChild returns the child's capability masks by /proc field name
// (CapInh, CapPrm, CapEff, CapBnd, CapAmb) after it applied c.
func applyInChild(t *testing.T, c specs.LinuxCapabilities, boundingOnly bool) map[string]uint64 {
	t.Helper()
	return runChild(t, map[string]any{"Caps": c, "BoundingOnly": boundingOnly})
}

// runChild runs the helper with req and parses the Cap* lines it prints.
func runChild(t *testing.T, req map[string]any) map[string]uint64 {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+string(b))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}
	masks := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "Cap") {
			continue
		}
		name, val, _ := strings.Cut(sc.Text(), ":")
		v, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		masks[name] = v
	}
	return masks
}

func mask(names ...string) uint64 {
	var m uint64
	for _, n := range names {
		m |= 1 << uint(byName[n])
	}
	return m
}

func TestApplySetsAllFiveSets(t *testing.T) {
	c := specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_SETPCAP"},
		Effective:   []string{"CAP_CHOWN", "CAP_KILL"},
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE"},
		Ambient:     []string{"CAP_NET_BIND_SERVICE"},
	}
	got := applyInChild(t, c, false)
	want := map[string]uint64{
		"CapBnd": mask(c.Bounding...),
		"CapEff": mask(c.Effective...),
		"CapPrm": mask(c.Permitted...),
		"CapInh": mask(c.Inheritable...),
		"CapAmb": mask(c.Ambient...),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#x, want %#x", k, got[k], v)
		}
	}
}

func TestApplyEmptyDropsEverything(t *testing.T) {
	got := applyInChild(t, specs.LinuxCapabilities{}, false)
	for _, k := range []string{"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"} {
		if v, ok := got[k]; !ok || v != 0 {
			t.Errorf("%s = %#x (present %v), want 0", k, v, ok)
		}
	}
}

func TestApplyBoundingOnly(t *testing.T) {
	got := applyInChild(t, specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_SYS_ADMIN"}}, true)
	if got["CapBnd"] != mask("CAP_KILL", "CAP_SYS_ADMIN") {
		t.Errorf("CapBnd = %#x", got["CapBnd"])
	}
	if got["CapEff"] == 0 {
		t.Error("ApplyBounding changed the effective set")
	}
}

func TestUnknownCapability(t *testing.T) {
	// Names are checked before anything is changed, so this is safe here.
	c := &specs.LinuxCapabilities{Effective: []string{"CAP_CHOWN", "CAP_TELEPORT"}}
	for name, err := range map[string]error{"Apply": Apply(c), "Validate": Validate(c), "ApplyBounding": ApplyBounding(
		&specs.LinuxCapabilities{Bounding: []string{"CAP_TELEPORT"}})} {
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(fmt.Sprint(err), "CAP_TELEPORT") {
			t.Errorf("%s: %v, want ErrInvalidArgument naming CAP_TELEPORT", name, err)
		}
	}
	if err := Validate(&specs.LinuxCapabilities{Bounding: Known()}); err != nil {
		t.Errorf("Validate(Known()): %v", err)
	}
}

func TestKnown(t *testing.T) {
	k := Known()
	for _, want := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"} {
		if !slices.Contains(k, want) {
			t.Errorf("Known() lacks %s: %v", want, k)
		}
	}
	if len(k) != len(capability.ListKnown()) {
		t.Errorf("Known() has %d names, the library knows %d", len(k), len(capability.ListKnown()))
	}
}

// ownMask reads one of the test process's capability masks.
func ownMask(t *testing.T, field string) uint64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

func TestApplyClampsToWhatTheRuntimeHolds(t *testing.T) {
	// A privileged container asks for every capability; this sandbox may
	// lack some (CAP_SYS_RESOURCE here). Apply keeps what it can.
	all := Known()
	c := specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all, Inheritable: all, Ambient: all}
	ownBnd, ownPrm := ownMask(t, "CapBnd"), ownMask(t, "CapPrm")
	last, err := capability.LastCap()
	if err != nil {
		t.Fatal(err)
	}
	var wantMissing []string
	for _, n := range all {
		if byName[n] <= last && ownBnd&(1<<uint(byName[n])) == 0 {
			wantMissing = append(wantMissing, n)
		}
	}
	missing, err := Missing(&c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(missing, wantMissing) {
		t.Errorf("Missing = %v, want %v", missing, wantMissing)
	}
	got := applyInChild(t, c, false)
	if got["CapPrm"] != ownPrm || got["CapEff"] != ownPrm || got["CapBnd"] != ownBnd {
		t.Errorf("after Apply(all): %#x, own permitted %#x bounding %#x", got, ownPrm, ownBnd)
	}
	if got["CapAmb"] != ownPrm&ownBnd {
		t.Errorf("ambient %#x, want %#x", got["CapAmb"], ownPrm&ownBnd)
	}
}

func TestApplyAfterSetuidAndExec(t *testing.T) {
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Skip("busybox-static is not installed (hack/setup.sh installs it)")
	}
	// An unprivileged container user with one ambient capability: after
	// execve it holds exactly that one, and the bounding set is as asked
	// although the uid change had cleared CAP_SETPCAP from the effective set.
	c := specs.LinuxCapabilities{
		Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"},
		Effective:   []string{"CAP_NET_BIND_SERVICE"},
		Permitted:   []string{"CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE"},
		Ambient:     []string{"CAP_NET_BIND_SERVICE"},
	}
	got := runChild(t, map[string]any{"Caps": c, "UID": 65534, "Exec": bb})
	one := mask("CAP_NET_BIND_SERVICE")
	want := map[string]uint64{"CapBnd": mask(c.Bounding...), "CapEff": one, "CapPrm": one, "CapInh": one, "CapAmb": one}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after execve as uid 65534: %s = %#x, want %#x", k, got[k], v)
		}
	}
	// Without an ambient set the exec'ed program has no capabilities.
	c.Ambient = nil
	got = runChild(t, map[string]any{"Caps": c, "UID": 65534, "Exec": bb})
	if got["CapEff"] != 0 || got["CapPrm"] != 0 || got["CapBnd"] != mask(c.Bounding...) {
		t.Errorf("no ambient: %#x", got)
	}
}
