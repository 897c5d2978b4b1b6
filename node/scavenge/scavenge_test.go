package scavenge

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// sink keeps allocations from being optimized away.
var sink [][]byte

func heapFree() uint64 {
	s := []metrics.Sample{{Name: metricFree}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// After a burst of buffers that are then dropped, once the heap is quiet,
// Check collects them and returns their memory to the system; while nothing
// allocates, it does nothing.
func TestCheckReturnsFreedHeap(t *testing.T) {
	s := &Scavenger{Slack: 16 << 20}
	runtime.GC()
	s.Check()
	s.Check()
	if s.Check() {
		t.Fatal("Check collected a quiet heap with nothing to return")
	}
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	runtime.GC() // a collection while the buffers are live: the burst
	if s.Check() {
		t.Fatal("Check collected while the heap was busy")
	}
	sink = nil
	if !s.Check() {
		t.Fatal("Check left 64 MiB of dropped buffers in a quiet heap")
	}
	if free := heapFree(); free > 8<<20 {
		t.Errorf("after Check, %d bytes of the heap are free and not returned", free)
	}
}
