package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// bpfAsm assembles a classic BPF program whose jumps name labels. Conditional
// jumps reach at most 255 instructions ahead; the compiler keeps them inside
// one rule and uses unconditional jumps (32-bit offsets) for everything
// longer, and resolve reports any that do not fit rather than wrapping.
type bpfAsm struct {
	insns  []unix.SockFilter
	jt, jf []int // label ids; 0 = the next instruction
	ja     []int // label id of a BPF_JA, else 0
	labels []int // label id → instruction index (-1 until placed)
}

// newLabel returns a label to place later with place.
func (a *bpfAsm) newLabel() int {
	if len(a.labels) == 0 {
		a.labels = append(a.labels, -1) // id 0 means "next"
	}
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *bpfAsm) place(l int) { a.labels[l] = len(a.insns) }

func (a *bpfAsm) emit(code uint16, k uint32, jt, jf, ja int) {
	a.insns = append(a.insns, unix.SockFilter{Code: code, K: k})
	a.jt = append(a.jt, jt)
	a.jf = append(a.jf, jf)
	a.ja = append(a.ja, ja)
}

// op emits a non-jump instruction.
func (a *bpfAsm) op(code uint16, k uint32) { a.emit(code, k, 0, 0, 0) }

// jump emits a conditional jump to jt when true and jf when false (0: fall
// through).
func (a *bpfAsm) jump(code uint16, k uint32, jt, jf int) { a.emit(code, k, jt, jf, 0) }

// jumpTo emits an unconditional jump to l.
func (a *bpfAsm) jumpTo(l int) { a.emit(ja, 0, 0, 0, l) }

// ret emits a return of the constant action k.
func (a *bpfAsm) ret(k uint32) { a.op(retK, k) }

// resolve fills in the jump offsets.
func (a *bpfAsm) resolve() ([]unix.SockFilter, error) {
	off := func(i, l int) (int, error) {
		if l == 0 {
			return 0, nil
		}
		t := a.labels[l]
		if t < 0 {
			return 0, fmt.Errorf("seccomp: internal error: label %d never placed", l)
		}
		if t <= i {
			return 0, fmt.Errorf("seccomp: internal error: backward jump at %d", i)
		}
		return t - i - 1, nil
	}
	for i := range a.insns {
		if a.ja[i] != 0 {
			d, err := off(i, a.ja[i])
			if err != nil {
				return nil, err
			}
			a.insns[i].K = uint32(d)
			continue
		}
		for _, p := range []struct {
			l   int
			dst *uint8
		}{{a.jt[i], &a.insns[i].Jt}, {a.jf[i], &a.insns[i].Jf}} {
			d, err := off(i, p.l)
			if err != nil {
				return nil, err
			}
			if d > 255 {
				return nil, fmt.Errorf("seccomp: internal error: conditional jump of %d at %d", d, i)
			}
			*p.dst = uint8(d)
		}
	}
	return a.insns, nil
}
