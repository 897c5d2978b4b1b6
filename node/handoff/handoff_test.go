package handoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/ring"
)

// fakeFetcher serves items by member address, and may run a function
// during a fetch, as a concurrent request would.
type fakeFetcher struct {
	mu     sync.Mutex
	items  map[string]map[string]Item // by member address, by key
	asked  []string                   // member addresses asked, in order
	during func(key []byte)
	err    error
}

func (f *fakeFetcher) Fetch(_ context.Context, m ring.Member, key []byte) (Item, bool, error) {
	f.mu.Lock()
	f.asked = append(f.asked, m.Addr())
	it, ok := f.items[m.Addr()][string(key)]
	during, err := f.during, f.err
	f.mu.Unlock()
	if during != nil {
		during(key)
	}
	if err != nil {
		return Item{}, false, err
	}
	return it, ok, nil
}

func member(i int) ring.Member {
	return ring.Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: 11000 + i}
}

func members(ids ...int) []ring.Member {
	var ms []ring.Member
	for _, i := range ids {
		ms = append(ms, member(i))
	}
	return ms
}

// setup returns a hand-off for node self with its store, after a change
// from old to cur, and the fetcher holding, on each member of old, the
// keys it owned there: "k0" to "k999" with flags 7 and TTL 100.
func setup(t *testing.T, self int, old, cur []ring.Member) (*Handoff, *store.Store, *fakeFetcher) {
	t.Helper()
	return setupMode(t, ring.ModeMemcluster, self, old, cur)
}

// setupMode is setup with rings in mode.
func setupMode(t *testing.T, mode ring.Mode, self int, old, cur []ring.Member) (*Handoff, *store.Store, *fakeFetcher) {
	t.Helper()
	var h *Handoff
	st := store.New(store.Config{OnWrite: func(k uint64) { h.Wrote(k) }})
	t.Cleanup(st.Close)
	f := &fakeFetcher{items: make(map[string]map[string]Item)}
	oldRing := rgMode(t, mode, old)
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		m := oldRing.OwnerString(k).Addr()
		if f.items[m] == nil {
			f.items[m] = make(map[string]Item)
		}
		f.items[m][k] = Item{Value: []byte("v-" + k), Flags: 7, TTL: 100}
	}
	h = New(Config{Store: st, Fetcher: f, Logger: slog.New(slog.DiscardHandler)})
	h.ViewChanged(member(self), rgMode(t, mode, old), rgMode(t, mode, cur))
	return h, st, f
}

// movedKeys returns the keys of setup that self owns in cur and another
// member owned in old.
func movedKeys(t *testing.T, self int, old, cur []ring.Member) []string {
	t.Helper()
	return movedKeysMode(t, ring.ModeMemcluster, self, old, cur)
}

// movedKeysMode is movedKeys on rings in mode.
func movedKeysMode(t *testing.T, mode ring.Mode, self int, old, cur []ring.Member) []string {
	t.Helper()
	o, c := rgMode(t, mode, old), rgMode(t, mode, cur)
	var keys []string
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		if c.OwnerString(k).Entry() == member(self).Entry() && o.OwnerString(k).Entry() != member(self).Entry() {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		t.Fatal("no key moved")
	}
	return keys
}

func TestScaleOutFetchesFromPreviousOwner(t *testing.T) {
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, st, f := setup(t, 4, old, cur)
	moved := movedKeys(t, 4, old, cur)
	o, _ := ring.New(old)
	for _, k := range moved {
		if !h.Wants([]byte(k)) {
			t.Fatalf("Wants(%s) = false, want true", k)
		}
		before := st.Now()
		if !h.Warm(context.Background(), []byte(k)) {
			t.Fatalf("Warm(%s) = false", k)
		}
		v, meta, lk := st.Get([]byte(k), nil)
		if lk != store.Hit || string(v) != "v-"+k || meta.Flags != 7 {
			t.Fatalf("after Warm, Get(%s) = %q, flags %d, %v; want v-%s, flags 7, hit", k, v, meta.Flags, lk, k)
		}
		if meta.Deadline < before+99 || meta.Deadline > st.Now()+100 {
			t.Fatalf("deadline %d, want about %d", meta.Deadline, before+100)
		}
		if meta.CAS == 0 {
			t.Fatalf("CAS 0, want a fresh one")
		}
		if got, want := f.asked[len(f.asked)-1], o.OwnerString(k).Addr(); got != want {
			t.Fatalf("asked %s for %s, want its previous owner %s", got, k, want)
		}
	}
	// A key that stayed where it was is not fetched.
	for i := range 1000 {
		k := fmt.Sprintf("k%d", i)
		c, _ := ring.New(cur)
		if c.OwnerString(k).Entry() != member(4).Entry() && h.Wants([]byte(k)) {
			t.Fatalf("Wants(%s) = true for a key another node owns", k)
		}
	}
	if s := h.Stats(); s.Hits != uint64(len(moved)) || s.Fetches != uint64(len(moved)) {
		t.Fatalf("stats %+v, want %d fetches and hits", s, len(moved))
	}
}

