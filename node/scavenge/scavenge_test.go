package scavenge

import (
	"runtime"
	"runtime/debug"
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
	runtime.GC() // a collection while the buffers are live
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

// A burst that ends before the runtime collected at all is collected and
// returned too, once the next period is quiet.
func TestCheckCollectsABurstTheRuntimeDidNot(t *testing.T) {
	s := &Scavenger{Slack: 16 << 20}
	runtime.GC()
	s.Check()
	s.Check()
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection during the burst
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	if s.Check() {
		t.Fatal("Check collected while the heap was busy")
	}
	if !s.Check() {
		t.Fatal("Check left a burst's 64 MiB of garbage in a quiet heap")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > 32<<20 {
		t.Errorf("after Check, %d bytes of heap in use, want the burst's garbage gone", ms.HeapInuse)
	}
}

// Garbage that trickles in, each period too little to be busy, is
// collected once more than the slack of it has built up since the last
// collection: with a large cache the runtime would wait until as much
// again as is live had been allocated.
func TestCheckCollectsTrickledGarbage(t *testing.T) {
	s := &Scavenger{Slack: 16 << 20}
	runtime.GC()
	s.Check()
	s.Check()
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // the runtime would not collect yet
	for i := range 3 {
		for range 8 {
			sink = append(sink, make([]byte, 1<<20))
		}
		sink = nil
		if collected := s.Check(); collected != (i == 2) {
			t.Fatalf("after %d MiB trickled in, Check collected: %v", 8*(i+1), collected)
		}
	}
}

// While the node serves (its activity passes QuietActivity in a period),
// the heap is left to the runtime, however much was allocated; the burst
// is collected once the node is quiet.
func TestCheckWaitsWhileTheNodeServes(t *testing.T) {
	var work uint64
	s := &Scavenger{Slack: 16 << 20, Activity: func() uint64 { return work }, QuietActivity: 1 << 20}
	runtime.GC()
	s.Check()
	s.Check()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for range 64 {
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	for range 3 {
		work += 10 << 20
		if s.Check() {
			t.Fatal("Check collected while the node served")
		}
	}
	if !s.Check() {
		t.Fatal("Check left a burst's garbage once the node was quiet")
	}
}
