package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
)

// TestPeek: Peek reports an item as a read would find it, and changes
// nothing a read changes: the item stays unfetched, and an expired or
// flushed item stays for the read that follows to report and remove.
func TestPeek(t *testing.T) {
	s, c := newTestStore(t, Config{}, 4)
	if p, lk := s.Peek([]byte("none")); lk != Miss || p != (Peeked{}) {
		t.Errorf("Peek of a missing key: got %+v %v, want zero Miss", p, lk)
	}
	s.Set(ModeSet, []byte("k"), []byte("hello"), 7, start+100, 0)
	p, lk := s.Peek([]byte("k"))
	if want := (Peeked{Size: 5, Flags: 7, Deadline: start + 100}); lk != Hit || p != want {
		t.Errorf("Peek: got %+v %v, want %+v Hit", p, lk, want)
	}
	if it, ok := s.MetaDebug([]byte("k")); !ok || it.Fetched {
		t.Errorf("after Peek: MetaDebug %+v %v, want the item unfetched", it, ok)
	}

	c.Advance(100)
	for range 2 {
		if _, lk := s.Peek([]byte("k")); lk != MissExpired {
			t.Errorf("Peek of an expired item: got %v, want %v", lk, MissExpired)
		}
	}
	if _, _, lk := s.Get([]byte("k"), nil); lk != MissExpired {
		t.Errorf("Get after Peek of an expired item: got %v, want %v", lk, MissExpired)
	}

	set(t, s, "f", "x")
	s.Flush(0)
	if _, lk := s.Peek([]byte("f")); lk != MissFlushed {
		t.Errorf("Peek of a flushed item: got %v, want %v", lk, MissFlushed)
	}
	if _, _, lk := s.Get([]byte("f"), nil); lk != MissFlushed {
		t.Errorf("Get after Peek of a flushed item: got %v, want %v", lk, MissFlushed)
	}
	if _, lk := s.Peek([]byte(strings.Repeat("k", MaxKeyLen+1))); lk != Miss {
		t.Errorf("Peek of a key too long: got %v, want %v", lk, Miss)
	}
	checkInvariants(t, s)
}

// TestExportedClassOf: ClassOf files an item where ClassStats counts it.
func TestExportedClassOf(t *testing.T) {
	for _, noCAS := range []bool{false, true} {
		s, _ := newTestStore(t, Config{NoCAS: noCAS}, 1)
		for i, tc := range []struct {
			key   string
			size  int
			flags uint32
		}{{"a", 0, 0}, {"b", 40, 0}, {"c", 40, 1}, {"d", 1000, 0}, {"e", 600 << 10, 0}} {
			s.Flush(0)
			s.Set(ModeSet, []byte(tc.key), make([]byte, tc.size), tc.flags, 0, 0)
			cs := s.ClassStats()
			var held []int
			for _, c := range cs {
				if c.Items > 0 {
					held = append(held, c.ID)
				}
			}
			// Earlier items are flushed but may still be counted: the
			// newest class with an item must include ClassOf's.
			got := s.ClassOf(len(tc.key), tc.size, tc.flags)
			found := false
			for _, id := range held {
				found = found || id == got
			}
			if !found {
				t.Errorf("noCAS %v, item %d %+v: ClassOf %d, classes holding items %v", noCAS, i, tc, got, held)
			}
		}
	}
	s, _ := newTestStore(t, Config{}, 1)
	// memcached 1.6.18 files "key", 1000 bytes in class 12 (seen in its
	// eviction log lines) and 1 byte in class 1.
	if got := s.ClassOf(len("key:1"), 1000, 0); got != 12 {
		t.Errorf("ClassOf 1000-byte value: got %d, want 12", got)
	}
	if got := s.ClassOf(1, 1, 0); got != 1 {
		t.Errorf("ClassOf 1-byte value: got %d, want 1", got)
	}
}

// TestOnEvict: every eviction is reported once, with the evicted item's
// key and metadata, and expired items reclaimed to make room are not.
func TestOnEvict(t *testing.T) {
	var got []Eviction
	cfg := Config{OnEvict: func(ev Eviction) {
		ev.Key = bytes.Clone(ev.Key)
		got = append(got, ev)
	}}
	s, c := newPagedStore(t, cfg, 4)
	fillPaged(t, s, 0, 1, start+1) // expires before the store fills: reclaimed, not evicted
	fillPaged(t, s, 1, 24, start+500)
	s.Get(pagedKey(9), nil)
	c.Advance(1)
	fillPaged(t, s, 24, 25, 0)
	st := s.Stats()
	if uint64(len(got)) != st.Evictions || len(got) == 0 {
		t.Fatalf("OnEvict calls: got %d, want %d (the evictions counted), at least one", len(got), st.Evictions)
	}
	seen := map[string]bool{}
	for _, ev := range got {
		k := string(ev.Key)
		if seen[k] {
			t.Errorf("%s reported twice", k)
		}
		seen[k] = true
		if k == string(pagedKey(0)) {
			t.Errorf("%s expired before it was pushed out: reported as evicted", k)
		}
		want := Eviction{Key: ev.Key, Size: len(pagedValue), Deadline: start + 500, Access: start, Now: start + 1, Fetched: k == string(pagedKey(9))}
		if ev.Size != want.Size || ev.Flags != 0 || ev.Deadline != want.Deadline || ev.Access != want.Access || ev.Now != want.Now || ev.Fetched != want.Fetched {
			t.Errorf("%s: got %+v, want %+v", k, ev, want)
		}
		if _, _, lk := s.Get(ev.Key, nil); lk != Miss {
			t.Errorf("%s reported evicted, but Get finds %v", k, lk)
		}
	}
	checkInvariants(t, s)
}

// TestEvictionHookAllocatesNothing: a hook that returns at once costs an
// eviction no allocation.
func TestEvictionHookAllocatesNothing(t *testing.T) {
	calls := 0
	s, _ := newPagedStore(t, Config{OnEvict: func(Eviction) { calls++ }}, 4)
	keys := make([][]byte, 100)
	for i := range keys {
		keys[i] = pagedKey(i)
	}
	fillPaged(t, s, 0, 64, 0) // fill, and reach steady state
	i := 64
	testutil.NoAllocs(t, "sets that evict", 100, func() {
		s.Set(ModeSet, keys[i%len(keys)], pagedValue, 0, 0, 0)
		i++
	})
	if calls == 0 {
		t.Fatal("no eviction reported")
	}
}
