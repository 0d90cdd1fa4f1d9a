package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
)

// resolveImageVolumes checks the request's image volumes (KEP-4639) before
// anything is created and records each image's id in the config, which is
// what ContainerStatus reports as the mount's image_ref.
func (s *Service) resolveImageVolumes(cfg *runtimeapi.ContainerConfig) error {
	for _, m := range cfg.GetMounts() {
		if m.GetImage() == nil {
			continue
		}
		if !m.Readonly {
			return fmt.Errorf("image volume %q must be read-only: %w", m.ContainerPath, errdefs.ErrInvalidArgument)
		}
		img, err := s.opts.Images.Get(m.Image.Image)
		if err != nil {
			return fmt.Errorf("image volume %q: image %q: %w", m.ContainerPath, m.Image.Image, err)
		}
		m.Image.ImageRef = img.ID
	}
	return nil
}

func (s *Service) volumesDir(id string) string { return filepath.Join(s.containerDir(id), "volumes") }

// mountImageVolume mounts a read-only view of the volume's image under the
// container's dir and returns the bind source (the sub path inside it).
func (s *Service) mountImageVolume(id string, i int, m *runtimeapi.Mount) (string, error) {
	view, err := s.opts.Images.View(m.Image.ImageRef)
	if err != nil {
		return "", fmt.Errorf("image volume %q: %w", m.ContainerPath, err)
	}
	target := filepath.Join(s.volumesDir(id), strconv.Itoa(i))
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", fmt.Errorf("image volume %q: %w", m.ContainerPath, err)
	}
	if err := view.Mount(target); err != nil {
		return "", fmt.Errorf("image volume %q: %w", m.ContainerPath, err)
	}
	if m.ImageSubPath == "" {
		return target, nil
	}
	src, err := securejoin.SecureJoin(target, m.ImageSubPath)
	if err != nil {
		return "", fmt.Errorf("image volume %q: sub path %q: %w", m.ContainerPath, m.ImageSubPath, errdefs.ErrInvalidArgument)
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("image volume %q: sub path %q does not exist in image %s: %w",
			m.ContainerPath, m.ImageSubPath, m.Image.Image, errdefs.ErrInvalidArgument)
	}
	return src, nil
}

// addImageVolume adds the bind mount of an image volume to the spec.
func (s *Service) addImageVolume(spec *specs.Spec, id string, i int, m *runtimeapi.Mount) error {
	src, err := s.mountImageVolume(id, i, m)
	if err != nil {
		return err
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: filepath.Clean(m.ContainerPath), Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "ro"},
	})
	return nil
}

// unmountVolumes detaches every image volume of a container; idempotent.
func (s *Service) unmountVolumes(id string) {
	dir := s.volumesDir(id)
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			_ = unix.Unmount(f[4], unix.MNT_DETACH)
		}
	}
}
