package store

import (
	"sort"
	"sync"
)

// shard is one lock's worth of the store: its index, its pages and their
// queues, and its counters. Nothing in it holds a Go pointer per item: the
// collector sees a few slices per shard, one per page and one per external
// value.
type shard struct {
	mu         sync.Mutex // guards all the fields below and the bytes of the pages
	slots      []uint64   // the index: see index.go
	count      int        // occupied slots
	pages      [][]byte   // by page number; nil once released
	meta       []pageMeta // by page number
	free       []int32    // pages held for reuse: empty, counted in Store.used
	released   []int32    // page numbers whose page was given back to the budget
	queues     [2]queue   // small and main: see eviction.go
	extern     [][]byte   // external values by index; nil where unused
	externFree []uint32   // unused indices in extern
	ghost      []uint16   // fingerprints of keys lately evicted from the small queue
	classes    []classCounters
	totalItems uint64 // items ever stored here

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

// classCounters are one shard's counters for one size class.
type classCounters struct {
	items            int64 // items indexed
	bytes            int64 // their charges
	requested        int64 // their sizes as memcached's ITEM_ntotal (Store.limitSize)
	evictions        uint64
	evictedUnfetched uint64
	reclaimed        uint64
	expiredUnfetched uint64
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
	i := sort.SearchInts(s.classes, size)
	if i == len(s.classes) {
		i--
	}
	return uint8(i)
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

// countLocked adds an item with header h to its class's gauges.
func (s *Store) countLocked(sh *shard, h *hdr) {
	n := s.limitSize(h.keyLen, h.valueLen, h.flags)
	c := &sh.classes[s.classOf(n)]
	c.items++
	c.bytes += charge(h.keyLen, h.valueLen, h.bits)
	c.requested += int64(n)
}

// uncountLocked takes an item with header h out of its class's gauges and
// returns the class's counters.
func (s *Store) uncountLocked(sh *shard, h *hdr) *classCounters {
	n := s.limitSize(h.keyLen, h.valueLen, h.flags)
	c := &sh.classes[s.classOf(n)]
	c.items--
	c.bytes -= charge(h.keyLen, h.valueLen, h.bits)
	c.requested -= int64(n)
	return c
}
