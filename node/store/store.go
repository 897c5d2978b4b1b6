package store

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Defaults for a zero Config.
const (
	DefaultMaxBytes    = 64 << 20 // Config.MaxBytes
	DefaultItemSizeMax = 1 << 20  // Config.ItemSizeMax
)

// A Store made by New has shardsPerProc shards for every processor that
// may run goroutines at once (GOMAXPROCS), rounded up to a power of two, and
// at most maxShards: enough locks that writers on different processors
// seldom meet. Not more: every shard has its own head pages and index, so
// each extra shard spreads the items written lately, which are the items
// read most, over more memory (with GOMAXPROCS=1 under memcaslap, 4 shards
// spent 0.1 to 0.6 us less user CPU per request than 64). Small stores get
// fewer, a shard for every minShardBytes, so that each shard has pages
// enough to evict by.
const (
	shardsPerProc = 4
	maxShards     = 64
	minShardBytes = 256 << 10
)

// maxRounds bounds how often one write gives up its shard's lock to take
// memory from other shards before it reports NoMemory. Each round keeps the
// memory it has taken, so more than one or two are rare.
const maxRounds = 8

// Store is a memory-bounded cache of items: keys mapped to values with client
// flags, deadlines and CAS uniques, evicting by S3-FIFO when full.
//
// All methods are safe for concurrent use by any number of goroutines. Keys
// and values passed in belong to the caller and may be reused as soon as the
// call returns: the Store copies what it keeps. Values returned are appended
// to the caller's dst and never alias the Store's memory.
//
// Time is read from Config.Now at each operation. Without one, the Store
// keeps memcached's current_time (see Config.Now): deadlines are reckoned
// by the caller from Now, the exact second, and checked against the same
// clock as the reclaimer last read it (at most 100ms ago, never ahead of
// Now), so an item given a deadline of Now()+n lives at least n-1 seconds
// and at most about n, as in memcached, whatever the phase of the second
// it was stored at.
//
// Items live as records in pages of bytes, found through an open-addressing
// table of integers per shard: no Go pointer per item, so the garbage
// collector's work does not grow with the number of items. Every byte of
// the pages, the tables and external values counts against MaxBytes.
type Store struct {
	shards    []shard
	shardBits uint
	mask      uint64
	maxBytes  atomic.Int64 // the bound on used: Config.MaxBytes, or SetMaxBytes's
	itemMax   int
	chunkMax  int   // the largest slab chunk: memcached's slab_chunk_size_max
	classes   []int // chunk sizes of the size classes, ascending
	pageSize  int
	maxInline int // the longest record kept in a page; longer ones are external
	noEvict   bool
	noCAS     bool
	now       func() int64  // the clock items are checked against: coarse, never ahead of exactNow
	exactNow  func() int64  // the clock deadlines are reckoned from (Now)
	epoch     time.Time     // the instant the store's own clock counts from
	clock     atomic.Int64  // the clock's second as the reclaimer last read it, when Config.Now is nil
	used      atomic.Int64  // bytes held against maxBytes: pages, tables, external values, reservations
	seq       atomic.Uint64 // the last sequence number (CAS unique) handed out
	flush     atomic.Pointer[flushState]
	flushMu   sync.Mutex    // serialises Flush's read-modify-write of flush
	stealNext atomic.Uint64 // where the next cross-shard steal starts

	reclaimPaused atomic.Bool // the reclaimer keeps the clock but removes nothing: see PauseReclaimer

	stopOnce sync.Once
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when the reclaimer has returned

	onEvict func(Eviction) // Config.OnEvict, or nil
}

// flushState records the flush_all commands that apply. It is immutable once
// published through Store.flush.
type flushState struct {
	seq uint64 // items last mutated with a sequence number <= seq are flushed
	at  int64  // a pending delayed flush: once now >= at, items stored before are flushed; 0 if none
}

// New returns a Store sized by cfg and starts its background reclaimer,
// which runs until Close. cfg is not retained beyond its values and never
// modified.
func New(cfg Config) *Store {
	return newStore(cfg, shardCount(cfg.MaxBytes, runtime.GOMAXPROCS(0)), 0, true)
}

// shardCount is the number of shards New gives a store of maxBytes (0: the
// default) on procs processors.
func shardCount(maxBytes int64, procs int) int {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	limit := min(maxShards, shardsPerProc*max(procs, 1))
	n := 1
	for n < limit && int64(n)*2*minShardBytes <= maxBytes {
		n *= 2
	}
	return n
}

