// Package freelist keeps objects for reuse, as sync.Pool does, but keeps
// them through garbage collections and under the race detector, which
// empties a sync.Pool at random: what the node lends its busy connections
// (buffers, decoders) must cost no allocation per request.
package freelist

import "sync"

// List holds up to Max objects for reuse. Its methods are safe for
// concurrent use.
type List[T any] struct {
	// New makes an object when the list is empty. Required.
	New func() *T
	// Max is the most objects the list keeps; Put drops the rest.
	Max int

	mu   sync.Mutex
	free []*T
}

// Get returns an object from the list, or a new one.
func (l *List[T]) Get() *T {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		x := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return x
	}
	l.mu.Unlock()
	return l.New()
}

// Put gives x back for reuse, unless the list is full.
func (l *List[T]) Put(x *T) {
	l.mu.Lock()
	if len(l.free) < l.Max {
		l.free = append(l.free, x)
	}
	l.mu.Unlock()
}
