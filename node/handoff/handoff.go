// Package handoff keeps a node's cache warm across changes of membership.
// For a window after a change (a node joining, leaving, restarting), a read
// that misses a key the node has just come to own first asks the key's
// previous owner, stores what it gets (with its flags and remaining TTL, and
// a fresh CAS), and answers from it: a scale-out then costs only the keys
// that were not cached anywhere, not a quarter of the cache.
//
// The hand-off never brings back what the application removed: every key
// written on this node lately (set, deleted, touched, counted), as the
// store reports through store.Config.OnWrite, is remembered in a filter of
// tombstones, and is not fetched; a write that comes while a fetched item
// is stored wins (store.Restore's veto). A previous owner hands over only
// items written in its last spell of ownership of their key (Fresh), not
// a copy left from before the key went elsewhere. A flush ends the window.
// Come here to change what is fetched, from whom, and when.
package handoff

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/ring"
)

// DefaultWindow is how long after a change of membership a node fetches
// the keys it misses from their previous owners: long enough for the hot
// keys of a cache-aside load to be asked for, short enough that a previous
// owner's copy, which no longer receives the application's writes, is not
// trusted for long.
const DefaultWindow = time.Minute

// DefaultTimeout bounds one fetch from a previous owner: the read waits for
// it, so it is short; a previous owner that does not answer in time is a
// miss.
const DefaultTimeout = 200 * time.Millisecond

// DefaultMaxFetches is how many fetches may be in flight at once; a read
// that would start one more misses as it would without the hand-off.
const DefaultMaxFetches = 64

// Opaque is the opaque token (meta flag O) of a hand-off fetch. A node does
// not hand off a read that carries it: a fetch is answered from the
// previous owner's store and never passed on, so two nodes whose views
// disagree for a moment cannot send one fetch back and forth.
const Opaque = "mchandoff"

// Item is an item fetched from a previous owner.
type Item struct {
	Value []byte
	Flags uint32
	// TTL is the item's remaining time to live in seconds; 0 if it never
	// expires.
	TTL int64
}

// Fetcher fetches a key's item from another member. found is false if the
// member has no live item for key. It is called concurrently.
type Fetcher interface {
	Fetch(ctx context.Context, m ring.Member, key []byte) (it Item, found bool, err error)
}

// Config configures a Hand-off.
type Config struct {
	// Store is the node's store, where fetched items are restored.
	// Required.
	Store *store.Store
	// Fetcher fetches from previous owners. Required.
	Fetcher Fetcher
	// Window is how long after a change of membership keys are fetched.
	// If zero, defaults to DefaultWindow; negative turns the hand-off off.
	Window time.Duration
	// Timeout bounds each fetch. If zero, defaults to DefaultTimeout.
	Timeout time.Duration
	// MaxFetches bounds the fetches in flight. If zero, defaults to
	// DefaultMaxFetches.
	MaxFetches int
	// Logger receives the hand-off's lines. If nil, slog.Default().
	Logger *slog.Logger
	// Now is the clock; if nil, time.Now.
	Now func() time.Time
}

// Stats counts what the hand-off did.
type Stats struct {
	Fetches uint64 // fetches from previous owners
	Hits    uint64 // fetches that found the item and restored it
	Misses  uint64 // fetches that found no item
	Errors  uint64 // fetches that failed: unreachable owner, timeout, bad reply
	Skipped uint64 // reads not fetched: the key was written in the window, or too many fetches were in flight
	// Accepted counts the items leaving nodes pushed (Push) that were
	// stored.
	Accepted uint64
}

// Handoff is a node's hand-off. Create it with New; its methods are safe for
// concurrent use.
type Handoff struct {
	cfg Config
	log *slog.Logger
	// win is the window in progress, nil outside one.
	win atomic.Pointer[window]
	// history is this node's views, oldest first, each with the store's
	// last CAS unique when it began (see Fresh); immutable once stored.
	history atomic.Pointer[[]*ownedView]
	// tombs are the keys written lately (see tombstones), rotated every
	// Window outside a window (Run).
	tombs    *tombstones
	inFlight atomic.Int64

	fetches, hits, misses, errors, skipped, accepted atomic.Uint64
}

