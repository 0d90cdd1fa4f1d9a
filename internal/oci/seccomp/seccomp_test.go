package seccomp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

func uptr(v uint) *uint { return &v }

// allowDefault is a profile that allows everything except the rules given,
// so the helper's Go runtime keeps working.
func allowDefault(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules}
}

func mustCompile(t *testing.T, s *specs.LinuxSeccomp) []unix.SockFilter {
	t.Helper()
	prog, err := Compile(s)
	if errors.Is(err, errdefs.ErrNotImplemented) {
		t.Skip("compiling needs a cgo build with libseccomp")
	}
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if len(prog) == 0 {
		t.Fatal("Compile returned an empty program")
	}
	return prog
}

func TestCompileRejectsInvalidProfiles(t *testing.T) {
	mkdir := []string{"mkdir"}
	cases := []struct {
		name string
		s    *specs.LinuxSeccomp
		want string // the offending value, named in the message
	}{
		{"nil", nil, "no config"},
		{"default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_EXPLODE"}, "SCMP_ACT_EXPLODE"},
		{"rule action", allowDefault(specs.LinuxSyscall{Names: mkdir, Action: "SCMP_ACT_NOPE"}), "SCMP_ACT_NOPE"},
		{"architecture", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_VAX"}},
			"SCMP_ARCH_VAX"},
		{"operator", allowDefault(specs.LinuxSyscall{Names: mkdir, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ALMOST"}}}), "SCMP_CMP_ALMOST"},
		{"flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}},
			"SECCOMP_FILTER_FLAG_FAST"},
		{"arg index", allowDefault(specs.LinuxSyscall{Names: mkdir, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}), "argument index 6"},
		{"errnoRet on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: mkdir, Action: specs.ActAllow, ErrnoRet: uptr(1)}}}, "errnoRet"},
		{"defaultErrnoRet on kill", &specs.LinuxSeccomp{DefaultAction: specs.ActKill, DefaultErrnoRet: uptr(1)}, "errnoRet"},
		{"errno too big", allowDefault(specs.LinuxSyscall{Names: mkdir, Action: specs.ActErrno, ErrnoRet: uptr(70000)}), "70000"},
		{"no names", allowDefault(specs.LinuxSyscall{Action: specs.ActErrno}), "no names"},
		{"empty name", allowDefault(specs.LinuxSyscall{Names: []string{""}, Action: specs.ActErrno}), "empty syscall name"},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/x"}, "SCMP_ACT_NOTIFY"},
		{"notify without listener", allowDefault(specs.LinuxSyscall{Names: mkdir, Action: specs.ActNotify}), "listenerPath"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prog, err := Compile(c.s)
			if err == nil {
				t.Fatalf("Compile accepted it (%d instructions)", len(prog))
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %q is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestCompileIgnoresUnknownSyscalls(t *testing.T) {
	with := mustCompile(t, allowDefault(specs.LinuxSyscall{
		Names: []string{"hull_no_such_syscall", "mkdirat"}, Action: specs.ActErrno}))
	without := mustCompile(t, allowDefault(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno}))
	if !slices.Equal(with, without) {
		t.Errorf("an unknown name changed the program: %d vs %d instructions", len(with), len(without))
	}
}

func TestCompileDropsRulesEqualToDefault(t *testing.T) {
	// libseccomp itself would refuse a rule repeating the default action.
	prog := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(38),
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(38)}}})
	plain := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(38)})
	if !slices.Equal(prog, plain) {
		t.Errorf("a rule equal to the default changed the program")
	}
}

func TestCompileAllArchitecturesAndActions(t *testing.T) {
	// Every architecture this libseccomp supports, every action, every
	// operator: it must compile and load.
	_, archs, _ := Features()
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/unused"}
	for _, a := range archs {
		s.Architectures = append(s.Architectures, specs.Arch(a))
	}
	names := []string{"acct", "reboot", "swapon", "swapoff", "kexec_load", "init_module", "delete_module", "pivot_root", "syslog"}
	for i, a := range actionNames {
		if a == specs.ActAllow {
			continue
		}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{names[i%len(names)]}, Action: a})
	}
	for _, op := range operatorNames {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: 7, ValueTwo: 7, Op: op}}})
	}
	prog := mustCompile(t, s)
	r := runHelper(t, prog, helperOpts{})
	r.want(t, "loaded", 0)
	r.wantExited(t)
}

