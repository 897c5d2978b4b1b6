package store

import (
	"sort"
	"sync"
	"unsafe"
)

// entry is one item, linked into its shard's map and LRU list.
type entry struct {
	prev, next *entry // LRU list neighbours: next is less recently used
	key        string
	value      []byte // len(value) == cap(value): every byte is counted
	seq        uint64 // sequence number of the last mutation, for flush_all
	cas        uint64 // the CAS unique: seq, or the one a meta E flag chose
	deadline   int64  // unix second the item expires at; 0 never
	stored     secs   // the second of the last mutation, for delayed flushes
	access     secs   // the second of the last access, as memcached's it->time
	flags      uint32
	class      uint8 // index of the size class, valid while linked
	fetched    bool  // read since stored
	stale      bool  // invalidated by a meta I flag: served marked stale
	tokenSent  bool  // a meta win token (W) has been handed out
}

// secs is a unix second in 32 bits (good until 2106), so that an entry's two
// timestamps share one word.
type secs uint32

// toSecs converts a unix second to secs, clamped to its range.
func toSecs(t int64) secs {
	switch {
	case t < 0:
		return 0
	case t > 1<<32-1:
		return 1<<32 - 1
	}
	return secs(t)
}

// entryOverhead is what an item costs beyond ItemSize: the entry struct and
// its slot in the shard's map (a Go swiss table slot holds a 16-byte string
// header, an 8-byte pointer and a control byte, at a load between 7/16 and
// 7/8: about 40 bytes on average). The key and value bytes, and more, are
// in ItemSize already. The allocator's rounding of small objects up to its
// size classes is not counted.
const entryOverhead = int64(unsafe.Sizeof(entry{})) + 40

// charge is what e counts against MaxBytes.
func (e *entry) charge() int64 {
	return int64(ItemSize(len(e.key), len(e.value))) + entryOverhead
}

// classCounters are one shard's counters for one size class.
type classCounters struct {
	items            int64 // items linked
	bytes            int64 // their charges
	requested        int64 // their sizes as memcached's ITEM_ntotal (Store.limitSize)
	evictions        uint64
	evictedUnfetched uint64
	reclaimed        uint64
	expiredUnfetched uint64
}

// shard is one lock's worth of the store.
type shard struct {
	mu         sync.Mutex        // guards all the fields below and the entries linked here
	m          map[string]*entry // every linked entry by key
	root       entry             // sentinel of the circular LRU list: root.next is most recently used
	crawl      entry             // the reclaimer's position in the LRU list; not an item
	classes    []classCounters   // by size class
	totalItems uint64            // items ever stored here
}

func (sh *shard) init(nclasses int) {
	sh.m = make(map[string]*entry)
	sh.root.next, sh.root.prev = &sh.root, &sh.root
	sh.insertAfter(&sh.crawl, &sh.root)
	sh.classes = make([]classCounters, nclasses)
}

// insertAfter links e into the list after at.
func (sh *shard) insertAfter(e, at *entry) {
	e.prev = at
	e.next = at.next
	at.next.prev = e
	at.next = e
}

