package cri

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
)

// pauseCode is the whole pause program for x86-64 Linux, 68 bytes: as pid 1
// of a pod's pid namespace it sets SIGCHLD to SIG_IGN (so the kernel reaps
// every orphan that exits, no wait loop needed) and sleeps in pause(2)
// forever; hulld ends it with SIGKILL. A Go program doing the same costs
// ~0.7 MB of anonymous memory and 5 threads per pod; this costs one page.
//
//	   mov  eax, 13          ; rt_sigaction(SIGCHLD, &act, NULL, 8)
//	   mov  edi, 17
//	   lea  rsi, [rip+act]
//	   xor  edx, edx
//	   mov  r10d, 8
//	   syscall
//	1: mov  eax, 34          ; pause()
//	   syscall
//	   jmp  1b
//	act: dq 1, 0, 0, 0       ; sa_handler = SIG_IGN, flags, restorer, mask
var pauseCode = []byte{
	0xb8, 0x0d, 0x00, 0x00, 0x00,
	0xbf, 0x11, 0x00, 0x00, 0x00,
	0x48, 0x8d, 0x35, 0x13, 0x00, 0x00, 0x00,
	0x31, 0xd2,
	0x41, 0xba, 0x08, 0x00, 0x00, 0x00,
	0x0f, 0x05,
	0xb8, 0x22, 0x00, 0x00, 0x00,
	0x0f, 0x05,
	0xeb, 0xf7,
	1, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0,
}

// pauseELF wraps pauseCode in a static ELF64 executable: one read+execute
// PT_LOAD segment mapping the whole file at 0x400000, entry right after the
// headers.
func pauseELF() []byte {
	const base, ehsize, phsize = 0x400000, 64, 56
	size := uint64(ehsize + phsize + len(pauseCode))
	var b bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&b, le, v) }
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0})
	b.Write(make([]byte, 8))
	w(uint16(2))                      // e_type: ET_EXEC
	w(uint16(0x3e))                   // e_machine: x86-64
	w(uint32(1))                      // e_version
	w(uint64(base + ehsize + phsize)) // e_entry
	w(uint64(ehsize))                 // e_phoff
	w(uint64(0))                      // e_shoff
	w(uint32(0))                      // e_flags
	w(uint16(ehsize))                 // e_ehsize
	w(uint16(phsize))                 // e_phentsize
	w(uint16(1))                      // e_phnum
	w(uint16(0))                      // e_shentsize
	w(uint16(0))                      // e_shnum
	w(uint16(0))                      // e_shstrndx
	w(uint32(1))                      // p_type: PT_LOAD
	w(uint32(5))                      // p_flags: R+X
	w(uint64(0))                      // p_offset
	w(uint64(base))                   // p_vaddr
	w(uint64(base))                   // p_paddr
	w(size)                           // p_filesz
	w(size)                           // p_memsz
	w(uint64(0x1000))                 // p_align
	b.Write(pauseCode)
	return b.Bytes()
}

// pauseBinary returns the pause program to run: on x86-64 the tiny one,
// written once under hulld's state dir (root-only); elsewhere hull-pause
// next to hulld.
func (s *Service) pauseBinary() (string, error) {
	if goruntime.GOARCH != "amd64" {
		return filepath.Join(filepath.Dir(s.opts.MonitorPath), "hull-pause"), nil
	}
	p := filepath.Join(s.opts.State, "pause")
	want := pauseELF()
	if have, err := os.ReadFile(p); err == nil && bytes.Equal(have, want) {
		return p, nil
	}
	// A temp file of its own per caller: pods started at once all get here
	// on a fresh state dir, and each rename installs a complete program.
	f, err := os.CreateTemp(s.opts.State, ".pause-")
	if err != nil {
		return "", fmt.Errorf("write pause program: %w", err)
	}
	_, err = f.Write(want)
	if err == nil {
		err = f.Chmod(0o500)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write pause program: %w", err)
	}
	return p, nil
}