func TestErrnoActions(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep")
	if err := os.Mkdir(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := mustCompile(t, allowDefault(
		specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.ENOSYS))},
		specs.LinuxSyscall{Names: []string{"rmdir", "unlinkat"}, Action: specs.ActErrno}, // EPERM by default
	))
	r := runHelper(t, prog, helperOpts{},
		[]string{"mkdir", filepath.Join(dir, "new"), "0755"},
		[]string{"rmdir", keep},
	)
	r.wantExited(t)
	r.want(t, "mkdir", unix.ENOSYS)
	r.want(t, "rmdir", unix.EPERM)
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("the denied mkdir created the directory (stat: %v)", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the denied rmdir removed the directory: %v", err)
	}
}

func TestDefaultErrnoRet(t *testing.T) {
	// An allow-list (the default profile's) with another default errno.
	s := DefaultProfile()
	s.DefaultErrnoRet = uptr(uint(unix.EXDEV))
	prog := mustCompile(t, s)
	r := runHelper(t, prog, helperOpts{}, []string{"unshare", fmt.Sprint(unix.CLONE_NEWUTS)}, []string{"getppid"})
	r.wantExited(t)
	r.want(t, "unshare", unix.EXDEV)
	r.want(t, "getppid", 0)
}

func TestArgumentConditions(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	fdcwd := uint64(0xffffffffffffff9c) // AT_FDCWD as the 64-bit register value
	exdev := uptr(uint(unix.EXDEV))
	prog := mustCompile(t, allowDefault(
		// AND: both conditions on different arguments.
		specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: exdev, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: fdcwd, Op: specs.OpEqualTo},
			{Index: 2, Value: 0o700, Op: specs.OpEqualTo},
		}},
		// OR: two conditions on the same argument become two rules.
		specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EROFS)), Args: []specs.LinuxSeccompArg{
			{Index: 2, Value: 0o711, Op: specs.OpEqualTo},
			{Index: 2, Value: 0o722, Op: specs.OpEqualTo},
		}},
		// getppid ignores its arguments, so every operator can be tried on
		// it without side effects: deny when arg1 < 10 or arg2 > 1<<40,
		// arg3 <= 5 and arg4 >= 7 together, arg5 != 3 with arg4 == 100, and
		// (arg0 & 0xff00) == 0x1200.
		specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(1), Args: []specs.LinuxSeccompArg{
			{Index: 1, Value: 10, Op: specs.OpLessThan}}},
		specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(2), Args: []specs.LinuxSeccompArg{
			{Index: 2, Value: 1 << 40, Op: specs.OpGreaterThan}}},
		specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(3), Args: []specs.LinuxSeccompArg{
			{Index: 3, Value: 5, Op: specs.OpLessEqual}, {Index: 4, Value: 7, Op: specs.OpGreaterEqual}}},
		specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(4), Args: []specs.LinuxSeccompArg{
			{Index: 5, Value: 3, Op: specs.OpNotEqual}, {Index: 4, Value: 100, Op: specs.OpEqualTo}}},
		specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(5), Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 0xff00, ValueTwo: 0x1200, Op: specs.OpMaskedEqual}}},
	))
	// getppid arguments: arg0..arg5. Base values match no rule.
	g := func(label string, a0, a1, a2, a3, a4, a5 uint64) []string {
		return []string{"getppid#" + label, fmt.Sprint(a0), fmt.Sprint(a1), fmt.Sprint(a2),
			fmt.Sprint(a3), fmt.Sprint(a4), fmt.Sprint(a5)}
	}
	r := runHelper(t, prog, helperOpts{},
		[]string{"mkdir#and", at("a"), "0700"},
		[]string{"mkdir#and-miss", at("b"), "0755"},
		[]string{"mkdir#or1", at("c"), "0711"},
		[]string{"mkdir#or2", at("d"), "0722"},
		g("none", 0, 50, 0, 6, 0, 3),
		g("lt", 0, 9, 0, 6, 0, 3),
		g("lt-edge", 0, 10, 0, 6, 0, 3),
		g("gt", 0, 50, 1<<40+1, 6, 0, 3),
		g("gt-edge", 0, 50, 1<<40, 6, 0, 3),
		g("le-ge", 0, 50, 0, 5, 7, 3),
		g("le-only", 0, 50, 0, 5, 6, 3),
		g("ne-eq", 0, 50, 0, 6, 100, 4),
		g("ne-miss", 0, 50, 0, 6, 100, 3),
		g("masked", 0xab12ab, 50, 0, 6, 0, 3),
		g("masked-miss", 0xab13ab, 50, 0, 6, 0, 3),
	)
	r.wantExited(t)
	r.want(t, "mkdir#and", unix.EXDEV)
	r.want(t, "mkdir#and-miss", 0)
	r.want(t, "mkdir#or1", unix.EROFS)
	r.want(t, "mkdir#or2", unix.EROFS)
	for label, e := range map[string]unix.Errno{
		"none": 0, "lt": 1, "lt-edge": 0, "gt": 2, "gt-edge": 0, "le-ge": 3, "le-only": 0,
		"ne-eq": 4, "ne-miss": 0, "masked": 5, "masked-miss": 0,
	} {
		r.want(t, "getppid#"+label, e)
	}
}

