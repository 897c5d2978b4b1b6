package store

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestMetaGetWinsOnce(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 4)
	set(t, s, "k", "v")
	if _, it, lk := s.MetaGet([]byte("k"), MetaGetOptions{}, nil); lk != Hit || it.Stale || it.Won || it.TokenSent {
		t.Fatalf("fresh item: got %+v, %v; want a plain hit", it, lk)
	}
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{Invalidate: true}); st != OK {
		t.Fatalf("invalidate: got %v, want OK", st)
	}
	var wins, sent atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, it, lk := s.MetaGet([]byte("k"), MetaGetOptions{}, nil)
			if lk != Hit || string(v) != "v" || !it.Stale {
				t.Errorf("stale item: got %q %+v %v, want the stale value", v, it, lk)
			}
			if it.Won {
				wins.Add(1)
			}
			if it.TokenSent {
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || sent.Load() != 63 {
		t.Errorf("got %d wins and %d token-sent, want 1 and 63", wins.Load(), sent.Load())
	}
	set(t, s, "k", "fresh")
	if _, it, _ := s.MetaGet([]byte("k"), MetaGetOptions{}, nil); it.Stale || it.Won || it.TokenSent {
		t.Errorf("after a set: got %+v, want the stale state gone", it)
	}
	checkInvariants(t, s)
}

func TestMetaGetVivifyCountsMemory(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	before := s.Stats().Bytes
	_, it, lk := s.MetaGet([]byte("new"), MetaGetOptions{Vivify: true, VivifyDeadline: start + 30}, nil)
	if lk != Hit || !it.Created || !it.Won || it.Size != 0 {
		t.Fatalf("vivify: got %+v %v", it, lk)
	}
	if got, want := s.Stats().Bytes-before, itemCharge(3, 0); got != want {
		t.Errorf("vivified item counts %d bytes, want %d", got, want)
	}
	_, it, _ = s.MetaGet([]byte("new"), MetaGetOptions{Vivify: true}, nil)
	if it.Created || it.Won || !it.TokenSent || it.Deadline != start+30 {
		t.Errorf("second vivify: got %+v, want the placeholder with its token sent", it)
	}
	checkInvariants(t, s)
}

func TestMetaGetRecache(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	s.Set(ModeSet, []byte("k"), []byte("v"), 0, start+100, 0)
	if _, it, _ := s.MetaGet([]byte("k"), MetaGetOptions{Recache: true, RecacheDeadline: start + 30}, nil); it.Won {
		t.Errorf("TTL above the threshold won: %+v", it)
	}
	if _, it, _ := s.MetaGet([]byte("k"), MetaGetOptions{Recache: true, RecacheDeadline: start + 200}, nil); !it.Won {
		t.Errorf("TTL below the threshold did not win: %+v", it)
	}
	if _, it, _ := s.MetaGet([]byte("k"), MetaGetOptions{Recache: true, RecacheDeadline: start + 200}, nil); it.Won || !it.TokenSent {
		t.Errorf("second recache: got %+v, want token sent and no win", it)
	}
}

func TestMetaFetchedAndAccess(t *testing.T) {
	s, c := newTestStore(t, Config{}, 1)
	set(t, s, "k", "v")
	c.Advance(10)
	if _, it, _ := s.MetaGet([]byte("k"), MetaGetOptions{NoBump: true}, nil); it.Fetched || it.Access != start {
		t.Errorf("first read: got %+v", it)
	}
	if _, it, _ := s.MetaGet([]byte("k"), MetaGetOptions{}, nil); it.Fetched {
		t.Errorf("u left the item marked fetched: %+v", it)
	}
	if it, _ := s.MetaDebug([]byte("k")); !it.Fetched || it.Access != start {
		t.Errorf("after a read within %ds: got %+v, want fetched and the access time kept", accessInterval, it)
	}
	c.Advance(accessInterval)
	s.MetaGet([]byte("k"), MetaGetOptions{}, nil)
	if it, _ := s.MetaDebug([]byte("k")); it.Access != start+10+accessInterval {
		t.Errorf("after a read %ds later: access %d, want %d", 10+accessInterval, it.Access, start+10+accessInterval)
	}
}

