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
	// miss and hands its creator the win token (mg's N flag). The item
	// gets the CAS unique VivifyCAS asks for (mg's E flag); Touch leaves
	// an item's CAS unique alone, as in memcached.
	Vivify         bool
	VivifyDeadline int64
	VivifyCAS      NewCAS
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
			s.stampLocked(e, opt.VivifyCAS)
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

// MetaDeleteOptions are what a meta delete (md) asks of MetaDelete.
type MetaDeleteOptions struct {
	// HasCAS: the item's CAS unique must equal CAS (md's C flag).
	HasCAS bool
	CAS    uint64
	// Invalidate keeps the item, marked stale, instead of removing it
	// (md's I flag).
	Invalidate bool
	// Touch sets the deadline of an item kept by Invalidate or
	// RemoveValue to Deadline (md's T flag).
	Touch    bool
	Deadline int64
	// RemoveValue keeps the item but replaces it with an empty value
	// (md's x flag), with client flags Flags.
	RemoveValue bool
	Flags       uint32
	// NewCAS is the CAS unique an item kept by Invalidate or RemoveValue
	// gets (md's E flag).
	NewCAS NewCAS
}

// MetaDelete is memcached's md: if opt.HasCAS, the item's CAS unique must
// equal opt.CAS (else Exists). Without Invalidate or RemoveValue it removes
// the item.
//
// With RemoveValue it replaces the item, atomically, with one of an empty
// value, client flags opt.Flags and the deadline opt.Deadline if Touch, else
// none, as memcached versions after 1.6.18 store it (md's x): not stale, not
// fetched, and with the old item's CAS unique unless opt.NewCAS is
// Explicit.
//
// With Invalidate it keeps the item (emptied first if RemoveValue), marked
// stale, with the CAS unique opt.NewCAS asks for (a fresh one by default)
// and no token sent, so that the next MetaGet wins the token to recompute
// it; if Touch, its deadline becomes opt.Deadline.
//
// It returns OK, NotFound or Exists.
func (s *Store) MetaDelete(key []byte, opt MetaDeleteOptions) Status {
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, _ := s.lookupLocked(sh, key, now, fl)
	if e == nil {
		return NotFound
	}
	if opt.HasCAS && opt.CAS != s.casOf(e) {
		return Exists
	}
	if !opt.Invalidate && !opt.RemoveValue {
		s.used.Add(-s.dropLocked(sh, e))
		return OK
	}
	if opt.RemoveValue {
		// A new, empty item in the old one's place: it keeps the
		// old CAS unique unless told otherwise, and is a mutation
		// for flush_all.
		nc := opt.NewCAS
		if !nc.Explicit {
			nc = NewCAS{Value: e.cas, Explicit: true}
		}
		before := e.charge()
		s.uncountLocked(sh, e)
		e.value = []byte{}
		e.flags = opt.Flags
		e.deadline = 0
		if opt.Touch {
			e.deadline = opt.Deadline
		}
		s.countLocked(sh, e)
		s.used.Add(e.charge() - before)
		s.renewLocked(sh, e, now, nc)
	}
	if opt.Invalidate {
		if opt.Touch {
			e.deadline = opt.Deadline
		}
		e.stale, e.tokenSent = true, false
		s.stampLocked(e, opt.NewCAS)
	}
	return OK
}

// SetStale is memcached's ms with I and a CAS unique: if the item's CAS
// unique is newer than cas, value replaces the item's but the item keeps its
// deadline, stays (or becomes) stale and keeps its token state, and OK is
// returned with the new CAS unique. Otherwise it behaves as Set with mode
// ModeCAS. Either way the item stored gets the CAS unique nc asks for.
func (s *Store) SetStale(key, value []byte, flags uint32, deadline int64, cas uint64, nc NewCAS) (Status, uint64) {
	if s.noCAS {
		return s.SetCAS(ModeCAS, key, value, flags, deadline, cas, nc)
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
		return s.SetCAS(ModeCAS, key, value, flags, deadline, cas, nc)
	}
	// Store unconditionally, then mark: another writer between the two
	// locks wins as it would have a moment later.
	st, newCAS := s.SetCAS(ModeSet, key, value, flags, keep, 0, nc)
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
