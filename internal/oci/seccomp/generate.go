package seccomp

import (
	"maps"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Classic BPF opcodes the compiler emits beyond the stub's (enosys.go).
const (
	andK = 0x54 // BPF_ALU | BPF_AND | BPF_K
)

// offArg is the offset of the low word of argument i in struct
// seccomp_data (little-endian: the high word follows it).
func offArg(i uint) uint32 { return 16 + 8*uint32(i) }

// generate lays the sections out:
//
//	ld arch
//	section*: jeq AUDIT_ARCH → body, else jump to the next section
//	          body: ld nr; [x32 split]; per syscall: jeq NR → its rules, else
//	          on to the next syscall; the default action
//	the bad-architecture action (kill), as libseccomp's default
//
// Jumps longer than a rule use BPF_JA, whose offset has 32 bits.
func generate(secs []*section, defAct uint32) ([]unix.SockFilter, error) {
	a := &bpfAsm{}
	badArch := a.newLabel()
	starts := make([]int, len(secs)+1)
	bodies := make([]int, len(secs))
	for i := range starts {
		starts[i] = a.newLabel()
		if i < len(secs) {
			bodies[i] = a.newLabel()
		}
	}
	a.op(ldW, offArch)
	for i, sec := range secs {
		a.place(starts[i])
		body := bodies[i]
		a.jump(jeq, sec.arch.audit, body, 0)
		a.jumpTo(starts[i+1])
		a.place(body)
		a.op(ldW, offNr)
		switch {
		case sec.arch == &archX86_64:
			// x32 syscalls share the architecture value: they go to the
			// x32 section when there is one, else are a bad architecture.
			x32 := badArch
			for j, s := range secs {
				if s.arch.x32 {
					x32 = bodies[j] // past its arch check: A holds nr now
				}
			}
			ok := a.newLabel()
			a.jump(jge, x32Bit, 0, ok)
			a.jumpTo(x32)
			a.place(ok)
		case sec.arch.x32:
			ok := a.newLabel()
			a.jump(jge, x32Bit, ok, 0)
			a.jumpTo(badArch)
			a.place(ok)
		}
		for _, nr := range slices.Sorted(maps.Keys(sec.rules)) {
			next, here := a.newLabel(), a.newLabel()
			a.jump(jeq, nr, here, 0)
			a.jumpTo(next)
			a.place(here)
			syscallRules(a, sec.arch.args32, sec.rules[nr], defAct)
			a.place(next)
		}
		a.ret(defAct)
	}
	a.place(starts[len(secs)])
	a.place(badArch)
	a.ret(0) // SECCOMP_RET_KILL_THREAD, libseccomp's default bad-arch action
	return a.resolve()
}

// syscallRules emits the checks of one syscall; every path ends in a
// return.
func syscallRules(a *bpfAsm, args32 bool, rules []rule, defAct uint32) {
	for _, r := range rules {
		if len(r.conds) == 0 {
			// libseccomp: an unconditional rule replaces the syscall's
			// conditional ones, and a later one adds nothing.
			a.ret(r.act)
			return
		}
	}
	ordered := slices.Clone(rules)
	slices.SortStableFunc(ordered, func(x, y rule) int { return int(y.conds[0].Index) - int(x.conds[0].Index) })
	for _, r := range ordered {
		fail := a.newLabel()
		for _, c := range r.conds {
			condition(a, args32, c, fail)
		}
		a.ret(r.act)
		a.place(fail)
	}
	a.ret(defAct)
}

// condition emits one comparison: it falls through when c holds and jumps
// to fail when not. 64-bit values compare the high words first, then the
// low ones; 32-bit ABIs (args32) compare the low words only.
func condition(a *bpfAsm, args32 bool, c specs.LinuxSeccompArg, fail int) {
	lo, hi := uint32(c.Value), uint32(c.Value>>32)
	off := offArg(c.Index)
	pass := a.newLabel()
	defer a.place(pass)
	if c.Op == specs.OpMaskedEqual {
		// libseccomp compares with datum&mask: a datum bit outside the mask
		// cannot make the test fail.
		mlo, mhi := lo, hi
		dlo, dhi := uint32(c.ValueTwo)&mlo, uint32(c.ValueTwo>>32)&mhi
		if !args32 {
			a.op(ldW, off+4)
			a.op(andK, mhi)
			a.jump(jeq, dhi, 0, fail)
		}
		a.op(ldW, off)
		a.op(andK, mlo)
		a.jump(jeq, dlo, 0, fail)
		return
	}
	// t and f are where the low-word test goes, and gt/ge which test it is;
	// the high word decides alone unless it equals the value's.
	var code uint16
	t, f := pass, fail
	switch c.Op {
	case specs.OpEqualTo:
		code = jeq
	case specs.OpNotEqual:
		code, t, f = jeq, fail, pass
	case specs.OpGreaterThan:
		code = jgt
	case specs.OpGreaterEqual:
		code = jge
	case specs.OpLessThan:
		code, t, f = jge, fail, pass
	case specs.OpLessEqual:
		code, t, f = jgt, fail, pass
	}
	if !args32 {
		a.op(ldW, off+4)
		switch c.Op {
		case specs.OpEqualTo:
			a.jump(jeq, hi, 0, fail)
		case specs.OpNotEqual:
			a.jump(jeq, hi, 0, pass)
		default:
			// Ordered comparisons: a higher high word decides (true for
			// >/>=, false for </<=), a lower one the opposite.
			a.jump(jgt, hi, t, 0)
			a.jump(jeq, hi, 0, f)
		}
	}
	a.op(ldW, off)
	a.jump(code, lo, t, f)
}
