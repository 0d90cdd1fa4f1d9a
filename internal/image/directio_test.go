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
	for _, n := range []int{0, 1, directAlign - 1, directAlign, directBufSize - 1, directBufSize, directBufSize + 1, len(data)} {
		for _, viaReadFrom := range []bool{false, true} {
			p := filepath.Join(dir, fmt.Sprintf("f-%d-%v", n, viaReadFrom))
			w, err := createDirectPath(p)
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
				t.Fatalf("size %d (ReadFrom %v): read back %d bytes that differ", n, viaReadFrom, len(got))
			}
		}
	}
}