func TestKillProcess(t *testing.T) {
	prog := mustCompile(t, allowDefault(specs.LinuxSyscall{Names: []string{"uname"}, Action: specs.ActKillProcess}))
	r := runHelper(t, prog, helperOpts{}, []string{"getppid"}, []string{"uname"}, []string{"getppid#after"})
	r.want(t, "getppid", 0)
	if !r.status.Signaled() || r.status.Signal() != syscall.SIGSYS {
		t.Fatalf("helper status %v, want killed by SIGSYS; output %q", r.status, r.lines)
	}
	if slices.Contains(r.lines, "getppid#after=0") {
		t.Error("the helper ran on after the killing syscall")
	}
}

func busybox(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("busybox-static is not installed (hack/setup.sh installs it)")
	return ""
}

func TestKillThreadAndTrapInExecedProgram(t *testing.T) {
	bb := busybox(t)
	// A single-threaded program: SCMP_ACT_KILL (thread) and SCMP_ACT_TRAP
	// (an unhandled SIGSYS) both end it with SIGSYS.
	for _, act := range []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillThread, specs.ActTrap} {
		t.Run(string(act), func(t *testing.T) {
			prog := mustCompile(t, allowDefault(specs.LinuxSyscall{Names: []string{"uname"}, Action: act}))
			r := runHelper(t, prog, helperOpts{}, []string{"exec", bb, "uname"})
			if !r.status.Signaled() || r.status.Signal() != syscall.SIGSYS {
				t.Fatalf("status %v, want killed by SIGSYS; output %q stderr %q", r.status, r.lines, r.stderr)
			}
		})
	}
}

func TestTraceWithoutTracerAndLog(t *testing.T) {
	dir := t.TempDir()
	prog := mustCompile(t, allowDefault(
		specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActTrace},
		specs.LinuxSyscall{Names: []string{"rmdir", "unlinkat"}, Action: specs.ActLog},
	))
	logged := filepath.Join(dir, "logged")
	if err := os.Mkdir(logged, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runHelper(t, prog, helperOpts{flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}},
		[]string{"mkdir", filepath.Join(dir, "traced"), "0755"},
		[]string{"rmdir", logged},
	)
	r.wantExited(t)
	// With no tracer attached the kernel fails a traced syscall with ENOSYS.
	r.want(t, "mkdir", unix.ENOSYS)
	r.want(t, "rmdir", 0)
	if _, err := os.Stat(filepath.Join(dir, "traced")); !os.IsNotExist(err) {
		t.Errorf("the traced mkdir ran (stat: %v)", err)
	}
	if _, err := os.Stat(logged); !os.IsNotExist(err) {
		t.Errorf("the logged rmdir did not run (stat: %v)", err)
	}
}