// window is one hand-off window: the ring now, the rings before it,
// newest first, and when it ends.
type window struct {
	cur     *ring.Ring
	curSelf int // this node's index in cur
	prev    []prevRing
	until   time.Time
	// joined is set in the window of a node that has just started or
	// joined, whose keys' previous owners are those of others, its view
	// without it (see ViewChanged and othersRing); prev is then empty.
	joined     bool
	othersOnce sync.Once
	others     *ring.Ring
	// fetches and found count the window's fetches, and those that found
	// the item, to end a window whose fetches find nothing (see Warm).
	fetches, found atomic.Int64
}

// A window whose first uselessFetches fetches found fewer than one in
// uselessRatio ends early: the previous owners have nothing to give, as
// when a whole cluster starts empty and every node first sees itself
// alone. Each fetch would cost its read a round trip for nothing.
const (
	uselessFetches = 1000
	uselessRatio   = 20
)

// ownedView is one of this node's views, for Fresh: its members, this
// node, and the store's last CAS unique when it began. Its ring is kept
// only while it is among the newest (a ring of 100 members is 1.6 MB);
// an older one is rebuilt from the members when Fresh needs it.
type ownedView struct {
	members []ring.Member
	mode    ring.Mode // its ring's
	self    ring.Member
	seq     uint64
	r       atomic.Pointer[ring.Ring]
}

// ring returns v's ring, and this node's index in it (-1 if it was not a
// member).
func (v *ownedView) ring() (*ring.Ring, int) {
	r := v.r.Load()
	if r == nil {
		var err error
		if r, err = ring.NewMode(v.members, v.mode); err != nil {
			r, _ = ring.NewMode(nil, v.mode)
		}
		v.r.Store(r)
	}
	return r, indexOf(r, v.self)
}

// owns reports whether this node owned key in v.
func (v *ownedView) owns(key []byte) bool {
	r, self := v.ring()
	return self >= 0 && r.OwnerIndex(key) == self
}

// keepRings is how many of the newest views keep their rings.
const keepRings = 2

// maxHistory is how many views Fresh looks back through. An item written
// before the oldest of them, on a node that has owned its key throughout,
// is taken for stale: a miss, not a wrong value.
const maxHistory = 64

// prevRing is a ring the cluster had before the current one, with this
// node's index in it (-1 if it was not a member).
type prevRing struct {
	ring *ring.Ring
	self int
}

// maxPrevRings is how many rings back a miss looks for a previous owner,
// through changes that came one after another within a window: a node that
// joins sees itself alone, then some of the members, then all.
const maxPrevRings = 4

// New returns a hand-off configured by cfg.
func New(cfg Config) *Handoff {
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxFetches <= 0 {
		cfg.MaxFetches = DefaultMaxFetches
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handoff{cfg: cfg, log: cfg.Logger.With("component", "handoff"), tombs: newTombstones()}
}

// Run forgets, every Window, the keys written before the last Window, unless a
// window is in progress, until done is closed.
func (h *Handoff) Run(done <-chan struct{}) {
	if h.cfg.Window < 0 {
		return
	}
	t := time.NewTicker(h.cfg.Window)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if h.active() == nil {
				h.tombs.rotate()
			}
		}
	}
}

// ViewChanged begins a window after the cluster's ring changed from old
// to cur (old nil for the node's first view); self is this node. Keys self
// owns in cur and not in old are then fetched from their owner in old. A
// node whose old view held only itself (it has just started or joined)
// takes its keys' owners from cur without itself. A view without self
// (the node is leaving) or with self alone ends the window. It is called
// by one goroutine at a time, and builds no ring: a fleet's nodes see a
// change each as members come and go.
func (h *Handoff) ViewChanged(self ring.Member, old, cur *ring.Ring) {
	if h.cfg.Window < 0 {
		return
	}
	curSelf := indexOf(cur, self)
	h.remember(self, cur)
	if curSelf < 0 || cur.Len() < 2 {
		h.end("this node owns no keys or all of them")
		return
	}
	// A node that has just started or joined (its old view held itself
	// alone) takes its keys' previous owners from its current view
	// without itself, at this change and every other in its window: the
	// views it sees while it joins (itself and some of the members) were
	// never the cluster's, and the owners they name may not have the key.
	last := h.active()
	oldSelf := indexOf(old, self)
	joined := (last != nil && last.joined) || old == nil || old.Len() == 0 || (oldSelf >= 0 && old.Len() == 1)
	w := &window{cur: cur, curSelf: curSelf, joined: joined, until: h.cfg.Now().Add(h.cfg.Window)}
	if !joined {
		w.prev = append(w.prev, prevRing{ring: old, self: oldSelf})
		if last != nil {
			for _, p := range last.prev {
				if len(w.prev) < maxPrevRings {
					w.prev = append(w.prev, p)
				}
			}
		}
	}
	h.win.Store(w)
	h.log.Debug("hand-off window begins", "members", cur.Len(), "joined", joined, "for", h.cfg.Window)
}

