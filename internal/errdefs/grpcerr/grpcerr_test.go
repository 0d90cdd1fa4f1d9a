package grpcerr

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	. "hull/internal/errdefs"
)

func TestToGRPC(t *testing.T) {
	cases := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("container %q: %w", "abc", ErrNotFound), codes.NotFound},
		{fmt.Errorf("pod: %w", fmt.Errorf("name: %w", ErrAlreadyExists)), codes.AlreadyExists},
		{fmt.Errorf("image ref: %w", ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("plain"), codes.Unknown},
		{status.Error(codes.Aborted, "x"), codes.Aborted},
	}
	for _, c := range cases {
		got := ToGRPC(c.err)
		s, _ := status.FromError(got)
		if s.Code() != c.want {
			t.Errorf("%v: code %v, want %v", c.err, s.Code(), c.want)
		}
		if s.Message() != c.err.Error() && status.Code(c.err) == codes.Unknown {
			t.Errorf("message %q lost, got %q", c.err.Error(), s.Message())
		}
	}
	if ToGRPC(nil) != nil {
		t.Error("ToGRPC(nil) != nil")
	}
}
