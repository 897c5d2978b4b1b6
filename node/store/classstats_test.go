package store

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// classOfTest returns the ClassStats of the class an item of these sizes
// is filed under, or a zero ClassStats with ID 0 if the class is not
// listed.
func classOfTest(s *Store, keyLen, valueLen int, flags uint32) ClassStats {
	id := int(s.classOf(s.limitSize(keyLen, valueLen, flags))) + 1
	for _, c := range s.ClassStats() {
		if c.ID == id {
			return c
		}
	}
	return ClassStats{}
}

// commandCounts are the per-class counters of the commands, as memcached's
// "stats slabs" prints them.
type commandCounts struct {
	get, set, del, incr, decr, casHits, casBadval, touch uint64
}

func countsOf(c ClassStats) commandCounts {
	return commandCounts{c.Hits(), c.SetCmds, c.DeleteHits, c.IncrHits, c.DecrHits, c.CASHits, c.CASBadval, c.TouchHits}
}

// TestClassCommandCounters runs every kind of command against items of two
// classes and checks what each class counts: hits in the class of the item
// hit, a storage command in the class of the item it would store, a
// compare-and-swap in the class of the item it compared with, and the
// store's totals as their sums.
func TestClassCommandCounters(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 4)
	small := []byte("x")                           // class 1 with key "s…"
	big := bytes.Repeat([]byte("b"), 500)          // another class
	bigNum := []byte(fmt.Sprintf("%-500d", 7))     // a number in the big class
	for _, k := range []string{"s1", "s2", "s3"} { // 3 sets in class small
		set(t, s, k, string(small))
	}
	for _, k := range []string{"b1", "b2"} { // 2 sets in class big
		set(t, s, k, string(big))
	}
	set(t, s, "bn", string(bigNum)) // 3rd set in class big

	// Reads: hits count, misses do not.
	s.Get([]byte("s1"), nil)
	s.Get([]byte("s1"), nil)
	s.Get([]byte("b1"), nil)
	s.Get([]byte("nope"), nil)
	s.GetAndTouch([]byte("s2"), 0, nil) // a touch hit
	s.GetAndTouch([]byte("nope"), 0, nil)
	s.Touch([]byte("b2"), 0)
	s.SetDeadline([]byte("b2"), 0) // not a touch command: uncounted
	s.MetaGet([]byte("s3"), MetaGetOptions{}, nil)
	s.MetaGet([]byte("s3"), MetaGetOptions{Touch: true}, nil)
	s.MetaDebug([]byte("s3")) // uncounted

	// Arithmetic: hits in the class of the number found.
	s.Set(ModeSet, []byte("n"), []byte("10"), 0, 0, 0) // 4th set, small
	s.Arith([]byte("n"), true, 1, 0, false, 0, 0)
	s.Arith([]byte("n"), false, 1, 0, false, 0, 0)
	s.Arith([]byte("bn"), true, 1, 0, false, 0, 0)
	s.Arith([]byte("nope"), true, 1, 0, false, 0, 0)               // a miss
	s.Arith([]byte("created"), true, 1, 5, true, 0, 0)             // created: no hit
	s.Arith([]byte("s1"), true, 1, 0, false, 0, 0)                 // non-numeric: no hit
	s.ArithCAS([]byte("n"), true, 1, 0, false, 0, 12345, NewCAS{}) // CAS mismatch: no hit

	// Compare-and-swap: in the class of the item compared with, and a set
	// in the class of the item it would store.
	_, casS1, _ := s.MetaGet([]byte("s1"), MetaGetOptions{NoBump: true}, nil)  // a get hit
	if st, _ := s.Set(ModeCAS, []byte("s1"), big, 0, 0, casS1.CAS); st != OK { // hit in small, set in big
		t.Fatalf("cas: got %v, want OK", st)
	}
	if st, _ := s.Set(ModeCAS, []byte("b1"), small, 0, 0, 1); st != Exists { // badval in big, set in small
		t.Fatalf("cas mismatch: got %v, want Exists", st)
	}
	if st, _ := s.Set(ModeCAS, []byte("nope"), small, 0, 0, 1); st != NotFound { // a miss: set in small
		t.Fatalf("cas miss: got %v, want NotFound", st)
	}
	// Failed stores count as sets; appends in the class of the part added.
	s.Set(ModeAdd, []byte("s2"), small, 0, 0, 0)     // NotStored: set in small
	s.Set(ModeReplace, []byte("nope"), big, 0, 0, 0) // NotStored: set in big
	s.Set(ModeAppend, []byte("b2"), small, 0, 0, 0)  // set in small
	s.Set(ModeAppend, []byte("nope"), small, 0, 0, 0)
	// Too large: not stored, not counted.
	s.Set(ModeSet, []byte("huge"), make([]byte, DefaultItemSizeMax), 0, 0, 0)

	// Deletes: hits in the class of the item deleted.
	s.Delete([]byte("s2"), 0)
	s.Delete([]byte("nope"), 0)
	s.Drop([]byte("b2")) // a failed write's clean-up: uncounted
	s.MetaDelete([]byte("b1"), MetaDeleteOptions{})
	s.MetaDelete([]byte("s3"), MetaDeleteOptions{Invalidate: true}) // kept: not a delete

	gotSmall := countsOf(classOfTest(s, 2, len(small), 0))
	wantSmall := commandCounts{
		get:  3 + 1,                     // s1 twice, mg s3, the mg before the cas
		set:  3 + 1 + 1 + 1 + 1 + 1 + 1, // s1-s3, n, cas b1 and nope, add, append b2 and nope
		del:  1,
		incr: 1, decr: 1,
		casHits: 1,
		touch:   2, // gat s2, mg s3 T
	}
	if gotSmall != wantSmall {
		t.Errorf("small class: got %+v, want %+v", gotSmall, wantSmall)
	}
	gotBig := countsOf(classOfTest(s, 2, len(big), 0))
	wantBig := commandCounts{
		get:       1,         // b1
		set:       3 + 1 + 1, // b1, b2, bn, cas s1, replace nope
		del:       1,         // md b1
		incr:      1,         // bn
		casBadval: 1,
		touch:     1, // touch b2
	}
	if gotBig != wantBig {
		t.Errorf("big class: got %+v, want %+v", gotBig, wantBig)
	}
	var sum commandCounts
	for _, c := range s.ClassStats() {
		n := countsOf(c)
		sum.get += n.get
		sum.set += n.set
		sum.del += n.del
		sum.incr += n.incr
		sum.decr += n.decr
		sum.casHits += n.casHits
		sum.casBadval += n.casBadval
		sum.touch += n.touch
	}
	st := s.Stats()
	total := commandCounts{st.GetHits, st.SetCmds, st.DeleteHits, st.IncrHits, st.DecrHits, st.CASHits, st.CASBadval, st.TouchHits}
	if total != sum {
		t.Errorf("Stats totals %+v, want the classes' sums %+v", total, sum)
	}

	s.ResetStats()
	for _, c := range s.ClassStats() {
		if n := countsOf(c); n != (commandCounts{}) {
			t.Errorf("class %d after ResetStats: got %+v, want zeros", c.ID, n)
		}
	}
	checkInvariants(t, s)
}