// newStore returns a Store of n shards (a power of two) with pages of
// pageSize bytes (0: by the memory per shard). The reclaimer is started only
// if background is true; tests step it by hand otherwise.
func newStore(cfg Config, n, pageSize int, background bool) *Store {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.ItemSizeMax <= 0 {
		cfg.ItemSizeMax = DefaultItemSizeMax
	}
	if pageSize == 0 {
		pageSize = pageSizeFor(cfg.MaxBytes / int64(n))
	}
	s := &Store{
		shards:    make([]shard, n),
		mask:      uint64(n - 1),
		itemMax:   cfg.ItemSizeMax,
		chunkMax:  chunkSizeMax(cfg.ItemSizeMax),
		pageSize:  pageSize,
		maxInline: pageSize / 4,
		noEvict:   cfg.NoEvictions,
		noCAS:     cfg.NoCAS,
		now:       cfg.Now,
		onEvict:   cfg.OnEvict,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	for 1<<s.shardBits < n {
		s.shardBits++
	}
	s.exactNow = s.now
	if s.now == nil {
		s.epoch = cfg.Epoch
		if s.epoch.IsZero() {
			s.epoch = time.Now()
		}
		s.exactNow = s.clockNow
		// Reading the clock costs more than a Get; like memcached's
		// current_time, read it every tick instead.
		s.clock.Store(s.clockNow())
		s.now = s.clock.Load
		if !background {
			s.now = s.clockNow
		}
	}
	s.maxBytes.Store(cfg.MaxBytes)
	s.classes = slabClasses(s.chunkMax)
	s.flush.Store(&flushState{})
	for i := range s.shards {
		s.shards[i].init(len(s.classes))
		s.used.Add(s.shards[i].indexBytes())
	}
	if background {
		go s.reclaimLoop()
	} else {
		close(s.done)
	}
	return s
}

// Close stops the background reclaimer and waits for it to return. The Store
// must not be used after Close. Calling Close more than once is harmless.
func (s *Store) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Now returns the store's clock, the unix second from which callers reckon
// the deadlines they pass in: Config.Now's, or memcached's current_time
// (see Config.Now), read now.
func (s *Store) Now() int64 { return s.exactNow() }

// CoarseNow is Now as the store's reclaimer last read it: at most 100ms
// behind, and cheaper than Now. Items are checked against it; it suits
// timestamps that may be a moment late.
func (s *Store) CoarseNow() int64 { return s.now() }

// clockNow is the store's own clock: Epoch's unix second plus the whole
// seconds elapsed since, on the monotonic clock.
func (s *Store) clockNow() int64 {
	return s.epoch.Unix() + int64(time.Since(s.epoch)/time.Second)
}

// shardOf returns the shard of the key whose hash is h: by its top bits, as
// the index uses the low ones.
func (s *Store) shardOf(h uint64) *shard {
	return &s.shards[(h>>(64-s.shardBits))&s.mask]
}

// flushAt returns the flushes in effect at now, turning a delayed flush
// whose time has come into one of every item stored so far.
func (s *Store) flushAt(now int64) *flushState {
	f := s.flush.Load()
	if f.at == 0 || now < f.at {
		return f
	}
	nf := &flushState{seq: s.seq.Load()}
	if s.flush.CompareAndSwap(f, nf) {
		return nf
	}
	return s.flush.Load()
}

// check tells whether an item with header h is live at now under f.
func (f *flushState) check(h *hdr, now int64) Lookup {
	if h.seq <= f.seq {
		return MissFlushed
	}
	if h.deadline != 0 && int64(h.deadline) <= now {
		return MissExpired
	}
	return Hit
}

// casOf is the CAS unique callers see for an item with header h: 0 with
// NoCAS.
func (s *Store) casOf(h *hdr) uint64 {
	if s.noCAS {
		return 0
	}
	return h.cas
}

// metaOf returns the metadata of an item with header h.
func (s *Store) metaOf(h *hdr) Meta {
	return Meta{Flags: h.flags, Deadline: int64(h.deadline), CAS: s.casOf(h)}
}

// stamp records a mutation in h: a new sequence number, and the CAS unique
// nc asks for.
func (s *Store) stamp(h *hdr, nc NewCAS) {
	h.seq = s.seq.Add(1)
	h.cas = h.seq
	h.bits &^= bitExplicitCAS
	if nc.Explicit {
		h.cas = nc.Value
		h.bits |= bitExplicitCAS
	}
}

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
	return s.get(key, dst, true, deadline)
}