func TestLoadFlags(t *testing.T) {
	prog := mustCompile(t, allowDefault(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActErrno}))
	flags := []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow,
		specs.LinuxSeccompFlagWaitKillableRecv, "SECCOMP_FILTER_FLAG_TSYNC"}
	r := runHelper(t, prog, helperOpts{flags: flags}, []string{"mkdir", filepath.Join(t.TempDir(), "x"), "0755"})
	r.wantExited(t)
	r.want(t, "mkdir", unix.EPERM)

	supported := SupportedFlags()
	for _, f := range []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow} {
		if !slices.Contains(supported, string(f)) {
			t.Errorf("SupportedFlags %v lacks %s on kernel 4.17+", supported, f)
		}
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	// All of these fail before any filter is installed, so they can run in
	// the test process itself.
	if err := Load(nil, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Load(nil): %v, want ErrInvalidArgument", err)
	}
	long := make([]unix.SockFilter, maxProgLen+1)
	if err := Load(long, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Load of %d instructions: %v, want ErrInvalidArgument", len(long), err)
	}
	one := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	err := Load(one, []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "SECCOMP_FILTER_FLAG_BOGUS") {
		t.Errorf("Load with a bogus flag: %v, want ErrInvalidArgument naming it", err)
	}
}

func TestLoadRejectsInvalidProgramInChild(t *testing.T) {
	// A program the kernel's checker refuses (no return at the end).
	bad := []unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}}
	r := runHelper(t, bad, helperOpts{})
	if r.status.ExitStatus() != 100 || !strings.Contains(r.stderr, "rejected the filter") {
		t.Errorf("status %v stderr %q, want a load error", r.status, r.stderr)
	}
}

func TestFeatures(t *testing.T) {
	actions, archs, ops := Features()
	for _, want := range []string{"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
		"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"} {
		if !slices.Contains(actions, want) {
			t.Errorf("actions %v lack %s", actions, want)
		}
	}
	for _, want := range []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"} {
		if !slices.Contains(archs, want) {
			t.Errorf("archs %v lack %s", archs, want)
		}
	}
	if len(ops) != 7 || !slices.Contains(ops, "SCMP_CMP_MASKED_EQ") {
		t.Errorf("operators %v, want the 7 of the spec", ops)
	}
	if !slices.Contains(KnownFlags(), string(specs.LinuxSeccompFlagWaitKillableRecv)) {
		t.Errorf("KnownFlags %v lack WAIT_KILLABLE_RECV", KnownFlags())
	}
}

// TestOrderedComparisonsOR checks 64-bit ordered comparisons, alone and
// OR-ed on one argument, against their arithmetic meaning, through the BPF
// interpreter (libseccomp 2.5.4 miscompiles the OR-ed case).
func TestOrderedComparisonsOR(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"socket"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{
			{Index: 2, Op: specs.OpGreaterEqual, Value: 1 << 63}, {Index: 2, Op: specs.OpLessThan, Value: 0xffffffff}}},
		{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 1, Op: specs.OpLessEqual, Value: 0x1_0000_0005}, {Index: 0, Op: specs.OpMaskedEqual, Value: 0xf0, ValueTwo: 0x1f0}}},
	}}
	prog := mustCompile(t, s)
	native, _ := family(runtime.GOARCH)
	if native == nil {
		t.Skip("no syscall table for " + runtime.GOARCH)
	}
	sock, read := uint32(lookup("socket").nr[native.col]), uint32(lookup("read").nr[native.col])
	for _, c := range []struct {
		nr   uint32
		args []uint64
		want uint32
	}{
		{sock, []uint64{0, 0, 0xffffffff}, unix.SECCOMP_RET_KILL_PROCESS},
		{sock, []uint64{0, 0, 0xfffffffe}, unix.SECCOMP_RET_TRAP},
		{sock, []uint64{0, 0, 1 << 32}, unix.SECCOMP_RET_KILL_PROCESS},
		{sock, []uint64{0, 0, 1 << 63}, unix.SECCOMP_RET_TRAP},
		{sock, []uint64{0, 0, ^uint64(0)}, unix.SECCOMP_RET_TRAP},
		{read, []uint64{0x1f0, 0x1_0000_0005}, unix.SECCOMP_RET_ALLOW}, // datum bits outside the mask do not count
		{read, []uint64{0xf0, 0x1_0000_0006}, unix.SECCOMP_RET_KILL_PROCESS},
		{read, []uint64{0x70, 5}, unix.SECCOMP_RET_KILL_PROCESS},
		{read, []uint64{0xff, 0}, unix.SECCOMP_RET_ALLOW},
	} {
		got := interpret(t, prog, seccompData(native.audit, int32(c.nr), c.args...))
		if got != c.want {
			t.Errorf("nr %d args %#x: %#x, want %#x", c.nr, c.args, got, c.want)
		}
	}
}
