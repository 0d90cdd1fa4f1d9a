package oci

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ownSession is a shell test that prints "own-session" when the shell is
// the leader of its session and process group (fields 5 and 6 of its
// /proc/self/stat equal its pid, all seen from its own pid namespace).
const ownSession = `read pid comm state ppid pgrp sid rest < /proc/self/stat; ` +
	`[ "$pid" = "$pgrp" ] && [ "$pid" = "$sid" ] && echo own-session || echo "pid=$pid pgrp=$pgrp sid=$sid"`

// TestProcessesGetTheirOwnSession: the init and an exec'd process lead
// their own session and process group, as with runc and crun, so a signal
// to the caller's process group (a shell's Ctrl-C, a harness ending its
// group) does not reach the container.
func TestProcessesGetTheirOwnSession(t *testing.T) {
	bundle, spec := newBundle(t, "/bin/sh", "-c", ownSession+"; exec sleep 60")
	writeSpec(t, bundle, spec)
	r := newRuntime(t)
	ctx := context.Background()
	var initOut bytes.Buffer
	w, done := pipeCollect(t, &initOut)
	if err := r.Create(ctx, "sess", CreateOptions{Bundle: bundle, Stdin: devNull(t), Stdout: w, Stderr: w}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { r.Delete(ctx, "sess", true) })
	st, err := r.State("sess")
	if err != nil {
		t.Fatal(err)
	}
	// From the host: the created init is already apart from our session.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	if mySid := strconv.Itoa(sessionOf(t, os.Getpid())); f[3] == mySid || f[2] == strconv.Itoa(os.Getpid()) {
		t.Fatalf("init %d shares the caller's session or group: pgrp=%s sid=%s (ours %s)", st.Pid, f[2], f[3], mySid)
	}
	if err := r.Start(ctx, "sess"); err != nil {
		t.Fatal(err)
	}
	var execOut bytes.Buffer
	ew, edone := pipeCollect(t, &execOut)
	p := *spec.Process
	p.Args = []string{"/bin/sh", "-c", ownSession}
	proc, err := r.Exec(ctx, "sess", &p, ExecOptions{Stdin: devNull(t), Stdout: ew, Stderr: ew})
	ew.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Wait(); err != nil {
		t.Fatal(err)
	}
	<-edone
	if !strings.Contains(execOut.String(), "own-session") {
		t.Errorf("exec'd process: %q", execOut.String())
	}
	r.Kill("sess", 9, false)
	r.Wait("sess")
	<-done
	if !strings.Contains(initOut.String(), "own-session") {
		t.Errorf("init: %q", initOut.String())
	}
}

func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	sid, _ := strconv.Atoi(f[3])
	return sid
}