// TestStaleSetCountsCAS checks that ms with I and an older CAS unique
// counts as a compare-and-swap that stored.
func TestStaleSetCountsCAS(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	old := set(t, s, "k", "v1")
	set(t, s, "k", "v2")
	if st, _ := s.SetStale([]byte("k"), []byte("v3"), 0, 0, old, NewCAS{}); st != OK {
		t.Fatalf("SetStale with an older CAS: got %v, want OK", st)
	}
	c := classOfTest(s, 1, 2, 0)
	if c.CASHits != 1 || c.SetCmds != 3 || c.CASBadval != 0 {
		t.Errorf("class: got %d cas hits, %d sets, %d badval; want 1, 3, 0", c.CASHits, c.SetCmds, c.CASBadval)
	}
}

// TestClassQueuesAndEvictions follows items through the queues of a full
// store: new items count in the small queue (memcached's HOT), items read
// there move to the main queue (WARM) when their page is emptied, reads
// count by the queue of the item, and evictions count what they evicted.
func TestClassQueuesAndEvictions(t *testing.T) {
	s, c := newPagedStore(t, Config{}, 4)
	fillPaged(t, s, 0, 1, start+100) // a deadline: evicted_nonzero
	fillPaged(t, s, 1, 24, 0)
	cls := func() ClassStats { return classOfTest(s, 3, len(pagedValue), 0) }
	if got := cls(); got.Items != 24 || got.SmallItems != 24 || got.MainItems != 0 {
		t.Fatalf("after 24 sets: got %d items, %d small, %d main; want 24 in the small queue", got.Items, got.SmallItems, got.MainItems)
	}
	for i := range 4 {
		s.Get(pagedKey(i+1), nil)
	}
	c.Advance(30)
	fillPaged(t, s, 24, 25, 0) // empties two small pages: 4 move, 12 are evicted
	got := cls()
	if got.Items != 13 || got.SmallItems != 9 || got.MainItems != 4 {
		t.Errorf("after the pass: got %d items, %d small, %d main; want 13, 9, 4", got.Items, got.SmallItems, got.MainItems)
	}
	if got.Evictions != 12 || got.EvictedUnfetched != 12 || got.EvictedNonzero != 1 || got.EvictedActive != 0 {
		t.Errorf("evictions: got %d (%d unfetched, %d nonzero, %d active), want 12 (12, 1, 0)",
			got.Evictions, got.EvictedUnfetched, got.EvictedNonzero, got.EvictedActive)
	}
	if got.EvictedAge != 30 {
		t.Errorf("evicted_time: got %d, want 30 (seconds since the evicted item's last access)", got.EvictedAge)
	}
	if got.MovesToMain != 4 || got.MovesWithinMain != 0 || got.DirectReclaims != 2 {
		t.Errorf("moves: got %d to main, %d within, %d direct reclaims; want 4, 0, 2", got.MovesToMain, got.MovesWithinMain, got.DirectReclaims)
	}
	if got.SmallHits != 4 || got.MainHits != 0 {
		t.Errorf("hits before the pass: got %d small, %d main; want 4, 0", got.SmallHits, got.MainHits)
	}
	s.Get(pagedKey(1), nil) // now in the main queue
	s.Get(pagedKey(24), nil)
	if got := cls(); got.SmallHits != 5 || got.MainHits != 1 {
		t.Errorf("hits after the pass: got %d small, %d main; want 5, 1", got.SmallHits, got.MainHits)
	}
	checkInvariants(t, s)
}

