package seccomp

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// allowedNames returns the syscalls the profile allows without conditions.
func allowedNames(s *specs.LinuxSeccomp) []string {
	var out []string
	for _, sc := range s.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 {
			out = append(out, sc.Names...)
		}
	}
	return out
}

// rulesFor returns the rules naming syscall name.
func rulesFor(s *specs.LinuxSeccomp, name string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, sc := range s.Syscalls {
		if slices.Contains(sc.Names, name) {
			out = append(out, sc)
		}
	}
	return out
}

func TestDefaultProfileKeyEntries(t *testing.T) {
	s := DefaultProfile()
	if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != uint(unix.EPERM) {
		t.Fatalf("default action %s errno %v, want SCMP_ACT_ERRNO with EPERM", s.DefaultAction, s.DefaultErrnoRet)
	}
	if runtime.GOARCH == "amd64" && !slices.Equal(s.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Errorf("amd64 architectures %v", s.Architectures)
	}
	if got := defaultArchs("arm64"); !slices.Equal(got, []specs.Arch{specs.ArchAARCH64, specs.ArchARM}) {
		t.Errorf("arm64 architectures %v", got)
	}
	allowed := allowedNames(s)
	for _, name := range []string{"read", "write", "openat", "close", "execve", "exit_group", "mmap", "futex",
		"rt_sigaction", "clock_gettime", "socketpair", "wait4", "chroot", "ptrace", "statx"} {
		if !slices.Contains(allowed, name) {
			t.Errorf("default profile does not allow %s", name)
		}
	}
	// Never allowed, whatever the capabilities.
	all := DefaultProfileFor(gatedCaps())
	for _, name := range []string{"keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "userfaultfd",
		"io_uring_setup", "io_uring_enter", "swapon", "uselib", "nfsservctl", "_sysctl"} {
		if len(rulesFor(all, name)) != 0 {
			t.Errorf("%s is in the profile even with every capability", name)
		}
	}
	// Gated by capabilities: absent for the default set, present with the cap.
	for capName, names := range map[string][]string{
		"CAP_SYS_ADMIN":  {"unshare", "setns", "mount", "umount2", "fsopen", "open_tree", "sethostname"},
		"CAP_SYS_PTRACE": {"process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"},
		"CAP_SYS_MODULE": {"init_module", "finit_module", "delete_module"},
		"CAP_SYS_TIME":   {"settimeofday", "clock_settime"},
		"CAP_SYS_BOOT":   {"reboot"},
	} {
		with := allowedNames(DefaultProfileFor(append(DefaultCapabilities(), capName)))
		for _, n := range names {
			if slices.Contains(allowed, n) {
				t.Errorf("%s allowed without %s", n, capName)
			}
			if !slices.Contains(with, n) {
				t.Errorf("%s not allowed with %s", n, capName)
			}
		}
	}
	// clone: only without namespace flags; clone3: ENOSYS so libc falls back.
	clone := rulesFor(s, "clone")
	if len(clone) != 1 || len(clone[0].Args) != 1 || clone[0].Args[0].Op != specs.OpMaskedEqual ||
		clone[0].Args[0].Value != namespaceFlags || clone[0].Args[0].ValueTwo != 0 {
		t.Errorf("clone rules %+v, want one masked-eq rule on the namespace flags", clone)
	}
	c3 := rulesFor(s, "clone3")
	if len(c3) != 1 || c3[0].Action != specs.ActErrno || c3[0].ErrnoRet == nil || *c3[0].ErrnoRet != uint(unix.ENOSYS) {
		t.Errorf("clone3 rules %+v, want ERRNO ENOSYS", c3)
	}
	if admin := DefaultProfileFor([]string{"CAP_SYS_ADMIN"}); !slices.Contains(allowedNames(admin), "clone3") ||
		len(rulesFor(admin, "clone")) != 1 {
		t.Errorf("with CAP_SYS_ADMIN clone and clone3 should be plainly allowed")
	}
	var personas []uint64
	for _, r := range rulesFor(s, "personality") {
		personas = append(personas, r.Args[0].Value)
	}
	if !slices.Contains(personas, 0xffffffff) || !slices.Contains(personas, 0) || len(personas) != 5 {
		t.Errorf("personality values %#x", personas)
	}
	if err := Validate(s); err != nil {
		t.Errorf("default profile does not validate: %v", err)
	}
	// Each call returns its own copy.
	s.Syscalls = nil
	if len(DefaultProfile().Syscalls) == 0 {
		t.Error("modifying one DefaultProfile result changed the next")
	}
}

