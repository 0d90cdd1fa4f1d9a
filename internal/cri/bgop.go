package cri

import "context"

// bgOp is work a request left running in the background (a container's
// runtime create, a pod's CNI ADD); done closes when it finished, err is
// its failure. It is registered under its object's id in one of Service's
// maps, guarded by Service.mu.
type bgOp struct {
	done chan struct{}
	err  error
}

// waitOp waits for the background op registered under id in ops, if any,
// and returns its error.
func (s *Service) waitOp(ctx context.Context, ops map[string]*bgOp, id string) error {
	s.mu.Lock()
	op := ops[id]
	s.mu.Unlock()
	if op == nil {
		return nil
	}
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