func TestJoinFromAloneFetchesFromTheOthers(t *testing.T) {
	// A joining node sees itself alone first: its keys' previous owners
	// are those of the cluster without it.
	old, cur := members(4), members(1, 2, 3, 4)
	h, _, _ := setup(t, 4, members(1, 2, 3), cur)
	h.ViewChanged(member(4), rg(t, old), rg(t, cur))
	for _, k := range movedKeys(t, 4, members(1, 2, 3), cur) {
		if !h.Warm(context.Background(), []byte(k)) {
			t.Fatalf("Warm(%s) = false after a join from alone", k)
		}
	}
}

func TestWrittenKeysAreNotFetched(t *testing.T) {
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, st, _ := setup(t, 4, old, cur)
	moved := movedKeys(t, 4, old, cur)
	// Deleted, overwritten and touched on the new owner, during the
	// window or just before it.
	st.Delete([]byte(moved[0]), 0)
	st.Set(store.ModeSet, []byte(moved[1]), []byte("new"), 0, 0, 0)
	st.Delete([]byte(moved[1]), 0) // then evicted, say
	st.Touch([]byte(moved[2]), 0)
	for _, k := range moved[:3] {
		if h.Wants([]byte(k)) {
			t.Errorf("Wants(%s) = true for a key written here", k)
		}
		if h.Warm(context.Background(), []byte(k)) {
			t.Errorf("Warm(%s) brought back a key written here", k)
		}
		if _, _, lk := st.Get([]byte(k), nil); lk == store.Hit {
			t.Errorf("%s came back", k)
		}
	}
}

func TestWriteDuringFetchWins(t *testing.T) {
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, st, f := setup(t, 4, old, cur)
	moved := movedKeys(t, 4, old, cur)
	f.during = func(key []byte) { st.Delete(key, 0) } // a delete overtakes the fetch
	if h.Warm(context.Background(), []byte(moved[0])) {
		t.Fatal("Warm restored a key deleted during the fetch")
	}
	if _, _, lk := st.Get([]byte(moved[0]), nil); lk == store.Hit {
		t.Fatal("a key deleted during the fetch came back")
	}
	f.during = func(key []byte) { st.Set(store.ModeSet, key, []byte("mine"), 1, 0, 0) }
	h.Warm(context.Background(), []byte(moved[1]))
	if v, _, _ := st.Get([]byte(moved[1]), nil); string(v) != "mine" {
		t.Fatalf("after a set during the fetch, value %q, want mine", v)
	}
}

func TestFlushAndTimeEndTheWindow(t *testing.T) {
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, _, _ := setup(t, 4, old, cur)
	moved := movedKeys(t, 4, old, cur)
	h.Flushed()
	if h.Active() || h.Wants([]byte(moved[0])) {
		t.Fatal("the window outlived flush_all")
	}
	now := time.Now()
	h.cfg.Now = func() time.Time { return now }
	h.ViewChanged(member(4), rg(t, old), rg(t, cur))
	if !h.Wants([]byte(moved[0])) {
		t.Fatal("no window after a change")
	}
	now = now.Add(DefaultWindow + time.Second)
	if h.Active() || h.Wants([]byte(moved[0])) {
		t.Fatal("the window outlived its time")
	}
}

func TestLeavingOrAloneEndsTheWindow(t *testing.T) {
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, _, _ := setup(t, 4, old, cur)
	h.ViewChanged(member(4), rg(t, cur), rg(t, members(1, 2, 3))) // draining: out of its own view
	if h.Active() {
		t.Fatal("a window for a node out of the view")
	}
}