// gatedCaps returns every capability that gates syscalls in the profile.
func gatedCaps() []string {
	var out []string
	for _, g := range allowByCap {
		out = append(out, g.cap)
	}
	return out
}

func TestDefaultProfileEnforced(t *testing.T) {
	bb := busybox(t)
	dir := t.TempDir()
	prog := mustCompile(t, DefaultProfile())
	script := fmt.Sprintf("echo hello > %[1]s/f && cat %[1]s/f && mkdir %[1]s/d && ls %[1]s && rm %[1]s/f", dir)
	r := runHelper(t, prog, helperOpts{},
		[]string{"unshare", fmt.Sprint(unix.CLONE_NEWUTS)},
		[]string{"keyctl"},
		[]string{"process_vm_readv"},
		[]string{"mount"},
		[]string{"personality#query", "0xffffffff"},
		[]string{"personality#norandom", "0x0040000"},
		// CLONE_THREAD without CLONE_SIGHAND is EINVAL in the kernel: it
		// shows the filter let the call through without forking anything.
		[]string{"clone#plain", fmt.Sprint(unix.CLONE_THREAD)},
		[]string{"clone#newuts", fmt.Sprint(unix.CLONE_THREAD | unix.CLONE_NEWUTS)},
		[]string{"clone#newnet", fmt.Sprint(unix.CLONE_THREAD | unix.CLONE_NEWNET)},
		[]string{"clone3"},
		[]string{"getppid"},
		[]string{"socket#unix", fmt.Sprint(unix.AF_UNIX)},
		[]string{"socket#alg", fmt.Sprint(unix.AF_ALG)},
		[]string{"socket#vsock", fmt.Sprint(unix.AF_VSOCK)},
		[]string{"exec", bb, "sh", "-c", script},
	)
	r.want(t, "unshare", unix.EPERM)
	r.want(t, "keyctl", unix.EPERM)
	r.want(t, "process_vm_readv", unix.EPERM)
	r.want(t, "mount", unix.EPERM)
	r.want(t, "personality#norandom", unix.EPERM)
	r.want(t, "clone#plain", unix.EINVAL)
	r.want(t, "clone#newuts", unix.EPERM)
	r.want(t, "clone#newnet", unix.EPERM)
	r.want(t, "clone3", unix.ENOSYS)
	r.want(t, "getppid", 0)
	r.want(t, "socket#unix", 0)
	r.want(t, "socket#alg", unix.EPERM)
	r.want(t, "socket#vsock", unix.EPERM)
	if _, ok := r.errno["personality#query"]; !ok {
		t.Errorf("personality query did not report: %q", r.lines)
	} else if r.errno["personality#query"] == unix.EPERM {
		t.Error("personality(0xffffffff) was denied")
	}
	// The busybox workload (open, write, read, mkdir, getdents, unlink,
	// fork+execve through sh) runs under the profile.
	r.wantExited(t)
	out := strings.Join(r.lines, "\n")
	if !strings.Contains(out, "hello\nd") {
		t.Errorf("busybox workload output %q (stderr %q), want hello and the listing", out, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); !os.IsNotExist(err) {
		t.Errorf("busybox rm did not run: %v", err)
	}
}

func TestDefaultProfileWithSysAdmin(t *testing.T) {
	prog := mustCompile(t, DefaultProfileFor(append(DefaultCapabilities(), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")))
	r := runHelper(t, prog, helperOpts{},
		[]string{"unshare", fmt.Sprint(unix.CLONE_NEWUTS)},
		[]string{"process_vm_readv"},
		[]string{"clone#newuts", fmt.Sprint(unix.CLONE_THREAD | unix.CLONE_NEWUTS)},
		[]string{"keyctl"},
	)
	r.wantExited(t)
	r.want(t, "unshare", 0)
	r.want(t, "process_vm_readv", 0)
	r.want(t, "clone#newuts", unix.EINVAL) // past the filter, refused by the kernel
	r.want(t, "keyctl", unix.EPERM)
}

func TestENOSYSForSyscallsNewerThanTheProfile(t *testing.T) {
	prog := mustCompile(t, DefaultProfile())
	r := runHelper(t, prog, helperOpts{},
		[]string{"syscall#new", "999"},                          // above every number the profile names
		[]string{"syscall#keyctl", fmt.Sprint(unix.SYS_KEYCTL)}, // below it, not listed: EPERM
	)
	r.wantExited(t)
	r.want(t, "syscall#new", unix.ENOSYS)
	r.want(t, "syscall#keyctl", unix.EPERM)

	// Without an errno default there is no stub: a KILL default profile
	// keeps its exact program.
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	for i, in := range mustCompile(t, s) {
		if in.Code == retK && in.K == unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS) {
			t.Errorf("KILL-default program returns ENOSYS at %d: it got the stub", i)
		}
	}
}

func TestENOSYSStubLayout(t *testing.T) {
	main := []unix.SockFilter{{Code: retK, K: unix.SECCOMP_RET_ALLOW}}
	prog := prependENOSYS(main, []stubArch{
		{audit: unix.AUDIT_ARCH_X86_64, max: 450, x32: true, x32Max: 440},
		{audit: unix.AUDIT_ARCH_I386, max: 430},
		{audit: unix.AUDIT_ARCH_ARM, max: 440, ceiling: armPrivate},
	})
	// Walk the program like the kernel would for a few inputs.
	for _, c := range []struct {
		arch, nr uint32
		want     uint32
	}{
		{unix.AUDIT_ARCH_X86_64, 0, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_X86_64, 450, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_X86_64, 451, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{unix.AUDIT_ARCH_X86_64, x32Bit | 440, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_X86_64, x32Bit | 441, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{unix.AUDIT_ARCH_X86_64, x32Bit | 520, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_I386, 430, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_I386, 431, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{unix.AUDIT_ARCH_AARCH64, 999, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_ARM, 440, unix.SECCOMP_RET_ALLOW},
		{unix.AUDIT_ARCH_ARM, 441, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{unix.AUDIT_ARCH_ARM, armPrivate + 5, unix.SECCOMP_RET_ALLOW},
	} {
		if got := runBPF(t, prog, c.arch, c.nr); got != c.want {
			t.Errorf("arch %#x nr %#x: %#x, want %#x", c.arch, c.nr, got, c.want)
		}
	}
}

// runBPF interprets the few classic BPF instructions the stub uses.
func runBPF(t *testing.T, prog []unix.SockFilter, arch, nr uint32) uint32 {
	t.Helper()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case ldW:
			a = map[uint32]uint32{offNr: nr, offArch: arch}[in.K]
		case jeq, jgt, jge, jset:
			ok := map[uint16]bool{jeq: a == in.K, jgt: a > in.K, jge: a >= in.K, jset: a&in.K != 0}[in.Code]
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case ja:
			pc += int(in.K)
		case retK:
			return in.K
		default:
			t.Fatalf("unexpected instruction %+v at %d", in, pc)
		}
	}
	t.Fatal("program fell off the end")
	return 0
}
