package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
)

// dumpAll walks s with d, budget slots a step, and returns every item
// listed by key, failing on a key listed twice. between, if not nil, runs
// after every step.
func dumpAll(t *testing.T, s *Store, d *Dump, budget int, between func()) map[string]ItemInfo {
	t.Helper()
	got := map[string]ItemInfo{}
	var b Batch
	for steps := 0; ; steps++ {
		if steps > 1<<24 {
			t.Fatal("the walk does not end")
		}
		more := s.DumpNext(d, budget, &b)
		for i, it := range b.Items {
			k := string(b.Key(i))
			if _, dup := got[k]; dup {
				t.Fatalf("key %q listed twice", k)
			}
			got[k] = it
		}
		if !more {
			break
		}
		if between != nil {
			between()
		}
	}
	if !d.Done() {
		t.Fatal("DumpNext reported the end, Done did not")
	}
	if b := (Batch{}); s.DumpNext(d, budget, &b) || len(b.Items) != 0 {
		t.Fatal("DumpNext after the end listed more")
	}
	return got
}

// dumpValue is the value of item i in the dump tests: sizes spread over
// several classes.
func dumpValue(i int) string { return strings.Repeat("v", (i*37)%900) }

func TestDumpListsEveryItem(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCAS=%v", noCAS), func(t *testing.T) {
			s, c := newTestStore(t, Config{MaxBytes: 64 << 20, NoCAS: noCAS}, 4)
			const n = 5000
			cas := map[string]uint64{}
			for i := range n {
				k := fmt.Sprintf("key:%d", i)
				deadline := int64(0)
				if i%3 == 0 {
					deadline = start + 1000 + int64(i)
				}
				st, u := s.Set(ModeSet, []byte(k), []byte(dumpValue(i)), uint32(i%5), deadline, 0)
				if st != OK {
					t.Fatalf("Set(%q): %v", k, st)
				}
				cas[k] = u
			}
			c.Advance(100)
			for i := 0; i < n; i += 7 {
				s.Get([]byte(fmt.Sprintf("key:%d", i)), nil)
			}
			// Listing is not reading: a second walk finds the same.
			for range 2 {
				var d Dump
				got := dumpAll(t, s, &d, 64, nil)
				if len(got) != n {
					t.Fatalf("listed %d items, want %d", len(got), n)
				}
				perClass := map[int]int64{}
				for i := range n {
					k := fmt.Sprintf("key:%d", i)
					it, ok := got[k]
					if !ok {
						t.Fatalf("key %q not listed", k)
					}
					v := dumpValue(i)
					size := s.limitSize(len(k), len(v), uint32(i%5))
					want := ItemInfo{
						Class: int(s.classOf(size)) + 1, Size: size, ValueLen: len(v), Flags: uint32(i % 5),
						CAS: cas[k], Access: start, Fetched: i%7 == 0,
						keyOff: it.keyOff, keyLen: it.keyLen,
					}
					if want.Fetched {
						want.Access = start + 100 // a read renews an access older than a minute
					}
					if i%3 == 0 {
						want.Deadline = start + 1000 + int64(i)
					}
					if it != want {
						t.Fatalf("key %q: got %+v, want %+v", k, it, want)
					}
					perClass[it.Class]++
				}
				classes := s.ClassStats()
				if len(classes) < 5 {
					t.Fatalf("the items fill %d classes, want several", len(classes))
				}
				for _, cs := range classes {
					if perClass[cs.ID] != cs.Items {
						t.Errorf("class %d: listed %d items, ClassStats counts %d", cs.ID, perClass[cs.ID], cs.Items)
					}
				}
			}
		})
	}
}

func TestDumpClasses(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 64 << 20}, 4)
	for i := range 3000 {
		set(t, s, fmt.Sprintf("key:%d", i), dumpValue(i))
	}
	for _, cs := range s.ClassStats() {
		d := Dump{Classes: 1 << cs.ID}
		got := dumpAll(t, s, &d, 100, nil)
		if int64(len(got)) != cs.Items {
			t.Errorf("class %d: listed %d items, ClassStats counts %d", cs.ID, len(got), cs.Items)
		}
		for k, it := range got {
			if it.Class != cs.ID {
				t.Fatalf("class %d: listed %q of class %d", cs.ID, k, it.Class)
			}
		}
	}
	// Two classes at once.
	cs := s.ClassStats()
	d := Dump{Classes: 1<<cs[0].ID | 1<<cs[2].ID}
	if got := dumpAll(t, s, &d, 100, nil); int64(len(got)) != cs[0].Items+cs[2].Items {
		t.Errorf("classes %d and %d: listed %d items, want %d", cs[0].ID, cs[2].ID, len(got), cs[0].Items+cs[2].Items)
	}
	// A class that holds nothing lists nothing.
	d = Dump{Classes: 1 << 63}
	if got := dumpAll(t, s, &d, 100, nil); len(got) != 0 {
		t.Errorf("class 63: listed %d items, want none", len(got))
	}
}

