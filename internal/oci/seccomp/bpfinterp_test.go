package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// A classic BPF interpreter for the tests: the child-process tests can only
// run native syscalls, so the compat architectures and exact argument
// values go through this, with struct seccomp_data built like the kernel
// does.

// seccompData lays out struct seccomp_data (native endian).
func seccompData(arch uint32, nr int32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(nr))
	binary.NativeEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// interpret runs prog over data and returns the filter's verdict. It knows
// the instructions libseccomp and the ENOSYS stub emit.
func interpret(t *testing.T, prog []unix.SockFilter, data []byte) uint32 {
	t.Helper()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		cond := func(ok bool) {
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if int(in.K)+4 > len(data) {
				t.Fatalf("load beyond seccomp_data at %d", pc)
			}
			a = binary.NativeEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			cond(a == in.K)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			cond(a > in.K)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			cond(a >= in.K)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			cond(a&in.K != 0)
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %+v at %d not known to the test interpreter", in, pc)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}