func TestMetaDeleteAndSetStale(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	cas := set(t, s, "k", "v")
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{HasCAS: true, CAS: cas + 1}); st != Exists {
		t.Errorf("delete with a wrong CAS: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{HasCAS: true, CAS: 0}); st != Exists {
		t.Errorf("delete with CAS 0: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{HasCAS: true, CAS: cas, Invalidate: true, Touch: true, Deadline: start + 50}); st != OK {
		t.Errorf("invalidate: got %v, want OK", st)
	}
	it, _ := s.MetaDebug([]byte("k"))
	if !it.Stale || it.CAS == cas || it.Deadline != start+50 {
		t.Errorf("invalidated: got %+v, want stale, a new CAS and the new deadline", it)
	}
	// An older CAS stores the value but keeps the item stale.
	if st, _ := s.SetStale([]byte("k"), []byte("old"), 0, 0, cas, NewCAS{}); st != OK {
		t.Fatalf("stale set: got %v", st)
	}
	it, _ = s.MetaDebug([]byte("k"))
	if !it.Stale || it.Deadline != start+50 {
		t.Errorf("after a stale set: got %+v, want still stale with its deadline", it)
	}
	// The current CAS stores a fresh value.
	if st, _ := s.SetStale([]byte("k"), []byte("new"), 0, 0, it.CAS, NewCAS{}); st != OK {
		t.Fatalf("set with the current CAS: got %v", st)
	}
	if it, _ = s.MetaDebug([]byte("k")); it.Stale {
		t.Errorf("after a set with the current CAS: got %+v, want fresh", it)
	}
	if st, _ := s.SetStale([]byte("k"), []byte("x"), 0, 0, it.CAS+100, NewCAS{}); st != Exists {
		t.Errorf("newer CAS: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{}); st != OK {
		t.Errorf("delete: got %v", st)
	}
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{}); st != NotFound {
		t.Errorf("delete again: got %v, want NotFound", st)
	}
	checkInvariants(t, s)
}

func TestExplicitCAS(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	if st, cas := s.SetCAS(ModeSet, []byte("k"), []byte("v"), 0, 0, 0, NewCAS{Value: 1 << 40, Explicit: true}); st != OK || cas != 1<<40 {
		t.Fatalf("set with an explicit CAS: got %v %d, want OK %d", st, cas, uint64(1<<40))
	}
	if _, m, _ := s.Get([]byte("k"), nil); m.CAS != 1<<40 {
		t.Errorf("get: CAS %d, want %d", m.CAS, uint64(1<<40))
	}
	// The counter is neither raised by the explicit CAS nor lowered.
	if cas := set(t, s, "other", "v"); cas != 2 {
		t.Errorf("next fresh CAS: got %d, want 2", cas)
	}
	// ModeCAS compares with the explicit CAS unique and sets another.
	if st, cas := s.SetCAS(ModeCAS, []byte("k"), []byte("w"), 0, 0, 1<<40, NewCAS{Value: 7, Explicit: true}); st != OK || cas != 7 {
		t.Errorf("compare with it: got %v %d, want OK 7", st, cas)
	}
	// A CAS unique below the sequence of a flush does not flush the item.
	s.Flush(0)
	if st, _ := s.SetCAS(ModeSet, []byte("k"), []byte("x"), 0, 0, 0, NewCAS{Value: 1, Explicit: true}); st != OK {
		t.Fatalf("set after a flush: got %v", st)
	}
	if v, m, lk := s.Get([]byte("k"), nil); lk != Hit || string(v) != "x" || m.CAS != 1 {
		t.Errorf("after a flush: got %q %+v %v, want x with CAS 1", v, m, lk)
	}
	// Arith in place, grown and created.
	set(t, s, "n", "9")
	if v, cas, st := s.ArithCAS([]byte("n"), true, 1, 0, false, 0, 0, NewCAS{Value: 11, Explicit: true}); st != OK || v != 10 || cas != 11 {
		t.Errorf("incr grown: got %d %d %v, want 10 11 OK", v, cas, st)
	}
	if v, cas, st := s.ArithCAS([]byte("n"), false, 1, 0, false, 0, 0, NewCAS{Value: 12, Explicit: true}); st != OK || v != 9 || cas != 12 {
		t.Errorf("decr in place: got %d %d %v, want 9 12 OK", v, cas, st)
	}
	if v, cas, st := s.ArithCAS([]byte("m"), true, 1, 5, true, 0, 0, NewCAS{Value: 13, Explicit: true}); st != OK || v != 5 || cas != 13 {
		t.Errorf("created: got %d %d %v, want 5 13 OK", v, cas, st)
	}
	_, it, _ := s.MetaGet([]byte("viv"), MetaGetOptions{Vivify: true, VivifyCAS: NewCAS{Value: 14, Explicit: true}}, nil)
	if !it.Created || it.CAS != 14 {
		t.Errorf("vivified: got %+v, want created with CAS 14", it)
	}
	_, it, _ = s.MetaGet([]byte("viv"), MetaGetOptions{Vivify: true, Touch: true, VivifyCAS: NewCAS{Value: 15, Explicit: true}}, nil)
	if it.Created || it.CAS != 14 {
		t.Errorf("found again and touched: got %+v, want CAS 14 kept", it)
	}
	checkInvariants(t, s)
}

func TestExplicitCASNoCAS(t *testing.T) {
	s, _ := newTestStore(t, Config{NoCAS: true}, 1)
	if st, cas := s.SetCAS(ModeSet, []byte("k"), []byte("v"), 0, 0, 0, NewCAS{Value: 5, Explicit: true}); st != OK || cas != 0 {
		t.Errorf("set: got %v %d, want OK 0", st, cas)
	}
	if it, _ := s.MetaDebug([]byte("k")); it.CAS != 0 {
		t.Errorf("CAS %d, want 0", it.CAS)
	}
}

func TestMetaDeleteRemoveValue(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	s.SetCAS(ModeSet, []byte("k"), []byte("value"), 9, start+100, 0, NewCAS{Value: 50, Explicit: true})
	s.Get([]byte("k"), nil)
	before := s.Stats()
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{RemoveValue: true}); st != OK {
		t.Fatalf("x: got %v", st)
	}
	v, it, lk := s.MetaGet([]byte("k"), MetaGetOptions{}, nil)
	if lk != Hit || len(v) != 0 || it.Flags != 0 || it.Deadline != 0 || it.CAS != 50 || it.Fetched || it.Stale {
		t.Errorf("x: got %q %+v %v, want an empty, unfetched item with flags 0, no deadline and CAS 50", v, it, lk)
	}
	after := s.Stats()
	if got, want := before.Bytes-after.Bytes, int64(len("value")); got != want || after.CurrItems != before.CurrItems {
		t.Errorf("x freed %d bytes and left %d items, want %d and %d", got, after.CurrItems, want, before.CurrItems)
	}
	s.MetaDelete([]byte("k"), MetaDeleteOptions{RemoveValue: true, Flags: 3, Touch: true, Deadline: start + 30, NewCAS: NewCAS{Value: 51, Explicit: true}})
	if it, _ := s.MetaDebug([]byte("k")); it.Flags != 3 || it.Deadline != start+30 || it.CAS != 51 {
		t.Errorf("x with F, T and E: got %+v", it)
	}
	set(t, s, "k", "value")
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{RemoveValue: true, Invalidate: true}); st != OK {
		t.Fatalf("x with I: got %v", st)
	}
	v, it, _ = s.MetaGet([]byte("k"), MetaGetOptions{}, nil)
	if len(v) != 0 || !it.Stale || !it.Won || it.CAS == 0 {
		t.Errorf("x with I: got %q %+v, want an empty stale item whose reader wins", v, it)
	}
	if st := s.MetaDelete([]byte("k"), MetaDeleteOptions{RemoveValue: true, HasCAS: true, CAS: it.CAS + 1}); st != Exists {
		t.Errorf("x with a wrong CAS: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("nokey"), MetaDeleteOptions{RemoveValue: true}); st != NotFound {
		t.Errorf("x on a miss: got %v, want NotFound", st)
	}
	checkInvariants(t, s)
}
