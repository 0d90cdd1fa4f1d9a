package image

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestDirectWriterSizes(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3*directBufSize+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, direct := range []bool{true, false} {
		for _, n := range []int{0, 1, directAlign - 1, directAlign, directBufSize - 1, directBufSize, directBufSize + 1, len(data)} {
			for _, viaReadFrom := range []bool{false, true} {
				p := filepath.Join(dir, fmt.Sprintf("f-%d-%v-%v", n, viaReadFrom, direct))
				w, err := createDirectPath(p, direct)
				if err != nil {
					t.Fatal(err)
				}
				if viaReadFrom {
					_, err = w.ReadFrom(bytes.NewReader(data[:n]))
				} else {
					// Odd-sized writes cross buffer boundaries.
					for off := 0; off < n && err == nil; off += 7777 {
						_, err = w.Write(data[off:min(off+7777, n)])
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatalf("second Close: %v", err)
				}
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data[:n]) {
					t.Fatalf("size %d (ReadFrom %v, direct %v): read back %d bytes that differ", n, viaReadFrom, direct, len(got))
				}
			}
		}
	}
}

// The write-mode probe measures both modes and leaves nothing behind.
func TestProbeDirectIO(t *testing.T) {
	dir := t.TempDir()
	direct, buffered, directRate := probeDirectIO(dir)
	if buffered <= 0 || directRate <= 0 {
		t.Fatalf("probe rates %.0f MB/s buffered, %.0f MB/s direct", buffered, directRate)
	}
	if direct != (directRate > 1.5*buffered) {
		t.Errorf("probe chose direct=%v for %.0f vs %.0f MB/s", direct, directRate, buffered)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("probe left %v", ents)
	}
	t.Logf("buffered %.0f MB/s, direct %.0f MB/s: direct=%v", buffered, directRate, direct)
}
