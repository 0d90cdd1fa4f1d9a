package image

import (
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"hull/internal/errdefs"
)

// platform is the os/arch/variant a store pulls for.
type platform struct{ os, arch, variant string }

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("platform %q: want os/arch[/variant]: %w", s, errdefs.ErrInvalidArgument)
	}
	p := platform{os: parts[0], arch: parts[1]}
	if len(parts) == 3 {
		p.variant = parts[2]
	}
	// Normalize the usual defaults so "linux/arm64/v8" matches "linux/arm64".
	if p.arch == "arm64" && p.variant == "v8" {
		p.variant = ""
	}
	return p, nil
}

func (p platform) String() string {
	if p.variant != "" {
		return p.os + "/" + p.arch + "/" + p.variant
	}
	return p.os + "/" + p.arch
}

// score rates how well an index entry's platform fits p: 0 means not at all;
// an exact variant beats a missing one.
func (p platform) score(q *ocispec.Platform) int {
	if q == nil || q.OS != p.os || q.Architecture != p.arch {
		return 0
	}
	v := q.Variant
	if q.Architecture == "arm64" && v == "v8" {
		v = ""
	}
	switch {
	case v == p.variant:
		return 3
	case v == "" && p.variant != "":
		return 1
	case p.variant == "":
		// amd64 variants (v2, v3...) run only on newer CPUs; prefer the plain one.
		return 0
	default:
		return 0
	}
}

// selectManifest picks the best manifest of an index for p.
func (p platform) selectManifest(idx *ocispec.Index) (ocispec.Descriptor, error) {
	best, bestScore := ocispec.Descriptor{}, 0
	for _, m := range idx.Manifests {
		// Attestation manifests carry an unknown/unknown platform and never match.
		if sc := p.score(m.Platform); sc > bestScore {
			best, bestScore = m, sc
		}
	}
	if bestScore == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s in index: %w", p, errdefs.ErrNotFound)
	}
	return best, nil
}