// unlink removes e from the list.
func (sh *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

// moveToFront makes e the most recently used.
func (sh *shard) moveToFront(e *entry) {
	if sh.root.next == e {
		return
	}
	sh.unlink(e)
	sh.insertAfter(e, &sh.root)
}

// classOf returns the index of the smallest size class that holds an item of
// size bytes by memcached's ITEM_ntotal (limitSize), or the largest class.
func (s *Store) classOf(size int) uint8 {
	i := sort.SearchInts(s.classes, size)
	if i == len(s.classes) {
		i--
	}
	return uint8(i)
}

// countLocked sets e's class from its size and adds e to its class's gauges.
// The class is the one memcached files the item under: by its
// ITEM_ntotal, which counts the client flags and the CAS unique
// (Store.limitSize).
func (s *Store) countLocked(sh *shard, e *entry) {
	n := s.limitSize(len(e.key), len(e.value), e.flags)
	e.class = s.classOf(n)
	c := &sh.classes[e.class]
	c.items++
	c.bytes += e.charge()
	c.requested += int64(n)
}

// uncountLocked takes e out of its class's gauges. e's key, value and flags
// must be those it was counted with.
func (s *Store) uncountLocked(sh *shard, e *entry) {
	c := &sh.classes[e.class]
	c.items--
	c.bytes -= e.charge()
	c.requested -= int64(s.limitSize(len(e.key), len(e.value), e.flags))
}

// linkLocked adds the new entry e to sh as the most recently used.
func (s *Store) linkLocked(sh *shard, e *entry) {
	sh.m[e.key] = e
	sh.insertAfter(e, &sh.root)
	s.countLocked(sh, e)
}

// dropLocked removes e from sh and returns its charge, which the caller
// either releases from Store.used or keeps as a reservation.
func (s *Store) dropLocked(sh *shard, e *entry) int64 {
	delete(sh.m, e.key)
	sh.unlink(e)
	s.uncountLocked(sh, e)
	return e.charge()
}

// reclaimLocked removes the dead item e from sh and counts it as reclaimed;
// it returns e's charge. lk is why e is dead.
func (s *Store) reclaimLocked(sh *shard, e *entry, lk Lookup) int64 {
	c := &sh.classes[e.class]
	c.reclaimed++
	if lk == MissExpired && !e.fetched {
		c.expiredUnfetched++
	}
	return s.dropLocked(sh, e)
}

// tailScan is how many items from an LRU tail are searched for a dead one
// before a live one is evicted, as memcached's lru_pull_tail.
const tailScan = 5

// freeOneLocked frees one item of sh to make room: a dead item among the
// tailScan least recently used if there is one (Reclaimed), else the least
// recently used (Evictions) unless NoEvictions. keep is never freed. It
// returns the charge freed, or false if nothing could be.
func (s *Store) freeOneLocked(sh *shard, keep *entry, now int64, fl *flushState) (int64, bool) {
	n := 0
	for e := sh.root.prev; e != &sh.root && n < tailScan; e = e.prev {
		if e == &sh.crawl || e == keep {
			continue
		}
		n++
		if lk := fl.check(e, now); lk != Hit {
			return s.reclaimLocked(sh, e, lk), true
		}
	}
	if s.noEvict {
		return 0, false
	}
	e := sh.root.prev
	for e == &sh.crawl || e == keep {
		e = e.prev
	}
	if e == &sh.root {
		return 0, false
	}
	c := &sh.classes[e.class]
	c.evictions++
	if !e.fetched {
		c.evictedUnfetched++
	}
	return s.dropLocked(sh, e), true
}

// room is the memory one write has reserved so far: bytes added to
// Store.used (or freed from items and kept there) on its behalf.
type room struct {
	got       int64
	rounds    int
	exhausted bool // a cross-shard round freed nothing
}

// roomResult is the outcome of roomLocked.
type roomResult uint8

const (
	roomOK    roomResult = iota // the room is reserved; sh.mu is held
	roomRetry                   // sh.mu was released; lock it and re-evaluate
	roomFail                    // there is no room; sh.mu is held
)

// tryReserve adds n bytes to Store.used if that keeps it within MaxBytes.
func (s *Store) tryReserve(n int64) bool {
	for {
		u := s.used.Load()
		if u+n > s.maxBytes {
			return false
		}
		if s.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// fillLocked tops r up to need bytes from free memory and from sh's tail,
// sparing keep. sh.mu must be held.
func (s *Store) fillLocked(sh *shard, need int64, r *room, keep *entry, now int64, fl *flushState) bool {
	for r.got < need {
		if s.tryReserve(need - r.got) {
			r.got = need
			return true
		}
		c, ok := s.freeOneLocked(sh, keep, now, fl)
		if !ok {
			return false
		}
		r.got += c
	}
	return true
}

// roomLocked reserves need bytes (the growth of Store.used a write will
// cause; possibly negative) for a write to sh, sparing the entry keep. It
// uses free memory, then sh's own tail; if that is not enough it releases
// sh.mu, frees items of other shards into r and returns roomRetry: the
// caller must lock sh again and re-evaluate, since sh may have changed.
// roomFail means nothing more can be freed.
func (s *Store) roomLocked(sh *shard, need int64, r *room, keep *entry, now int64, fl *flushState) roomResult {
	if s.fillLocked(sh, need, r, keep, now, fl) {
		return roomOK
	}
	if r.exhausted || r.rounds >= maxRounds {
		return roomFail
	}
	r.rounds++
	sh.mu.Unlock()
	if !s.steal(sh, need, r) {
		r.exhausted = true
	}
	return roomRetry
}

// steal frees items of shards other than own, locking one at a time, until r
// holds need bytes. It reports whether it freed or reserved anything.
func (s *Store) steal(own *shard, need int64, r *room) bool {
	progress := false
	for range s.shards {
		sh := &s.shards[s.stealNext.Add(1)&s.mask]
		if sh == own {
			continue
		}
		now, fl := s.now(), s.flush.Load()
		sh.mu.Lock()
		for r.got < need {
			if s.tryReserve(need - r.got) {
				r.got = need
				progress = true
				break
			}
			c, ok := s.freeOneLocked(sh, nil, now, fl)
			if !ok {
				break
			}
			r.got += c
			progress = true
		}
		sh.mu.Unlock()
		if r.got >= need {
			return true
		}
	}
	return progress
}

// commit settles r for a write that grows Store.used by need: the part of
// the reservation the write does not use is released.
func (s *Store) commit(need int64, r *room) {
	if d := need - r.got; d != 0 {
		s.used.Add(d)
	}
	r.got = 0
}

// release gives back whatever r still holds.
func (s *Store) release(r *room) {
	if r.got != 0 {
		s.used.Add(-r.got)
		r.got = 0
	}
}
