package store

import (
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

// numShards is the number of shards of a Store made by New. A power of two.
const numShards = 64

// maxRounds bounds how often one write gives up its shard's lock to evict
// from other shards before it reports NoMemory. Each round keeps the memory
// it has freed, so more than one or two are rare.
const maxRounds = 8

// Store is a memory-bounded cache of items: keys mapped to values with client
// flags, deadlines and CAS uniques, evicting the least recently used items of
// a shard when full.
//
// All methods are safe for concurrent use by any number of goroutines. Keys
// and values passed in belong to the caller and may be reused as soon as the
// call returns: the Store copies what it keeps. Values returned are appended
// to the caller's dst and never alias the Store's memory.
//
// Time is read from Config.Now at each operation. Without one, the Store
// reads the system clock every 100ms (a tick of its reclaimer) rather than
// on every operation, as memcached keeps its current_time: deadlines take
// effect up to 100ms late.
//
// The engine is a map of pointers per shard with an intrusive LRU list; it
// lives behind these methods so that a pointer-free arena engine can replace
// it.
type Store struct {
	shards    []shard
	mask      uint64
	maxBytes  int64
	itemMax   int
	chunkMax  int   // the largest slab chunk: memcached's slab_chunk_size_max
	classes   []int // chunk sizes of the size classes, ascending
	noEvict   bool
	noCAS     bool
	now       func() int64
	clock     atomic.Int64  // the unix second, kept by the reclaimer when Config.Now is nil
	used      atomic.Int64  // bytes counted against maxBytes, reservations included
	seq       atomic.Uint64 // the last sequence number (CAS unique) handed out
	flush     atomic.Pointer[flushState]
	flushMu   sync.Mutex    // serialises Flush's read-modify-write of flush
	stealNext atomic.Uint64 // where the next cross-shard eviction starts

	stopOnce sync.Once
	stop     chan struct{} // closed by Close
	done     chan struct{} // closed when the reclaimer has returned
}

// flushState records the flush_all commands that apply. It is immutable once
// published through Store.flush.
type flushState struct {
	seq    uint64 // items last mutated with a sequence number <= seq are flushed
	before int64  // items last stored before this second are flushed
	at     int64  // a pending delayed flush: once now >= at, items stored before at are flushed; 0 if none
}

// New returns a Store sized by cfg and starts its background reclaimer,
// which runs until Close. cfg is not retained beyond its values and never
// modified.
func New(cfg Config) *Store {
	return newStore(cfg, numShards, true)
}

// newStore returns a Store of n shards (a power of two). The reclaimer is
// started only if background is true; tests step it by hand otherwise.
func newStore(cfg Config, n int, background bool) *Store {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.ItemSizeMax <= 0 {
		cfg.ItemSizeMax = DefaultItemSizeMax
	}
	s := &Store{
		shards:   make([]shard, n),
		mask:     uint64(n - 1),
		maxBytes: cfg.MaxBytes,
		itemMax:  cfg.ItemSizeMax,
		chunkMax: chunkSizeMax(cfg.ItemSizeMax),
		noEvict:  cfg.NoEvictions,
		noCAS:    cfg.NoCAS,
		now:      cfg.Now,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.now == nil {
		// Reading the clock costs more than a Get; like memcached's
		// current_time, read it every tick instead.
		s.clock.Store(time.Now().Unix())
		s.now = s.clock.Load
		if !background {
			s.now = func() int64 { return time.Now().Unix() }
		}
	}
	s.classes = slabClasses(s.chunkMax)
	s.flush.Store(&flushState{})
	for i := range s.shards {
		s.shards[i].init(len(s.classes))
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

// shardFor returns the shard that holds key.
func (s *Store) shardFor(key []byte) *shard {
	return &s.shards[xxhash.Sum64(key)&s.mask]
}

// casOf is the CAS unique callers see for e: 0 with NoCAS.
func (s *Store) casOf(e *entry) uint64 {
	if s.noCAS {
		return 0
	}
	return e.cas
}

// stampLocked records a mutation of e: a new sequence number, and the CAS
// unique nc asks for. sh.mu must be held.
func (s *Store) stampLocked(e *entry, nc NewCAS) {
	e.seq = s.seq.Add(1)
	e.cas = e.seq
	if nc.Explicit {
		e.cas = nc.Value
	}
}

// meta returns e's metadata.
func (s *Store) meta(e *entry) Meta {
	return Meta{Flags: e.flags, Deadline: e.deadline, CAS: s.casOf(e)}
}

// lookupLocked returns the live item under key in sh, or nil and why there
// is none. A dead (expired or flushed) item it finds is removed and its
// memory released. sh.mu must be held.
func (s *Store) lookupLocked(sh *shard, key []byte, now int64, fl *flushState) (*entry, Lookup) {
	e := sh.m[string(key)]
	if e == nil {
		return nil, Miss
	}
	if lk := fl.check(e, now); lk != Hit {
		s.used.Add(-s.dropLocked(sh, e))
		return nil, lk
	}
	return e, Hit
}

// check tells whether e is live at now under the flushes of f.
func (f *flushState) check(e *entry, now int64) Lookup {
	if e.seq <= f.seq || int64(e.stored) < f.before || (f.at != 0 && now >= f.at && int64(e.stored) < f.at) {
		return MissFlushed
	}
	if e.deadline != 0 && e.deadline <= now {
		return MissExpired
	}
	return Hit
}

// Get looks key up. On Hit it appends the value to dst and returns the
// result, the item's Meta, and Hit; it marks the item fetched and most
// recently used. Otherwise it returns dst unchanged, a zero Meta and why it
// missed: Miss, MissExpired or MissFlushed.
func (s *Store) Get(key, dst []byte) ([]byte, Meta, Lookup) {
	return s.get(key, dst, false, 0)
}

// GetAndTouch is Get that also sets the item's deadline on a hit, as
// memcached's gat: the returned Meta carries the new deadline. The CAS
// unique is unchanged.
func (s *Store) GetAndTouch(key []byte, deadline int64, dst []byte) ([]byte, Meta, Lookup) {
	return s.get(key, dst, true, deadline)
}

func (s *Store) get(key, dst []byte, touch bool, deadline int64) ([]byte, Meta, Lookup) {
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	e, lk := s.lookupLocked(sh, key, now, fl)
	if e == nil {
		sh.mu.Unlock()
		return dst, Meta{}, lk
	}
	if touch {
		e.deadline = deadline
	}
	bumpLocked(sh, e, now)
	dst = append(dst, e.value...)
	m := s.meta(e)
	sh.mu.Unlock()
	return dst, m, Hit
}

// Touch sets the deadline of key's item, marks it fetched and most recently
// used, as memcached's touch. The CAS unique is unchanged. It returns OK, or
// NotFound if no live item has the key.
func (s *Store) Touch(key []byte, deadline int64) Status {
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, _ := s.lookupLocked(sh, key, now, fl)
	if e == nil {
		return NotFound
	}
	e.deadline = deadline
	bumpLocked(sh, e, now)
	return OK
}

// Delete removes key's item. If cas is non-zero it must equal the item's CAS
// unique (with NoCAS every item's is 0, so any non-zero cas fails). It
// returns OK, NotFound if no live item has the key, or Exists on a CAS
// mismatch.
func (s *Store) Delete(key []byte, cas uint64) Status {
	sh := s.shardFor(key)
	now, fl := s.now(), s.flush.Load()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, _ := s.lookupLocked(sh, key, now, fl)
	if e == nil {
		return NotFound
	}
	if cas != 0 && cas != s.casOf(e) {
		return Exists
	}
	s.used.Add(-s.dropLocked(sh, e))
	return OK
}

// Set stores value under key by mode, copying key and value, and returns OK
// with the item's new CAS unique (0 with NoCAS), or a failure and 0:
//
//   - ModeSet stores unconditionally; ModeAdd only if no live item has the
//     key (else NotStored, and the present item becomes most recently used);
//     ModeReplace only if one has (else NotStored).
//   - ModeAppend and ModePrepend add value after or before the present
//     value (NotStored if there is none). flags and deadline are ignored:
//     the item keeps its own, as in memcached.
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
func (s *Store) Set(mode Mode, key, value []byte, flags uint32, deadline int64, cas uint64) (Status, uint64) {
	return s.SetCAS(mode, key, value, flags, deadline, cas, NewCAS{})
}

// SetCAS is Set that gives the item stored the CAS unique nc asks for, as
// memcached's ms with E: cas is still what ModeCAS compares with.
func (s *Store) SetCAS(mode Mode, key, value []byte, flags uint32, deadline int64, cas uint64, nc NewCAS) (Status, uint64) {
	size := ItemSize(len(key), len(value))
	if s.limitSize(len(key), len(value), flags) > s.itemMax && mode != ModeAppend && mode != ModePrepend {
		if mode == ModeSet {
			s.Delete(key, 0)
		}
		return TooLarge, 0
	}
	if mode == ModeAppend || mode == ModePrepend {
		return s.concat(mode, key, value, cas, nc)
	}
	charge := int64(size) + entryOverhead
	if charge > s.maxBytes {
		if mode == ModeSet {
			s.Delete(key, 0)
		}
		return NoMemory, 0
	}
	if s.noCAS && mode != ModeCAS {
		cas = 0
	}
	if cas != 0 && (mode == ModeSet || mode == ModeReplace) {
		mode = ModeCAS
	}

	sh := s.shardFor(key)
	var r room
	defer s.release(&r)
	for {
		now, fl := s.now(), s.flush.Load()
		sh.mu.Lock()
		e, _ := s.lookupLocked(sh, key, now, fl)
		switch mode {
		case ModeAdd:
			if e != nil {
				sh.moveToFront(e)
				sh.mu.Unlock()
				return NotStored, 0
			}
		case ModeReplace:
			if e == nil {
				sh.mu.Unlock()
				return NotStored, 0
			}
		case ModeCAS:
			if e == nil {
				sh.mu.Unlock()
				return NotFound, 0
			}
			if cas == 0 || cas != s.casOf(e) {
				sh.mu.Unlock()
				return Exists, 0
			}
		}
		need := charge
		if e != nil {
			need -= e.charge()
		}
		switch s.roomLocked(sh, need, &r, e, now, fl) {
		case roomRetry:
			continue
		case roomFail:
			if mode == ModeSet && e != nil {
				s.used.Add(-s.dropLocked(sh, e))
			}
			sh.mu.Unlock()
			return NoMemory, 0
		}
		s.commit(need, &r)
		if e == nil {
			e = &entry{key: string(key), value: make([]byte, len(value))}
			copy(e.value, value)
			e.flags, e.deadline = flags, deadline
			s.stampLocked(e, nc)
			e.stored, e.access = toSecs(now), toSecs(now)
			s.linkLocked(sh, e)
			sh.totalItems++
		} else {
			s.uncountLocked(sh, e)
			if cap(e.value) == len(value) {
				e.value = e.value[:len(value)]
			} else {
				e.value = make([]byte, len(value))
			}
			copy(e.value, value)
			e.flags, e.deadline = flags, deadline
			s.countLocked(sh, e)
			s.renewLocked(sh, e, now, nc)
		}
		newCAS := s.casOf(e)
		sh.mu.Unlock()
		return OK, newCAS
	}
}

// concat is Set for ModeAppend and ModePrepend.
func (s *Store) concat(mode Mode, key, value []byte, cas uint64, nc NewCAS) (Status, uint64) {
	if s.noCAS {
		cas = 0
	}
	sh := s.shardFor(key)
	var r room
	defer s.release(&r)
	for {
		now, fl := s.now(), s.flush.Load()
		sh.mu.Lock()
		e, _ := s.lookupLocked(sh, key, now, fl)
		if e == nil {
			sh.mu.Unlock()
			return NotStored, 0
		}
		if cas != 0 && cas != s.casOf(e) {
			sh.mu.Unlock()
			return Exists, 0
		}
		n := len(e.value) + len(value)
		if s.limitSize(len(key), n, e.flags) > s.itemMax {
			sh.mu.Unlock()
			return NotStored, 0
		}
		need := int64(len(value))
		if e.charge()+need > s.maxBytes {
			sh.mu.Unlock()
			return NoMemory, 0
		}
		switch s.roomLocked(sh, need, &r, e, now, fl) {
		case roomRetry:
			continue
		case roomFail:
			sh.mu.Unlock()
			return NoMemory, 0
		}
		s.commit(need, &r)
		v := make([]byte, n)
		if mode == ModeAppend {
			copy(v[copy(v, e.value):], value)
		} else {
			copy(v[copy(v, value):], e.value)
		}
		s.uncountLocked(sh, e)
		e.value = v
		s.countLocked(sh, e)
		s.renewLocked(sh, e, now, nc)
		newCAS := s.casOf(e)
		sh.mu.Unlock()
		return OK, newCAS
	}
}

// renewLocked records that e was replaced by a new item of the same key: a
// new sequence number and the CAS unique nc asks for, stored now, not yet
// fetched, most recently used. sh.mu must be held.
func (s *Store) renewLocked(sh *shard, e *entry, now int64, nc NewCAS) {
	s.stampLocked(e, nc)
	e.stored, e.access = toSecs(now), toSecs(now)
	e.fetched, e.stale, e.tokenSent = false, false, false
	sh.moveToFront(e)
	sh.totalItems++
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
	old := s.flush.Load()
	f := &flushState{seq: old.seq, before: old.before}
	if old.at != 0 && old.at <= now {
		f.before = max(f.before, old.at)
	}
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
	st := Stats{LimitMaxBytes: s.maxBytes}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.TotalItems += sh.totalItems
		for j := range sh.classes {
			c := &sh.classes[j]
			st.Bytes += c.bytes
			st.CurrItems += c.items
			st.Evictions += c.evictions
			st.EvictedUnfetched += c.evictedUnfetched
			st.Reclaimed += c.reclaimed
			st.ExpiredUnfetched += c.expiredUnfetched
		}
		sh.mu.Unlock()
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
