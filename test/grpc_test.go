package e2e

import (
	"context"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestGRPCEdges calls RPCs crictl has no verb for: the Stream* list
// variants, RuntimeConfig, UpdatePodSandboxResources, and the codes of bad
// requests.
func TestGRPCEdges(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	p, c := d.runPod("grpc", "exec sleep 300")
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt, img := runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cs, err := rt.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		m, err := cs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range m.Containers {
			ids = append(ids, x.Id)
		}
	}
	if len(ids) != 1 || ids[0] != c {
		t.Fatalf("StreamContainers: %v, want [%s]", ids, c)
	}
	ps, err := rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ps.Recv(); err != nil || len(m.PodSandboxes) != 1 || m.PodSandboxes[0].Id != p {
		t.Fatalf("StreamPodSandboxes: %v, %v", m, err)
	}
	is, err := img.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := is.Recv(); err != nil || len(m.Images) != 1 {
		t.Fatalf("StreamImages: %v, %v", m, err)
	}
	rc, err := rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil || rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Fatalf("RuntimeConfig: %v, %v", rc, err)
	}
	if _, err := rt.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: p}); err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	for name, call := range map[string]func() error{
		"ContainerStatus of a missing container": func() error {
			_, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "nosuch"})
			return err
		},
		"CreateContainer without a name": func() error {
			_, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p, Config: &runtimeapi.ContainerConfig{}})
			return err
		},
		"RunPodSandbox twice with one name": func() error {
			cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "grpc", Namespace: "e2e", Uid: "grpc-uid"}}
			_, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			return err
		},
	} {
		want := map[string]codes.Code{"ContainerStatus of a missing container": codes.NotFound,
			"CreateContainer without a name": codes.InvalidArgument, "RunPodSandbox twice with one name": codes.AlreadyExists}[name]
		if got := status.Code(call()); got != want {
			t.Errorf("%s: code %v, want %v", name, got, want)
		}
	}
}
