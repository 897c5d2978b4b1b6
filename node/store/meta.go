package store

// accessInterval is memcached's ITEM_UPDATE_INTERVAL: an item's last access
// time is renewed by a read only once it is this many seconds old.
const accessInterval = 60

// bumpLocked records a read of e at now: fetched, most recently used, and
// its last access time renewed as memcached's do_item_update does.
// sh.mu must be held.
func bumpLocked(sh *shard, e *entry, now int64) {
	e.fetched = true
	if int64(e.access) < now-accessInterval {
		e.access = toSecs(now)
	}
	sh.moveToFront(e)
}

// MetaGetOptions are what a meta get (mg) asks of MetaGet besides the value.
type MetaGetOptions struct {
	// NoBump leaves the item's fetched bit, last access time and LRU
	// position alone (mg's u flag).
	NoBump bool
	// Touch sets the item's deadline to Deadline (mg's T flag).
	Touch    bool
	Deadline int64
	// Vivify creates an empty item with flags 0 and VivifyDeadline on a
	// miss and hands its creator the win token (mg's N flag).
	Vivify         bool
	VivifyDeadline int64
	// Recache hands out the win token when the item's deadline is before
	// RecacheDeadline and no token was sent (mg's R flag).
	Recache         bool
	RecacheDeadline int64
}

// MetaItem is what MetaGet and MetaDebug report of an item.
type MetaItem struct {
	Meta
	// OldDeadline is the deadline before a Touch.
	OldDeadline int64
	// Size is the value's length.
	Size int
	// Fetched is whether the item had been read before this call.
	Fetched bool
	// Access is the unix second of the item's last access before this
	// call.
	Access int64
	// Now is the store's clock at the call.
	Now int64
	// Stale is whether the item was invalidated (X); Won whether this call
	// won the token to recompute it (W); TokenSent whether another call
	// already had (Z).
	Stale, Won, TokenSent bool
	// Created is whether Vivify created the item.
	Created bool
	// Class is memcached's slab class number (from 1) and ItemSize
	// memcached's ITEM_ntotal of the item.
	Class, ItemSize int
}

// MetaGet looks key up as memcached's mg does, atomically with the win
// token: on a hit (or a Vivify miss) it appends the value to dst and returns
// it with the item's MetaItem and Hit. Exactly one caller is handed Won for
// an item that is stale, was created by Vivify, or fell under
// RecacheDeadline, until the item is stored or invalidated again; later
// callers see TokenSent. On a miss it returns dst and why.
func (s *Store) MetaGet(key []byte, opt MetaGetOptions, dst []byte) ([]byte, MetaItem, Lookup) {
	sh := s.shardFor(key)
	var r room
	defer s.release(&r)
	for {
		now, fl := s.now(), s.flush.Load()
		sh.mu.Lock()
		e, lk := s.lookupLocked(sh, key, now, fl)
		created := false
		if e == nil {
			if !opt.Vivify {
				sh.mu.Unlock()
				return dst, MetaItem{}, lk
			}
			need := int64(ItemSize(len(key), 0)) + entryOverhead
			if need > s.maxBytes {
				sh.mu.Unlock()
				return dst, MetaItem{}, lk
			}
			switch s.roomLocked(sh, need, &r, nil, now, fl) {
			case roomRetry:
				continue
			case roomFail:
				sh.mu.Unlock()
				return dst, MetaItem{}, lk
			}
			s.commit(need, &r)
			e = &entry{key: string(key), value: []byte{}}
			e.seq = s.seq.Add(1)
			e.stored, e.access = toSecs(now), toSecs(now)
			s.linkLocked(sh, e)
			sh.totalItems++
			created = true
		}
		it := MetaItem{
			OldDeadline: e.deadline, Size: len(e.value), Fetched: e.fetched,
			Access: int64(e.access), Now: now, Stale: e.stale, TokenSent: e.tokenSent,
			Created: created,
		}
		if opt.Touch {
			e.deadline = opt.Deadline
		}
		if created {
			e.deadline = opt.VivifyDeadline
			it.Won = true
		} else if opt.Recache && !e.tokenSent && e.deadline != 0 && e.deadline < opt.RecacheDeadline {
			it.Won = true
		}
		if e.stale && !e.tokenSent {
			it.Won = true
		}
		if it.Won {
			e.tokenSent = true
		}
		if !opt.NoBump {
			bumpLocked(sh, e, now)
		}
		dst = append(dst, e.value...)
		it.Meta = s.meta(e)
		it.Class, it.ItemSize = int(e.class)+1, s.limitSize(len(e.key), len(e.value), e.flags)
		sh.mu.Unlock()
		return dst, it, Hit
	}
}

// MetaDebug reports key's item without reading or bumping it, for memcached's
// me command. ok is false if no live item has the key.
func (s *Store) MetaDebug(key []byte) (MetaItem, bool) {
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, _ := s.lookupLocked(sh, key, now, fl)
	if e == nil {
		return MetaItem{}, false
	}
	return MetaItem{
		Meta: s.meta(e), OldDeadline: e.deadline, Size: len(e.value),
		Fetched: e.fetched, Access: int64(e.access), Now: now, Stale: e.stale,
		TokenSent: e.tokenSent, Class: int(e.class) + 1,
		ItemSize: s.limitSize(len(e.key), len(e.value), e.flags),
	}, true
}

// MetaDelete is memcached's md: if hasCAS, the item's CAS unique must equal
// cas (else Exists). Without invalidate it removes the item. With invalidate
// it keeps it, marked stale, with a new CAS unique and no token sent, so
// that the next MetaGet wins the token to recompute it; if touch, its
// deadline becomes deadline. It returns OK, NotFound or Exists.
func (s *Store) MetaDelete(key []byte, hasCAS bool, cas uint64, invalidate, touch bool, deadline int64) Status {
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, _ := s.lookupLocked(sh, key, now, fl)
	if e == nil {
		return NotFound
	}
	if hasCAS && cas != s.casOf(e) {
		return Exists
	}
	if !invalidate {
		s.used.Add(-s.dropLocked(sh, e))
		return OK
	}
	if touch {
		e.deadline = deadline
	}
	e.stale, e.tokenSent = true, false
	e.seq = s.seq.Add(1)
	return OK
}

// SetStale is memcached's ms with I and a CAS unique: if the item's CAS
// unique is newer than cas, value replaces the item's but the item keeps its
// deadline, stays (or becomes) stale and keeps its token state, and OK is
// returned with the new CAS unique. Otherwise it behaves as Set with mode
// ModeCAS.
func (s *Store) SetStale(key, value []byte, flags uint32, deadline int64, cas uint64) (Status, uint64) {
	if s.noCAS {
		return s.Set(ModeCAS, key, value, flags, deadline, cas)
	}
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	e, _ := s.lookupLocked(sh, key, now, fl)
	older := e != nil && cas != 0 && cas < s.casOf(e)
	var keep int64
	var sent bool
	if older {
		keep, sent = e.deadline, e.tokenSent
	}
	sh.mu.Unlock()
	if !older {
		return s.Set(ModeCAS, key, value, flags, deadline, cas)
	}
	// Store unconditionally, then mark: another writer between the two
	// locks wins as it would have a moment later.
	st, newCAS := s.Set(ModeSet, key, value, flags, keep, 0)
	if st != OK {
		return st, newCAS
	}
	sh.mu.Lock()
	if e, _ := s.lookupLocked(sh, key, s.now(), s.flush.Load()); e != nil && s.casOf(e) == newCAS {
		e.stale, e.tokenSent = true, sent
	}
	sh.mu.Unlock()
	return st, newCAS
}
