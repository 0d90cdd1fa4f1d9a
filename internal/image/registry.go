package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"hull/internal/errdefs"
)

// Auth carries the credentials of CRI's AuthConfig.
type Auth struct {
	Username, Password, Auth, IdentityToken, RegistryToken string
}

func (a *Auth) authenticator() authn.Authenticator {
	if a == nil || *a == (Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// fingerprint identifies the credentials without revealing them.
func (a *Auth) fingerprint() string {
	if a == nil {
		return ""
	}
	return sha256Digest([]byte(strings.Join([]string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken}, "\x00")))
}

// endpoint is one place to fetch a repository from: a mirror or the upstream.
type endpoint struct {
	host     string // host[:port] to talk to
	insecure bool   // plain http (and unverified TLS) allowed
	mirror   bool
	caFiles  []string
}

const (
	mirrorConnectTimeout   = 2 * time.Second
	upstreamConnectTimeout = 5 * time.Second
)

// hostResolver turns a registry host into endpoints and keeps one
// http.Transport per endpoint so connections are reused across pulls.
//
// Locking: mu guards transports; the configuration is read-only.
type hostResolver struct {
	hosts    map[string]RegistryHost
	insecure []string

	mu         sync.Mutex
	transports map[string]*http.Transport
}

func newHostResolver(o Options) *hostResolver {
	return &hostResolver{hosts: o.Hosts, insecure: o.Insecure, transports: map[string]*http.Transport{}}
}

// dockerHubAliases are the names Docker Hub is configured under.
var dockerHubAliases = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

func (h *hostResolver) config(host string) (RegistryHost, bool) {
	if c, ok := h.hosts[host]; ok {
		return c, true
	}
	if slices.Contains(dockerHubAliases, host) {
		for _, a := range dockerHubAliases {
			if c, ok := h.hosts[a]; ok {
				return c, true
			}
		}
	}
	return RegistryHost{}, false
}

func (h *hostResolver) isInsecure(host string) bool {
	if slices.Contains(h.insecure, host) {
		return true
	}
	c, _ := h.config(host)
	return c.Insecure
}

// endpoints lists the mirrors of host, then host itself unless the host
// forbids falling back upstream.
func (h *hostResolver) endpoints(host string) ([]endpoint, error) {
	c, _ := h.config(host)
	var eps []endpoint
	for _, m := range c.Mirrors {
		ep, err := parseMirror(m, c.Insecure || h.isInsecure(host))
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", host, err)
		}
		// A scheme-less mirror listed as an insecure host of its own.
		ep.insecure = ep.insecure || slices.Contains(h.insecure, ep.host)
		ep.caFiles = c.CAFiles
		eps = append(eps, ep)
	}
	if !c.NoUpstreamFallback || len(eps) == 0 {
		up := host
		if host == "docker.io" {
			up = name.DefaultRegistry
		}
		eps = append(eps, endpoint{host: up, insecure: h.isInsecure(host), caFiles: c.CAFiles})
	}
	return eps, nil
}