// remember adds the view cur, of which self is this node, to the history
// of views, and lets go of the rings of the older ones.
func (h *Handoff) remember(self ring.Member, cur *ring.Ring) {
	v := &ownedView{members: cur.Members(), mode: cur.Mode(), self: self, seq: h.cfg.Store.LastCAS()}
	v.r.Store(cur)
	var hist []*ownedView
	if p := h.history.Load(); p != nil {
		hist = *p
	}
	if len(hist) >= maxHistory {
		hist = hist[len(hist)-maxHistory+1:]
	}
	hist = append(slices.Clone(hist), v)
	for _, old := range hist[:max(len(hist)-keepRings, 0)] {
		old.r.Store(nil)
	}
	h.history.Store(&hist)
}

// Fresh reports whether this node's item for key, whose CAS unique is
// cas, may be handed to another node (a fetch, or the push of a drain): it
// was written while this node owned key in its last spell of ownership.
// An item from an earlier spell is stale: another node owned the key
// since, and the application may have changed or deleted it there, so
// that handing it over would bring back what it removed. A node's views
// since it last owned key (it has just lost it, to the asking node) are
// passed over. With NoCAS (every CAS 0) nothing is fresh.
func (h *Handoff) Fresh(key []byte, cas uint64) bool {
	p := h.history.Load()
	if p == nil || cas == 0 {
		return false
	}
	hist := *p
	i := len(hist) - 1
	for i >= 0 && !hist[i].owns(key) {
		i-- // views since this node lost the key
	}
	if i < 0 {
		return false // it never owned key in the views it remembers
	}
	for i > 0 && hist[i-1].owns(key) {
		i-- // back to the start of the spell
	}
	return cas > hist[i].seq
}

// indexOf returns self's index in r, -1 if it is not a member (or r is
// nil).
func indexOf(r *ring.Ring, self ring.Member) int {
	if r == nil {
		return -1
	}
	for i := range r.Len() {
		if m := r.Member(i); m.Host == self.Host && m.IP == self.IP && m.Port == self.Port {
			return i
		}
	}
	return -1
}

// othersRing returns, for a window of a node that joined, the ring of its
// current view without it, in the current ring's mode, built at the first
// read that needs it.
func (w *window) othersRing() *ring.Ring {
	w.othersOnce.Do(func() {
		ms := w.cur.Members()
		ms = append(ms[:w.curSelf:w.curSelf], ms[w.curSelf+1:]...)
		w.others, _ = w.cur.Rebuild(ms)
	})
	return w.others
}

// active returns the window in progress, ending it if its time is up.
func (h *Handoff) active() *window {
	w := h.win.Load()
	if w == nil {
		return nil
	}
	if h.cfg.Now().After(w.until) {
		if h.win.CompareAndSwap(w, nil) {
			h.log.Debug("hand-off window ends", "fetched", h.hits.Load())
		}
		return nil
	}
	return w
}

// end ends the window in progress, if any.
func (h *Handoff) end(why string) {
	if h.win.Swap(nil) != nil {
		h.log.Debug("hand-off window ends", "why", why)
	}
}

// Flushed ends the window: the application flushed the cache, and the
// previous owners' items must not come back.
func (h *Handoff) Flushed() { h.end("flush_all") }

// Active reports whether a window is in progress.
func (h *Handoff) Active() bool { return h.active() != nil }

// Wrote records that the application wrote the key whose hash
// (xxhash.Sum64) is keyHash: it is not fetched in this window or the next
// (see tombstones). It is store.Config.OnWrite.
func (h *Handoff) Wrote(keyHash uint64) {
	if h.cfg.Window < 0 {
		return
	}
	h.tombs.add(keyHash)
}

