package seccomp

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

// memo is the process-wide in-memory cache behind Compile.
var memo = NewCache("")

// Compile validates and compiles an OCI seccomp config to a BPF program for
// Load. It runs in the runtime's parent process; the result is plain data
// the caller owns and can hand to the container init. Unknown syscall names
// are ignored; unknown actions, architectures, operators and flags are
// ErrInvalidArgument naming the value. On a Go architecture hull has no
// syscall table for (anything but amd64 and arm64) it validates and then
// returns ErrNotImplemented.
//
// Results are memoized in memory for the life of the process, so a
// long-lived caller compiles each distinct profile once.
func Compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	return memo.Compile(s)
}

// maxInsns is the kernel's limit on one classic BPF program (BPF_MAXINSNS).
const maxInsns = maxProgLen

// rule is one rule of one syscall on one architecture: its action when
// every condition holds (none: always).
type rule struct {
	act   uint32
	conds []specs.LinuxSeccompArg
}

// section is what one architecture's part of the filter says: the rules
// of each syscall number, in the order the profile gave them.
type section struct {
	arch  *archInfo
	rules map[uint32][]rule
	// maxNr is the highest real syscall number the profile names here (the
	// ENOSYS stub's threshold); see recordMax.
	maxNr int
}

// compile builds the program for s, without any caching. The program has
// libseccomp's semantics (hull used libseccomp before; the tests hold the
// two to the same verdicts): one section per architecture (the native one
// and the listed ones this kernel can run) selected by seccomp_data.arch,
// anything else killed; in a section, per syscall, the first unconditional
// rule wins, else the conditional rules are tried (the one whose first
// condition is on the highest argument first, like libseccomp's tree), and
// what matches none gets the default action.
func compile(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if err := Validate(s); err != nil {
		return nil, err
	}
	archs := filterArchs(s.Architectures)
	if len(archs) == 0 {
		return nil, fmt.Errorf("seccomp: no syscall table for %s: %w", runtime.GOARCH, errdefs.ErrNotImplemented)
	}
	defAct := action(s.DefaultAction, s.DefaultErrnoRet)
	secs := make([]*section, len(archs))
	for i, a := range archs {
		secs[i] = &section{arch: a, rules: map[uint32][]rule{}}
	}
	for i := range s.Syscalls {
		if err := addSyscall(secs, &s.Syscalls[i], defAct); err != nil {
			return nil, err
		}
	}
	prog, err := generate(secs, defAct)
	if err != nil {
		return nil, err
	}
	if s.DefaultAction == specs.ActErrno && errnoOf(s.DefaultErrnoRet) != uint(unix.ENOSYS) {
		prog = prependENOSYS(prog, stubArchs(secs))
	}
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: compiled filter has %d instructions, the kernel allows %d: %w",
			len(prog), maxInsns, errdefs.ErrInvalidArgument)
	}
	return prog, nil
}

// addSyscall adds the rules of one syscall entry to every section.
func addSyscall(secs []*section, sc *specs.LinuxSyscall, defAct uint32) error {
	act := action(sc.Action, sc.ErrnoRet)
	alts := alternatives(sc.Args)
	for _, name := range sc.Names {
		e := lookup(name)
		if e == nil {
			// Unknown to libseccomp's tables (a newer syscall, or a
			// typo): ignored like runc does so that newer profiles load.
			continue
		}
		for _, sec := range secs {
			recordMax(sec, e)
			// A rule repeating the default action changes nothing
			// (libseccomp refuses it); drop it.
			if act == defAct {
				continue
			}
			for _, conds := range alts {
				if err := sec.add(e, act, conds); err != nil {
					return fmt.Errorf("seccomp: syscall %q action %q: %w", name, sc.Action, err)
				}
			}
		}
	}
	return nil
}

// alternatives turns the spec's argument list into rules: one rule (AND of
// all conditions) when every argument index appears once, else one rule per
// condition (OR), which is what runc does and what profiles such as the
// default personality rule rely on. Each rule's conditions are sorted by
// argument index, the order libseccomp checks them in.
func alternatives(args []specs.LinuxSeccompArg) [][]specs.LinuxSeccompArg {
	if len(args) == 0 {
		return [][]specs.LinuxSeccompArg{nil}
	}
	var seen [maxArgs]bool
	for _, a := range args {
		if seen[a.Index] {
			out := make([][]specs.LinuxSeccompArg, len(args))
			for i := range args {
				out[i] = args[i : i+1]
			}
			return out
		}
		seen[a.Index] = true
	}
	all := slices.Clone(args)
	slices.SortStableFunc(all, func(a, b specs.LinuxSeccompArg) int { return int(a.Index) - int(b.Index) })
	return [][]specs.LinuxSeccompArg{all}
}