func parseMirror(m string, insecure bool) (endpoint, error) {
	if !strings.Contains(m, "://") {
		m = "https://" + m
	}
	u, err := url.Parse(m)
	if err != nil || u.Host == "" {
		return endpoint{}, fmt.Errorf("mirror %q: not a URL: %w", m, errdefs.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "http":
		insecure = true
	case "https":
	default:
		return endpoint{}, fmt.Errorf("mirror %q: scheme must be http or https: %w", m, errdefs.ErrInvalidArgument)
	}
	return endpoint{host: u.Host, insecure: insecure, mirror: true}, nil
}

// transport returns the shared transport for ep.
func (h *hostResolver) transport(ep endpoint) (*http.Transport, error) {
	key := fmt.Sprintf("%s|%v|%v|%s", ep.host, ep.insecure, ep.mirror, strings.Join(ep.caFiles, ","))
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.transports[key]; ok {
		return t, nil
	}
	timeout, headerTimeout := upstreamConnectTimeout, 30*time.Second
	if ep.mirror {
		// A mirror that accepts connections but never answers must not
		// hold a pull for long: the next endpoint may well work.
		timeout, headerTimeout = mirrorConnectTimeout, 10*time.Second
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: ep.insecure} //nolint:gosec // explicit per-host opt-in
	if len(ep.caFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range ep.caFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("registry %s: CA file: %w", ep.host, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry %s: CA file %s holds no PEM certificate: %w", ep.host, f, errdefs.ErrInvalidArgument)
			}
		}
		tlsConf.RootCAs = pool
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: headerTimeout,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		// Layers are already compressed; asking for gzip would only cost CPU.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	h.transports[key] = t
	return t, nil
}

// remoteTarget is one endpoint resolved for one pull.
type remoteTarget struct {
	ep     endpoint
	repo   name.Repository
	puller *remote.Puller
}

func (h *hostResolver) target(ep endpoint, repo string, auth *Auth, jobs int) (*remoteTarget, error) {
	var opts []name.Option
	if ep.insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(ep.host+"/"+repo, opts...)
	if err != nil {
		return nil, fmt.Errorf("repository %s/%s: %v: %w", ep.host, repo, err, errdefs.ErrInvalidArgument)
	}
	t, err := h.transport(ep)
	if err != nil {
		return nil, err
	}
	backoff := remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 3}
	if ep.mirror {
		// A failing mirror must not delay the next endpoint much.
		backoff = remote.Backoff{Duration: 50 * time.Millisecond, Factor: 1, Steps: 1}
	}
	p, err := remote.NewPuller(remote.WithTransport(t), remote.WithAuth(auth.authenticator()),
		remote.WithJobs(jobs), remote.WithRetryBackoff(backoff), remote.WithUserAgent("hull"))
	if err != nil {
		return nil, fmt.Errorf("registry client for %s: %w", ep.host, err)
	}
	return &remoteTarget{ep: ep, repo: r, puller: p}, nil
}

// resolve fetches the top descriptor of ref, trying each endpoint in turn.
func (s *Store) resolve(ctx context.Context, r imageRef, auth *Auth) (*remoteTarget, *remote.Descriptor, error) {
	eps, err := s.hosts.endpoints(r.registryHost())
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, ep := range eps {
		t, err := s.hosts.target(ep, r.repo, auth, s.opts.MaxConcurrentLayers)
		if err != nil {
			return nil, nil, err
		}
		var ref name.Reference
		if r.digest != "" {
			ref = t.repo.Digest(r.digest)
		} else {
			ref = t.repo.Tag(r.tag)
		}
		d, err := t.puller.Get(ctx, ref)
		if err == nil {
			return t, d, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("pull %s: %w", r, ctx.Err())
		}
		kind := "upstream"
		if ep.mirror {
			kind = "mirror"
		}
		s.log.Warn("image endpoint failed", "ref", r.String(), kind, ep.host, "err", err)
		errs = append(errs, fmt.Errorf("%s %s: %w", kind, ep.host, classifyRegistryError(err)))
	}
	return nil, nil, fmt.Errorf("pull %s: %w", r, errors.Join(errs...))
}

// classifyRegistryError gives a registry error one of hull's classes.
func classifyRegistryError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%v: %w", err, errdefs.ErrNotFound)
		case http.StatusUnauthorized:
			return fmt.Errorf("%v: %w", err, errdefs.ErrUnauthenticated)
		case http.StatusForbidden:
			return fmt.Errorf("%v: %w", err, errdefs.ErrPermissionDenied)
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return fmt.Errorf("%v: %w", err, errdefs.ErrNotFound)
			case transport.UnauthorizedErrorCode:
				return fmt.Errorf("%v: %w", err, errdefs.ErrUnauthenticated)
			case transport.DeniedErrorCode:
				return fmt.Errorf("%v: %w", err, errdefs.ErrPermissionDenied)
			}
		}
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%v: %w", err, errdefs.ErrUnavailable)
	}
	return err
}
