// Package scavenge keeps a node's resident memory close to what its cache
// holds. Go's runtime collects garbage only as new allocations call for it,
// lets the heap grow to twice what is live before it does, and returns freed
// memory to the system slowly: after a burst of large requests, the buffers
// they used stayed resident for minutes, and a cache of large values
// replaced as it overflowed held twice its size. A Scavenger gives the
// heap's freed memory back once the node is quiet, and SetMemoryLimit makes
// the runtime collect before the process outgrows its cache by much.
package scavenge

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Slack is what SetMemoryLimit allows beyond a tenth over the cache: the
// node's connections, decoders and runtime, with room left, under the 32
// MiB beyond which memcached's users would notice.
const Slack = 20 << 20

// SetMemoryLimit sets the runtime's soft memory limit for a cache bounded
// to cacheBytes: 1.1 × cacheBytes + Slack, so that the process's resident
// memory stays within 1.1 × cacheBytes + 32 MiB while what is live fits.
// The limit is soft: when more is live (many large requests at once), the
// runtime collects more often, with at most half the CPU, and lets the
// heap grow. It does nothing if the GOMEMLIMIT environment variable set a
// limit, and reports whether it set one.
func SetMemoryLimit(cacheBytes int64) bool {
	if os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	limit := cacheBytes + cacheBytes/10 + Slack
	if cacheBytes > (math.MaxInt64-Slack)/2 {
		limit = math.MaxInt64
	}
	debug.SetMemoryLimit(limit)
	return true
}

// The runtime's measures a Scavenger reads.
const (
	metricFree   = "/memory/classes/heap/free:bytes" // free, not yet returned
	metricAllocs = "/gc/heap/allocs:bytes"           // allocated so far
	metricCycles = "/gc/cycles/total:gc-cycles"      // collections so far
)

// Scavenger returns the heap's freed memory to the system once the node is
// quiet. A heap's garbage is known only once collected, and the runtime
// collects only as allocations call for it, when the heap has grown by as
// much as is live: with a large cache, that can be hundreds of megabytes of
// garbage, kept resident for as long as the node is quiet. So in a quiet
// period (one that allocated no more than Slack, and saw no more Activity
// than QuietActivity), if the period before was busy or more than Slack
// was allocated since the last collection, the Scavenger collects and
// returns what is free. While the node serves, it leaves the heap to the
// runtime and its memory limit: a forced collection and return stalls
// what allocates, and showed in a busy node's latency.
type Scavenger struct {
	// Every is how often the heap is looked at.
	Every time.Duration
	// Slack is how much a period may allocate and still be quiet, how
	// much may be allocated uncollected while the node is quiet, and how
	// much free memory the heap may keep unreturned.
	Slack uint64
	// Activity, if not nil, counts the node's work so far (bytes read and
	// written, say); a period with more than QuietActivity of it is not
	// quiet.
	Activity      func() uint64
	QuietActivity uint64
	// Logger receives a debug line per return; nil for none.
	Logger *slog.Logger

	activity uint64 // Activity when last looked
	samples  []metrics.Sample
	allocs   uint64 // bytes allocated when last looked
	cycles   uint64 // collections when last looked
	sinceGC  uint64 // bytes allocated when a collection was last seen
	pending  bool   // the last period was busy: collect once quiet
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
		s.samples = []metrics.Sample{{Name: metricFree}, {Name: metricAllocs}, {Name: metricCycles}}
	}
	metrics.Read(s.samples)
	free, allocs, cycles := s.value(0), s.value(1), s.value(2)
	if cycles != s.cycles {
		s.cycles, s.sinceGC = cycles, allocs // about: it ran in the period
	}
	allocBusy := allocs-s.allocs > s.Slack
	s.allocs = allocs
	busy := allocBusy
	if s.Activity != nil {
		a := s.Activity()
		busy = busy || a-s.activity > s.QuietActivity
		s.activity = a
	}
	if busy {
		s.pending = s.pending || allocBusy // a burst to collect once quiet
		return false
	}
	if !s.pending && allocs-s.sinceGC <= s.Slack && free <= s.Slack {
		return false
	}
	debug.FreeOSMemory()
	metrics.Read(s.samples)
	s.allocs, s.cycles, s.sinceGC, s.pending = s.value(1), s.value(2), s.value(1), false
	if s.Logger != nil {
		s.Logger.Debug("returned the heap's free memory to the system", "free_before", free)
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
