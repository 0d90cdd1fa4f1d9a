package cri

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"hull/internal/errdefs/grpcerr"
)

// quietMethods are polled by the kubelet every few seconds; they are logged
// at debug level only so the log stays readable.
var quietMethods = map[string]bool{
	"Version": true, "Status": true, "ListPodSandbox": true, "ListContainers": true,
	"PodSandboxStatus": true, "ContainerStatus": true, "ListImages": true, "ImageStatus": true,
	"ListContainerStats": true, "ListPodSandboxStats": true, "ImageFsInfo": true,
}

func methodName(full string) string {
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// UnaryInterceptor is the server's single edge: it recovers panics into
// Internal errors, converts errdefs classes into gRPC codes and logs every
// call with its duration.
func UnaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		m := methodName(info.FullMethod)
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in RPC", "method", m, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "%s: internal error: %v", m, r)
			}
			err = grpcerr.ToGRPC(err)
			logRPC(log, m, start, err)
		}()
		return h(ctx, req)
	}
}

// StreamInterceptor is UnaryInterceptor for streaming RPCs.
func StreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		start := time.Now()
		m := methodName(info.FullMethod)
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in RPC", "method", m, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "%s: internal error: %v", m, r)
			}
			err = grpcerr.ToGRPC(err)
			logRPC(log, m, start, err)
		}()
		return h(srv, ss)
	}
}

func logRPC(log *slog.Logger, m string, start time.Time, err error) {
	d := time.Since(start)
	switch {
	case err != nil && status.Code(err) != codes.NotFound:
		log.Warn("rpc", "method", m, "duration", d, "code", status.Code(err).String(), "err", err)
	case err != nil:
		log.Debug("rpc", "method", m, "duration", d, "code", status.Code(err).String(), "err", err)
	case quietMethods[m]:
		log.Debug("rpc", "method", m, "duration", d)
	default:
		log.Info("rpc", "method", m, "duration", d)
	}
}
