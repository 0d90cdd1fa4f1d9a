package image

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BenchmarkPull pulls a 4 × 8 MB random-data image (plus 100 small files a
// layer) from an in-process registry into a fresh store each iteration.
// The end-to-end comparison with containerd is bench/image-pull.sh.
func BenchmarkPull(b *testing.B) {
	needRoot(b)
	if testing.Short() {
		b.Skip("pulls 32 MB per iteration")
	}
	reg := newRegistry(b, nil)
	var layers []v1.Layer
	for i := range 4 {
		data := make([]byte, 8<<20)
		if _, err := rand.Read(data); err != nil {
			b.Fatal(err)
		}
		es := []entry{file(fmt.Sprintf("big%d", i), string(data))}
		for j := range 100 {
			es = append(es, file(fmt.Sprintf("small%d-%d", i, j), "x"))
		}
		layers = append(layers, layer(b, "gzip", es...))
	}
	ref := reg.push(b, "bench/pull:1", image(b, v1.Config{}, layers...))
	b.SetBytes(32 << 20)
	b.ResetTimer()
	for range b.N {
		s, err := Open(Options{Root: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Pull(context.Background(), ref, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
