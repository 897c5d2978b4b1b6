package store

import "github.com/cespare/xxhash/v2"

// The writes that store a value (Set and SetCAS, with append and prepend
// in concat) and what they share with the other writes: whether an item
// can fit at all (fits), writing a record over one of the same length
// (overwriteLocked), and writing a new record (putLocked). Finding room in
// the pages for a record is arena.go's.

// Set stores value under key by mode, copying key and value, and returns OK
// with the item's new CAS unique (0 with NoCAS), or a failure and 0:
//
//   - ModeSet stores unconditionally; ModeAdd only if no live item has the
//     key (else NotStored, and the present item counts as read for
//     eviction); ModeReplace only if one has (else NotStored).
//   - ModeAppend and ModePrepend add value after or before the present
//     value (NotStored if there is none). flags and deadline are ignored:
//     the item keeps its own, as in memcached (flags only decide the
//     class the command counts in, as the flags of memcached's append
//     command do).
//   - ModeCAS stores only if a live item has the key (else NotFound) and
//     its CAS unique equals cas (else Exists). A cas of 0 never matches, as
//     in memcached; with NoCAS every item's CAS unique is 0, so ModeCAS
//     always fails with Exists on a present key.
//
// A non-zero cas is compared for the other modes too, as memcached does for
// the binary and meta protocols: ModeSet and ModeReplace behave as ModeCAS;
// ModeAppend and ModePrepend fail with Exists on a mismatch (and NotStored
// on a missing key); ModeAdd ignores cas (memcached's binary protocol turns
// an add with a CAS into a cas command: pass ModeCAS for that). With NoCAS a
// store cannot record a CAS, so only ModeCAS looks at it, as memcached -C.
//
// TooLarge means the item's size as memcached measures it (ItemSize, plus 4
// bytes for non-zero flags and 8 for the CAS unique unless NoCAS) exceeds
// ItemSizeMax. An append or prepend whose joined item would exceed it gives
// NotStored, as memcached answers. NoMemory means the item cannot be given room:
// it is larger than MaxBytes, or the store is full and NoEvictions is set.
// On TooLarge and NoMemory ModeSet removes the key's present item, as
// memcached does so that a failed set leaves no stale value behind.
//
// Every outcome but TooLarge and NoMemory counts a storage command in the
// class of the item the command would store; a NoMemory counts in its
// outofmemory, and ModeCAS's OK and Exists a hit or a mismatch in the
// class of the item compared with (see ClassStats).
func (s *Store) Set(mode Mode, key, value []byte, flags uint32, deadline int64, cas uint64) (Status, uint64) {
	return s.SetCAS(mode, key, value, flags, deadline, cas, NewCAS{})
}

// SetCAS is Set that gives the item stored the CAS unique nc asks for, as
// memcached's ms with E: cas is still what ModeCAS compares with.
func (s *Store) SetCAS(mode Mode, key, value []byte, flags uint32, deadline int64, cas uint64, nc NewCAS) (Status, uint64) {
	s.wrote(key)
	return s.set(mode, key, value, flags, deadline, cas, nc, nil, nil)
}

// GivenValue is the length beyond which a value given to GiveSet is kept
// as it is, not copied: every value this long is kept outside the pages.
const GivenValue = maxInlineValue

// givenSlack is how much larger than its value a buffer given to GiveSet
// may be and still be kept: the rest is memory the store does not count.
const givenSlack = 4096

// GiveSet is Set for a value the caller gives away. One longer than
// GivenValue is kept in its own buffer rather than in a copy, if that
// buffer is not much larger than the value, as memcached reads a value
// straight into its item: a large value costs one copy less, and no second
// buffer. Whatever the outcome, the caller must not use value's buffer
// again.
func (s *Store) GiveSet(mode Mode, key, value []byte, flags uint32, deadline int64, cas uint64) (Status, uint64) {
	s.wrote(key)
	return s.set(mode, key, value, flags, deadline, cas, NewCAS{}, value, nil)
}

