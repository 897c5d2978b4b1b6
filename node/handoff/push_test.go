package handoff

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/ring"
)

// fakePusher records what it is sent, and stores it in a hand-off of its
// own per member, as the members' Accept would.
type fakePusher struct {
	got map[string][]PushItem // by member address
}

func (p *fakePusher) Push(_ context.Context, m ring.Member, items []PushItem) (int, error) {
	p.got[m.Addr()] = append(p.got[m.Addr()], items...)
	return len(items), nil
}

// TestPushSendsTheMostRecentlyUsedToTheirOwners checks, in each ring mode,
// that Push sends the recent items, within its bound, each to its owner on
// the ring of that mode.
func TestPushSendsTheMostRecentlyUsedToTheirOwners(t *testing.T) {
	for _, mode := range []ring.Mode{ring.ModeMemcluster, ring.ModeKetama} {
		t.Run(mode.String(), func(t *testing.T) { testPush(t, mode) })
	}
}

func testPush(t *testing.T, mode ring.Mode) {
	clock := int64(1_000_000)
	st := store.New(store.Config{Now: func() int64 { return clock }})
	defer st.Close()
	const n = 200
	for i := range n {
		st.Set(store.ModeSet, fmt.Appendf(nil, "old-%d", i), []byte("0123456789"), 1, 0, 0)
	}
	clock += 1000
	recentBytes := int64(0)
	for i := range n {
		k := fmt.Appendf(nil, "new-%d", i)
		st.Set(store.ModeSet, k, []byte("abcdefghij"), 2, clock+500, 0)
		recentBytes += int64(len(k) + 10)
	}
	others := members(1, 2, 3)
	r, _ := ring.NewMode(others, mode)
	p := &fakePusher{got: make(map[string][]PushItem)}
	res := Push(context.Background(), st, others, mode, p, recentBytes+100, nil)
	if res.Items != n || res.Stored != n || res.Bytes != recentBytes {
		t.Fatalf("pushed %+v, want the %d recent items, %d bytes", res, n, recentBytes)
	}
	seen := 0
	for addr, items := range p.got {
		for _, it := range items {
			seen++
			if string(it.Key[:4]) != "new-" || string(it.Value) != "abcdefghij" || it.Flags != 2 || it.TTL < 499 || it.TTL > 500 {
				t.Errorf("pushed %s = %q flags %d TTL %d; want a recent item, flags 2, TTL 500", it.Key, it.Value, it.Flags, it.TTL)
			}
			if owner := r.Owner(it.Key).Addr(); owner != addr {
				t.Errorf("%s pushed to %s, want its owner %s on the %v ring", it.Key, addr, owner, mode)
			}
		}
	}
	if seen != n || len(p.got) != 3 {
		t.Fatalf("%d items to %d members, want %d to 3", seen, len(p.got), n)
	}

	// A bound of half the bytes pushes about half.
	p = &fakePusher{got: make(map[string][]PushItem)}
	res = Push(context.Background(), st, others, mode, p, recentBytes/2, nil)
	if res.Bytes < recentBytes/2 || res.Bytes > recentBytes/2+20 {
		t.Fatalf("with a bound of %d bytes, pushed %d", recentBytes/2, res.Bytes)
	}
}

func TestAcceptRespectsWrites(t *testing.T) {
	var h *Handoff
	st := store.New(store.Config{OnWrite: func(k uint64) { h.Wrote(k) }})
	defer st.Close()
	h = New(Config{Store: st, Fetcher: &fakeFetcher{}, Logger: slog.New(slog.DiscardHandler)})
	if s, _ := h.Accept([]byte("a"), []byte("pushed"), 3, 0); s != store.OK {
		t.Fatalf("Accept of a new key: %v, want OK", s)
	}
	st.Set(store.ModeSet, []byte("b"), []byte("mine"), 0, 0, 0)
	if s, _ := h.Accept([]byte("b"), []byte("pushed"), 3, 0); s != store.NotStored {
		t.Fatalf("Accept of a key the store has: %v, want NotStored", s)
	}
	st.Delete([]byte("c"), 0)
	if s, _ := h.Accept([]byte("c"), []byte("pushed"), 3, 0); s != store.NotStored {
		t.Fatalf("Accept of a key deleted here: %v, want NotStored", s)
	}
	if v, _, _ := st.Get([]byte("b"), nil); string(v) != "mine" {
		t.Fatalf("b = %q, want mine", v)
	}
	if h.Stats().Accepted != 1 {
		t.Fatalf("accepted %d, want 1", h.Stats().Accepted)
	}
}
