package store

import "github.com/cespare/xxhash/v2"

// Locking a shard. Every shard lock the store takes is taken by withKey or
// shard.with, which release it by a defer: a panic in the code that runs
// under the lock (a bug, or a corrupted record read out of range) unwinds
// through the unlock, and cannot leave a shard locked so that every later
// request for its keys hangs.
//
// An operation on one key begins with begin, outside the lock, then runs
// under its shard's lock with what findLocked found of the key: withKey
// for an operation that needs no memory, writeKey for one that may have to
// make room. Making room may need memory from other shards; a write takes
// it with its own shard's lock released (steal locks one other shard at a
// time), so the code under the lock asks for it by returning roomRetry,
// and writeKey steals and runs it again on a fresh lookup.

// op is one operation's view of a key: its hash, shard and clock.
type op struct {
	hash uint64
	sh   *shard
	now  int64
	fl   *flushState
	// found is what withKey and writeKey found of the key, for their fn
	// to read in place: a header passed by value costs every call its
	// copies.
	found found
	// given is the value written when it is the store's to keep (see
	// GiveSet), for putLocked to keep if it goes outside the pages.
	given []byte
}

// begin hashes key and reads the clock and the flushes for an operation.
func (s *Store) begin(key []byte) op {
	h := xxhash.Sum64(key)
	now := s.now()
	return op{hash: h, sh: s.shardOf(h), now: now, fl: s.flushAt(now)}
}

// again rereads the clock and the flushes for an operation that retries.
func (s *Store) again(o *op) {
	o.now = s.now()
	o.fl = s.flushAt(o.now)
}

// found is what findLocked found of a key: the live record's slot,
// location and header (with its CAS unique) if lk is Hit, else why there
// is none (Miss, MissExpired or MissFlushed).
type found struct {
	slot int
	loc  uint64
	h    hdr
	lk   Lookup
}

// findLocked looks key up in o.sh. A dead (expired or flushed) record it
// finds is removed. o.sh.mu must be held.
func (s *Store) findLocked(o *op, key []byte) found {
	var f found
	s.findInto(o, key, &f)
	return f
}

// findInto is findLocked writing into f, kept in place rather than copied
// with its header.
func (s *Store) findInto(o *op, key []byte, f *found) {
	slot, loc, ok := o.sh.lookupSlot(o.hash, key)
	if !ok {
		f.lk = Miss
		return
	}
	f.h = readHdrCAS(o.sh.record(loc))
	if lk := o.fl.check(&f.h, o.now); lk != Hit {
		s.killLocked(o.sh, slot, loc, &f.h)
		f.lk = lk
		return
	}
	f.slot, f.loc, f.lk = slot, loc, Hit
}

// withKey locks o.sh, looks key up in it into o.found and calls fn. The
// shard is unlocked when fn returns or panics. fn must not keep a slice of
// the shard's memory beyond the call.
func (s *Store) withKey(o *op, key []byte, fn func()) {
	o.sh.mu.Lock()
	defer o.sh.mu.Unlock()
	s.findInto(o, key, &o.found)
	fn()
}

// writeKey is withKey for a write that takes memory into r: it calls fn
// under the lock until fn returns a result other than roomRetry. After a
// roomRetry (o.sh had no memory left to give), it takes the memory asked
// for from the other shards into r with o.sh unlocked (stealFor), rereads
// the clock and the flushes, and looks the key up again for the next
// call, since another writer may have changed it meanwhile. When it
// returns, or fn panics, it gives back what r still holds (release).
func (s *Store) writeKey(o *op, key []byte, r *room, fn func() roomResult) {
	defer s.release(r)
	for s.writeLocked(o, key, fn) == roomRetry {
		s.stealFor(o.sh, r)
		s.again(o)
	}
}

// writeLocked is one attempt of writeKey: fn with o.sh locked, and unlocked
// when fn returns or panics.
func (s *Store) writeLocked(o *op, key []byte, fn func() roomResult) roomResult {
	o.sh.mu.Lock()
	defer o.sh.mu.Unlock()
	s.findInto(o, key, &o.found)
	return fn()
}

// with calls fn with sh locked, and unlocks sh when fn returns or panics.
func (sh *shard) with(fn func()) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	fn()
}