// add records a rule for syscall e on this section's architecture: on the
// syscall's own number and, on x86, also on the socketcall/ipc multiplexer
// with argument 0 naming the sub-call (libseccomp's rewrite: argument 0 of
// the multiplexer is the sub-call, so a condition on the original argument
// 0 gives way to it).
func (sec *section) add(e *sysEntry, act uint32, conds []specs.LinuxSeccompArg) error {
	if nr := e.nr[sec.arch.col]; nr >= 0 {
		if err := sec.addNr(uint32(nr), act, conds); err != nil {
			return err
		}
	}
	if !sec.arch.mux || e.mux == 0 {
		return nil
	}
	mux, sub := uint32(x86Socketcall), uint64(e.mux-100)
	if e.mux >= 200 {
		mux, sub = x86IPC, uint64(e.mux-200)
	}
	mc := []specs.LinuxSeccompArg{{Index: 0, Value: sub, Op: specs.OpEqualTo}}
	for _, c := range conds {
		if c.Index != 0 {
			mc = append(mc, c)
		}
	}
	return sec.addNr(mux, act, mc)
}

// addNr appends a rule to syscall nr. The same conditions with another
// action are a conflict libseccomp refuses (EEXIST); so does hull.
func (sec *section) addNr(nr uint32, act uint32, conds []specs.LinuxSeccompArg) error {
	if sec.arch.args32 {
		// 32-bit ABI: libseccomp compares the low words only.
		conds = slices.Clone(conds)
		for i := range conds {
			conds[i].Value &= 0xffffffff
			conds[i].ValueTwo &= 0xffffffff
		}
	}
	for _, r := range sec.rules[nr] {
		if slices.Equal(r.conds, conds) {
			if r.act != act {
				return fmt.Errorf("conflicts with an earlier rule with the same conditions and another action: %w",
					errdefs.ErrInvalidArgument)
			}
			return nil
		}
	}
	sec.rules[nr] = append(sec.rules[nr], rule{act: act, conds: conds})
	return nil
}

// recordMax notes the highest real syscall number the profile names on the
// section's architecture (the ENOSYS stub's threshold), counting the numbers
// libseccomp resolves a name to: not x86's multiplexed calls (a pseudo
// number there), not x32's 512..547 range (x32 variants of old syscalls,
// which say nothing about how new the profile is), not ARM's private calls.
func recordMax(sec *section, e *sysEntry) {
	n := int(e.nr[sec.arch.col])
	if n < 0 || (sec.arch.mux && e.mux != 0) {
		return
	}
	if sec.arch.x32 {
		n &^= x32Bit
		if n >= x32Specific {
			return
		}
	}
	if sec.arch == &archARM && n >= armPrivate {
		return
	}
	sec.maxNr = max(sec.maxNr, n)
}

// stubArchs lists the ENOSYS stub's architectures: the filter's, when the
// profile names at least one syscall on them. x32 rides on x86_64's entry.
func stubArchs(secs []*section) []stubArch {
	var out []stubArch
	x32Max := 0
	for _, s := range secs {
		if s.arch.x32 {
			x32Max = s.maxNr
		}
	}
	for _, s := range secs {
		if s.arch.x32 || s.maxNr <= 0 {
			continue
		}
		st := stubArch{audit: s.arch.audit, max: uint32(s.maxNr)}
		if s.arch == &archARM {
			st.ceiling = armPrivate
		}
		if s.arch == &archX86_64 && x32Max > 0 {
			st.x32, st.x32Max = true, uint32(x32Max)
		}
		out = append(out, st)
	}
	return out
}

// action converts a spec action (validated already) to its SECCOMP_RET
// value.
func action(a specs.LinuxSeccompAction, errno *uint) uint32 {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(errnoOf(errno))&unix.SECCOMP_RET_DATA
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(errnoOf(errno))&unix.SECCOMP_RET_DATA
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	}
	return unix.SECCOMP_RET_ALLOW
}

// libVersion names the compiler in the cache key.
func libVersion() string { return "hull-bpf-1/" + tableLibseccomp }

// libArchSupported: every architecture the spec names is accepted (those
// this machine cannot run get no section; see filterArchs).
func libArchSupported(string) bool { return true }