// Wants reports whether a read of key that misses should first fetch it
// (Warm): a window is in progress, this node owns key and did not before,
// and key was not written in the window. It does no I/O and does not look
// in the store.
func (h *Handoff) Wants(key []byte) bool {
	w := h.active()
	if w == nil {
		return false
	}
	_, ok := w.previousOwner(key)
	return ok && !h.tombs.has(xxhash.Sum64(key))
}

// previousOwner returns the member that owned key before this node came to
// own it in the window, if it did.
func (w *window) previousOwner(key []byte) (ring.Member, bool) {
	if w.cur.OwnerIndex(key) != w.curSelf {
		return ring.Member{}, false
	}
	if w.joined {
		if r := w.othersRing(); r != nil && r.Len() > 0 {
			return r.Owner(key), true
		}
		return ring.Member{}, false
	}
	for _, p := range w.prev {
		if i := p.ring.OwnerIndex(key); i != p.self && i >= 0 {
			return p.ring.Member(i), true
		}
	}
	return ring.Member{}, false
}

// Warm fetches key from its previous owner, if Wants, and restores it in
// the store unless the store has it or the application wrote it meanwhile.
// It blocks for up to Config.Timeout on the network; ctx may end it
// sooner. It reports whether the store now has an item restored from the
// previous owner.
func (h *Handoff) Warm(ctx context.Context, key []byte) bool {
	w := h.active()
	if w == nil {
		return false
	}
	owner, ok := w.previousOwner(key)
	if !ok {
		return false
	}
	hash := xxhash.Sum64(key)
	if h.tombs.has(hash) {
		h.skipped.Add(1)
		return false
	}
	if h.inFlight.Add(1) > int64(h.cfg.MaxFetches) {
		h.inFlight.Add(-1)
		h.skipped.Add(1)
		return false
	}
	defer h.inFlight.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	h.fetches.Add(1)
	it, found, err := h.cfg.Fetcher.Fetch(ctx, owner, key)
	n := w.fetches.Add(1)
	if found {
		w.found.Add(1)
	} else if n == uselessFetches && w.found.Load()*uselessRatio < n {
		if h.win.CompareAndSwap(w, nil) {
			h.log.Info("hand-off window ends: the previous owners have almost nothing", "fetches", n, "found", w.found.Load())
		}
	}
	switch {
	case err != nil:
		h.errors.Add(1)
		h.log.Debug("hand-off fetch failed", "owner", owner.Addr(), "err", err)
		return false
	case !found:
		h.misses.Add(1)
		return false
	}
	var deadline int64
	if it.TTL > 0 {
		deadline = h.cfg.Store.Now() + it.TTL
	}
	if st, _ := h.restore(key, it.Value, it.Flags, deadline, hash); st != store.OK {
		h.skipped.Add(1)
		return false
	}
	h.hits.Add(1)
	return true
}

// restore adds key's item from another node unless the store has key or
// the application wrote it lately. It returns store.OK and the item's
// CAS unique, or store.NotStored.
func (h *Handoff) restore(key, value []byte, flags uint32, deadline int64, hash uint64) (store.Status, uint64) {
	if h.tombs.has(hash) {
		return store.NotStored, 0
	}
	// The tombstones are looked at again under the key's lock: a write
	// that marked the key before then is seen, and one after overrides
	// the restored item (see store.Restore).
	st, cas := h.cfg.Store.Restore(key, value, flags, deadline, func() bool { return h.tombs.has(hash) })
	if st != store.OK {
		return store.NotStored, 0
	}
	return store.OK, cas
}

// Accept stores an item a leaving node pushed (see Push), as Warm restores
// a fetched one: unless the store has key or the application wrote it
// lately. deadline is the store's absolute deadline, 0 for none. It
// returns store.OK and the item's CAS unique, or store.NotStored.
func (h *Handoff) Accept(key, value []byte, flags uint32, deadline int64) (store.Status, uint64) {
	if h.cfg.Window < 0 {
		return store.NotStored, 0
	}
	st, cas := h.restore(key, value, flags, deadline, xxhash.Sum64(key))
	if st == store.OK {
		h.accepted.Add(1)
	}
	return st, cas
}

// Stats returns the hand-off's counts.
func (h *Handoff) Stats() Stats {
	return Stats{
		Fetches: h.fetches.Load(),
		Hits:    h.hits.Load(),
		Misses:  h.misses.Load(),
		Errors:  h.errors.Load(),
		Skipped: h.skipped.Load(),

		Accepted: h.accepted.Load(),
	}
}
