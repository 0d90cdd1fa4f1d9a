package image

import (
	"context"
	"fmt"
	"io"

	"hull/internal/errdefs"
)

// Import loads an OCI image-layout tar or a `docker save` tar. name, when
// set, names an image the archive leaves unnamed.
func (s *Store) Import(ctx context.Context, r io.Reader, name string) ([]*Image, error) {
	return nil, fmt.Errorf("import: %w", errdefs.ErrNotImplemented)
}

// Export writes the image ref as an OCI image-layout tar.
func (s *Store) Export(ctx context.Context, ref string, w io.Writer) error {
	return fmt.Errorf("export: %w", errdefs.ErrNotImplemented)
}
