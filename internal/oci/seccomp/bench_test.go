package seccomp

import "testing"

// BenchmarkCompileDefault measures what libseccomp costs for the
// RuntimeDefault profile on a cache miss.
func BenchmarkCompileDefault(b *testing.B) {
	s := DefaultProfile()
	for b.Loop() {
		if _, err := compile(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultProfile measures building the profile data itself.
func BenchmarkDefaultProfile(b *testing.B) {
	for b.Loop() {
		_ = DefaultProfile()
	}
}

// BenchmarkCacheCompileDefault is the same through a warm Cache (the
// in-process runtime's path).
func BenchmarkCacheCompileDefault(b *testing.B) {
	s := DefaultProfile()
	c := NewCache("")
	for b.Loop() {
		if _, err := c.Compile(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskCacheCompileDefault is a fresh process's path: a new Cache
// reading the entry from disk.
func BenchmarkDiskCacheCompileDefault(b *testing.B) {
	s := DefaultProfile()
	dir := b.TempDir()
	if _, err := NewCache(dir).Compile(s); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := NewCache(dir).Compile(s); err != nil {
			b.Fatal(err)
		}
	}
}
