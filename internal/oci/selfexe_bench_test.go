package oci

import (
	"os"
	"testing"
)

func BenchmarkProtectedExeROClone(b *testing.B) {
	self, _ := os.Executable()
	for i := 0; i < b.N; i++ {
		f, err := openROClone(self)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
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
