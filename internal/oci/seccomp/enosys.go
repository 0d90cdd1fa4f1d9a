package seccomp

import (
	"golang.org/x/sys/unix"
)

// The ENOSYS stub. A profile with an errno default (the CRI default profile
// included) answers every syscall it does not list with that errno, EPERM
// usually. For syscalls newer than the profile (or than libseccomp, which
// cannot even name them) that is wrong: libc probes new syscalls such as
// clone3 or fchmodat2 and falls back to the old ones only on ENOSYS. So,
// like runc, hull puts a short program in front of libseccomp's that answers
// ENOSYS for any syscall number above the highest one the profile names on
// that architecture; everything else falls through to the real filter.
//
// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

// x32Bit marks x32 syscalls, which share AUDIT_ARCH_X86_64 with x86_64.
const x32Bit = 0x40000000

// x32Specific is the first x32-only syscall number (512..547 are x32 ABI
// variants of older calls; newer syscalls use the common numbers).
const x32Specific = 512

// armPrivate is the first of 32-bit ARM's private syscalls (__ARM_NR_BASE:
// breakpoint, cacheflush, set_tls...), far above the ordinary numbers.
const armPrivate = 0x0f0000

// stubArch is one architecture of the stub: its AUDIT_ARCH value and the
// highest syscall number the profile names on it.
type stubArch struct {
	audit uint32
	max   uint32
	// ceiling, when not 0, starts a range of numbers the stub leaves to
	// the real filter (ARM's private syscalls).
	ceiling uint32
	// x32: for AUDIT_ARCH_X86_64, whether x32 is in the filter too and the
	// highest common (below 512) x32 syscall number, without x32Bit.
	x32    bool
	x32Max uint32
}

// asm is a tiny assembler for the stub: jumps name labels, resolved to the
// relative offsets classic BPF needs once the layout is known.
type asm struct {
	insns  []unix.SockFilter
	jt, jf []string
	labels map[string]int
}

func (a *asm) op(code uint16, k uint32) {
	a.insns = append(a.insns, unix.SockFilter{Code: code, K: k})
	a.jt = append(a.jt, "")
	a.jf = append(a.jf, "")
}

func (a *asm) jump(code uint16, k uint32, jt, jf string) {
	a.op(code, k)
	a.jt[len(a.jt)-1], a.jf[len(a.jf)-1] = jt, jf
}

func (a *asm) label(name string) { a.labels[name] = len(a.insns) }

// resolve fills in jump offsets. "main" is the first instruction after the
// stub. Offsets stay far below 256 because the stub is a few instructions per
// architecture.
func (a *asm) resolve() []unix.SockFilter {
	a.labels["main"] = len(a.insns)
	for i := range a.insns {
		if a.jt[i] != "" {
			a.insns[i].Jt = uint8(a.labels[a.jt[i]] - i - 1)
		}
		if a.jf[i] != "" {
			a.insns[i].Jf = uint8(a.labels[a.jf[i]] - i - 1)
		}
	}
	return a.insns
}

const (
	ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jgt  = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	ja   = unix.BPF_JMP | unix.BPF_JA
	retK = unix.BPF_RET | unix.BPF_K
)

// prependENOSYS returns prog with the ENOSYS stub in front for the given
// architectures (prog itself starts by loading the architecture, so it does
// not depend on what the stub leaves in the accumulator).
func prependENOSYS(prog []unix.SockFilter, archs []stubArch) []unix.SockFilter {
	if len(archs) == 0 {
		return prog
	}
	a := &asm{labels: map[string]int{}}
	a.op(ldW, offArch)
	for i, s := range archs {
		next := "next" + string(rune('a'+i))
		a.jump(jeq, s.audit, "", next)
		a.op(ldW, offNr)
		if s.audit == unix.AUDIT_ARCH_X86_64 {
			if s.x32 {
				a.jump(jset, x32Bit, "x32", "")
			} else {
				// x32 is not in the filter: libseccomp's program sends it
				// to the bad-architecture action; leave it alone.
				a.jump(jset, x32Bit, "main", "")
			}
		}
		if s.ceiling != 0 {
			a.jump(jge, s.ceiling, "main", "")
		}
		a.jump(jgt, s.max, "enosys", "main")
		if s.audit == unix.AUDIT_ARCH_X86_64 && s.x32 {
			a.label("x32")
			a.jump(jge, x32Bit|x32Specific, "main", "")
			a.jump(jgt, x32Bit|s.x32Max, "enosys", "main")
		}
		a.label(next)
	}
	a.jump(ja, 1, "", "")
	a.label("enosys")
	a.op(retK, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	stub := a.resolve()
	return append(stub, prog...)
}
