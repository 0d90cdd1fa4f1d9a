package seccomp

import (
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// actionNames lists every action of the runtime spec. SCMP_ACT_KILL is the
// historical name of SCMP_ACT_KILL_THREAD.
var actionNames = []specs.LinuxSeccompAction{
	specs.ActKill,
	specs.ActKillProcess,
	specs.ActKillThread,
	specs.ActTrap,
	specs.ActErrno,
	specs.ActTrace,
	specs.ActAllow,
	specs.ActLog,
	specs.ActNotify,
}

// operatorNames lists every argument comparison of the runtime spec.
var operatorNames = []specs.LinuxSeccompOperator{
	specs.OpNotEqual,
	specs.OpLessThan,
	specs.OpLessEqual,
	specs.OpEqualTo,
	specs.OpGreaterEqual,
	specs.OpGreaterThan,
	specs.OpMaskedEqual,
}

// archNames maps the runtime spec's architecture names to libseccomp's
// names (as accepted by seccomp_arch_resolve_name / GetArchFromString).
var archNames = []struct {
	spec specs.Arch
	lib  string
}{
	{specs.ArchX86, "x86"},
	{specs.ArchX86_64, "amd64"},
	{specs.ArchX32, "x32"},
	{specs.ArchARM, "arm"},
	{specs.ArchAARCH64, "arm64"},
	{specs.ArchMIPS, "mips"},
	{specs.ArchMIPS64, "mips64"},
	{specs.ArchMIPS64N32, "mips64n32"},
	{specs.ArchMIPSEL, "mipsel"},
	{specs.ArchMIPSEL64, "mipsel64"},
	{specs.ArchMIPSEL64N32, "mipsel64n32"},
	{specs.ArchPPC, "ppc"},
	{specs.ArchPPC64, "ppc64"},
	{specs.ArchPPC64LE, "ppc64le"},
	{specs.ArchS390, "s390"},
	{specs.ArchS390X, "s390x"},
	{specs.ArchPARISC, "parisc"},
	{specs.ArchPARISC64, "parisc64"},
	{specs.ArchRISCV64, "riscv64"},
	{specs.ArchLOONGARCH64, "loong64"},
	{specs.ArchM68K, "m68k"},
	{specs.ArchSH, "sh"},
	{specs.ArchSHEB, "sheb"},
}

type flagBit struct {
	name specs.LinuxSeccompFlag
	bit  uint
}

// flagBits maps the runtime spec's filter flags to seccomp(2) flag bits.
// SECCOMP_FILTER_FLAG_TSYNC is accepted too although the spec does not list
// it: Load always synchronizes threads anyway.
var flagBits = []flagBit{
	{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
	{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
	{specs.LinuxSeccompFlagWaitKillableRecv, unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
	{"SECCOMP_FILTER_FLAG_TSYNC", unix.SECCOMP_FILTER_FLAG_TSYNC},
}

// Features returns the actions, architectures and operators hull
// understands, in the runtime spec's spelling, for `hullrt features`.
// Every architecture is accepted; those this machine cannot run get no
// section in the filter.
func Features() (actions, archs, operators []string) {
	for _, a := range actionNames {
		actions = append(actions, string(a))
	}
	for _, a := range archNames {
		if libArchSupported(a.lib) {
			archs = append(archs, string(a.spec))
		}
	}
	for _, o := range operatorNames {
		operators = append(operators, string(o))
	}
	return actions, archs, operators
}

// KnownFlags returns the filter flags hull recognizes (the features
// document's knownFlags).
func KnownFlags() []string {
	out := make([]string, 0, len(flagBits))
	for _, f := range flagBits {
		out = append(out, string(f.name))
	}
	return out
}

// SupportedFlags returns the subset of KnownFlags the running kernel accepts
// (the features document's supportedFlags).
func SupportedFlags() []string {
	var out []string
	for _, f := range flagBits {
		if kernelHasFlag(f.bit) {
			out = append(out, string(f.name))
		}
	}
	return out
}

// checkAction validates an action name.
func checkAction(a specs.LinuxSeccompAction) error {
	if slices.Contains(actionNames, a) {
		return nil
	}
	return fmt.Errorf("seccomp: unknown action %q: %w", a, errdefs.ErrInvalidArgument)
}

// checkOperator validates an operator name.
func checkOperator(o specs.LinuxSeccompOperator) error {
	if slices.Contains(operatorNames, o) {
		return nil
	}
	return fmt.Errorf("seccomp: unknown operator %q: %w", o, errdefs.ErrInvalidArgument)
}

// libArchName returns libseccomp's name for a spec architecture.
func libArchName(a specs.Arch) (string, error) {
	for _, n := range archNames {
		if n.spec == a {
			return n.lib, nil
		}
	}
	return "", fmt.Errorf("seccomp: unknown architecture %q: %w", a, errdefs.ErrInvalidArgument)
}

// flagMask converts spec flags to seccomp(2) bits.
func flagMask(flags []specs.LinuxSeccompFlag) (uint, error) {
	var mask uint
	for _, f := range flags {
		i := slices.IndexFunc(flagBits, func(b flagBit) bool { return b.name == f })
		if i < 0 {
			return 0, fmt.Errorf("seccomp: unknown flag %q: %w", f, errdefs.ErrInvalidArgument)
		}
		mask |= flagBits[i].bit
	}
	return mask, nil
}

// CheckFlags validates a flag list without loading anything, so the parent
// can reject a bad config before it starts the container.
func CheckFlags(flags []specs.LinuxSeccompFlag) error {
	_, err := flagMask(flags)
	return err
}