func TestFailedFetchIsAMiss(t *testing.T) {
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, st, f := setup(t, 4, old, cur)
	f.err = errors.New("connection refused")
	k := movedKeys(t, 4, old, cur)[0]
	if h.Warm(context.Background(), []byte(k)) {
		t.Fatal("Warm reported a restore from a failed fetch")
	}
	if _, _, lk := st.Get([]byte(k), nil); lk == store.Hit {
		t.Fatal("a failed fetch stored something")
	}
	if s := h.Stats(); s.Errors != 1 {
		t.Fatalf("errors %d, want 1", s.Errors)
	}
}

func TestTombstonesRotate(t *testing.T) {
	tb := newTombstones()
	tb.add(42)
	if !tb.has(42) {
		t.Fatal("a tombstone just added is missing")
	}
	tb.rotate()
	if !tb.has(42) {
		t.Fatal("a tombstone is lost at the first rotation")
	}
	tb.rotate()
	if tb.has(42) {
		t.Fatal("a tombstone outlived two rotations")
	}
}

func TestUselessWindowEndsEarly(t *testing.T) {
	// A cluster starting empty: the previous owners have nothing.
	old, cur := members(1, 2, 3), members(1, 2, 3, 4)
	h, _, f := setup(t, 4, old, cur)
	f.items = nil
	moved := movedKeys(t, 4, old, cur)
	for i := 0; h.Active(); i++ {
		if i > 20*uselessFetches {
			t.Fatalf("the window is still on after %d reads whose fetches found nothing", i)
		}
		h.Warm(context.Background(), fmt.Appendf(nil, "%s-%d", moved[0], i))
	}
	// The keys of the loop were not all moved ones; the window counted
	// only the fetches.
	if s := h.Stats(); s.Fetches != uselessFetches {
		t.Fatalf("the window ended after %d fetches, want %d", s.Fetches, uselessFetches)
	}
}

func TestJoinThroughPartialViews(t *testing.T) {
	// A joining node may see itself with some of the members before it
	// sees them all: those partial views were never the cluster's.
	all := members(1, 2, 3, 4)
	h, _, f := setup(t, 4, members(1, 2, 3), all)
	h.ViewChanged(member(4), rg(t, members(4)), rg(t, members(1, 4)))
	h.ViewChanged(member(4), rg(t, members(1, 4)), rg(t, all))
	before := members(1, 2, 3)
	r, _ := ring.New(before)
	for _, k := range movedKeys(t, 4, before, all) {
		if !h.Warm(context.Background(), []byte(k)) {
			t.Fatalf("Warm(%s) = false after a join through a partial view", k)
		}
		if got, want := f.asked[len(f.asked)-1], r.OwnerString(k).Addr(); got != want {
			t.Fatalf("asked %s for %s, want %s, its owner before the join", got, k, want)
		}
	}
}

// rg returns the ring of members.
func rg(t *testing.T, members []ring.Member) *ring.Ring {
	t.Helper()
	return rgMode(t, ring.ModeMemcluster, members)
}

