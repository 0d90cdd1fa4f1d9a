package image

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedRegistry is the harness registry ../shared/critest/setup.sh runs.
const sharedRegistry = "127.0.0.1:5000"

func needSharedRegistry(t *testing.T) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + sharedRegistry + "/v2/")
	if err != nil {
		t.Skipf("shared registry not running (../shared/critest/setup.sh starts it): %v", err)
	}
	resp.Body.Close()
}

// TestPullRealImages pulls the harness's real images (Debian busybox and
// nginx builds) and runs nothing but checks their trees through overlay.
func TestPullRealImages(t *testing.T) {
	needRoot(t)
	needSharedRegistry(t)
	s := openStore(t, Options{Insecure: []string{sharedRegistry}})
	for _, tc := range []struct{ ref, path string }{
		{sharedRegistry + "/e2e-test-images/busybox:1.29-2", "bin/busybox"},
		{sharedRegistry + "/e2e-test-images/nginx:1.14-2", "bin/sh"},
	} {
		img, err := s.Pull(context.Background(), tc.ref, nil, nil)
		if err != nil {
			t.Fatalf("pull %s: %v", tc.ref, err)
		}
		if img.RepoTags[0] != tc.ref || len(img.ChainIDs) == 0 {
			t.Fatalf("%s: %+v", tc.ref, img)
		}
		view, err := s.View(img.ID)
		if err != nil {
			t.Fatal(err)
		}
		root := mount(t, view)
		if fi, err := os.Stat(filepath.Join(root, tc.path)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s: %s not an executable: %v", tc.ref, tc.path, err)
		}
	}
}
