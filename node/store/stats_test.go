package store

import (
	"bytes"
	"testing"
)

// TestResetStats checks that ResetStats zeroes what memcached's "stats
// reset" zeroes (total_items, evictions, reclaimed, expired_unfetched,
// evicted_unfetched, in total and per class) and keeps the gauges.
func TestResetStats(t *testing.T) {
	per := itemCharge(2, 10)
	s, c := newTestStore(t, Config{MaxBytes: 3 * per}, 1)
	val := bytes.Repeat([]byte("v"), 10)
	s.Set(ModeSet, []byte("k1"), val, 0, start+1, 0) // expires, never read
	s.Set(ModeSet, []byte("k2"), val, 0, 0, 0)
	s.Set(ModeSet, []byte("k3"), val, 0, 0, 0)
	c.Advance(1)
	s.Set(ModeSet, []byte("k4"), val, 0, 0, 0) // reclaims k1
	s.Set(ModeSet, []byte("k5"), val, 0, 0, 0) // evicts k2
	before := s.Stats()
	if before.TotalItems != 5 || before.Evictions != 1 || before.EvictedUnfetched != 1 ||
		before.Reclaimed != 1 || before.ExpiredUnfetched != 1 || before.CurrItems != 3 {
		t.Fatalf("before ResetStats: got %+v, want 5 total, 1 eviction (unfetched), 1 reclaimed (unfetched), 3 items", before)
	}

	s.ResetStats()
	want := Stats{Bytes: before.Bytes, CurrItems: 3, LimitMaxBytes: before.LimitMaxBytes}
	if got := s.Stats(); got != want {
		t.Errorf("after ResetStats: got %+v, want %+v", got, want)
	}
	cs := s.ClassStats()
	if len(cs) != 1 {
		t.Fatalf("ClassStats after ResetStats: got %+v, want one class", cs)
	}
	if got := cs[0]; got.Items != 3 || got.Bytes != before.Bytes || got.RequestedBytes != 3*int64(s.limitSize(2, 10, 0)) ||
		got.Evictions != 0 || got.EvictedUnfetched != 0 || got.Reclaimed != 0 || got.ExpiredUnfetched != 0 {
		t.Errorf("class after ResetStats: got %+v, want gauges kept and counters zero", got)
	}

	// Counting goes on from zero.
	s.Set(ModeSet, []byte("k6"), val, 0, 0, 0)
	if got := s.Stats(); got.TotalItems != 1 || got.Evictions != 1 {
		t.Errorf("after one more set: got %+v, want 1 total item, 1 eviction", got)
	}
	checkInvariants(t, s)
}
