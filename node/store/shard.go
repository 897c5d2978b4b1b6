package store

import "sync"

// shard is one lock's worth of the store: its index, its pages and their
// queues, and its counters. Nothing in it holds a Go pointer per item: the
// collector sees a few slices per shard, one per page and one per external
// value.
type shard struct {
	mu          sync.Mutex // guards all the fields below and the bytes of the pages
	slots       []uint64   // the index: see index.go
	count       int        // occupied slots
	pages       [][]byte   // by page number; nil once released
	meta        []pageMeta // by page number
	free        []int32    // pages held for reuse: empty, counted in Store.used
	released    []int32    // page numbers whose page was given back to the budget
	queues      [2]queue   // small and main: see eviction.go
	extern      [][]byte   // external values by index; nil where unused
	externFree  []uint32   // unused indices in extern
	externBytes int64      // the bytes of the values in extern
	ghost       []uint16   // fingerprints of keys lately evicted from the small queue
	classes     []classCounters
	totalItems  uint64 // items ever stored here

	crawlPage int32  // the reclaimer's position: a page number,
	crawlOff  int32  // the offset of the next record in it,
	crawlGen  uint32 // and the page's generation when the offset was taken
}

// pageMeta is what a shard knows of one of its pages.
type pageMeta struct {
	next  int32  // the next younger page of its queue; -1 if none
	used  int32  // bytes written: records fill [0, used)
	dead  int32  // bytes of dead records among them
	gen   uint32 // bumped whenever the page is emptied
	queue int8   // qSmall, qMain, or -1 if free or released
}

// classCounters are one shard's counters for one size class. The queues
// stand for memcached's LRUs in its statistics: the small queue, which new
// keys enter, for HOT, and the main queue for WARM (see ClassStats).
type classCounters struct {
	// Gauges.
	items     int64    // items indexed
	queued    [2]int64 // of them, those in the small and the main queue
	bytes     int64    // their charges
	requested int64    // their sizes as memcached's ITEM_ntotal (Store.limitSize)
	seen      bool     // the class has held an item: it is listed from then on

	// Counters, zeroed by ResetStats.
	evictions, evictedUnfetched    uint64
	evictedNonzero, evictedActive  uint64
	evictedAt                      int64  // the clock when the class last evicted
	evictedAge                     uint32 // the seconds since that item's last access
	reclaimed, expiredUnfetched    uint64
	outOfMemory                    uint64
	movesToMain, movesWithinMain   uint64
	directReclaims                 uint64
	getHits                        [2]uint64 // by the queue of the item read
	touchHits, setCmds, deleteHits uint64
	incrHits, decrHits             uint64
	casHits, casBadval             uint64
	// What lru_crawler crawl examined and, of it, removed as dead
	// (memcached's crawler_items_checked and crawler_reclaimed).
	crawlerChecked, crawlerReclaimed uint64

	// The reclaimer's view of the class's ages, by queue: the last access
	// of its least recently accessed item as of the reclaimer's last full
	// pass over the shard (oldest; 0 if it met none), and so far in the
	// pass under way (passOldest).
	oldest, passOldest [2]secs
}

// resetCounters zeroes c's counters, as "stats reset" does; the gauges and
// the reclaimer's ages are kept.
func (c *classCounters) resetCounters() {
	*c = classCounters{
		items: c.items, queued: c.queued, bytes: c.bytes, requested: c.requested, seen: c.seen,
		oldest: c.oldest, passOldest: c.passOldest,
	}
}

func (sh *shard) init(nclasses int) {
	sh.slots = allocSlots(minSlots)
	sh.ghost = make([]uint16, ghostLen(minSlots))
	sh.queues = [2]queue{{head: -1, tail: -1}, {head: -1, tail: -1}}
	sh.classes = make([]classCounters, nclasses)
}

// indexBytes is what sh's index and ghost table count against MaxBytes.
func (sh *shard) indexBytes() int64 {
	return int64(len(sh.slots))*slotSize + int64(len(sh.ghost))*2
}

// record returns the bytes of sh's pages from the record at loc on.
func (sh *shard) record(loc uint64) []byte {
	return sh.pages[loc>>pageShift][loc&pageMask:]
}

// classOf returns the index of the smallest size class that holds an item of
// size bytes by memcached's ITEM_ntotal (limitSize), or the largest class.
func (s *Store) classOf(size int) uint8 {
	// A binary search without sort.Search's function call per step: reads
	// count their hit in the item's class.
	lo, hi := 0, len(s.classes)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.classes[mid] < size {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return uint8(lo)
}

// charge is what a record of these sizes counts in Stats.Bytes: the record
// and, for an external one, its value's buffer.
func charge(keyLen, valueLen int, bits uint8) int64 {
	n := int64(recordLen(keyLen, valueLen, bits))
	if bits&bitExternal != 0 {
		n += int64(valueLen)
	}
	return n
}

// queueOf returns the queue (qSmall or qMain) of the page that holds the
// record at loc.
func (sh *shard) queueOf(loc uint64) int {
	return int(sh.meta[loc>>pageShift].queue)
}

// classLocked returns sh's counters of the class of an item with header h.
func (s *Store) classLocked(sh *shard, h *hdr) *classCounters {
	return &sh.classes[s.classOf(s.limitSize(h.keyLen, h.valueLen, h.flags))]
}

// countLocked adds an item with header h, whose record is at loc, to its
// class's gauges.
func (s *Store) countLocked(sh *shard, loc uint64, h *hdr) {
	n := s.limitSize(h.keyLen, h.valueLen, h.flags)
	c := &sh.classes[s.classOf(n)]
	c.items++
	c.queued[sh.queueOf(loc)]++
	c.bytes += charge(h.keyLen, h.valueLen, h.bits)
	c.requested += int64(n)
	c.seen = true
}

// uncountLocked takes an item with header h, whose record is at loc, out
// of its class's gauges and returns the class's counters.
func (s *Store) uncountLocked(sh *shard, loc uint64, h *hdr) *classCounters {
	n := s.limitSize(h.keyLen, h.valueLen, h.flags)
	c := &sh.classes[s.classOf(n)]
	c.items--
	c.queued[sh.queueOf(loc)]--
	c.bytes -= charge(h.keyLen, h.valueLen, h.bits)
	c.requested -= int64(n)
	return c
}
