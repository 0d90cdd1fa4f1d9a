package seccomp

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile feeds arbitrary profiles (as JSON) to Compile: it must never
// panic, and whatever it accepts must be a program the kernel could take.
func FuzzCompile(f *testing.F) {
	seed, _ := json.Marshal(DefaultProfile())
	f.Add(seed)
	for _, s := range []string{
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":4095}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32","SCMP_ARCH_MIPS"],` +
			`"syscalls":[{"names":["read","x"],"action":"SCMP_ACT_ALLOW","args":[{"index":5,"value":1,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"},{"index":5,"value":3,"op":"SCMP_CMP_GT"}]}]}`,
		`{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["socketcall","_llseek"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_LOG","listenerPath":"/x","syscalls":[{"names":["open"],"action":"SCMP_ACT_NOTIFY"},{"names":["open"],"action":"SCMP_ACT_TRAP"}]}`,
		`{"defaultAction":""}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.LinuxSeccomp
		if json.Unmarshal(data, &s) != nil {
			return
		}
		prog, err := Compile(&s)
		if err != nil {
			return
		}
		if len(prog) == 0 || len(prog) > maxProgLen {
			t.Fatalf("accepted profile compiled to %d instructions", len(prog))
		}
	})
}

func TestCacheConcurrentUse(t *testing.T) {
	mustCompile(t, allowDefault()) // skips without libseccomp
	c := NewCache(t.TempDir())
	profiles := []*specs.LinuxSeccomp{DefaultProfile(), DefaultProfileFor([]string{"CAP_SYS_ADMIN"}), allowDefault()}
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := range 12 {
		wg.Go(func() {
			p, err := c.Compile(profiles[i%len(profiles)])
			if err == nil && len(p) == 0 {
				t.Error("empty program")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