// rgMode returns the ring of members in mode.
func rgMode(t *testing.T, mode ring.Mode, members []ring.Member) *ring.Ring {
	t.Helper()
	r, err := ring.NewMode(members, mode)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// otherMode returns the ring mode that is not mode.
func otherMode(mode ring.Mode) ring.Mode {
	if mode == ring.ModeKetama {
		return ring.ModeMemcluster
	}
	return ring.ModeKetama
}

// TestKetamaModeHandoff checks the hand-off on rings in ModeKetama, whose
// keys' owners differ from ModeMemcluster's: a node that scales out, or
// joins from alone (whose previous owners come from a ring it builds,
// without itself, in the current ring's mode), fetches each key it has
// come to own from its ketama owner before.
func TestKetamaModeHandoff(t *testing.T) {
	const mode = ring.ModeKetama
	t.Run("scale out", func(t *testing.T) {
		old, cur := members(1, 2, 3), members(1, 2, 3, 4)
		h, _, f := setupMode(t, mode, 4, old, cur)
		o := rgMode(t, mode, old)
		for _, k := range movedKeysMode(t, mode, 4, old, cur) {
			if !h.Warm(context.Background(), []byte(k)) {
				t.Fatalf("Warm(%s) = false", k)
			}
			if got, want := f.asked[len(f.asked)-1], o.OwnerString(k).Addr(); got != want {
				t.Fatalf("asked %s for %s, want %s, its ketama owner before", got, k, want)
			}
		}
	})
	t.Run("join from alone", func(t *testing.T) {
		before, cur := members(1, 2, 3), members(1, 2, 3, 4)
		h, _, f := setupMode(t, mode, 4, before, cur)
		h.ViewChanged(member(4), rgMode(t, mode, members(4)), rgMode(t, mode, cur))
		o := rgMode(t, mode, before)
		moved := movedKeysMode(t, mode, 4, before, cur)
		differ := 0
		for _, k := range moved {
			if !h.Warm(context.Background(), []byte(k)) {
				t.Fatalf("Warm(%s) = false after a join from alone", k)
			}
			if got, want := f.asked[len(f.asked)-1], o.OwnerString(k).Addr(); got != want {
				t.Fatalf("asked %s for %s, want %s, its ketama owner before", got, k, want)
			}
			if rgMode(t, otherMode(mode), before).OwnerString(k).Addr() != o.OwnerString(k).Addr() {
				differ++
			}
		}
		if differ == 0 {
			t.Fatal("the modes agree on every moved key's owner: the test cannot tell them apart")
		}
		t.Logf("%d keys moved, %d of them owned elsewhere on memcluster's ring", len(moved), differ)
	})
}

// TestFreshOnlyFromTheLastSpellOfOwnership checks Fresh in both ring
// modes, through more views than keep their rings: the older ones are
// rebuilt, and must be in their own mode.
func TestFreshOnlyFromTheLastSpellOfOwnership(t *testing.T) {
	for _, mode := range []ring.Mode{ring.ModeMemcluster, ring.ModeKetama} {
		t.Run(mode.String(), func(t *testing.T) { testFresh(t, mode) })
	}
}

func testFresh(t *testing.T, mode ring.Mode) {
	st := store.New(store.Config{})
	defer st.Close()
	h := New(Config{Store: st, Fetcher: &fakeFetcher{}, Logger: slog.New(slog.DiscardHandler)})
	v1, v2, v4 := rgMode(t, mode, members(1, 2)), rgMode(t, mode, members(1, 2, 3)), rgMode(t, mode, members(1, 2, 4))
	other1 := rgMode(t, otherMode(mode), members(1, 2))
	self := member(1).Entry()
	// k moves 1 → 3 → 1 → 4; j stays on 1 throughout, and is not 1's in
	// the other mode: the first view's ring, let go of and rebuilt for
	// Fresh, must be rebuilt in its mode.
	var k, j string
	for i := 0; k == "" || j == ""; i++ {
		key := fmt.Sprintf("k%d", i)
		o1, o2, o4 := v1.OwnerString(key).Entry(), v2.OwnerString(key).Entry(), v4.OwnerString(key).Entry()
		switch {
		case k == "" && o1 == self && o2 == member(3).Entry() && o4 == member(4).Entry():
			k = key
		case j == "" && o1 == self && o2 == self && o4 == self && other1.OwnerString(key).Entry() != self:
			j = key
		}
	}
	set := func(key string) uint64 {
		_, cas := st.Set(store.ModeSet, []byte(key), []byte("v"), 0, 0, 0)
		return cas
	}
	h.ViewChanged(member(1), nil, v1)
	casK1, casJ := set(k), set(j)
	h.ViewChanged(member(1), v1, v2) // k goes to 3, where it may be changed
	h.ViewChanged(member(1), v2, v1) // 3 leaves: k comes back, empty of 3's writes
	casK2 := set(k)
	h.ViewChanged(member(1), v1, v4) // k goes to 4, which asks
	if h.Fresh([]byte(k), casK1) {
		t.Error("an item written before the key went to another node is handed over")
	}
	if !h.Fresh([]byte(k), casK2) {
		t.Error("an item written in the last spell of ownership is not handed over")
	}
	if !h.Fresh([]byte(j), casJ) {
		t.Error("an item of a key owned throughout is not handed over")
	}
	if h.Fresh([]byte(k), 0) {
		t.Error("an item without a CAS unique (-C) is handed over")
	}
}
