package cri

import (
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// broadcaster fans container events out to GetContainerEvents streams. A
// slow subscriber loses events rather than blocking the publisher (the
// kubelet relists anyway). Safe for concurrent use.
type broadcaster struct {
	mu     sync.Mutex
	subs   map[chan *runtimeapi.ContainerEventResponse]struct{}
	closed bool
}

func newBroadcaster() *broadcaster {
	return &broadcaster{subs: map[chan *runtimeapi.ContainerEventResponse]struct{}{}}
}

func (b *broadcaster) subscribe() (chan *runtimeapi.ContainerEventResponse, func()) {
	ch := make(chan *runtimeapi.ContainerEventResponse, 256)
	b.mu.Lock()
	if b.closed {
		close(ch)
	} else {
		b.subs[ch] = struct{}{}
	}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
		b.mu.Unlock()
	}
}

func (b *broadcaster) publish(ev *runtimeapi.ContainerEventResponse) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		close(ch)
		delete(b.subs, ch)
	}
}

// GetContainerEvents streams container lifecycle events until the client
// goes away or hulld stops.
func (s *Service) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	ch, cancel := s.events.subscribe()
	defer cancel()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// emit publishes an event for container id with the current statuses of its
// pod and containers.
func (s *Service) emit(id string, typ runtimeapi.ContainerEventType) {
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId: id, ContainerEventType: typ, CreatedAt: nowNanos(),
	}
	c, err := s.store.Container(id)
	if err != nil {
		// Deleted: the event names the container only.
		s.events.publish(ev)
		return
	}
	if sb, err := s.store.Sandbox(c.SandboxID); err == nil {
		ev.PodSandboxStatus = s.sandboxStatus(sb)
		for _, o := range s.store.Containers() {
			if o.SandboxID == sb.ID {
				ev.ContainersStatuses = append(ev.ContainersStatuses, s.containerStatus(o))
			}
		}
	}
	s.events.publish(ev)
}