// Restore adds an item brought from elsewhere, as Set with ModeAdd: it
// stores nothing, and returns NotStored, if key has a live item or if
// veto, called under the key's lock, reports true. It is not reported to
// Config.OnWrite: the node's hand-off (node/handoff) restores with it the
// items it fetches from a key's previous owner, and its veto is whether
// the application wrote the key lately. A write reports to OnWrite before
// it takes the key's lock, so it either comes before the veto, which then
// sees it, or after the restore, which it then overrides. veto must not
// call the Store.
func (s *Store) Restore(key, value []byte, flags uint32, deadline int64, veto func() bool) (Status, uint64) {
	return s.set(ModeAdd, key, value, flags, deadline, 0, NewCAS{}, nil, veto)
}

// set is SetCAS; given is GiveSet's value, nil for SetCAS. (It is a
// parameter of its own so that the values of SetCAS's callers, which may
// live on their stacks, are not made to escape.)
func (s *Store) set(mode Mode, key, value []byte, flags uint32, deadline int64, cas uint64, nc NewCAS, given []byte, veto func() bool) (Status, uint64) {
	if len(key) > MaxKeyLen {
		return TooLarge, 0
	}
	if mode == ModeAppend || mode == ModePrepend {
		return s.concat(mode, key, value, flags, cas, nc)
	}
	size := s.limitSize(len(key), len(value), flags)
	switch {
	case size > s.itemMax:
		if mode == ModeSet {
			s.Drop(key)
		}
		return TooLarge, 0
	case !s.fits(len(key), len(value)):
		if mode == ModeSet {
			s.Drop(key)
		}
		s.countOutOfMemory(key, size)
		return NoMemory, 0
	}
	if s.noCAS && mode != ModeCAS {
		cas = 0
	}
	if cas != 0 && (mode == ModeSet || mode == ModeReplace) {
		mode = ModeCAS
	}

	// A storage command counts in the class of the item it would store,
	// whatever its outcome, unless there was no room for the item, as
	// memcached counts the item it allocated; a compare-and-swap counts
	// in the class of the item it compared with.
	class := s.classOf(size)
	o := s.begin(key)
	if len(given) > GivenValue && cap(given)-len(given) <= givenSlack {
		o.given = given
	}
	sh := o.sh
	var r room
	var st Status
	var newCAS uint64
	s.writeKey(&o, key, &r, func() roomResult {
		f := &o.found
		old := &f.h
		switch mode {
		case ModeAdd:
			if f.lk == Hit {
				promote(sh.record(f.loc), old, o.now)
				sh.classes[class].setCmds++
				st = NotStored
				return roomOK
			}
			if veto != nil && veto() {
				st = NotStored
				return roomOK
			}
		case ModeReplace:
			if f.lk != Hit {
				sh.classes[class].setCmds++
				st = NotStored
				return roomOK
			}
		case ModeCAS:
			if f.lk != Hit {
				sh.classes[class].setCmds++
				st = NotFound
				return roomOK
			}
			if cas == 0 || cas != s.casOf(old) {
				sh.classes[class].setCmds++
				s.classLocked(sh, old).casBadval++
				st = Exists
				return roomOK
			}
		}
		h := hdr{flags: flags, deadline: toDeadline(deadline), access: toSecs(o.now)}
		s.stamp(&h, nc)
		var oldClass *classCounters
		if mode == ModeCAS {
			oldClass = s.classLocked(sh, old)
		}
		if f.lk == Hit && s.overwriteLocked(sh, key, f.loc, old, &h, value) {
			sh.totalItems++
			sh.classes[class].setCmds++
			if oldClass != nil {
				oldClass.casHits++
			}
			st, newCAS = OK, s.casOf(&h)
			return roomOK
		}
		switch _, res := s.putLocked(&o, key, &h, value, nil, &r); res {
		case roomRetry:
			return roomRetry
		case roomFail:
			if mode == ModeSet {
				if f := s.findLocked(&o, key); f.lk == Hit {
					s.killLocked(sh, f.slot, f.loc, &f.h)
				}
			}
			st = NoMemory
			return roomFail
		}
		sh.classes[class].setCmds++
		if oldClass != nil {
			oldClass.casHits++
		}
		st, newCAS = OK, s.casOf(&h)
		return roomOK
	})
	return st, newCAS
}

