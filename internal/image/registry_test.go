package image

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"hull/internal/errdefs"
)

// basicAuth requires user:pass (or the bearer token "regtoken") on every request.
func basicAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if (ok && u == "user" && p == "pass") || r.Header.Get("Authorization") == "Bearer regtoken" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="hull-test"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
}

func TestPullAuth(t *testing.T) {
	needRoot(t)
	// Push through an open registry, then serve the same storage behind auth.
	open := newRegistry(t, nil)
	img := image(t, v1.Config{}, layer(t, "gzip", file("secret", "s")))
	open.push(t, "priv/img:1", img)
	guarded := httptest.NewServer(basicAuth(open.srv.Config.Handler))
	t.Cleanup(guarded.Close)
	ref := strings.TrimPrefix(guarded.URL, "http://") + "/priv/img:1"

	s := openStore(t, Options{})
	if _, err := s.Pull(context.Background(), ref, nil, nil); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Fatalf("anonymous pull: %v, want Unauthenticated", err)
	}
	if _, err := s.Pull(context.Background(), ref, &Auth{Username: "user", Password: "wrong"}, nil); err == nil {
		t.Fatal("pull with a wrong password succeeded")
	}
	for _, a := range []*Auth{
		{Username: "user", Password: "pass"},
		{Auth: base64.StdEncoding.EncodeToString([]byte("user:pass"))},
		{RegistryToken: "regtoken"},
	} {
		s := openStore(t, Options{})
		if _, err := s.Pull(context.Background(), ref, a, nil); err != nil {
			t.Errorf("pull with %+v: %v", *a, err)
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func TestPullMirrors(t *testing.T) {
	needRoot(t)
	upstream := newRegistry(t, nil)
	img := image(t, v1.Config{}, layer(t, "gzip", file("m", "mirrored")))
	upstream.push(t, "lib/img:1", img)
	mirror := newRegistry(t, nil)
	mirror.push(t, "lib/img:1", img)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	const name = "registry.invalid/lib/img:1"

	t.Run("failing mirrors then working mirror", func(t *testing.T) {
		s := openStore(t, Options{Hosts: map[string]RegistryHost{"registry.invalid": {
			Mirrors: []string{"http://" + deadAddr(t), failing.URL, "http://" + mirror.host}, NoUpstreamFallback: true,
		}}})
		got, err := s.Pull(context.Background(), name, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Names stay the upstream ones whatever endpoint served them.
		if got.RepoTags[0] != name || !strings.HasPrefix(got.RepoDigests[0], "registry.invalid/lib/img@sha256:") {
			t.Errorf("names %v %v", got.RepoTags, got.RepoDigests)
		}
	})
	t.Run("scheme-less mirror listed as insecure", func(t *testing.T) {
		s := openStore(t, Options{Insecure: []string{mirror.host}, Hosts: map[string]RegistryHost{"registry.invalid": {
			Mirrors: []string{mirror.host}, NoUpstreamFallback: true,
		}}})
		if _, err := s.Pull(context.Background(), name, nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("failing mirror then upstream", func(t *testing.T) {
		s := openStore(t, Options{Hosts: map[string]RegistryHost{upstream.host: {
			Mirrors: []string{"http://" + deadAddr(t), failing.URL},
		}}})
		if _, err := s.Pull(context.Background(), upstream.host+"/lib/img:1", nil, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no upstream fallback fails", func(t *testing.T) {
		s := openStore(t, Options{Hosts: map[string]RegistryHost{upstream.host: {
			Mirrors: []string{"http://" + deadAddr(t)}, NoUpstreamFallback: true,
		}}})
		before := upstream.blobGets(digestOf(t, mustLayer(t, img, 0)))
		_, err := s.Pull(context.Background(), upstream.host+"/lib/img:1", nil, nil)
		if err == nil || !errors.Is(err, errdefs.ErrUnavailable) {
			t.Fatalf("pull with only a dead mirror: %v, want Unavailable", err)
		}
		if n := upstream.blobGets(digestOf(t, mustLayer(t, img, 0))); n != before {
			t.Errorf("upstream was asked for the layer %d times", n-before)
		}
	})
	t.Run("missing image is NotFound", func(t *testing.T) {
		s := openStore(t, Options{})
		if _, err := s.Pull(context.Background(), upstream.host+"/lib/none:1", nil, nil); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing image: %v", err)
		}
	})
}

func mustLayer(t *testing.T, img v1.Image, i int) v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls[i]
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                        "docker.io/library/busybox:latest",
		"busybox:1.29":                   "docker.io/library/busybox:1.29",
		"docker.io/library/busybox:1.29": "docker.io/library/busybox:1.29",
		"index.docker.io/foo/bar":        "docker.io/foo/bar:latest",
		"127.0.0.1:5000/e2e-test-images/busybox:1.29-2": "127.0.0.1:5000/e2e-test-images/busybox:1.29-2",
		"registry.k8s.io/pause:3.9":                     "registry.k8s.io/pause:3.9",
		"busybox:1@sha256:" + strings.Repeat("a", 64):   "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64),
	} {
		got, err := NormalizeRef(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a@sha256:xyz", "bad tag:"} {
		if _, err := NormalizeRef(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NormalizeRef(%q): %v, want InvalidArgument", bad, err)
		}
	}
}

func TestPullTLSWithCAFile(t *testing.T) {
	needRoot(t)
	plain := newRegistry(t, nil)
	plain.push(t, "tls/img:1", image(t, v1.Config{}, layer(t, "gzip", file("t", "tls"))))
	srv := httptest.NewTLSServer(plain.srv.Config.Handler)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := host + "/tls/img:1"

	s := openStore(t, Options{})
	if _, err := s.Pull(context.Background(), ref, nil, nil); err == nil {
		t.Fatal("pull from an untrusted TLS registry succeeded")
	}
	s = openStore(t, Options{Hosts: map[string]RegistryHost{host: {CAFiles: []string{ca}}}})
	if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
		t.Fatalf("pull with the CA file: %v", err)
	}
	s = openStore(t, Options{Insecure: []string{host}})
	if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
		t.Fatalf("pull from an insecure host: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, Options{Hosts: map[string]RegistryHost{host: {CAFiles: []string{bad}}}})
	if _, err := s.Pull(context.Background(), ref, nil, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("pull with a bad CA file: %v, want InvalidArgument", err)
	}
}

// TestPullBearerTokenAuth runs a Docker-Hub-style token flow: the registry
// answers 401 with a Bearer challenge, a token server hands out an access
// token for basic credentials (GET) or an identity token (OAuth2 POST).
func TestPullBearerTokenAuth(t *testing.T) {
	needRoot(t)
	open := newRegistry(t, nil)
	open.push(t, "tok/img:1", image(t, v1.Config{}, layer(t, "gzip", file("t", "token"))))
	// go-containerregistry only trusts a private-address realm on the
	// registry's own host: serve the token endpoint there.
	var guarded *httptest.Server
	guarded = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			ok := false
			switch r.Method {
			case http.MethodGet:
				u, p, has := r.BasicAuth()
				ok = has && u == "user" && p == "pass"
			case http.MethodPost:
				ok = r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" &&
					r.PostForm.Get("refresh_token") == "identity"
			}
			if !ok {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"token":"access","access_token":"access"}`))
			return
		}
		if r.Header.Get("Authorization") == "Bearer access" {
			open.srv.Config.Handler.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+guarded.URL+`/token",service="hull-test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(guarded.Close)
	ref := strings.TrimPrefix(guarded.URL, "http://") + "/tok/img:1"

	if _, err := openStore(t, Options{}).Pull(context.Background(), ref, nil, nil); err == nil {
		t.Fatal("anonymous pull through a token registry succeeded")
	}
	for _, a := range []*Auth{{Username: "user", Password: "pass"}, {IdentityToken: "identity"}} {
		if _, err := openStore(t, Options{}).Pull(context.Background(), ref, a, nil); err != nil {
			t.Errorf("pull with %+v: %v", *a, err)
		}
	}
}
