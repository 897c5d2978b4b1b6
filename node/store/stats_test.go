package store

import "testing"

// TestResetStats checks that ResetStats zeroes what memcached's "stats
// reset" zeroes (total_items, evictions, reclaimed, expired_unfetched,
// evicted_unfetched, in total and per class) and keeps the gauges.
func TestResetStats(t *testing.T) {
	s, c := newPagedStore(t, Config{}, 4)
	fillPaged(t, s, 0, 1, start+1) // expires, never read
	fillPaged(t, s, 1, 24, 0)
	c.Advance(1)
	fillPaged(t, s, 24, 25, 0) // empties the oldest page: reclaims item 0, evicts 1 to 7
	before := s.Stats()
	if before.TotalItems != 25 || before.Evictions != 7 || before.EvictedUnfetched != 7 ||
		before.Reclaimed != 1 || before.ExpiredUnfetched != 1 || before.CurrItems != 17 {
		t.Fatalf("before ResetStats: got %+v, want 25 total, 7 evictions (unfetched), 1 reclaimed (unfetched), 17 items", before)
	}

	s.ResetStats()
	want := Stats{Bytes: before.Bytes, CurrItems: 17, LimitMaxBytes: before.LimitMaxBytes,
		PageBytes: before.PageBytes, FreePageBytes: before.FreePageBytes, ExternBytes: before.ExternBytes,
		IndexBytes: before.IndexBytes, IndexSlots: before.IndexSlots}
	if got := s.Stats(); got != want {
		t.Errorf("after ResetStats: got %+v, want %+v", got, want)
	}
	cs := s.ClassStats()
	if len(cs) != 1 {
		t.Fatalf("ClassStats after ResetStats: got %+v, want one class", cs)
	}
	if got := cs[0]; got.Items != 17 || got.Bytes != before.Bytes || got.RequestedBytes != 17*int64(s.limitSize(3, len(pagedValue), 0)) ||
		got.Evictions != 0 || got.EvictedUnfetched != 0 || got.Reclaimed != 0 || got.ExpiredUnfetched != 0 {
		t.Errorf("class after ResetStats: got %+v, want gauges kept and counters zero", got)
	}

	// Counting goes on from zero.
	fillPaged(t, s, 25, 26, 0)
	if got := s.Stats(); got.TotalItems != 1 || got.CurrItems != 18 {
		t.Errorf("after one more set: got %+v, want 1 total item, 18 items", got)
	}
	checkInvariants(t, s)
}
