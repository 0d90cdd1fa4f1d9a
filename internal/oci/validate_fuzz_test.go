package oci

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/errdefs"
)

// FuzzLoadSpec feeds arbitrary config.json files (hullrt's CLI reads ones
// users write) through LoadSpec: it never panics, a rejected config is an
// InvalidArgument error, and an accepted one holds what create relies on
// without further checks.
func FuzzLoadSpec(f *testing.F) {
	def, _ := json.Marshal(DefaultSpec())
	f.Add(def)
	for _, s := range []string{
		`{}`,
		`null`,
		`[]`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":null,"process":null}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"process":{"args":[],"cwd":""}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"process":{"args":["sh"],"cwd":"rel"}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"process":{"commandLine":"sh","cwd":"/"}}`,
		`{"ociVersion":"2.0","root":{"path":"rootfs"},"linux":{}}`,
		`{"ociVersion":"1.0.2","root":null,"linux":{}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"bogus"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"network","path":"rel/ns"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"user"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"hostname":"h","linux":{}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"destination":""}],"linux":{}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[{"destination":"/x","options":["rbind","rprivate","nosuid","idmap","size=1","rro"]}],"linux":{}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"devices":[{"path":"dev/x","type":"c"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"devices":[{"path":"/dev/x","type":"z"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"rootfsPropagation":"weird"}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"process":{"args":["sh"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":1},{"type":"RLIMIT_BOGUS"}]}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"process":{"args":["sh"],"cwd":"/","capabilities":{"bounding":["CAP_NOPE"]}}}`,
		`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"linux":{},"process":{"args":["sh"],"cwd":"/","user":{"uid":4294967295}}}`,
	} {
		f.Add([]byte(s))
	}
	bundle := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		spec, err := LoadSpec(bundle)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("rejected without InvalidArgument: %v", err)
			}
			return
		}
		checkLoadedSpec(t, spec)
	})
}

// checkLoadedSpec asserts the invariants create uses without checking
// again, and runs the pure conversions create applies to them.
func checkLoadedSpec(t *testing.T, spec *specs.Spec) {
	t.Helper()
	if spec == nil || spec.Root == nil || spec.Root.Path == "" || spec.Linux == nil {
		t.Fatalf("accepted a spec without root or linux: %+v", spec)
	}
	if p := spec.Process; p != nil {
		if (len(p.Args) == 0 && p.CommandLine == "") || !filepath.IsAbs(p.Cwd) {
			t.Fatalf("accepted process args %q cwd %q", p.Args, p.Cwd)
		}
		for _, rl := range p.Rlimits {
			if _, ok := rlimitNames[rl.Type]; !ok || rl.Soft > rl.Hard {
				t.Fatalf("accepted rlimit %+v", rl)
			}
		}
		if c := p.Capabilities; c != nil {
			_ = capMask(c.Bounding, lastCap())
		}
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		if _, ok := nsFlags[ns.Type]; !ok || seen[ns.Type] {
			t.Fatalf("accepted namespace %+v (listed before: %v)", ns, seen[ns.Type])
		}
		seen[ns.Type] = true
	}
	for _, m := range spec.Mounts {
		if m.Destination == "" {
			t.Fatal("accepted a mount without a destination")
		}
		_ = parseMountOptions(m.Options)
	}
	for _, d := range spec.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			t.Fatalf("accepted device path %q", d.Path)
		}
	}
	if spec.Linux.Resources != nil {
		if res := withDefaultDevices(spec); res == nil {
			t.Fatal("withDefaultDevices returned nil")
		}
	}
}
