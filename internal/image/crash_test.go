package image

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestKill9Child is the pulling process of TestKill9DuringPull; it does
// nothing unless started by it.
func TestKill9Child(t *testing.T) {
	root, ref := os.Getenv("HULL_CRASH_ROOT"), os.Getenv("HULL_CRASH_REF")
	if root == "" {
		return
	}
	s, err := Open(Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	said := false
	_, err = s.Pull(context.Background(), ref, nil, func(p Progress) {
		if !said && p.Done > 0 {
			said = true
			fmt.Println("progress")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// slowBlobs serves blob bodies in small chunks so a pull takes a while.
func slowBlobs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			w = &slowWriter{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	})
}

type slowWriter struct{ http.ResponseWriter }

func (s *slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), 128<<10)
		m, err := s.ResponseWriter.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[c:]
		time.Sleep(10 * time.Millisecond)
	}
	return n, nil
}

// TestKill9DuringPull kills a pulling process with SIGKILL mid-download:
// the next Open must show either the complete image or nothing, with no
// leftovers, and a new pull must then succeed.
func TestKill9DuringPull(t *testing.T) {
	needRoot(t)
	reg := newRegistry(t, slowBlobs)
	big := make([]byte, 3<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	img := image(t, v1.Config{},
		layer(t, "gzip", file("one", string(big[:1<<20]))),
		layer(t, "gzip", file("big", string(big))))
	ref := reg.push(t, "test/crash:1", img)
	// Kill at several points after the download started; whatever the
	// timing, the invariant must hold.
	for _, delay := range []time.Duration{0, 30 * time.Millisecond, 120 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) { killDuringPull(t, ref, delay) })
	}
}

func killDuringPull(t *testing.T, ref string, delay time.Duration) {
	root := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HULL_CRASH_ROOT="+root, "HULL_CRASH_REF="+ref)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "progress" || sc.Text() == "done" {
			break
		}
	}
	time.Sleep(delay)
	// The child may already have finished: that is one of the outcomes.
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true

	s := openStore(t, Options{Root: root})
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	switch len(imgs) {
	case 0:
	case 1:
		for _, c := range imgs[0].ChainIDs {
			if !exists(s.snapshotPath(c)) {
				t.Fatalf("visible image lacks snapshot %s", c)
			}
		}
		t.Log("the pull finished before the kill")
	default:
		t.Fatalf("images after kill: %v", imgs)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("leftovers after Open: %v", left)
	}
	if len(imgs) == 0 {
		for _, d := range []string{"snapshots", "blobs/sha256"} {
			if ents, _ := os.ReadDir(s.path(d)); len(ents) != 0 {
				t.Errorf("Open left %d entries of the killed pull in %s", len(ents), d)
			}
		}
	}
	if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
		t.Fatalf("pull after crash: %v", err)
	}
}
