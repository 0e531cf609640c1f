package query

import (
	"context"
	"fmt"
	"time"
)

// BusyError refuses a query because Limits.MaxConcurrent queries are reading data and no
// slot freed within Limits.QueueTimeout (or the caller gave up waiting). It comes before
// the charge: nothing was charged, and the same query may be sent again.
type BusyError struct {
	Limit int // Limits.MaxConcurrent
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%d queries are already reading data, the engine's limit; nothing was charged", e.Limit)
}

// slots bounds the queries that read data at once. Only a query that will be charged and
// executed takes one, after the release cache and the in-flight queries have been
// consulted: a dashboard's refresh is never refused, and identical queries sent together
// wait for the first one's release rather than for a slot.
type slots struct {
	ch      chan struct{} // nil: no limit
	timeout time.Duration
}

func newSlots(l Limits) (slots, error) {
	if l.MaxConcurrent < 0 {
		return slots{}, fmt.Errorf("query limits: MaxConcurrent is %d; want 0 (no limit) or more", l.MaxConcurrent)
	}
	if l.MaxConcurrent == 0 {
		return slots{}, nil
	}
	return slots{ch: make(chan struct{}, l.MaxConcurrent), timeout: l.QueueTimeout}, nil
}

// acquire takes a slot, waiting at most the queue timeout; past it, or when ctx ends
// first, it returns a *BusyError. free gives the slot back.
func (s slots) acquire(ctx context.Context) (free func(), err error) {
	if s.ch == nil {
		return func() {}, nil
	}
	free = func() { <-s.ch }
	select {
	case s.ch <- struct{}{}:
		return free, nil
	default:
	}
	busy := &BusyError{Limit: cap(s.ch)}
	if s.timeout < 0 {
		return nil, busy
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return free, nil
	case <-t.C:
		return nil, busy
	case <-ctx.Done():
		return nil, busy
	}
}

// Slots reports how many queries hold a slot now, and how many may (0: no limit).
func (e *Engine) Slots() (inUse, limit int) { return len(e.slots.ch), cap(e.slots.ch) }