func TestDumpDeadItems(t *testing.T) {
	s, c := newTestStore(t, Config{}, 2)
	for i := range 100 {
		deadline := int64(0)
		if i%2 == 0 {
			deadline = start + 10
		}
		s.Set(ModeSet, []byte(fmt.Sprint("e", i)), []byte("v"), 0, deadline, 0)
	}
	c.Advance(10)
	for i := range 30 {
		set(t, s, fmt.Sprint("f", i), "v")
	}
	s.Flush(c.Now())
	c.Advance(1)
	for i := range 20 {
		set(t, s, fmt.Sprint("n", i), "v")
	}
	live := dumpAll(t, s, &Dump{}, 50, nil)
	all := dumpAll(t, s, &Dump{Dead: true}, 50, nil)
	if len(live) != 20 {
		t.Errorf("live items: listed %d, want the 20 stored after the flush", len(live))
	}
	for k, it := range live {
		if k[0] != 'n' || it.Dead {
			t.Errorf("live items: listed %q %+v", k, it)
		}
	}
	// Dead items are still counted until removed, and listed with Dead.
	if want := s.Stats().CurrItems; int64(len(all)) != want || want != 150 {
		t.Errorf("with Dead: listed %d items, CurrItems %d, want 150", len(all), want)
	}
	for k, it := range all {
		if it.Dead != (k[0] != 'n') {
			t.Errorf("with Dead: %q has Dead %v", k, it.Dead)
		}
	}
	// Listing removes nothing.
	if got := s.Stats().CurrItems; got != 150 {
		t.Errorf("after the walks: CurrItems %d, want 150", got)
	}
	checkInvariants(t, s)
}

// TestDumpWhileTheStoreChanges changes the store between every two steps
// of a walk, in every way that moves index entries or records: new keys
// (the index grows and is rehashed), deletions (entries shift back),
// replacements by values of other sizes (records move, classes change).
// Every key present throughout must be listed, once.
func TestDumpWhileTheStoreChanges(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 256 << 20}, 4)
	const stable = 3000
	for i := range stable {
		set(t, s, fmt.Sprint("s", i), dumpValue(i))
	}
	step, made := 0, 0
	churn := func() {
		step++
		for range 40 {
			set(t, s, fmt.Sprint("n", made), "x")
			made++
		}
		for i := range 15 {
			s.Delete([]byte(fmt.Sprint("n", made-1-2*i)), 0)
		}
		for i := range 10 {
			k := (step*10 + i) * 7 % stable
			set(t, s, fmt.Sprint("s", k), dumpValue(k+step))
		}
	}
	got := dumpAll(t, s, &Dump{}, 32, churn)
	if step < 100 {
		t.Fatalf("only %d steps: the walk must interleave with the changes", step)
	}
	for i := range stable {
		if _, ok := got[fmt.Sprint("s", i)]; !ok {
			t.Errorf("key s%d, present throughout, not listed", i)
		}
	}
	for k := range got {
		if k[0] != 's' && k[0] != 'n' {
			t.Errorf("listed %q, never stored", k)
		}
	}
	checkInvariants(t, s)
}

// TestDumpStepsAreBounded: a step examines about budget index slots,
// whatever the store's size.
func TestDumpStepsAreBounded(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 64 << 20}, 2)
	const n = 50000
	for i := range n {
		set(t, s, fmt.Sprint("k", i), "v")
	}
	const budget = 100
	var d Dump
	var b Batch
	steps, most, total := 0, 0, 0
	for more := true; more; steps++ {
		more = s.DumpNext(&d, budget, &b)
		most = max(most, len(b.Items))
		total += len(b.Items)
	}
	if total != n {
		t.Fatalf("listed %d items, want %d", total, n)
	}
	if most > 2*budget {
		t.Errorf("a step listed %d items, want about %d at most", most, budget)
	}
	if steps < n/budget {
		t.Errorf("%d steps for %d items, want at least %d", steps, n, n/budget)
	}
}

