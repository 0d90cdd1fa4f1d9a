package cri

import (
	"net/url"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamTokenTTL is how long a streaming URL stays valid: cri-streaming's
// own request cache lets its tokens live one minute, and hull's copy of
// them must not outlive the library's.
const streamTokenTTL = time.Minute

// streamTicket is what hull remembers of an exec or attach URL the
// library handed out: the CRI request behind it (one of exec, attach).
type streamTicket struct {
	exec    *runtimeapi.ExecRequest
	attach  *runtimeapi.AttachRequest
	expires time.Time
}

// ticketBook maps the path of each exec/attach URL cri-streaming handed
// out to its CRI request, so that hull can serve the WebSocket protocol
// versions the library does not speak. A ticket is taken at most once:
// every request for a remembered path takes it out of the book, whichever
// transport the request uses. Safe for concurrent use.
type ticketBook struct {
	mu      sync.Mutex
	tickets map[string]streamTicket
	now     func() time.Time
}

func newTicketBook() *ticketBook {
	return &ticketBook{tickets: map[string]streamTicket{}, now: time.Now}
}

// remember records the request behind rawURL (the URL GetExec or GetAttach
// returned). Expired tickets go at the same time, so the book stays as
// small as the library's cache (at most its 1000 requests in flight).
func (b *ticketBook) remember(rawURL string, t streamTicket) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for p, old := range b.tickets {
		if now.After(old.expires) {
			delete(b.tickets, p)
		}
	}
	t.expires = now.Add(streamTokenTTL)
	b.tickets[u.Path] = t
	return nil
}

// take removes the ticket for path and returns it if it has not expired.
func (b *ticketBook) take(path string) (streamTicket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.tickets[path]
	if !ok {
		return streamTicket{}, false
	}
	delete(b.tickets, path)
	if b.now().After(t.expires) {
		return streamTicket{}, false
	}
	return t, true
}

// len is the number of tickets held (expired ones included).
func (b *ticketBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.tickets)
}
