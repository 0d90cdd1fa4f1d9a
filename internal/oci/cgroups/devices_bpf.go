package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices.allow: device access is decided by an eBPF
// program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The
// kernel runs it on every open/mknod of a device node with a
// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
// (access_type = access bits << 16 | device type) and allows the access
// when it returns 1. hull assembles the program from the compiled policy:
// one block per exception that returns the exception's verdict on a match,
// then the default verdict.

// bpfInsn is struct bpf_insn.
type bpfInsn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high nibble
	off  int16
	imm  int32
}

// eBPF opcodes used here.
const (
	opLdxW    = 0x61 // BPF_LDX | BPF_MEM | BPF_W
	opAnd32K  = 0x54 // BPF_ALU | BPF_AND | BPF_K
	opRsh32K  = 0x74 // BPF_ALU | BPF_RSH | BPF_K
	opMov32X  = 0xbc // BPF_ALU | BPF_MOV | BPF_X
	opMov64K  = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opJneK    = 0x55 // BPF_JMP | BPF_JNE | BPF_K
	opJeqK    = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
	opExit    = 0x95 // BPF_JMP | BPF_EXIT
	devcgBlk  = 1    // BPF_DEVCG_DEV_BLOCK
	devcgChar = 2    // BPF_DEVCG_DEV_CHAR
)

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{code: code, regs: dst | src<<4, off: off, imm: imm}
}

// devicesProgram assembles the policy. Registers: r2 = device type,
// r3 = requested access bits, r4 = major, r5 = minor, r1 = scratch.
func devicesProgram(p devPolicy) []bpfInsn {
	prog := []bpfInsn{
		insn(opLdxW, 2, 1, 0, 0),
		insn(opAnd32K, 2, 0, 0, 0xffff),
		insn(opLdxW, 3, 1, 0, 0),
		insn(opRsh32K, 3, 0, 0, 16),
		insn(opLdxW, 4, 1, 4, 0),
		insn(opLdxW, 5, 1, 8, 0),
	}
	verdict := func(allow bool) int32 {
		if allow {
			return 1
		}
		return 0
	}
	for _, e := range p.exceptions {
		// Each test jumps past the block on a mismatch; offsets are
		// patched once the block's length is known.
		var block []bpfInsn
		var jumps []int
		test := func(in bpfInsn) {
			jumps = append(jumps, len(block))
			block = append(block, in)
		}
		switch e.typ {
		case 'b':
			test(insn(opJneK, 2, 0, 0, devcgBlk))
		case 'c':
			test(insn(opJneK, 2, 0, 0, devcgChar))
		}
		if e.access != accAll {
			block = append(block, insn(opMov32X, 1, 3, 0, 0))
			if e.allow {
				// Allowed only if every requested bit is in the rule.
				block = append(block, insn(opAnd32K, 1, 0, 0, int32(accAll&^e.access)))
				test(insn(opJneK, 1, 0, 0, 0))
			} else {
				// Denied if any requested bit is in the rule, as v1 does.
				block = append(block, insn(opAnd32K, 1, 0, 0, int32(e.access)))
				test(insn(opJeqK, 1, 0, 0, 0))
			}
		}
		if e.major >= 0 {
			test(insn(opJneK, 4, 0, 0, int32(uint32(e.major))))
		}
		if e.minor >= 0 {
			test(insn(opJneK, 5, 0, 0, int32(uint32(e.minor))))
		}
		block = append(block, insn(opMov64K, 0, 0, 0, verdict(e.allow)), insn(opExit, 0, 0, 0, 0))
		for _, j := range jumps {
			block[j].off = int16(len(block) - j - 1)
		}
		prog = append(prog, block...)
	}
	return append(prog, insn(opMov64K, 0, 0, 0, verdict(p.defaultAllow)), insn(opExit, 0, 0, 0, 0))
}

func encodeProgram(prog []bpfInsn) []byte {
	b := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		b = append(b, in.code, in.regs)
		b = binary.LittleEndian.AppendUint16(b, uint16(in.off))
		b = binary.LittleEndian.AppendUint32(b, uint32(in.imm))
	}
	return b
}

// The bpf(2) attribute layouts hull needs (prefixes of union bpf_attr;
// the kernel zero-fills the rest).
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

type bpfAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type bpfGetFdAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return int(r), errno
	}
	return int(r), nil
}

func loadDevicesProgram(prog []bpfInsn) (int, error) {
	code := encodeProgram(prog)
	license := []byte("Apache\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil && !errors.Is(err, unix.EPERM) {
		// Load again with the verifier's log for the error message.
		log := make([]byte, 64*1024)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		if _, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err2 != nil {
			err = fmt.Errorf("%w: %s", err, unix.ByteSliceToString(log))
		}
		runtime.KeepAlive(log)
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if err != nil {
		return -1, fmt.Errorf("cgroups: load device eBPF program: %w", err)
	}
	return fd, nil
}

// attachedDevicePrograms returns fds of the device programs on cgroupFd.
func attachedDevicePrograms(cgroupFd int) ([]int, error) {
	ids := make([]uint32, 64)
	attr := bpfQueryAttr{
		targetFd:   uint32(cgroupFd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
		progCnt:    uint32(len(ids)),
	}
	if _, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return nil, fmt.Errorf("cgroups: query device programs: %w", err)
	}
	runtime.KeepAlive(ids)
	var fds []int
	for _, id := range ids[:min(int(attr.progCnt), len(ids))] {
		ga := bpfGetFdAttr{id: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&ga), unsafe.Sizeof(ga))
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // detached meanwhile
			}
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, fmt.Errorf("cgroups: open device program %d: %w", id, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// setDevices replaces the cgroup's device program with one for the spec's
// rules followed by DefaultAllowedDevices: the new one is attached
// first (BPF_F_ALLOW_MULTI) and the old ones detached after, so there is no
// moment without a policy.
func (m *v2Manager) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	return m.writeDevices(withDefaultDevices(r.Devices))
}

// writeDevices compiles exactly rules into a program and swaps it in.
func (m *v2Manager) writeDevices(rules []specs.LinuxDeviceCgroup) error {
	p, err := compileDevices(rules)
	if err != nil {
		return err
	}
	progFd, err := loadDevicesProgram(devicesProgram(p))
	if err != nil {
		return err
	}
	defer unix.Close(progFd)
	cg, err := unix.Open(m.dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: open %s: %w", m.dir, err)
	}
	defer unix.Close(cg)
	old, err := attachedDevicePrograms(cg)
	if err != nil {
		return err
	}
	defer func() {
		for _, fd := range old {
			unix.Close(fd)
		}
	}()
	attach := bpfAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(progFd), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		if len(old) == 0 {
			return fmt.Errorf("cgroups: attach device program to %s: %w", m.dir, err)
		}
		// An old program attached without ALLOW_MULTI: replace it in
		// place (flags 0 overrides a single program).
		attach.attachFlags = 0
		if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
			return fmt.Errorf("cgroups: attach device program to %s: %w", m.dir, err)
		}
		return nil
	}
	for _, fd := range old {
		det := bpfAttachAttr{targetFd: uint32(cg), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&det), unsafe.Sizeof(det)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("cgroups: detach old device program from %s: %w", m.dir, err)
		}
	}
	return nil
}