// countOutOfMemory counts, in the shard of key, a write of an item of size
// bytes (limitSize) that could not be given room.
func (s *Store) countOutOfMemory(key []byte, size int) {
	sh := s.shardOf(xxhash.Sum64(key))
	sh.with(func() { sh.classes[s.classOf(size)].outOfMemory++ })
}

// fits reports whether an item of these sizes could ever be stored: whether
// its record, and its external value, fit in MaxBytes beside the shards'
// tables.
func (s *Store) fits(keyLen, valueLen int) bool {
	n := int64(recordLen(keyLen, valueLen, bitExplicitCAS))
	if n > int64(s.maxInline) {
		n = int64(recordLen(keyLen, valueLen, bitExplicitCAS|bitExternal)) + int64(valueLen)
	}
	return n+int64(s.pageSize)+int64(len(s.shards))*int64(minSlots*slotSize) <= s.maxBytes.Load()
}

// overwriteLocked writes the new header h, key and value over the live
// record at loc (header old) if the new record is as long and kept in the
// page, as a set of a value of the same size is. The record keeps its place and its
// frequency. It reports whether it could.
func (s *Store) overwriteLocked(sh *shard, key []byte, loc uint64, old, h *hdr, value []byte) bool {
	if old.bits&bitExternal != 0 || recordLen(old.keyLen, old.valueLen, old.bits) != recordLen(old.keyLen, len(value), h.bits) ||
		recordLen(old.keyLen, len(value), h.bits) > s.maxInline {
		return false
	}
	s.uncountLocked(sh, loc, old)
	h.keyLen, h.valueLen = old.keyLen, len(value)
	h.bits |= old.bits & freqMask
	rec := sh.record(loc)
	at := writeHdr(rec, h)
	at += copy(rec[at:], key) // the header may have changed length
	copy(rec[at:], value)
	s.countLocked(sh, loc, h)
	return true
}

// putLocked stores a new record for key: header h, whose keyLen, valueLen
// and external bit it sets, and the value v1 followed by v2. It replaces the
// key's present record, in the present record's queue; a new key goes to
// the small queue, or to the main one if the ghost table remembers it
// (with NoEvictions every record goes to the main queue). It
// counts the item stored. Neither v1 nor v2 may alias the Store's memory.
// o.sh.mu must be held.
func (s *Store) putLocked(o *op, key []byte, h *hdr, v1, v2 []byte, r *room) (uint64, roomResult) {
	loc, res := s.putRecordLocked(o, key, h, v1, v2, r)
	if res != roomRetry {
		// The pages emptied for the write are its class's direct
		// reclaims, and a write that found no room its out of memory.
		c := s.classLocked(o.sh, h)
		c.directReclaims += r.evicted
		r.evicted = 0
		if res == roomFail {
			c.outOfMemory++
		}
	}
	return loc, res
}

