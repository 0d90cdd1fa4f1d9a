package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"hull/internal/errdefs"
)

// imageRef is a parsed, normalized image reference.
type imageRef struct {
	// host is the registry host as users write it: "docker.io", "127.0.0.1:5000".
	host string
	// repo is the repository path inside the host: "library/busybox".
	repo string
	// tag is set for tag references ("latest" when none was given).
	tag string
	// digest is set for digest references ("sha256:...").
	digest string
}

// parseRef normalizes a user reference the way the CRI reports names:
// "busybox" → docker.io/library/busybox:latest.
func parseRef(s string) (imageRef, error) {
	if s == "" {
		return imageRef{}, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	// "name:tag@digest": the digest wins, as in containerd.
	var dgst string
	if i := strings.LastIndex(s, "@"); i >= 0 {
		dgst = s[i+1:]
		s = s[:i]
		if _, err := name.NewDigest("x@" + dgst); err != nil {
			return imageRef{}, fmt.Errorf("image reference %q: bad digest: %v: %w", s, err, errdefs.ErrInvalidArgument)
		}
	}
	var r imageRef
	if dgst != "" {
		// Strip a tag, if any, before parsing the repository.
		if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
			s = s[:i]
		}
		repo, err := name.NewRepository(s, name.WithDefaultRegistry("docker.io"))
		if err != nil {
			return imageRef{}, fmt.Errorf("image reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
		}
		r = imageRef{host: displayHost(repo.RegistryStr()), repo: repo.RepositoryStr(), digest: dgst}
	} else {
		t, err := name.NewTag(s, name.WithDefaultRegistry("docker.io"))
		if err != nil {
			return imageRef{}, fmt.Errorf("image reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
		}
		r = imageRef{host: displayHost(t.RegistryStr()), repo: t.RepositoryStr(), tag: t.TagStr()}
	}
	return r, nil
}

// displayHost maps go-containerregistry's canonical Docker Hub host to the
// one the CRI (and containerd) report.
func displayHost(h string) string {
	if h == name.DefaultRegistry {
		return "docker.io"
	}
	return h
}

// Repository returns "host/repo".
func (r imageRef) Repository() string { return r.host + "/" + r.repo }

// String returns the normalized reference.
func (r imageRef) String() string {
	if r.digest != "" {
		return r.Repository() + "@" + r.digest
	}
	return r.Repository() + ":" + r.tag
}

// registryHost returns the host key used in Options.Hosts; Docker Hub is
// known under several names.
func (r imageRef) registryHost() string { return r.host }

// NormalizeRef returns the normalized form of an image reference
// ("busybox" → "docker.io/library/busybox:latest") or an error of class
// ErrInvalidArgument.
func NormalizeRef(ref string) (string, error) {
	r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}
