package store

// Operations on one key that store no value: the reads (Get, GetAndTouch),
// and Touch, SetDeadline, Delete and Drop, with what a read does to the
// record it finds (valueOf, bump, promote). The writes that store a value
// are in write.go, the meta commands' in meta.go, incr and decr in
// arith.go.

// valueOf returns the value of the record rec with header h: its bytes in
// the page or its external buffer. It aliases the Store's memory.
func (sh *shard) valueOf(rec []byte, h *hdr) []byte {
	at := headLen(h.bits) + h.keyLen
	if h.bits&bitExternal != 0 {
		return sh.extern[le.Uint32(rec[at:])]
	}
	return rec[at : at+h.valueLen]
}

// bump records a read of the record rec with header h at now: fetched, and
// promoted.
func bump(rec []byte, h *hdr, now int64) {
	rec[offBits] |= bitFetched
	promote(rec, h, now)
}

// promote counts an access to the record rec with header h at now for
// eviction, one more in its frequency, and renews its last access time as
// memcached's do_item_update does.
func promote(rec []byte, h *hdr, now int64) {
	bits := rec[offBits]
	if bits&freqMask != freqMask {
		bits += 1 << freqShift
	}
	rec[offBits] = bits
	h.bits = bits
	if int64(h.access) < now-accessInterval {
		h.access = toSecs(now)
		setAccess(rec, h.access)
	}
}

// accessInterval is memcached's ITEM_UPDATE_INTERVAL: an item's last access
// time is renewed by a read only once it is this many seconds old.
const accessInterval = 60

// Get looks key up. On Hit it appends the value to dst and returns the
// result, the item's Meta, and Hit; it marks the item fetched, counts the
// read for eviction, and counts a get hit in the item's class (see
// ClassStats). Otherwise it returns dst unchanged, a zero Meta and why it
// missed: Miss, MissExpired or MissFlushed.
func (s *Store) Get(key, dst []byte) ([]byte, Meta, Lookup) {
	return s.get(key, dst, false, 0)
}

// GetAndTouch is Get that also sets the item's deadline on a hit, as
// memcached's gat: the returned Meta carries the new deadline, and the hit
// counts as a touch hit. The CAS unique is unchanged.
func (s *Store) GetAndTouch(key []byte, deadline int64, dst []byte) ([]byte, Meta, Lookup) {
	s.wrote(key)
	return s.get(key, dst, true, deadline)
}

// GetShared is Get, except that a value kept outside the pages (one of more
// than 64 KiB, or a quarter of a page with its key) is not copied: the
// slice returned on a hit is then the store's own buffer, not dst. The
// store never changes such a buffer (a write that changes the value gives
// the item a new one), so the caller may read it after GetShared returns,
// for as long as it keeps it, as memcached writes an item it holds a
// reference to: a large value goes to the socket without a copy. A shorter
// value is appended to dst, as by Get. shared reports which it is: the
// caller must never write into a shared value, nor append to it.
func (s *Store) GetShared(key, dst []byte) (value []byte, meta Meta, lk Lookup, shared bool) {
	return s.getShared(key, dst, false, 0, true)
}

// GetAndTouchShared is GetAndTouch that shares large values as GetShared.
func (s *Store) GetAndTouchShared(key []byte, deadline int64, dst []byte) (value []byte, meta Meta, lk Lookup, shared bool) {
	s.wrote(key)
	return s.getShared(key, dst, true, deadline, true)
}

func (s *Store) get(key, dst []byte, touch bool, deadline int64) ([]byte, Meta, Lookup) {
	value, meta, lk, _ := s.getShared(key, dst, touch, deadline, false)
	return value, meta, lk
}

func (s *Store) getShared(key, dst []byte, touch bool, deadline int64, share bool) ([]byte, Meta, Lookup, bool) {
	// The hottest path locks as withKey does, without its func value:
	// the unlock is deferred before anything can fail.
	o := s.begin(key)
	sh := o.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var f found
	s.findInto(&o, key, &f)
	if f.lk != Hit {
		return dst, Meta{}, f.lk, false
	}
	rec := sh.record(f.loc)
	c := s.classLocked(sh, &f.h)
	if touch {
		f.h.deadline = toDeadline(deadline)
		setDeadline(rec, f.h.deadline)
		c.touchHits++
	} else {
		c.getHits[sh.queueOf(f.loc)]++
	}
	bump(rec, &f.h, o.now)
	if share && f.h.bits&bitExternal != 0 {
		return sh.valueOf(rec, &f.h), s.metaOf(&f.h), Hit, true
	}
	return append(dst, sh.valueOf(rec, &f.h)...), s.metaOf(&f.h), Hit, false
}

// Touch sets the deadline of key's item and marks it fetched, as memcached's
// touch, and counts a touch hit in the item's class. The CAS unique is
// unchanged. It returns OK, or NotFound if no live item has the key.
func (s *Store) Touch(key []byte, deadline int64) Status {
	return s.touch(key, deadline, true)
}

// SetDeadline is Touch without counting a touch: for a command that
// changes an item's deadline as part of another operation (ma's T flag).
func (s *Store) SetDeadline(key []byte, deadline int64) Status {
	return s.touch(key, deadline, false)
}

func (s *Store) touch(key []byte, deadline int64, count bool) Status {
	s.wrote(key)
	o := s.begin(key)
	st := NotFound
	s.withKey(&o, key, func() {
		f := &o.found
		if f.lk != Hit {
			return
		}
		if count {
			s.classLocked(o.sh, &f.h).touchHits++
		}
		rec := o.sh.record(f.loc)
		setDeadline(rec, toDeadline(deadline))
		bump(rec, &f.h, o.now)
		st = OK
	})
	return st
}

// Delete removes key's item and counts a delete hit in its class. If cas
// is non-zero it must equal the item's CAS unique (with NoCAS every item's
// is 0, so any non-zero cas fails). It returns OK, NotFound if no live item
// has the key, or Exists on a CAS mismatch.
func (s *Store) Delete(key []byte, cas uint64) Status {
	return s.remove(key, cas, true)
}

// Drop removes key's item, if any, without counting a delete: for a write
// that failed and must leave no stale value behind, as memcached unlinks
// the old item of a set it could not store.
func (s *Store) Drop(key []byte) {
	s.remove(key, 0, false)
}

func (s *Store) remove(key []byte, cas uint64, count bool) Status {
	s.wrote(key)
	o := s.begin(key)
	st := NotFound
	s.withKey(&o, key, func() {
		f := &o.found
		if f.lk != Hit {
			return
		}
		if cas != 0 && cas != s.casOf(&f.h) {
			st = Exists
			return
		}
		c := s.killLocked(o.sh, f.slot, f.loc, &f.h)
		if count {
			c.deleteHits++
		}
		st = OK
	})
	return st
}