// putRecordLocked is putLocked but for the class's counters.
func (s *Store) putRecordLocked(o *op, key []byte, h *hdr, v1, v2 []byte, r *room) (uint64, roomResult) {
	sh := o.sh
	vlen := len(v1) + len(v2)
	h.keyLen, h.valueLen = len(key), vlen
	h.bits &^= bitExternal | bitDead
	if recordLen(len(key), vlen, h.bits) > s.maxInline || vlen > maxInlineValue {
		h.bits |= bitExternal
	}
	if sh.needsGrowth() {
		if res := s.growLocked(sh, r, o.now, o.fl); res != roomOK {
			return 0, res
		}
	}
	var ext []byte
	if h.bits&bitExternal != 0 {
		if res := s.reserveLocked(sh, int64(vlen), r, o.now, o.fl); res != roomOK {
			return 0, res
		}
		r.got -= int64(vlen)
		if len(v2) == 0 && sameBuffer(v1, o.given) {
			ext = o.given[:vlen:vlen] // see GiveSet
		} else {
			ext = make([]byte, vlen)
			copy(ext[copy(ext, v1):], v2)
		}
	}
	q := qSmall
	if s.noEvict {
		q = qMain // one queue: it is compacted, not evicted from
	} else if _, loc, ok := sh.lookupSlot(o.hash, key); ok {
		q = int(sh.meta[loc>>pageShift].queue)
		h.bits |= sh.record(loc)[offBits] & freqMask
	} else if sh.ghostTake(o.hash) {
		q = qMain
	}
	loc, res := s.appendLocked(sh, q, recordLen(len(key), vlen, h.bits), r, o.now, o.fl)
	if res != roomOK {
		switch {
		case ext == nil:
		case res == roomRetry:
			// The value's memory stays reserved while the write takes
			// memory from other shards for the page it lacks, and is
			// given back before the write reserves it anew (stealFor).
			r.pending += int64(vlen)
		default:
			s.used.Add(-int64(vlen))
		}
		return 0, res
	}
	rec := sh.record(loc)
	at := writeHdr(rec, h)
	at += copy(rec[at:], key)
	if ext != nil {
		writeExtern(rec[at:], sh.addExtern(ext), vlen)
	} else {
		copy(rec[at+copy(rec[at:], v1):], v2)
	}
	// Making room may have moved or evicted the key's present record.
	if slot, oldLoc, ok := sh.lookupSlot(o.hash, key); ok {
		old := readHdr(sh.record(oldLoc))
		s.retireLocked(sh, oldLoc, &old)
		sh.slots[slot] = slotOf(tagOf(o.hash), loc)
	} else {
		sh.insertSlot(slot, o.hash, loc)
	}
	s.countLocked(sh, loc, h)
	sh.totalItems++
	return loc, roomOK
}

// concat is Set for ModeAppend and ModePrepend.
func (s *Store) concat(mode Mode, key, value []byte, flags uint32, cas uint64, nc NewCAS) (Status, uint64) {
	if s.noCAS {
		cas = 0
	}
	// Counted as memcached counts it: in the class of the part added, with
	// the command's flags (see SetCAS).
	class := s.classOf(s.limitSize(len(key), len(value), flags))
	o := s.begin(key)
	sh := o.sh
	var r room
	var st Status
	var newCAS uint64
	s.writeKey(&o, key, &r, func() roomResult {
		f := &o.found
		old := &f.h
		if f.lk != Hit {
			sh.classes[class].setCmds++
			st = NotStored
			return roomOK
		}
		if cas != 0 && cas != s.casOf(old) {
			sh.classes[class].setCmds++
			st = Exists
			return roomOK
		}
		n := old.valueLen + len(value)
		if size := s.limitSize(len(key), n, old.flags); size > s.itemMax {
			sh.classes[class].setCmds++
			st = NotStored
			return roomOK
		} else if !s.fits(len(key), n) {
			sh.classes[s.classOf(size)].outOfMemory++
			st = NoMemory
			return roomOK
		}
		// The present value may move while room is made: copy it out.
		present := append([]byte(nil), sh.valueOf(sh.record(f.loc), old)...)
		h := hdr{flags: old.flags, deadline: old.deadline, access: toSecs(o.now)}
		s.stamp(&h, nc)
		v1, v2 := present, value
		if mode == ModePrepend {
			v1, v2 = value, present
		}
		switch _, res := s.putLocked(&o, key, &h, v1, v2, &r); res {
		case roomRetry:
			return roomRetry
		case roomFail:
			st = NoMemory
			return roomFail
		}
		sh.classes[class].setCmds++
		st, newCAS = OK, s.casOf(&h)
		return roomOK
	})
	return st, newCAS
}
