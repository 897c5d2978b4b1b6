package ring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// threeFakes starts three fake nodes that all answer the same config, and a
// Selector (polling only when told) that has taken it.
func threeFakes(t *testing.T, cfg Config) (*Selector, []*fakeNode) {
	t.Helper()
	a, b, c := startFake(t), startFake(t), startFake(t)
	for _, n := range []*fakeNode{a, b, c} {
		n.set(1, a, b, c)
	}
	s := newSelector(t, cfg, a.addr(), b.addr(), c.addr())
	refresh(t, s)
	return s, []*fakeNode{a, b, c}
}

// keyOwnedBy returns a key whose owner on s's current ring is n.
func keyOwnedBy(t *testing.T, s *Selector, n *fakeNode) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("key:%d", i)
		if a, err := s.PickServer(k); err == nil && a.String() == n.addr() {
			return k
		}
	}
	t.Fatalf("no key of 10000 is owned by %s", n.addr())
	return ""
}

func addrOf(t *testing.T, s *Selector, n *fakeNode) net.Addr {
	t.Helper()
	var found net.Addr
	s.Each(func(a net.Addr) error {
		if a.String() == n.addr() {
			found = a
		}
		return nil
	})
	if found == nil {
		t.Fatalf("%s is not on the ring", n.addr())
	}
	return found
}

// TestSelectorMarkDown checks that a node marked down leaves the ring, at
// the same version and with the others' addresses unchanged, until its
// mark ends or a config drops it; and that the last node is never marked.
func TestSelectorMarkDown(t *testing.T) {
	t.Run("off the ring until the mark ends", func(t *testing.T) {
		s, n := threeFakes(t, Config{DownFor: 200 * time.Millisecond})
		key := keyOwnedBy(t, s, n[0])
		bAddr := addrOf(t, s, n[1])
		if !s.MarkDown(addrOf(t, s, n[0])) {
			t.Fatal("MarkDown of a member reported no change")
		}
		wantCurrent(t, s, 1, n[1], n[2])
		if a, _ := s.PickServer(key); a.String() == n[0].addr() {
			t.Errorf("%s still goes to the node marked down", key)
		}
		if addrOf(t, s, n[1]) != bAddr {
			t.Error("a node that stayed has a new net.Addr after the mark")
		}
		if s.MarkDown(&NodeAddr{addr: n[0].addr()}) {
			t.Error("marking a node that is off the ring reported a change")
		}
		refresh(t, s) // before the mark ends: still off
		wantCurrent(t, s, 1, n[1], n[2])
		time.Sleep(250 * time.Millisecond)
		refresh(t, s) // the same config, after the mark: back
		wantCurrent(t, s, 1, n[0], n[1], n[2])
		if a, _ := s.PickServer(key); a.String() != n[0].addr() {
			t.Errorf("%s goes to %s after the mark ended, want its owner %s", key, a, n[0].addr())
		}
	})
	t.Run("a config without the node ends its mark", func(t *testing.T) {
		s, n := threeFakes(t, Config{DownFor: time.Hour})
		s.MarkDown(addrOf(t, s, n[0]))
		for _, m := range n {
			m.set(2, n[1], n[2])
		}
		refresh(t, s)
		wantCurrent(t, s, 2, n[1], n[2])
		for _, m := range n { // it comes back, restarted
			m.set(3, n[0], n[1], n[2])
		}
		refresh(t, s)
		wantCurrent(t, s, 3, n[0], n[1], n[2])
	})
	t.Run("a new config keeps the mark", func(t *testing.T) {
		s, n := threeFakes(t, Config{DownFor: time.Hour})
		s.MarkDown(addrOf(t, s, n[0]))
		d := startFake(t)
		for _, m := range n {
			m.set(2, n[0], n[1], n[2], d)
		}
		refresh(t, s)
		wantCurrent(t, s, 2, n[1], n[2], d)
	})
	t.Run("never the last node", func(t *testing.T) {
		s, n := threeFakes(t, Config{DownFor: time.Hour})
		s.MarkDown(addrOf(t, s, n[0]))
		s.MarkDown(addrOf(t, s, n[1]))
		if s.MarkDown(addrOf(t, s, n[2])) {
			t.Error("the last node was marked down")
		}
		wantCurrent(t, s, 1, n[2])
	})
}

// TestClientFailover checks that a Client's request for a key whose node is
// down goes, at the first failure, to the key's owner without that node,
// and does not fail; that a GetMulti asks the dead node's keys again of
// their new owners; and that a done context stops a request before it is
// sent.
func TestClientFailover(t *testing.T) {
	s, n := threeFakes(t, Config{DownFor: time.Hour})
	c := NewClient(s)
	c.Memcache().Timeout = 2 * time.Second
	ctx := context.Background()
	key := keyOwnedBy(t, s, n[0])
	other := keyOwnedBy(t, s, n[1])
	if _, err := c.Get(ctx, key); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get(%s) with every node up: %v, want a miss", key, err)
	}

	n[0].stop()
	if _, err := c.Get(ctx, key); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("Get(%s) after its node died: %v, want a miss from its new owner", key, err)
	}
	wantCurrent(t, s, 1, n[1], n[2])
	owner, _ := s.PickServer(key)
	var asked bool
	for _, m := range n[1:] {
		if _, _, gets := m.counts(); m.addr() == owner.String() && slices.ContainsFunc(gets, func(g []string) bool { return slices.Contains(g, key) }) {
			asked = true
		}
	}
	if !asked {
		t.Errorf("the new owner %s was not asked for %s", owner, key)
	}

	// GetMulti, on a fresh Selector that still has the dead node.
	s2 := newSelector(t, Config{DownFor: time.Hour}, n[1].addr())
	for _, m := range n[1:] {
		m.set(1, n[0], n[1], n[2])
	}
	refresh(t, s2)
	c2 := NewClient(s2)
	items, err := c2.GetMulti(ctx, []string{key, other})
	if err != nil || len(items) != 0 {
		t.Errorf("GetMulti over a dead node: %d items, %v; want none and no error", len(items), err)
	}
	wantCurrent(t, s2, 1, n[1], n[2])

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, _, before := n[1].counts()
	if _, err := c.Get(done, other); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a done context: %v, want context.Canceled", err)
	}
	if _, _, after := n[1].counts(); len(after) != len(before) {
		t.Error("Get with a done context sent its request")
	}
}
