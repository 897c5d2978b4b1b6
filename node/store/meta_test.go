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
	if st := s.MetaDelete([]byte("k"), false, 0, true, false, 0); st != OK {
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
	if got, want := s.Stats().Bytes-before, int64(ItemSize(3, 0))+entryOverhead; got != want {
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
	if st := s.MetaDelete([]byte("k"), true, cas+1, false, false, 0); st != Exists {
		t.Errorf("delete with a wrong CAS: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("k"), true, 0, false, false, 0); st != Exists {
		t.Errorf("delete with CAS 0: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("k"), true, cas, true, true, start+50); st != OK {
		t.Errorf("invalidate: got %v, want OK", st)
	}
	it, _ := s.MetaDebug([]byte("k"))
	if !it.Stale || it.CAS == cas || it.Deadline != start+50 {
		t.Errorf("invalidated: got %+v, want stale, a new CAS and the new deadline", it)
	}
	// An older CAS stores the value but keeps the item stale.
	if st, _ := s.SetStale([]byte("k"), []byte("old"), 0, 0, cas); st != OK {
		t.Fatalf("stale set: got %v", st)
	}
	it, _ = s.MetaDebug([]byte("k"))
	if !it.Stale || it.Deadline != start+50 {
		t.Errorf("after a stale set: got %+v, want still stale with its deadline", it)
	}
	// The current CAS stores a fresh value.
	if st, _ := s.SetStale([]byte("k"), []byte("new"), 0, 0, it.CAS); st != OK {
		t.Fatalf("set with the current CAS: got %v", st)
	}
	if it, _ = s.MetaDebug([]byte("k")); it.Stale {
		t.Errorf("after a set with the current CAS: got %+v, want fresh", it)
	}
	if st, _ := s.SetStale([]byte("k"), []byte("x"), 0, 0, it.CAS+100); st != Exists {
		t.Errorf("newer CAS: got %v, want Exists", st)
	}
	if st := s.MetaDelete([]byte("k"), false, 0, false, false, 0); st != OK {
		t.Errorf("delete: got %v", st)
	}
	if st := s.MetaDelete([]byte("k"), false, 0, false, false, 0); st != NotFound {
		t.Errorf("delete again: got %v, want NotFound", st)
	}
	checkInvariants(t, s)
}