// TestEvictionsCountPerClass fills a small store with items of two classes
// until both have evicted, and checks that each class counts its own
// evictions and that they sum to the store's.
func TestEvictionsCountPerClass(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 1 << 20}, 2)
	a := bytes.Repeat([]byte("a"), 100)
	b := bytes.Repeat([]byte("b"), 2000)
	for i := range 4000 {
		s.Set(ModeSet, fmt.Appendf(nil, "a%d", i), a, 0, 0, 0)
		if i%4 == 0 {
			s.Set(ModeSet, fmt.Appendf(nil, "b%d", i), b, 0, 0, 0)
		}
	}
	ca, cb := classOfTest(s, 5, len(a), 0), classOfTest(s, 5, len(b), 0)
	if ca.ID == cb.ID {
		t.Fatalf("both values in class %d", ca.ID)
	}
	if ca.Evictions == 0 || cb.Evictions == 0 {
		t.Fatalf("evictions: class %d %d, class %d %d; want both evicting", ca.ID, ca.Evictions, cb.ID, cb.Evictions)
	}
	var sum uint64
	for _, c := range s.ClassStats() {
		sum += c.Evictions
	}
	if st := s.Stats(); st.Evictions != sum || sum != ca.Evictions+cb.Evictions {
		t.Errorf("store evictions %d, classes' sum %d, the two classes %d+%d", st.Evictions, sum, ca.Evictions, cb.Evictions)
	}
	// Each class evicted what it no longer holds.
	if ca.SetCmds != 4000 || uint64(ca.Items)+ca.Evictions != 4000 {
		t.Errorf("class %d: %d sets, %d items, %d evicted; want 4000 = items + evicted", ca.ID, ca.SetCmds, ca.Items, ca.Evictions)
	}
	if cb.SetCmds != 1000 || uint64(cb.Items)+cb.Evictions != 1000 {
		t.Errorf("class %d: %d sets, %d items, %d evicted; want 1000 = items + evicted", cb.ID, cb.SetCmds, cb.Items, cb.Evictions)
	}
	checkInvariants(t, s)
}

