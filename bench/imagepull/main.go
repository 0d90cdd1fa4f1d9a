// Command imagepull times one cold pull + unpack of an image with hull's
// image store, for bench/image-pull.sh. It prints the elapsed milliseconds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"hull/internal/image"
)

func main() {
	root := flag.String("root", "", "image store root (use a fresh directory for a cold pull)")
	insecure := flag.String("insecure", "127.0.0.1:5000", "registry host reachable over plain http")
	jobs := flag.Int("jobs", 0, "parallel layer downloads (0: the store's default)")
	flag.Parse()
	if *root == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: imagepull -root DIR IMAGE")
		os.Exit(2)
	}
	if p := os.Getenv("HULL_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	t0 := time.Now()
	s, err := image.Open(image.Options{Root: *root, Insecure: []string{*insecure}, MaxConcurrentLayers: *jobs})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	img, err := s.Pull(context.Background(), flag.Arg(0), nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	fmt.Printf("%d ms %s %d layers %d bytes\n", time.Since(t0).Milliseconds(), img.ID, len(img.ChainIDs), img.Size)
}
