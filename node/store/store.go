package store

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// The Store itself: its type, construction, clock and flushes (Flush),
// its Stats, and what every operation on a key uses to judge and stamp a
// record (check, casOf, metaOf, stamp, limitSize). The operations on keys
// are in read.go, write.go, arith.go and meta.go, the locking they share
// in locked.go, the pages and the making of room in arena.go.

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
	onWrite func(uint64)   // Config.OnWrite, or nil
}

// wrote tells Config.OnWrite of a write to key. (It passes the key's hash,
// not the key: a key given to a function value escapes, and the callers'
// keys would then be allocated on the heap.)
func (s *Store) wrote(key []byte) {
	if s.onWrite != nil {
		s.onWrite(xxhash.Sum64(key))
	}
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
		onWrite:   cfg.OnWrite,
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

// LastCAS returns the last CAS unique the store handed out: an item stored
// or changed later has a greater one (with NoCAS every item's is 0).
func (s *Store) LastCAS() uint64 { return s.seq.Load() }

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
