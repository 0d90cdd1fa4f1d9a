package store

import "fmt"

// SandboxState is the CRI state of a pod sandbox.
type SandboxState string

// Sandbox states.
const (
	SandboxReady    SandboxState = "ready"
	SandboxNotReady SandboxState = "notready"
)

// Sandbox is the record of one pod sandbox.
type Sandbox struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	Attempt   uint32 `json:"attempt"`
	// Config is the CRI PodSandboxConfig as protobuf bytes.
	Config         []byte            `json:"config"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	RuntimeHandler string            `json:"runtimeHandler"`
	CreatedAt      int64             `json:"createdAt"` // unix nanoseconds
	State          SandboxState      `json:"state"`
	// Dir holds the sandbox's files (resolv.conf, hosts, hostname, shm).
	Dir string `json:"dir"`
	// Namespaces maps "net", "ipc", "uts", "pid" to the path containers join.
	Namespaces  map[string]string `json:"namespaces,omitempty"`
	HostNetwork bool              `json:"hostNetwork"`
	IPs         []string          `json:"ips,omitempty"`
	// PausePID is the pid of the pod's pause process, when one holds a
	// pod-level pid namespace.
	PausePID       int    `json:"pausePid,omitempty"`
	PauseStartTime uint64 `json:"pauseStartTime,omitempty"`
	CgroupParent   string `json:"cgroupParent,omitempty"`
	// NetworkReady is true from just before CNI ADD runs until DEL did (so
	// an ADD interrupted by a crash is undone).
	NetworkReady bool `json:"networkReady"`
	// NetworkError is why CNI ADD failed (the pod is then not ready).
	NetworkError string `json:"networkError,omitempty"`
	// Complete is false while RunPodSandbox is still building the sandbox:
	// a record found incomplete after a restart is cleaned up.
	Complete bool `json:"complete"`
}

// Key is the unique name of the sandbox, as the kubelet builds it.
func (s *Sandbox) Key() string {
	return fmt.Sprintf("%s_%s_%s_%d", s.Name, s.Namespace, s.UID, s.Attempt)
}

// ContainerState is the CRI state of a container.
type ContainerState string

// Container states.
const (
	ContainerCreated ContainerState = "created"
	ContainerRunning ContainerState = "running"
	ContainerExited  ContainerState = "exited"
	ContainerUnknown ContainerState = "unknown"
)

// Container is the record of one container.
type Container struct {
	ID        string `json:"id"`
	SandboxID string `json:"sandboxId"`
	Name      string `json:"name"`
	Attempt   uint32 `json:"attempt"`
	// Config is the CRI ContainerConfig as protobuf bytes.
	Config      []byte            `json:"config"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Image is the image reference the request named; ImageID the image's
	// config digest; ImageRef a repo digest (or the id) of that image.
	Image    string `json:"image"`
	ImageID  string `json:"imageId"`
	ImageRef string `json:"imageRef"`
	// RuntimeHandler names the [runtimes.NAME] entry that runs it.
	RuntimeHandler string `json:"runtimeHandler"`
	Bundle         string `json:"bundle"`
	// MonitorDir is the hull-monitor state directory (socket, exit file).
	MonitorDir string `json:"monitorDir"`
	LogPath    string `json:"logPath"`

	State      ContainerState `json:"state"`
	CreatedAt  int64          `json:"createdAt"`
	StartedAt  int64          `json:"startedAt,omitempty"`
	FinishedAt int64          `json:"finishedAt,omitempty"`
	ExitCode   int32          `json:"exitCode"`
	Reason     string         `json:"reason,omitempty"`
	Message    string         `json:"message,omitempty"`
	Pid        int            `json:"pid,omitempty"`
	MonitorPID int            `json:"monitorPid,omitempty"`
	// UID, GID and Groups are the resolved user of the container's process.
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// StopSignal is the image's stop signal (SIGTERM when unset).
	StopSignal string `json:"stopSignal,omitempty"`
	// Complete is false while CreateContainer is still building it.
	Complete bool `json:"complete"`
}

// Key is the unique name of the container within the node.
func (c *Container) Key() string {
	return fmt.Sprintf("%s_%s_%d", c.SandboxID, c.Name, c.Attempt)
}