// TestOutOfMemoryPerClass checks that a write that finds no room counts in
// the class of the item it would have stored, and not as a set.
func TestOutOfMemoryPerClass(t *testing.T) {
	s, _ := newPagedStore(t, Config{NoEvictions: true}, 4)
	fillPaged(t, s, 0, 24, 0)
	if st, _ := s.Set(ModeSet, pagedKey(24), pagedValue, 0, 0, 0); st != NoMemory {
		t.Fatalf("full: got %v, want NoMemory", st)
	}
	c := classOfTest(s, 3, len(pagedValue), 0)
	if c.OutOfMemory != 1 || c.SetCmds != 24 {
		t.Errorf("class: got %d out of memory, %d sets; want 1, 24", c.OutOfMemory, c.SetCmds)
	}
}

// TestReclaimerAges checks the ages of the classes' oldest items, as the
// reclaimer's passes find them.
func TestReclaimerAges(t *testing.T) {
	s, c := newPagedStore(t, Config{}, 8)
	fillPaged(t, s, 0, 8, 0)
	c.Advance(100)
	fillPaged(t, s, 8, 16, 0)
	if got := classOfTest(s, 3, len(pagedValue), 0); got.OldestSmall != 0 || got.OldestMain != 0 {
		t.Fatalf("before a pass: got ages %d, %d; want 0 (not yet measured)", got.OldestSmall, got.OldestMain)
	}
	s.reclaimTick(1000) // one full pass
	s.reclaimTick(1000) // which ends here
	c.Advance(5)
	got := classOfTest(s, 3, len(pagedValue), 0)
	if got.OldestSmall != 105 || got.OldestMain != 0 {
		t.Errorf("after a pass: got ages %d (small), %d (main); want 105, 0", got.OldestSmall, got.OldestMain)
	}
	// Reading an item renews its last access once it is a minute old.
	for i := range 8 {
		s.Get(pagedKey(i), nil)
	}
	s.reclaimTick(1000)
	s.reclaimTick(1000)
	if got := classOfTest(s, 3, len(pagedValue), 0); got.OldestSmall != 5 {
		t.Errorf("after reading the old items: got age %d, want 5", got.OldestSmall)
	}
}

