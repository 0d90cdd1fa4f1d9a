package store

import (
	"errors"
	"path/filepath"
	"testing"

	"hull/internal/errdefs"
)

func TestStorePersistsAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sb := &Sandbox{ID: "aaaa1111", Name: "p", Namespace: "ns", UID: "u", CreatedAt: 1, State: SandboxReady, Complete: true,
		Namespaces: map[string]string{"net": "/run/x/net"}, IPs: []string{"10.0.0.2"}}
	if err := s.AddSandbox(sb); err != nil {
		t.Fatal(err)
	}
	dup := *sb
	dup.ID = "bbbb2222"
	if err := s.AddSandbox(&dup); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("same pod name twice: %v", err)
	}
	c := &Container{ID: "cccc3333", SandboxID: sb.ID, Name: "c", State: ContainerCreated, CreatedAt: 2}
	if err := s.AddContainer(c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateContainer("cccc", func(x *Container) error {
		x.State, x.ExitCode = ContainerExited, 3
		return nil
	}); err != nil {
		t.Fatalf("update by prefix: %v", err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateContainer(c.ID, func(x *Container) error { x.ExitCode = 99; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Container(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ContainerExited || got.ExitCode != 3 {
		t.Fatalf("reloaded container %+v: want exited with 3 (the failed update must not stick)", got)
	}
	gsb, err := s.Sandbox("aaaa")
	if err != nil || gsb.Namespaces["net"] != "/run/x/net" || gsb.IPs[0] != "10.0.0.2" {
		t.Fatalf("reloaded sandbox %+v, %v", gsb, err)
	}
	if _, err := s.Sandbox("zzz"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing sandbox: %v", err)
	}
	if _, err := s.Sandbox(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("empty id: %v", err)
	}
	if err := s.DeleteContainer(c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer(c.ID); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if n := len(s.Containers()); n != 0 {
		t.Fatalf("%d containers after delete", n)
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, id := range []string{"abc1", "abc2"} {
		if err := s.AddContainer(&Container{ID: id, SandboxID: "p", Name: id, CreatedAt: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Container("abc"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if l := s.Containers(); len(l) != 2 || l[0].ID != "abc1" {
		t.Fatalf("list order: %+v", l)
	}
}
