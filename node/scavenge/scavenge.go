// Package scavenge gives the memory the node's heap has freed back to the
// system. Go's runtime returns freed memory only slowly, and collects
// garbage only as new allocations call for it: after a burst of large
// requests, the buffers they used stay in the process's resident memory
// until traffic resumes, or for minutes. Every few seconds a Scavenger
// looks at the heap, and when much of it is garbage or free memory not yet
// returned, it collects and returns it.
package scavenge

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The runtime's measures a Scavenger reads.
const (
	metricFree   = "/memory/classes/heap/free:bytes" // free, not yet returned
	metricCycles = "/gc/cycles/total:gc-cycles"      // collections so far
)

// Scavenger returns the heap's freed memory to the system. A heap's
// garbage is known only once collected, and the runtime collects only as
// allocations call for it: so once the node goes quiet after allocating
// (a collection ran in one period and none in the next), the Scavenger
// collects once and returns what is free; and whenever more than Slack is
// free and not yet returned, it returns it.
type Scavenger struct {
	// Every is how often the heap is looked at.
	Every time.Duration
	// Slack is how much free memory the heap may keep unreturned.
	Slack uint64
	// Logger receives a debug line per return; nil for none.
	Logger *slog.Logger

	samples []metrics.Sample
	cycles  uint64 // collections when last looked
	pending bool   // collections ran before the last look: collect once quiet
}

// Run looks at the heap every s.Every until done is closed.
func (s *Scavenger) Run(done <-chan struct{}) {
	t := time.NewTicker(s.Every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.Check()
		}
	}
}

// Check looks at the heap, collects and returns its free memory if it is
// time to (see Scavenger), and reports whether it did.
func (s *Scavenger) Check() bool {
	if s.samples == nil {
		s.samples = []metrics.Sample{{Name: metricFree}, {Name: metricCycles}}
	}
	metrics.Read(s.samples)
	free, cycles := s.value(0), s.value(1)
	ran := cycles != s.cycles
	s.cycles = cycles
	quiet := !ran && s.pending
	s.pending = ran
	if !quiet && free <= s.Slack {
		return false
	}
	debug.FreeOSMemory()
	metrics.Read(s.samples)
	s.cycles, s.pending = s.value(1), false
	if s.Logger != nil {
		s.Logger.Debug("returned the heap's free memory to the system", "free_before", free, "quiet", quiet)
	}
	return true
}

// value returns the i-th sample, 0 if the runtime lacks it.
func (s *Scavenger) value(i int) uint64 {
	if v := s.samples[i].Value; v.Kind() == metrics.KindUint64 {
		return v.Uint64()
	}
	return 0
}