func TestDumpNextDoesNotAllocate(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 2)
	for i := range 1000 {
		set(t, s, fmt.Sprint("k", i), "v")
	}
	var b Batch
	var d Dump
	for s.DumpNext(&d, 100, &b) {
	}
	testutil.NoAllocs(t, "a walk with a grown batch", 20, func() {
		d := Dump{}
		for s.DumpNext(&d, 100, &b) {
		}
	})
}

func TestCrawl(t *testing.T) {
	s, c := newTestStore(t, Config{MaxBytes: 64 << 20}, 4)
	// Class of a 1-byte value, and of a 500-byte one.
	small := int(s.classOf(s.limitSize(4, 1, 0))) + 1
	large := int(s.classOf(s.limitSize(4, 500, 0))) + 1
	for i := range 1000 {
		deadline := int64(0)
		if i%2 == 0 {
			deadline = start + 5
		}
		v := "v"
		if i%4 >= 2 {
			v = strings.Repeat("v", 500)
		}
		s.Set(ModeSet, []byte(fmt.Sprintf("%04d", i)), []byte(v), 0, deadline, 0)
	}
	s.Get([]byte("0000"), nil)
	c.Advance(5)
	// 250 expired items in each class.
	cr := Crawl{Classes: 1 << small}
	for s.CrawlNext(&cr, 64) {
	}
	if !cr.Done() || cr.Examined != 500 || cr.Reclaimed != 250 {
		t.Fatalf("crawl of class %d: done %v, examined %d, reclaimed %d; want true, 500, 250", small, cr.Done(), cr.Examined, cr.Reclaimed)
	}
	st := s.Stats()
	// As memcached's crawler, under crawler_reclaimed, not reclaimed.
	if st.CurrItems != 750 || st.Reclaimed != 0 || st.CrawlerReclaimed != 250 || st.CrawlerChecked != 500 || st.ExpiredUnfetched != 249 {
		t.Fatalf("after crawling class %d: %+v, want 750 items, 250 crawler reclaimed of 500 checked, 249 expired unfetched", small, st)
	}
	for _, cs := range s.ClassStats() {
		if cs.ID == large && (cs.Items != 500 || cs.Reclaimed != 0) {
			t.Fatalf("class %d, not crawled: %+v", large, cs)
		}
	}
	// A bounded crawl examines at most Limit items of each class.
	cr = Crawl{Limit: 100}
	for s.CrawlNext(&cr, 64) {
	}
	if cr.Examined != 200 || cr.Reclaimed < 20 || cr.Reclaimed > 80 {
		t.Fatalf("crawl limited to 100 a class: examined %d, reclaimed %d; want 200, about 50", cr.Examined, cr.Reclaimed)
	}
	cr = Crawl{}
	for s.CrawlNext(&cr, 64) {
	}
	if got := s.Stats().CurrItems; got != 500 {
		t.Fatalf("after a full crawl: %d items, want 500", got)
	}
	checkInvariants(t, s)
	// A flush makes every item dead.
	s.Flush(c.Now())
	cr = Crawl{}
	for s.CrawlNext(&cr, 10) {
	}
	if got := s.Stats().CurrItems; got != 0 || cr.Reclaimed != 500 {
		t.Fatalf("crawl after flush: %d items left, %d reclaimed; want 0, 500", got, cr.Reclaimed)
	}
	checkInvariants(t, s)
}

func TestPauseReclaimer(t *testing.T) {
	s, c := newTestStore(t, Config{}, 2)
	for i := range 100 {
		s.Set(ModeSet, []byte(fmt.Sprint(i)), []byte("v"), 0, start+1, 0)
	}
	c.Advance(1)
	s.PauseReclaimer(true)
	s.reclaimTick(1000)
	if got := s.Stats().CurrItems; got != 100 {
		t.Fatalf("paused: %d items after a tick, want 100", got)
	}
	// Reads still remove what they find dead.
	if _, _, lk := s.Get([]byte("1"), nil); lk != MissExpired {
		t.Fatalf("Get of an expired item: %v", lk)
	}
	s.PauseReclaimer(false)
	s.reclaimTick(1000)
	if got := s.Stats().CurrItems; got != 0 {
		t.Fatalf("resumed: %d items after a tick, want 0", got)
	}
}
