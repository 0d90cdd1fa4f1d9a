package oci

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func BenchmarkProtectedExeROClone(b *testing.B) {
	self, _ := os.Executable()
	for i := 0; i < b.N; i++ {
		f, tree, err := openROClone(self)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		unix.Close(tree)
	}
}

func BenchmarkProtectedExeSealedCopy(b *testing.B) {
	self, _ := os.Executable()
	for i := 0; i < b.N; i++ {
		f, err := sealedCopy(self)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
