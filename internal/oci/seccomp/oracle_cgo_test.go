//go:build cgo

package seccomp

// The oracle: hull's earlier compiler, which built filters with libseccomp
// (cgo). The tests hold the pure-Go compiler to the same verdicts.

import (
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// oracleCompile builds the program for s with libseccomp, without any caching.
func oracleCompile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	defAct, err := oracleAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("seccomp: new filter with default action %q: %w", s.DefaultAction, err)
	}
	defer f.Release()
	// A binary tree of syscall numbers instead of a linear list: big
	// allow-lists (the default profile has ~400 names) cost far fewer
	// instructions per syscall. Older libseccomp lacks it; that is fine.
	_ = f.SetOptimize(2)

	archs, err := oracleArchs(f, s.Architectures)
	if err != nil {
		return nil, err
	}
	maxNr := map[libseccomp.ScmpArch]int{}
	for i := range s.Syscalls {
		if err := oracleSyscall(f, &s.Syscalls[i], defAct, archs, maxNr); err != nil {
			return nil, err
		}
	}
	prog, err := oracleExport(f)
	if err != nil {
		return nil, err
	}
	if s.DefaultAction == specs.ActErrno && errnoOf(s.DefaultErrnoRet) != uint(unix.ENOSYS) {
		prog = prependENOSYS(prog, oracleStubArchs(archs, maxNr))
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: compiled filter has %d instructions, the kernel allows %d: %w",
			len(prog), maxInsns, errdefs.ErrInvalidArgument)
	}
	return prog, nil
}

// addArchs adds the profile's architectures to f and returns every
// architecture the filter covers (the native one is always there).
// Architectures this libseccomp cannot build filters for are skipped: such a
// profile lists foreign architectures "just in case", and syscalls from them
// still hit the filter's bad-architecture action.
func oracleArchs(f *libseccomp.ScmpFilter, names []specs.Arch) ([]libseccomp.ScmpArch, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	archs := []libseccomp.ScmpArch{native}
	for _, n := range names {
		lib, err := libArchName(n)
		if err != nil {
			return nil, err
		}
		a, err := libseccomp.GetArchFromString(lib)
		if err != nil {
			continue
		}
		if err := f.AddArch(a); err != nil {
			continue
		}
		if a != native {
			archs = append(archs, a)
		}
	}
	return archs, nil
}