// TestSetMaxBytes shrinks a full store to a fraction of its size and grows
// it back.
func TestSetMaxBytes(t *testing.T) {
	const max = 4 << 20
	s, _ := newTestStore(t, Config{MaxBytes: max}, 4)
	v := bytes.Repeat([]byte("v"), 200)
	for i := range 40000 {
		s.Set(ModeSet, fmt.Appendf(nil, "k%d", i), v, 0, 0, 0)
	}
	before := s.Stats()
	if before.Evictions == 0 {
		t.Fatalf("the store did not fill: %+v", before)
	}
	s.SetMaxBytes(1 << 20)
	after := s.Stats()
	if u := s.used.Load(); u > 1<<20 {
		t.Fatalf("used after shrinking: got %d, want at most %d", u, 1<<20)
	}
	if after.LimitMaxBytes != 1<<20 || s.MaxBytes() != 1<<20 {
		t.Errorf("limit after shrinking: got %d, %d; want %d", after.LimitMaxBytes, s.MaxBytes(), 1<<20)
	}
	if after.CurrItems >= before.CurrItems/2 || after.Evictions <= before.Evictions {
		t.Errorf("after shrinking: %d items (before %d), %d evictions (before %d); want items evicted",
			after.CurrItems, before.CurrItems, after.Evictions, before.Evictions)
	}
	checkInvariants(t, s)
	// Writes stay within the new bound.
	for i := range 10000 {
		s.Set(ModeSet, fmt.Appendf(nil, "n%d", i), v, 0, 0, 0)
	}
	if u := s.used.Load(); u > 1<<20 {
		t.Fatalf("used after writes: got %d, want at most %d", u, 1<<20)
	}
	checkInvariants(t, s)
	// Growing lets the store hold more again.
	s.SetMaxBytes(max)
	for i := range 40000 {
		s.Set(ModeSet, fmt.Appendf(nil, "g%d", i), v, 0, 0, 0)
	}
	if got := s.Stats(); got.CurrItems <= after.CurrItems*2 || s.used.Load() > max {
		t.Errorf("after growing: %d items (shrunk: %d), %d bytes used; want more items within %d", got.CurrItems, after.CurrItems, s.used.Load(), max)
	}
	checkInvariants(t, s)
}

// TestSetMaxBytesNoEvictions checks that with NoEvictions shrinking gives
// back free memory but evicts nothing.
func TestSetMaxBytesNoEvictions(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 4 << 20, NoEvictions: true}, 4)
	v := bytes.Repeat([]byte("v"), 200)
	for i := range 4000 {
		s.Set(ModeSet, fmt.Appendf(nil, "k%d", i), v, 0, 0, 0)
	}
	items := s.Stats().CurrItems
	s.SetMaxBytes(1 << 20)
	if got := s.Stats(); got.CurrItems != items || got.Evictions != 0 {
		t.Errorf("after shrinking: %d items (before %d), %d evictions; want none evicted", got.CurrItems, items, got.Evictions)
	}
	// Writes may fill the room the pages kept still have, and take no more.
	used := s.used.Load()
	for i := 0; ; i++ {
		if st, _ := s.Set(ModeSet, fmt.Appendf(nil, "m%d", i), v, 0, 0, 0); st == NoMemory {
			break
		}
	}
	if u := s.used.Load(); u > used {
		t.Errorf("used after filling: got %d, want at most %d (what shrinking left)", u, used)
	}
	checkInvariants(t, s)
}

// TestClassOf checks the class search against a scan of the classes.
func TestClassOf(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	for size := 0; size <= s.chunkMax+100; size++ {
		want := len(s.classes) - 1
		for i, c := range s.classes {
			if c >= size {
				want = i
				break
			}
		}
		if got := int(s.classOf(size)); got != want {
			t.Fatalf("classOf(%d) = %d, want %d", size, got, want)
		}
	}
}

// TestSetMaxBytesUnderWrites shrinks the store while writers fill it: the
// new bound holds once SetMaxBytes returns, whatever the writers do.
func TestSetMaxBytesUnderWrites(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 8 << 20}, 8)
	v := bytes.Repeat([]byte("v"), 300)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Set(ModeSet, fmt.Appendf(nil, "w%d-%d", w, i), v, 0, 0, 0)
				s.Get(fmt.Appendf(nil, "w%d-%d", w, i/2), nil)
			}
		}()
	}
	for s.Stats().Evictions == 0 {
		runtime.Gosched()
	}
	s.SetMaxBytes(2 << 20)
	if u := s.used.Load(); u > 2<<20 {
		t.Errorf("used after SetMaxBytes, under writes: got %d, want at most %d", u, 2<<20)
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, s)
}
