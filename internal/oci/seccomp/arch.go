package seccomp

import (
	"runtime"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sysEntry is one row of sysTable (syscalls_gen.go).
type sysEntry struct {
	name string
	nr   [numCols]int32
	// mux is the x86 multiplexed sub-call: 100+N is socketcall(2) N,
	// 200+N ipc(2) N, 0 none.
	mux int16
}

// x86 multiplexers (struct seccomp_data.nr on AUDIT_ARCH_I386).
const (
	x86Socketcall = 102
	x86IPC        = 117
)

// lookup returns the table row of a syscall name, or nil when libseccomp
// (whose tables hull's are) does not know the name.
func lookup(name string) *sysEntry {
	i, ok := slices.BinarySearchFunc(sysTable[:], name, func(e sysEntry, n string) int {
		return strings.Compare(e.name, n)
	})
	if !ok {
		return nil
	}
	return &sysTable[i]
}

// archInfo describes one architecture a filter can have a section for.
type archInfo struct {
	spec  specs.Arch
	col   int    // sysTable column
	audit uint32 // struct seccomp_data.arch
	// args32: the ABI passes 32-bit arguments, so like libseccomp only the
	// low word of an argument and of the rule's values is compared.
	args32 bool
	// x32: the x32 ABI, which shares AUDIT_ARCH_X86_64 with x86_64 and
	// sets x32Bit in the syscall number.
	x32 bool
	// mux: socket and SysV IPC calls are also reached through
	// socketcall(2) and ipc(2), which get rules of their own (x86).
	mux bool
}

var (
	archX86_64  = archInfo{spec: specs.ArchX86_64, col: colX86_64, audit: unix.AUDIT_ARCH_X86_64}
	archX86     = archInfo{spec: specs.ArchX86, col: colX86, audit: unix.AUDIT_ARCH_I386, args32: true, mux: true}
	archX32     = archInfo{spec: specs.ArchX32, col: colX32, audit: unix.AUDIT_ARCH_X86_64, args32: true, x32: true}
	archAARCH64 = archInfo{spec: specs.ArchAARCH64, col: colAARCH64, audit: unix.AUDIT_ARCH_AARCH64}
	archARM     = archInfo{spec: specs.ArchARM, col: colARM, audit: unix.AUDIT_ARCH_ARM, args32: true}
)

// family returns the native architecture of a Go architecture and the
// others its kernel can run (compat ABIs), or nil when hull has no syscall
// table for it.
func family(goarch string) (native *archInfo, compat []*archInfo) {
	switch goarch {
	case "amd64":
		return &archX86_64, []*archInfo{&archX86, &archX32}
	case "arm64":
		return &archAARCH64, []*archInfo{&archARM}
	}
	return nil, nil
}

// filterArchs returns the architectures a filter for names gets sections
// for: the native one first, then those of names this kernel can run, in
// the profile's order. A listed architecture this machine cannot run (an
// arm profile entry on amd64) never reaches the filter, so it needs no
// section; syscalls of architectures without one hit the kill of the
// bad-architecture action, as with libseccomp.
func filterArchs(names []specs.Arch) []*archInfo {
	native, compat := family(runtime.GOARCH)
	if native == nil {
		return nil
	}
	out := []*archInfo{native}
	for _, n := range names {
		for _, c := range compat {
			if c.spec == n && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}
