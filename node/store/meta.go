package store

// MetaGetOptions are what a meta get (mg) asks of MetaGet besides the value.
type MetaGetOptions struct {
	// NoBump leaves the item's fetched bit, last access time and count of
	// reads for eviction alone (mg's u flag).
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
	// Share hands out a value kept outside the pages as the store's own
	// buffer, not a copy, as GetShared does; MetaItem.Shared says so.
	Share bool
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
	// Shared is whether the value returned is the store's own buffer
	// (MetaGetOptions.Share), which the caller must not change.
	Shared bool
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
// callers see TokenSent. On a miss it returns dst and why. A hit counts as
// a get hit, or with Touch as a touch hit, in the item's class.
func (s *Store) MetaGet(key []byte, opt MetaGetOptions, dst []byte) ([]byte, MetaItem, Lookup) {
	if opt.Touch || opt.Vivify {
		s.wrote(key)
	}
	o := s.begin(key)
	sh := o.sh
	var r room
	var it MetaItem
	var lk Lookup
	var value []byte
	s.writeKey(&o, key, &r, func() roomResult {
		f := &o.found
		h, loc := &f.h, f.loc
		created := false
		if lk = f.lk; lk != Hit {
			if !opt.Vivify || !s.fits(len(key), 0) || len(key) > MaxKeyLen {
				return roomOK
			}
			*h = hdr{access: toSecs(o.now)}
			s.stamp(h, opt.VivifyCAS)
			var res roomResult
			if loc, res = s.putLocked(&o, key, h, nil, nil, &r); res != roomOK {
				return res
			}
			created = true
		}
		rec := sh.record(loc)
		it = MetaItem{
			OldDeadline: int64(h.deadline), Size: h.valueLen, Fetched: h.bits&bitFetched != 0,
			Access: int64(h.access), Now: o.now, Stale: h.bits&bitStale != 0,
			TokenSent: h.bits&bitTokenSent != 0, Created: created,
		}
		if opt.Touch {
			h.deadline = toDeadline(opt.Deadline)
		}
		if created {
			h.deadline = toDeadline(opt.VivifyDeadline)
			it.Won = true
		} else if opt.Recache && !it.TokenSent && h.deadline != 0 && int64(h.deadline) < opt.RecacheDeadline {
			it.Won = true
		}
		if it.Stale && !it.TokenSent {
			it.Won = true
		}
		if it.Won {
			rec[offBits] |= bitTokenSent
		}
		if c := s.classLocked(sh, h); opt.Touch {
			c.touchHits++
		} else {
			c.getHits[sh.queueOf(loc)]++
		}
		setDeadline(rec, h.deadline)
		if !opt.NoBump {
			bump(rec, h, o.now)
		}
		if v := sh.valueOf(rec, h); opt.Share && h.bits&bitExternal != 0 {
			value, it.Shared = v, true
		} else {
			value = append(dst, v...)
		}
		it.Meta = s.metaOf(h)
		it.Class, it.ItemSize = s.classAndSize(h)
		lk = Hit
		return roomOK
	})
	if lk != Hit {
		return dst, MetaItem{}, lk
	}
	return value, it, Hit
}

// classAndSize is memcached's slab class number (from 1) of an item with
// header h, and its ITEM_ntotal.
func (s *Store) classAndSize(h *hdr) (int, int) {
	n := s.limitSize(h.keyLen, h.valueLen, h.flags)
	return int(s.classOf(n)) + 1, n
}

// MetaDebug reports key's item without reading or bumping it, for memcached's
// me command. ok is false if no live item has the key.
func (s *Store) MetaDebug(key []byte) (MetaItem, bool) {
	o := s.begin(key)
	var it MetaItem
	ok := false
	s.withKey(&o, key, func() {
		f := &o.found
		if f.lk != Hit {
			return
		}
		h := &f.h
		it = MetaItem{
			Meta: s.metaOf(h), OldDeadline: int64(h.deadline), Size: h.valueLen,
			Fetched: h.bits&bitFetched != 0, Access: int64(h.access), Now: o.now,
			Stale: h.bits&bitStale != 0, TokenSent: h.bits&bitTokenSent != 0,
		}
		it.Class, it.ItemSize = s.classAndSize(h)
		ok = true
	})
	return it, ok
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
// It returns OK, NotFound or Exists. An OK without Invalidate counts a
// delete hit in the item's class.
func (s *Store) MetaDelete(key []byte, opt MetaDeleteOptions) Status {
	s.wrote(key)
	o := s.begin(key)
	sh := o.sh
	var r room
	var st Status
	s.writeKey(&o, key, &r, func() roomResult {
		f := &o.found
		h := &f.h
		if f.lk != Hit {
			st = NotFound
			return roomOK
		}
		if opt.HasCAS && opt.CAS != s.casOf(h) {
			st = Exists
			return roomOK
		}
		if !opt.Invalidate {
			s.classLocked(sh, h).deleteHits++
		}
		st = OK
		if !opt.Invalidate && !opt.RemoveValue {
			s.killLocked(sh, f.slot, f.loc, h)
			return roomOK
		}
		nh := *h
		if opt.RemoveValue {
			// A new, empty item in the old one's place: it keeps the
			// old CAS unique unless told otherwise, and is a mutation
			// for flush_all.
			nc := opt.NewCAS
			if !nc.Explicit {
				nc = NewCAS{Value: h.cas, Explicit: true}
			}
			nh = hdr{flags: opt.Flags, access: toSecs(o.now)}
			if opt.Touch {
				nh.deadline = toDeadline(opt.Deadline)
			}
			s.stamp(&nh, nc)
		}
		if opt.Invalidate {
			if opt.Touch {
				nh.deadline = toDeadline(opt.Deadline)
			}
			nh.bits = nh.bits&^bitTokenSent | bitStale
			s.stamp(&nh, opt.NewCAS)
		}
		var value []byte
		if !opt.RemoveValue {
			value = sh.valueOf(sh.record(f.loc), h)
		}
		res := s.rewriteLocked(&o, key, f.slot, f.loc, h, &nh, value, &r)
		if res == roomFail {
			// No room for the changed item: it goes, as its value would.
			if f := s.findLocked(&o, key); f.lk == Hit {
				s.killLocked(sh, f.slot, f.loc, &f.h)
			}
		}
		return res
	})
	return st
}

// rewriteLocked gives the live record at loc (in slot, header old) the
// header h and value, in place if the record keeps its length, else as a
// new record (see putLocked). value may alias the record. o.sh.mu must be
// held.
func (s *Store) rewriteLocked(o *op, key []byte, slot int, loc uint64, old, h *hdr, value []byte, r *room) roomResult {
	sh := o.sh
	h.keyLen, h.valueLen = old.keyLen, len(value)
	h.bits = h.bits&^(bitExternal|freqMask) | old.bits&(bitExternal|freqMask)
	same := recordLen(h.keyLen, len(value), h.bits) == recordLen(old.keyLen, old.valueLen, old.bits)
	if h.bits&bitExternal != 0 {
		same = same && len(value) == old.valueLen
	}
	if same {
		rec := sh.record(loc)
		s.uncountLocked(sh, loc, old)
		at := writeHdr(rec, h)
		at += copy(rec[at:], key) // the header may have changed length
		if h.bits&bitExternal != 0 {
			// An external value is never changed in place: a reader may
			// hold it (GetShared). A new one replaces it; the record's own
			// value, as a meta rewrite passes, stays as it is.
			if i := le.Uint32(rec[at:]); !sameBuffer(sh.extern[i], value) {
				sh.extern[i] = append([]byte(nil), value...)
			}
		} else {
			copy(rec[at:], value)
		}
		s.countLocked(sh, loc, h)
		return roomOK
	}
	// The value may move while room is made: copy it out.
	value = append([]byte(nil), value...)
	_, res := s.putLocked(o, key, h, value, nil, r)
	return res
}

// SetStale is memcached's ms with I and a CAS unique: if the item's CAS
// unique is newer than cas, value replaces the item's but the item keeps its
// deadline, stays (or becomes) stale and keeps its token state, and OK is
// returned with the new CAS unique. Otherwise it behaves as Set with mode
// ModeCAS. Either way the item stored gets the CAS unique nc asks for, and
// a store counts as a compare-and-swap hit.
func (s *Store) SetStale(key, value []byte, flags uint32, deadline int64, cas uint64, nc NewCAS) (Status, uint64) {
	if s.noCAS {
		// SetCAS tells OnWrite.
		return s.SetCAS(ModeCAS, key, value, flags, deadline, cas, nc)
	}
	s.wrote(key)
	o := s.begin(key)
	var h hdr
	older := false
	var keep int64
	var sent uint8
	s.withKey(&o, key, func() {
		f := &o.found
		h = f.h
		older = f.lk == Hit && cas != 0 && cas < s.casOf(&h)
		keep, sent = int64(h.deadline), h.bits&bitTokenSent
	})
	if !older {
		return s.SetCAS(ModeCAS, key, value, flags, deadline, cas, nc)
	}
	// Store unconditionally, then mark: another writer between the two
	// locks wins as it would have a moment later.
	st, newCAS := s.SetCAS(ModeSet, key, value, flags, keep, 0, nc)
	if st != OK {
		return st, newCAS
	}
	s.again(&o)
	s.withKey(&o, key, func() {
		f := &o.found
		// The compare-and-swap stored, as a stale value: it counts in
		// the class of the item it compared with.
		s.classLocked(o.sh, &h).casHits++
		if f.lk == Hit && s.casOf(&f.h) == newCAS {
			rec := o.sh.record(f.loc)
			rec[offBits] = rec[offBits]&^bitTokenSent | bitStale | sent
		}
	})
	return st, newCAS
}

// sameBuffer reports whether a and b are the same bytes in memory.
func sameBuffer(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
