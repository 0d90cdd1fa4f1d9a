//go:build cgo

package seccomp

import (
	"runtime"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The child-process tests can only run native syscalls. For the compat
// architectures the default profile covers (x86 and x32 on amd64), run the
// compiled program through a classic BPF interpreter instead, with
// struct seccomp_data built like the kernel does.

func TestDefaultProfileCompatArchitectures(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the compat architectures checked here are amd64's")
	}
	prog := mustCompile(t, DefaultProfile())
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	allow := uint32(unix.SECCOMP_RET_ALLOW)
	arches := []struct {
		lib   libseccomp.ScmpArch
		audit uint32
	}{
		{libseccomp.ArchAMD64, unix.AUDIT_ARCH_X86_64},
		{libseccomp.ArchX86, unix.AUDIT_ARCH_I386},
		{libseccomp.ArchX32, unix.AUDIT_ARCH_X86_64},
	}
	cases := []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, allow},
		{"execve", nil, allow},
		{"exit_group", nil, allow},
		{"openat", nil, allow},
		{"unshare", []uint64{unix.CLONE_NEWUTS}, eperm},
		{"setns", nil, eperm},
		{"mount", nil, eperm},
		{"keyctl", nil, eperm},
		{"add_key", nil, eperm},
		{"process_vm_readv", nil, eperm},
		{"kexec_load", nil, eperm},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_VFORK | uint64(unix.SIGCHLD)}, allow},
		{"clone", []uint64{unix.CLONE_NEWNET | uint64(unix.SIGCHLD)}, eperm},
		{"clone", []uint64{unix.CLONE_NEWUSER}, eperm},
		{"clone3", nil, enosys},
		{"personality", []uint64{0xffffffff}, allow},
		{"personality", []uint64{0x0040000}, eperm},
		{"socket", []uint64{unix.AF_INET}, allow},
		{"socket", []uint64{unix.AF_VSOCK}, eperm},
		{"socket", []uint64{unix.AF_ALG}, eperm},
		{"socket", []uint64{unix.AF_ALG + 1}, allow},
		{"socket", []uint64{unix.AF_NETLINK}, allow},
		{"socket", []uint64{unix.AF_XDP}, allow},
	}
	checked := 0
	for _, arch := range arches {
		for _, c := range cases {
			nr, err := libseccomp.GetSyscallFromNameByArch(c.name, arch.lib)
			if err != nil || nr < 0 {
				continue // not a syscall on this architecture
			}
			checked++
			got := interpret(t, prog, seccompData(arch.audit, int32(nr), c.args...))
			if got != c.want {
				t.Errorf("%s %s(%#x) nr %d: verdict %#x, want %#x", arch.lib, c.name, c.args, nr, got, c.want)
			}
		}
		// Newer than anything the profile names: ENOSYS, so libc falls back.
		// (x32: between its common numbers and its 512.. compat range.)
		nr := int32(999)
		if arch.lib == libseccomp.ArchX32 {
			nr = x32Bit | 500
		}
		if got := interpret(t, prog, seccompData(arch.audit, nr)); got != enosys {
			t.Errorf("%s nr %d: verdict %#x, want ENOSYS", arch.lib, nr, got)
		}
	}
	// The 32-bit multiplexer is allowed on x86 (its socket() has no AF check,
	// exactly as in moby's profile).
	sc, _ := libseccomp.GetSyscallFromNameByArch("socketcall", libseccomp.ArchX86)
	if got := interpret(t, prog, seccompData(unix.AUDIT_ARCH_I386, int32(sc), 1)); got != allow {
		t.Errorf("x86 socketcall: %#x", got)
	}
	// An architecture outside the profile gets libseccomp's bad-arch action.
	if got := interpret(t, prog, seccompData(unix.AUDIT_ARCH_AARCH64, 63)); got&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_KILL_THREAD {
		t.Errorf("aarch64 syscall under an amd64 profile: verdict %#x, want a kill", got)
	}
	if checked < 3*len(cases)-6 {
		t.Errorf("only %d of %d cases resolved to syscall numbers", checked, 3*len(cases))
	}
}
