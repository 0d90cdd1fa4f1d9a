package cri

import (
	"fmt"
	"strings"
	"time"
)

// stepTimer records how long each step of an RPC took, for debug logs.
type stepTimer struct {
	last  time.Time
	parts []string
}

func newStepTimer() *stepTimer { return &stepTimer{last: time.Now()} }

func (t *stepTimer) step(name string) {
	now := time.Now()
	t.parts = append(t.parts, fmt.Sprintf("%s=%.1fms", name, float64(now.Sub(t.last).Microseconds())/1000))
	t.last = now
}

func (t *stepTimer) String() string { return strings.Join(t.parts, " ") }
