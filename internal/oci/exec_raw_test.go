package oci

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// execOutput runs p in container id through the raw exec path or the
// helper and returns its output and exit code.
func execOutput(t *testing.T, r *Runtime, id string, p *specs.Process, helper bool, extra ...*os.File) (string, int) {
	t.Helper()
	r.execHelperOnly = helper
	defer func() { r.execHelperOnly = false }()
	var buf bytes.Buffer
	w, done := pipeCollect(t, &buf)
	proc, err := r.Exec(context.Background(), id, p, ExecOptions{Stdin: devNull(t), Stdout: w, Stderr: w, PreserveFDs: len(extra)})
	w.Close()
	if err != nil {
		t.Fatalf("exec (helper %v): %v", helper, err)
	}
	ps, err := proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	<-done
	return buf.String(), ps.ExitCode()
}

// The raw exec path gives the process exactly what the helper gives it:
// credentials, groups, every capability set, no_new_privs, the seccomp
// filter (in force, with its errno), rlimits, umask, cwd, env,
// oom_score_adj, dumpability, session, fds, cgroups and namespaces.
func TestRawExecMatchesHelper(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sleep", "60")
	spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: func() *uint { v := uint(13); return &v }()},
	}}
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	ctx := context.Background()
	startQuiet(t, r, "rx", bundle)
	script := `id; grep -E '^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Umask)' /proc/self/status
		ulimit -n; ulimit -u; pwd; env | sort; cat /proc/self/oom_score_adj; mkdir /tmp/x 2>&1; echo mkdir=$?
		echo proc-owner=$(stat -c %u /proc/$$)
		ls /proc/self/fd | sort | tr '\n' ' '; echo
		[ "$(cut -d' ' -f6 /proc/self/stat)" = "$$" ] && echo own-session
		for f in cgroup ns/net ns/mnt ns/pid ns/uts ns/ipc; do
			a=$(readlink /proc/self/$f || cat /proc/self/$f); b=$(readlink /proc/1/$f || cat /proc/1/$f); [ "$a" = "$b" ] || echo "differs: $f"; done
		exit 3`
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	umask := uint32(0o027)
	adj := 500
	for _, tc := range []struct {
		name string
		edit func(p *specs.Process)
	}{
		{"root", func(p *specs.Process) {}},
		{"user with caps", func(p *specs.Process) {
			p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 3000}, Umask: &umask}
			p.Capabilities = &specs.LinuxCapabilities{Bounding: append(caps, "CAP_SETUID"), Effective: caps, Permitted: caps,
				Inheritable: caps, Ambient: caps[:2]}
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 300, Hard: 400}, {Type: "RLIMIT_NPROC", Soft: 77, Hard: 88}}
			p.NoNewPrivileges = false
			p.OOMScoreAdj = &adj
			p.Env = append(p.Env, "EXTRA=a b")
		}},
		{"cwd and PATH lookup", func(p *specs.Process) {
			p.Cwd = "/tmp"
			p.Args = append([]string{"sh"}, p.Args[1:]...)
			p.Env = []string{"PATH=/nonexistent:/bin", "HOME=/root"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := *spec.Process
			p.Args = []string{"/bin/sh", "-c", script}
			tc.edit(&p)
			raw, rawCode := execOutput(t, r, "rx", &p, false)
			helper, helperCode := execOutput(t, r, "rx", &p, true)
			if raw != helper || rawCode != helperCode {
				t.Errorf("raw exec (exit %d):\n%s\nhelper (exit %d):\n%s", rawCode, raw, helperCode, helper)
			}
			// Dumpable again after execve (the raw child is not until then):
			// /proc/PID belongs to the process's own uid.
			if !strings.Contains(raw, "proc-owner="+strconv.Itoa(int(p.User.UID))+"\n") {
				t.Errorf("/proc/PID of the exec'd process is not owned by uid %d:\n%s", p.User.UID, raw)
			}
			// (A non-root user cannot read /proc/1's namespaces.)
			if rawCode != 3 || !strings.Contains(raw, "mkdir=1") || !strings.Contains(raw, "own-session") ||
				p.User.UID == 0 && strings.Contains(raw, "differs") {
				t.Errorf("raw exec output (exit %d):\n%s", rawCode, raw)
			}
		})
	}
	// Errors name the step.
	p := *spec.Process
	for _, bad := range []struct {
		edit func(p *specs.Process)
		want string
	}{
		{func(p *specs.Process) { p.Args = []string{"/no/such/binary"} }, "no such file"},
		{func(p *specs.Process) { p.Args = []string{"nosuchcmd"}; p.Env = []string{"PATH=/bin"} }, "no such file"},
		{func(p *specs.Process) { p.Args = []string{"/etc"} }, "permission denied"},
		{func(p *specs.Process) { p.Cwd = "/no/such/dir" }, "chdir to cwd /no/such/dir"},
	} {
		q := p
		q.Args = []string{"/bin/true"}
		bad.edit(&q)
		_, err := r.Exec(ctx, "rx", &q, ExecOptions{Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("exec %v (cwd %s): got %v, want an error with %q", q.Args, q.Cwd, err, bad.want)
		}
	}
	// No fd of the runtime is left to be named as the cwd (the
	// CVE-2024-21626 class): every /proc/self/fd/N is refused.
	for n := 3; n < 12; n++ {
		q := p
		q.Args, q.Cwd = []string{"/bin/true"}, "/proc/self/fd/"+strconv.Itoa(n)
		if proc, err := r.Exec(ctx, "rx", &q, ExecOptions{Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err == nil {
			proc.Wait()
			t.Errorf("exec with cwd %s succeeded", q.Cwd)
		}
	}
}
