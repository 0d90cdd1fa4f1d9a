package oci

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"hull/internal/errdefs"
)

func TestExecIntoRunningContainer(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sleep", "60")
	spec.Hostname = "exec-host"
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	ctx := context.Background()
	startQuiet(t, r, "ex", bundle)
	var buf bytes.Buffer
	w, done := pipeCollect(t, &buf)
	p := *spec.Process
	p.Args = []string{"/bin/sh", "-c", `hostname; echo pid1=$(cat /proc/1/cmdline | head -c 10); id -G; pwd
		for f in /proc/self/cgroup /proc/self/ns/net /proc/self/ns/mnt /proc/self/ns/pid /proc/self/ns/uts; do
			a=$(readlink $f || cat $f); b=$(readlink ${f/self/1} || cat ${f/self/1}); [ "$a" = "$b" ] || echo "differs: $f"; done
		grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status; ls /proc/self/fd | wc -l; exit 7`}
	p.User.UID, p.User.AdditionalGids = 0, []uint32{2345}
	p.Cwd = "/tmp"
	proc, err := r.Exec(ctx, "ex", &p, ExecOptions{Stdin: devNull(t), Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	<-done
	out := buf.String()
	if ps.ExitCode() != 7 {
		t.Fatalf("exec exit %d, want 7: %s", ps.ExitCode(), out)
	}
	for _, want := range []string{"exec-host", "pid1=/bin/sleep", "0 2345", "/tmp", "CapBnd:\t00000000200004", "NoNewPrivs:\t1", "\n4\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "differs") {
		t.Errorf("exec'd process not in the container's cgroup/namespaces:\n%s", out)
	}
	// The exec'd process leaves the cgroup as it is reaped; allow the
	// kernel a moment instead of racing it.
	var pids []int
	for i := 0; i < 100; i++ {
		if pids, _ = r.Processes("ex"); len(pids) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 1 {
		t.Errorf("after exec the cgroup holds %v, want only the init", pids)
	}
	p.Args = []string{"/no/such/binary"}
	if _, err := r.Exec(ctx, "ex", &p, ExecOptions{Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}
}

func TestHooksRunInOrderWithState(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/true")
	log := filepath.Join(t.TempDir(), "hooks.log")
	hook := func(name string) specs.Hook {
		// The host's busybox runs the hooks; each appends its name and
		// the status it was given on stdin.
		return specs.Hook{Path: "/bin/busybox", Args: []string{"sh", "-c", "read s; echo " + name + " $s >> " + log}}
	}
	timeout := 1
	spec.Hooks = &specs.Hooks{
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{hook("createContainer")},
		StartContainer:  []specs.Hook{{Path: "/bin/true"}},
		Poststart:       []specs.Hook{hook("poststart")},
		Poststop:        []specs.Hook{{Path: "/bin/busybox", Args: []string{"false"}}, hook("poststop")},
	}
	r := newRuntime(t)
	if out, code := runOut(t, r, "hooks", bundle, spec); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		names = append(names, f[0])
		if !strings.Contains(l, `"id":"hooks"`) {
			t.Errorf("hook got no state: %s", l)
		}
	}
	if got := strings.Join(names, ","); got != "createRuntime,createContainer,poststart,poststop" {
		t.Fatalf("hook order %s", got)
	}

	// A hook that outlives its timeout fails create and leaves nothing.
	bundle2, spec2 := newBundle(t, "/bin/true")
	spec2.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/busybox", Args: []string{"sleep", "30"}, Timeout: &timeout}}}
	writeSpec(t, bundle2, spec2)
	start := time.Now()
	err = r.Create(context.Background(), "slowhook", CreateOptions{Bundle: bundle2, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("create with a hanging hook: %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("hook timeout not enforced")
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "slowhook")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("failed create left its state dir")
	}
}

func TestConsoleSocketGetsPtyMaster(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sh", "-c", "tty; echo on-the-pty")
	spec.Process.Terminal = true
	spec.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	ctx := context.Background()
	out := runOnConsole(t, r, "tty", bundle)
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "on-the-pty") {
		t.Fatalf("pty output %q", out)
	}

	// exec --tty: a second pty from the same devpts instance.
	bundle2, spec2 := newBundle(t, "/bin/sleep", "60")
	writeSpec(t, bundle2, spec2)
	if err := r.Create(ctx, "tty2", CreateOptions{Bundle: bundle2, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, "tty2"); err != nil {
		t.Fatal(err)
	}
	p := *spec2.Process
	p.Terminal = true
	p.Args = []string{"/bin/sh", "-c", "tty; echo exec-on-pty"}
	sock2, got2 := consoleServer(t)
	proc, err := r.Exec(ctx, "tty2", &p, ExecOptions{ConsoleSocket: sock2})
	if err != nil {
		t.Fatal(err)
	}
	m2 := <-got2
	if m2 == nil {
		t.Fatal("exec: no pty master received")
	}
	defer m2.Close()
	out = readPty(t, m2, func() { proc.Wait() })
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "exec-on-pty") {
		t.Fatalf("exec pty output %q", out)
	}
}

// runOnConsole creates container id from bundle (whose process has a
// terminal) with a console socket, starts it and returns what it wrote on
// its pty until it exited.
func runOnConsole(t *testing.T, r *Runtime, id, bundle string) string {
	t.Helper()
	sock, got := consoleServer(t)
	ctx := context.Background()
	if err := r.Create(ctx, id, CreateOptions{Bundle: bundle, ConsoleSocket: sock}); err != nil {
		t.Fatal(err)
	}
	master := <-got
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	return readPty(t, master, func() {
		if _, err := r.Wait(id); err != nil {
			t.Error(err)
		}
	})
}

// consoleServer listens on a console socket and hands over the first pty
// master received with SCM_RIGHTS (nil on failure).
func consoleServer(t *testing.T) (string, chan *os.File) {
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return sock, got
}

// readPty collects what the pty master reads until the process (waited
// for by wait) is gone and the slave side closed.
func readPty(t *testing.T, master *os.File, wait func()) string {
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { out.ReadFrom(master); close(done) }()
	wait()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		master.Close()
		<-done
	}
	return out.String()
}

func TestBadInputLeavesNothingBehind(t *testing.T) {
	r := newRuntime(t)
	t.Cleanup(removeTestCgroups)
	ctx := context.Background()
	cg := "/hull-test/badinput"
	cases := []struct {
		name  string
		edit  func(bundle string, s *specs.Spec)
		raw   string
		class error
		msg   string
	}{
		{name: "malformed", raw: "{not json", class: errdefs.ErrInvalidArgument, msg: "malformed"},
		{name: "noversion", edit: func(_ string, s *specs.Spec) { s.Version = "" }, class: errdefs.ErrInvalidArgument, msg: "ociVersion"},
		{name: "noargs", edit: func(_ string, s *specs.Spec) { s.Process.Args = nil }, class: errdefs.ErrInvalidArgument, msg: "process.args"},
		{name: "norootfs", edit: func(_ string, s *specs.Spec) { s.Root.Path = "/does/not/exist" }, class: errdefs.ErrInvalidArgument, msg: "rootfs"},
		{name: "badns", edit: func(_ string, s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, class: errdefs.ErrInvalidArgument, msg: "bogus"},
		{name: "badmount", edit: func(_ string, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "nosuchfs", Source: "none"})
		}, msg: "nosuchfs"},
		{name: "missingbind", edit: func(_ string, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/source", Options: []string{"bind"}})
		}, msg: "/no/such/source"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bundle, spec := newBundle(t, "/bin/true")
			spec.Linux.CgroupsPath = cg + "-" + c.name
			if c.edit != nil {
				c.edit(bundle, spec)
			}
			writeSpec(t, bundle, spec)
			if c.raw != "" {
				os.WriteFile(filepath.Join(bundle, "config.json"), []byte(c.raw), 0o644)
			}
			err := r.Create(ctx, c.name, CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: devNull(t), Stderr: devNull(t)})
			if err == nil {
				t.Fatal("create succeeded")
			}
			if c.class != nil && !errors.Is(err, c.class) {
				t.Errorf("error %v is not of class %v", err, c.class)
			}
			if !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q should be one line naming %q", err, c.msg)
			}
			if _, err := os.Stat(filepath.Join(r.Root(), c.name)); !errors.Is(err, os.ErrNotExist) {
				t.Error("state dir left behind")
			}
			for _, ctl := range []string{"memory", "pids", "cpu"} {
				if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctl, cg+"-"+c.name)); err == nil {
					t.Errorf("cgroup %s left behind", ctl)
				}
			}
		})
	}
	if _, err := r.State("nope"); !errdefs.IsNotFound(err) {
		t.Errorf("state of unknown id: %v", err)
	}
	if err := r.Start(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("start of unknown id: %v", err)
	}
	if err := r.Kill("../etc", syscall.SIGKILL, false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("kill of a path-like id: %v", err)
	}
}