// addSyscall adds the rules of one syscall entry and records, per
// architecture, the highest syscall number the profile names.
func oracleSyscall(f *libseccomp.ScmpFilter, sc *specs.LinuxSyscall, defAct libseccomp.ScmpAction,
	archs []libseccomp.ScmpArch, maxNr map[libseccomp.ScmpArch]int) error {
	act, err := oracleAction(sc.Action, sc.ErrnoRet)
	if err != nil {
		return err
	}
	conds, err := oracleConditions(sc.Args)
	if err != nil {
		return fmt.Errorf("seccomp: syscall %q: %w", sc.Names[0], err)
	}
	for _, name := range sc.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			// Unknown to this libseccomp (a newer syscall, or a typo):
			// ignored like runc does so that newer profiles still load.
			continue
		}
		oracleRecordMax(name, archs, maxNr)
		// libseccomp refuses rules that repeat the default action; they
		// change nothing, so drop them.
		if act == defAct {
			continue
		}
		for _, c := range conds {
			if err := f.AddRuleConditional(nr, act, c); err != nil {
				return fmt.Errorf("seccomp: add rule for syscall %q action %q: %w: %w",
					name, sc.Action, err, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// conditions turns the spec's argument list into libseccomp rules: one rule
// (AND of all conditions) when every argument index appears once, else one
// rule per condition (OR), which is what runc does and what profiles such as
// the default personality rule rely on.
func oracleConditions(args []specs.LinuxSeccompArg) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return [][]libseccomp.ScmpCondition{nil}, nil
	}
	var seen [maxArgs]int
	all := make([]libseccomp.ScmpCondition, 0, len(args))
	repeated := false
	for _, a := range args {
		c, err := oracleCondition(a)
		if err != nil {
			return nil, err
		}
		seen[a.Index]++
		if seen[a.Index] > 1 {
			repeated = true
		}
		all = append(all, c)
	}
	if !repeated {
		return [][]libseccomp.ScmpCondition{all}, nil
	}
	out := make([][]libseccomp.ScmpCondition, 0, len(all))
	for _, c := range all {
		out = append(out, []libseccomp.ScmpCondition{c})
	}
	return out, nil
}

// condition converts one argument comparison.
func oracleCondition(a specs.LinuxSeccompArg) (libseccomp.ScmpCondition, error) {
	var op libseccomp.ScmpCompareOp
	switch a.Op {
	case specs.OpNotEqual:
		op = libseccomp.CompareNotEqual
	case specs.OpLessThan:
		op = libseccomp.CompareLess
	case specs.OpLessEqual:
		op = libseccomp.CompareLessOrEqual
	case specs.OpEqualTo:
		op = libseccomp.CompareEqual
	case specs.OpGreaterEqual:
		op = libseccomp.CompareGreaterEqual
	case specs.OpGreaterThan:
		op = libseccomp.CompareGreater
	case specs.OpMaskedEqual:
		// The spec's value is the mask and valueTwo the datum, the same
		// order libseccomp takes them in.
		c, err := libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, a.Value, a.ValueTwo)
		if err != nil {
			return c, fmt.Errorf("argument %d: %w: %w", a.Index, err, errdefs.ErrInvalidArgument)
		}
		return c, nil
	default:
		return libseccomp.ScmpCondition{}, checkOperator(a.Op)
	}
	c, err := libseccomp.MakeCondition(a.Index, op, a.Value)
	if err != nil {
		return c, fmt.Errorf("argument %d: %w: %w", a.Index, err, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// libAction converts a spec action (validated already) to libseccomp's.
func oracleAction(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(errnoOf(errno))), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(errnoOf(errno))), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, checkAction(a)
}

// exportBPF writes the filter's program into a memfd (no pipe-buffer limit,
// nothing on disk) and parses the sock_filter array back.
func oracleExport(f *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("hull-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: memfd for BPF export: %w", err)
	}
	file := os.NewFile(uintptr(fd), "hull-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp: rewind BPF export: %w", err)
	}
	raw, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("seccomp: read BPF export: %w", err)
	}
	return parseBPF(raw)
}

// oracleAuditArchs maps the architectures the ENOSYS stub covers to their
// AUDIT_ARCH values (struct seccomp_data.arch). Others get no stub.
var oracleAuditArchs = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchAMD64: unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX86:   unix.AUDIT_ARCH_I386,
	libseccomp.ArchARM64: unix.AUDIT_ARCH_AARCH64,
	libseccomp.ArchARM:   unix.AUDIT_ARCH_ARM,
}

// stubArchs lists the ENOSYS stub's architectures: those in the filter with
// a known AUDIT_ARCH that the profile names at least one syscall on.
func oracleStubArchs(archs []libseccomp.ScmpArch, maxNr map[libseccomp.ScmpArch]int) []stubArch {
	var out []stubArch
	hasX32 := false
	for _, a := range archs {
		hasX32 = hasX32 || (a == libseccomp.ArchX32 && maxNr[a] > 0)
	}
	for _, a := range archs {
		audit, ok := oracleAuditArchs[a]
		if !ok || maxNr[a] <= 0 {
			continue
		}
		s := stubArch{audit: audit, max: uint32(maxNr[a])}
		if a == libseccomp.ArchARM {
			s.ceiling = armPrivate
		}
		if a == libseccomp.ArchAMD64 && hasX32 {
			s.x32 = true
			s.x32Max = uint32(maxNr[libseccomp.ArchX32])
		}
		out = append(out, s)
	}
	return out
}

// recordMax notes, per architecture, the highest real syscall number (not
// one of libseccomp's negative pseudo numbers) the profile names. For x32
// only the common numbers count, without x32Bit: its 512..547 range holds
// x32 variants of old syscalls and says nothing about how new the profile is;
// likewise ARM's private syscalls.
func oracleRecordMax(name string, archs []libseccomp.ScmpArch, maxNr map[libseccomp.ScmpArch]int) {
	for _, a := range archs {
		n, err := libseccomp.GetSyscallFromNameByArch(name, a)
		if err != nil || n < 0 {
			continue
		}
		v := int(n)
		if a == libseccomp.ArchX32 {
			v &^= x32Bit
			if v >= x32Specific {
				continue
			}
		}
		if a == libseccomp.ArchARM && v >= armPrivate {
			continue
		}
		if v > maxNr[a] {
			maxNr[a] = v
		}
	}
}