func (s *Store) get(key, dst []byte, touch bool, deadline int64) ([]byte, Meta, Lookup) {
	o := s.begin(key)
	var m Meta
	var lk Lookup
	s.withKey(&o, key, func(f found) {
		if lk = f.lk; lk != Hit {
			return
		}
		sh := o.sh
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
		dst = append(dst, sh.valueOf(rec, &f.h)...)
		m = s.metaOf(&f.h)
	})
	return dst, m, lk
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
	o := s.begin(key)
	st := NotFound
	s.withKey(&o, key, func(f found) {
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
	o := s.begin(key)
	st := NotFound
	s.withKey(&o, key, func(f found) {
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
	sh := o.sh
	var r room
	var st Status
	var newCAS uint64
	s.writeKey(&o, key, &r, func(f found) roomResult {
		old := &f.h
		switch mode {
		case ModeAdd:
			if f.lk == Hit {
				promote(sh.record(f.loc), old, o.now)
				sh.classes[class].setCmds++
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
		ext = make([]byte, vlen)
		copy(ext[copy(ext, v1):], v2)
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
	s.writeKey(&o, key, &r, func(f found) roomResult {
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

// Flush invalidates items, as memcached's flush_all. If at <= now, every item
// held now becomes a miss (MissFlushed) at once, while items stored after
// Flush returns are untouched, even within the same second. Otherwise every
// item last stored before second at becomes a miss once the clock reaches
// at. A later Flush replaces a delayed flush that has not yet taken effect,
// as in memcached; flushes that have taken effect stay in effect.
//
// Flushed items keep counting in Stats until they are touched or the
// reclaimer or an eviction removes them, as in memcached.
func (s *Store) Flush(at int64) {
	now := s.now()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	f := &flushState{seq: s.flushAt(now).seq}
	if at <= now {
		f.seq = s.seq.Load()
	} else {
		f.at = at
	}
	s.flush.Store(f)
}

// Stats returns the store's counters and gauges. It locks each shard in
// turn, so the result is a near snapshot under concurrent writes.
func (s *Store) Stats() Stats {
	st := Stats{LimitMaxBytes: s.maxBytes.Load()}
	ps := int64(s.pageSize)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.with(func() {
			st.TotalItems += sh.totalItems
			st.PageBytes += int64(len(sh.pages)-len(sh.released)) * ps
			st.FreePageBytes += int64(len(sh.free)) * ps
			st.ExternBytes += sh.externBytes
			st.IndexBytes += sh.indexBytes()
			st.IndexSlots += int64(len(sh.slots))
			for j := range sh.classes {
				c := &sh.classes[j]
				st.Bytes += c.bytes
				st.CurrItems += c.items
				st.Evictions += c.evictions
				st.EvictedActive += c.evictedActive
				st.EvictedUnfetched += c.evictedUnfetched
				st.Reclaimed += c.reclaimed
				st.ExpiredUnfetched += c.expiredUnfetched
				st.MovesToMain += c.movesToMain
				st.MovesWithinMain += c.movesWithinMain
				st.DirectReclaims += c.directReclaims
				st.GetHits += c.getHits[qSmall] + c.getHits[qMain]
				st.TouchHits += c.touchHits
				st.SetCmds += c.setCmds
				st.DeleteHits += c.deleteHits
				st.IncrHits += c.incrHits
				st.DecrHits += c.decrHits
				st.CASHits += c.casHits
				st.CASBadval += c.casBadval
				st.CrawlerChecked += c.crawlerChecked
				st.CrawlerReclaimed += c.crawlerReclaimed
			}
		})
	}
	return st
}

// limitSize is an item's size as memcached checks it against the item size
// limit: ItemSize, 4 bytes for non-zero client flags, 8 for the CAS unique
// unless CAS is off.
func (s *Store) limitSize(keyLen, valueLen int, flags uint32) int {
	n := ItemSize(keyLen, valueLen)
	if flags != 0 {
		n += 4
	}
	if !s.noCAS {
		n += 8
	}
	return n
}
