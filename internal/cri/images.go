package cri

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/errdefs"
	"hull/internal/image"
)

// toCRIImage converts an image record into the CRI form, deriving uid or
// username from the image's configured user as the kubelet expects.
func toCRIImage(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
		Size: uint64(img.Size), Spec: &runtimeapi.ImageSpec{Image: img.ID}, Pinned: img.Pinned,
	}
	user := img.Config.User
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user = user[:i]
	}
	if user != "" {
		if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
			out.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			out.Username = user
		}
	}
	return out
}

// ListImages lists every image, or the one the filter names.
func (s *Service) ListImages(_ context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if ref := r.GetFilter().GetImage().GetImage(); ref != "" {
		img, err := s.opts.Images.Get(ref)
		if errdefs.IsNotFound(err) {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{toCRIImage(img)}}, nil
	}
	imgs, err := s.opts.Images.List()
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ListImagesResponse{}
	for _, img := range imgs {
		resp.Images = append(resp.Images, toCRIImage(img))
	}
	return resp, nil
}

// ImageStatus returns the image, or no image (not an error) when it is absent.
func (s *Service) ImageStatus(_ context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image status: no image named: %w", errdefs.ErrInvalidArgument)
	}
	img, err := s.opts.Images.Get(ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(img)}
	if r.GetVerbose() {
		resp.Info = map[string]string{"chainIDs": strings.Join(img.ChainIDs, ",")}
	}
	return resp, nil
}

// PullImage pulls through the registry mirrors and returns the image id.
func (s *Service) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("pull: no image named: %w", errdefs.ErrInvalidArgument)
	}
	var auth *image.Auth
	if a := r.GetAuth(); a != nil {
		auth = &image.Auth{
			Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		}
	}
	img, err := s.opts.Images.Pull(ctx, ref, auth, nil)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// RemoveImage removes an image name (or the image, by id); removing a
// missing image succeeds, as CRI asks.
func (s *Service) RemoveImage(_ context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := r.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("remove image: no image named: %w", errdefs.ErrInvalidArgument)
	}
	img, err := s.opts.Images.Get(ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	// By id, or by a name that is the image's last: remove the image, so
	// `crictl rmi ID` of an image with several tags works as kubelet GC expects.
	target := ref
	if ref == img.ID || strings.HasPrefix(img.ID, "sha256:"+ref) || strings.HasPrefix(img.ID, ref) {
		target = img.ID
	}
	if err := s.opts.Images.Remove(target); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, fmt.Errorf("remove image %s: %w", ref, err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image store's filesystem usage.
func (s *Service) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	bytes, inodes, mp, err := s.opts.Images.FsInfo()
	if err != nil {
		return nil, err
	}
	u := &runtimeapi.FilesystemUsage{
		Timestamp: nowNanos(), FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: mp},
		UsedBytes: &runtimeapi.UInt64Value{Value: bytes}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{u}}, nil
}
