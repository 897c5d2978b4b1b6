package store

import (
	"math"

	"github.com/cespare/xxhash/v2"
)

// Pages and eviction.
//
// A shard writes its records into pages of Store.pageSize bytes, each in one
// of two FIFO queues, as S3-FIFO (Yang et al., SOSP 2023) keeps its items: a
// small queue that new keys enter, and a main queue. A read only counts (a
// two-bit frequency in the record). When the shard needs a page and the
// budget has none, it empties the oldest page of one queue: of the small
// queue while that holds at least a tenth of the shard's pages, else of the
// main one. Emptying a small page moves each record read since it was
// written to the main queue and evicts the others, remembering their keys'
// fingerprints in a ghost table; emptying a main page moves each record read
// since its last pass back to the main queue's head, one count less, and
// evicts the others. A new key whose fingerprint is in the ghost table goes
// straight to the main queue. Moving a record copies it and points its index
// slot at the copy. Dead records (deleted, replaced, expired) are skipped:
// their bytes come back when their page is emptied.
//
// The policy and its constants were chosen by BenchmarkHitRatio, the lazy-
// loading Zipf(0.99) load of scripts/bench-memory.sh run in-process at
// 64 MiB. Hit ratios: FIFO 0.719; FIFO with reinsertion (CLOCK) 0.768;
// S3-FIFO without a ghost table 0.782, with 32-bit fingerprints for a
// quarter of the index slots 0.785, with 16-bit ones for half (the same
// memory) 0.787; promoting at two reads instead of one 0.772; a small queue
// of a fifth instead of a tenth 0.785. memcached's segmented LRU scores
// 0.760 on the same load over the network, and the map-and-LRU store this
// replaced 0.739.
//
// With NoEvictions a shard instead compacts the page with the most dead
// bytes, moving every live record; it keeps one page spare for that.
const (
	pageShift   = 16 // a location is a page number << pageShift | an offset
	pageMask    = 1<<pageShift - 1
	maxPageSize = 1 << pageShift
	minPageSize = 1 << 10

	qSmall = 0
	qMain  = 1

	// smallShare is the part of a shard's pages, in tenths, that the small
	// queue may hold before its pages are emptied first.
	smallShare = 1
	// promoteFreq is how often a record must have been read in the small
	// queue to move to the main one rather than be evicted.
	promoteFreq = 1
	// ghostRatio is how many index slots there are per ghost entry.
	ghostRatio = 2
)

// queue is a FIFO list of pages linked from its oldest (tail) to its
// youngest (head), which takes the writes.
type queue struct {
	head, tail int32 // page numbers; -1 if the queue is empty
	pages      int
}

// pageSizeFor is the page size for a shard of perShard bytes: a 64th of it,
// a power of two between minPageSize and maxPageSize.
func pageSizeFor(perShard int64) int {
	size := minPageSize
	for size < maxPageSize && int64(size)*2*64 <= perShard {
		size *= 2
	}
	return size
}

// queued is how many pages sh's queues hold.
func (sh *shard) queued() int { return sh.queues[qSmall].pages + sh.queues[qMain].pages }

// pushPage makes the empty page p the head of queue q.
func (sh *shard) pushPage(q int, p int32) {
	Q := &sh.queues[q]
	m := &sh.meta[p]
	m.next, m.used, m.dead, m.queue = -1, 0, 0, int8(q)
	if Q.head >= 0 {
		sh.meta[Q.head].next = p
	} else {
		Q.tail = p
	}
	Q.head = p
	Q.pages++
}

// unlinkPage takes page p out of queue q.
func (sh *shard) unlinkPage(q int, p int32) {
	Q := &sh.queues[q]
	Q.pages--
	if Q.tail == p {
		Q.tail = sh.meta[p].next
		if Q.tail < 0 {
			Q.head = -1
		}
		return
	}
	prev := Q.tail
	for sh.meta[prev].next != p {
		prev = sh.meta[prev].next
	}
	sh.meta[prev].next = sh.meta[p].next
	if Q.head == p {
		Q.head = prev
	}
}

// emptyPage marks page p free and holds it for reuse.
func (sh *shard) emptyPage(p int32) {
	m := &sh.meta[p]
	m.next, m.used, m.dead, m.queue = -1, 0, 0, -1
	m.gen++
	sh.free = append(sh.free, p)
}

// addPage allocates a page of size bytes, already counted in Store.used, and
// returns its number.
func (sh *shard) addPage(size int) int32 {
	page := make([]byte, size)
	if n := len(sh.released); n > 0 {
		p := sh.released[n-1]
		sh.released = sh.released[:n-1]
		sh.pages[p] = page
		return p
	}
	sh.pages = append(sh.pages, page)
	sh.meta = append(sh.meta, pageMeta{next: -1, queue: -1})
	return int32(len(sh.pages) - 1)
}

// popFree takes a page from sh's free pages.
func (sh *shard) popFree() int32 {
	n := len(sh.free) - 1
	p := sh.free[n]
	sh.free = sh.free[:n]
	return p
}

// releasePage drops the free page p, whose bytes the caller takes over.
func (sh *shard) releasePage(p int32) {
	sh.pages[p] = nil
	sh.released = append(sh.released, p)
}

// appendLocked finds room for a record of n bytes at the head of queue q
// and returns its location. A full head gets a new page: a free one, a new
// one from the budget, or one emptied by eviction (sh keeps one free page
// spare for moving records while it has pages in its queues). If sh has
// nothing to evict, appendLocked returns roomRetry, asking in r.need for a
// page's worth of memory from other shards. roomFail means there is no
// room.
func (s *Store) appendLocked(sh *shard, q, n int, r *room, now int64, fl *flushState) (uint64, roomResult) {
	ps := int64(s.pageSize)
	for {
		if head := sh.queues[q].head; head >= 0 {
			m := &sh.meta[head]
			if int(m.used)+n <= s.pageSize {
				loc := uint64(head)<<pageShift | uint64(m.used)
				m.used += int32(n)
				return loc, roomOK
			}
		}
		queued := sh.queued()
		switch free := len(sh.free); {
		case free >= 2 || free == 1 && queued == 0:
			sh.pushPage(q, sh.popFree())
		case free == 0 && queued == 0 && s.tryReserve(2*ps):
			// With the first page, the spare that moving records needs.
			sh.emptyPage(sh.addPage(s.pageSize))
			sh.pushPage(q, sh.addPage(s.pageSize))
		case r.got >= ps || s.tryReserve(ps-r.got):
			r.got = max(r.got-ps, 0)
			sh.pushPage(q, sh.addPage(s.pageSize))
		case queued > 0:
			if !s.evictPageLocked(sh, now, fl) {
				return 0, roomFail
			}
			r.evicted++
		case r.exhausted || r.rounds >= maxRounds:
			return 0, roomFail
		default:
			r.rounds++
			r.need = ps
			return 0, roomRetry
		}
	}
}

// reserveLocked makes r hold n bytes of the budget for sh: free memory,
// then sh's free pages and pages it empties, then (returning roomRetry,
// with n in r.need) other shards' memory.
func (s *Store) reserveLocked(sh *shard, n int64, r *room, now int64, fl *flushState) roomResult {
	for r.got < n {
		if s.tryReserve(n - r.got) {
			r.got = n
			break
		}
		if s.giveLocked(sh, r, now, fl) {
			continue
		}
		if r.exhausted || r.rounds >= maxRounds {
			return roomFail
		}
		r.rounds++
		r.need = n
		return roomRetry
	}
	return roomOK
}

// giveLocked moves one page's worth of sh's memory into r: a free page, or
// a page it empties first. It reports whether it could.
func (s *Store) giveLocked(sh *shard, r *room, now int64, fl *flushState) bool {
	if len(sh.free) == 0 {
		if sh.queued() == 0 || !s.evictPageLocked(sh, now, fl) {
			return false
		}
		r.evicted++
	}
	sh.releasePage(sh.popFree())
	r.got += int64(s.pageSize)
	return true
}

// stealFor takes the memory a write asked for by roomRetry (r.need bytes)
// from shards other than own, then gives back what r held only for the
// steal (r.pending). own.mu must not be held.
func (s *Store) stealFor(own *shard, r *room) {
	if !s.steal(own, r.need, r) {
		r.exhausted = true
	}
	if r.pending != 0 {
		s.used.Add(-r.pending)
		r.pending = 0
	}
}

// steal frees memory of shards other than own, locking one at a time, until
// r holds need bytes. It reports whether it freed or reserved anything.
// own.mu must not be held: two writers stealing from each other's shards
// would wait for each other.
func (s *Store) steal(own *shard, need int64, r *room) bool {
	progress := false
	for range s.shards {
		sh := &s.shards[s.stealNext.Add(1)&s.mask]
		if sh == own {
			continue
		}
		now := s.now()
		fl := s.flushAt(now)
		sh.with(func() {
			for r.got < need {
				if s.tryReserve(need - r.got) {
					r.got = need
				} else if !s.giveLocked(sh, r, now, fl) {
					break
				}
				progress = true
			}
		})
		if r.got >= need {
			return true
		}
	}
	return progress
}

// evictPageLocked empties one page of sh's queues (see the top of this
// file) into its free pages. It reports false if there was none to empty:
// with NoEvictions, when no page has dead bytes or there is no spare page.
func (s *Store) evictPageLocked(sh *shard, now int64, fl *flushState) bool {
	q := qMain
	var p int32
	if s.noEvict {
		if len(sh.free) == 0 {
			if !s.tryReserve(int64(s.pageSize)) {
				return false
			}
			sh.emptyPage(sh.addPage(s.pageSize))
		}
		if p, q = sh.deadestPage(); p < 0 {
			// Expired and flushed records are dead too, once found.
			s.sweepLocked(sh, now, fl)
			if p, q = sh.deadestPage(); p < 0 {
				return false
			}
		}
	} else {
		small, main := sh.queues[qSmall].pages, sh.queues[qMain].pages
		if small > 0 && (main == 0 || small*10 >= (small+main)*smallShare) {
			q = qSmall
		}
		p = sh.queues[q].tail
	}
	sh.unlinkPage(q, p)
	s.emptyPageLocked(sh, p, q, now, fl)
	sh.emptyPage(p)
	return true
}

// deadestPage returns the queued page with the most dead bytes and its
// queue, or -1 if no page has any.
func (sh *shard) deadestPage() (int32, int) {
	best, bq, most := int32(-1), 0, int32(0)
	for q := range sh.queues {
		for p := sh.queues[q].tail; p >= 0; p = sh.meta[p].next {
			if d := sh.meta[p].dead; d > most {
				best, bq, most = p, q, d
			}
		}
	}
	return best, bq
}

// sweepLocked reclaims every expired or flushed record of sh's queues.
func (s *Store) sweepLocked(sh *shard, now int64, fl *flushState) {
	for q := range sh.queues {
		for p := sh.queues[q].tail; p >= 0; p = sh.meta[p].next {
			s.reclaimPageLocked(sh, p, 0, math.MaxInt, now, fl, false)
		}
	}
}

// emptyPageLocked moves or evicts every live record of page p, which has
// left queue q, and reclaims its dead ones.
func (s *Store) emptyPageLocked(sh *shard, p int32, q int, now int64, fl *flushState) {
	page := sh.pages[p]
	base := uint64(p) << pageShift
	for off, used := 0, int(sh.meta[p].used); off < used; {
		rec := page[off:]
		n := lenOf(rec)
		loc := base | uint64(off)
		off += n
		bits := rec[offBits]
		if bits&bitDead != 0 {
			continue
		}
		h := readHdr(rec)
		hash := xxhash.Sum64(keyOf(rec))
		if fl.check(&h, now) != Hit {
			s.reclaimLocked(sh, sh.slotAt(hash, loc), loc, &h)
			continue
		}
		freq := bits >> freqShift
		if s.noEvict || q == qSmall && freq >= promoteFreq || q == qMain && freq > 0 {
			moved := bits &^ freqMask
			if q == qMain && freq > 0 {
				moved |= (freq - 1) << freqShift
			}
			rec[offBits] = moved
			if to, ok := s.moveLocked(sh, rec[:n]); ok {
				sh.slots[sh.slotAt(hash, loc)] = slotOf(tagOf(hash), to)
				c := s.classLocked(sh, &h)
				c.queued[q]--
				c.queued[qMain]++
				switch {
				case s.noEvict: // compaction, not a pass of the policy
				case q == qSmall:
					c.movesToMain++
				default:
					c.movesWithinMain++
				}
				continue
			}
			rec[offBits] = bits
		}
		if q == qSmall {
			sh.ghostAdd(hash)
		}
		if s.onEvict != nil {
			s.onEvict(Eviction{
				Key: keyOf(rec), Size: h.valueLen, Flags: h.flags, Deadline: int64(h.deadline),
				Access: int64(h.access), Fetched: bits&bitFetched != 0, Now: now,
			})
		}
		c := s.killLocked(sh, sh.slotAt(hash, loc), loc, &h)
		c.evictions++
		if bits&bitFetched == 0 {
			c.evictedUnfetched++
		}
		if freq > 0 {
			c.evictedActive++ // read since the last pass, but no page to keep it in
		}
		if h.deadline != 0 {
			c.evictedNonzero++
		}
		c.evictedAt = now
		c.evictedAge = uint32(max(now-int64(h.access), 0))
	}
}

// moveLocked copies the record rec to the head of the main queue, taking a
// spare page if it must, and returns its new location; false if there was
// no page to take.
func (s *Store) moveLocked(sh *shard, rec []byte) (uint64, bool) {
	head := sh.queues[qMain].head
	if head < 0 || int(sh.meta[head].used)+len(rec) > s.pageSize {
		switch {
		case len(sh.free) > 0:
			head = sh.popFree()
		case s.tryReserve(int64(s.pageSize)):
			head = sh.addPage(s.pageSize)
		default:
			return 0, false
		}
		sh.pushPage(qMain, head)
	}
	m := &sh.meta[head]
	copy(sh.pages[head][m.used:], rec)
	loc := uint64(head)<<pageShift | uint64(m.used)
	m.used += int32(len(rec))
	return loc, true
}

// retireLocked marks the record at loc, with header h, dead: out of the
// gauges, its external value freed. The caller sees to its index slot. It
// returns the counters of the record's class.
func (s *Store) retireLocked(sh *shard, loc uint64, h *hdr) *classCounters {
	rec := sh.record(loc)
	rec[offBits] |= bitDead
	sh.meta[loc>>pageShift].dead += int32(lenOf(rec))
	if h.bits&bitExternal != 0 {
		sh.freeExtern(le.Uint32(rec[headLen(h.bits)+h.keyLen:]))
		s.used.Add(-int64(h.valueLen))
	}
	return s.uncountLocked(sh, loc, h)
}

// killLocked removes the record at loc, indexed in slot, with header h. It
// returns the counters of the record's class.
func (s *Store) killLocked(sh *shard, slot int, loc uint64, h *hdr) *classCounters {
	sh.removeSlot(slot)
	return s.retireLocked(sh, loc, h)
}

// reclaimLocked removes the dead (expired or flushed) record at loc and
// counts it as reclaimed, and as expired unfetched if it was never read:
// memcached's LRU maintainer counts a flushed item so too.
func (s *Store) reclaimLocked(sh *shard, slot int, loc uint64, h *hdr) {
	c := s.killLocked(sh, slot, loc, h)
	c.reclaimed++
	if h.bits&bitFetched == 0 {
		c.expiredUnfetched++
	}
}

// addExtern keeps the external value v and returns its index.
func (sh *shard) addExtern(v []byte) uint32 {
	sh.externBytes += int64(len(v))
	if n := len(sh.externFree); n > 0 {
		i := sh.externFree[n-1]
		sh.externFree = sh.externFree[:n-1]
		sh.extern[i] = v
		return i
	}
	sh.extern = append(sh.extern, v)
	return uint32(len(sh.extern) - 1)
}

// freeExtern drops the external value at index i.
func (sh *shard) freeExtern(i uint32) {
	sh.externBytes -= int64(len(sh.extern[i]))
	sh.extern[i] = nil
	sh.externFree = append(sh.externFree, i)
}

// ghostLen is the length of the ghost table beside an index of n slots: a
// power of two near n/ghostRatio.
func ghostLen(n int) int {
	g := 1
	for g*2 <= n/ghostRatio {
		g *= 2
	}
	return g
}

// ghostPrint is the fingerprint the ghost table keeps of a key whose hash
// is h: 16 bits above those that pick its entry and below those that pick
// its shard, never 0.
func ghostPrint(h uint64) uint16 { return uint16(h>>42) | 1 }

// ghostAdd remembers the key whose hash is h as lately evicted.
func (sh *shard) ghostAdd(h uint64) {
	sh.ghost[uint32(h>>tagBits)&uint32(len(sh.ghost)-1)] = ghostPrint(h)
}

// ghostTake reports whether the key whose hash is h was lately evicted, and
// forgets it.
func (sh *shard) ghostTake(h uint64) bool {
	i := uint32(h>>tagBits) & uint32(len(sh.ghost)-1)
	if sh.ghost[i] == ghostPrint(h) {
		sh.ghost[i] = 0
		return true
	}
	return false
}

// growLocked grows sh's index (and renews its ghost table), taking the
// memory from the budget.
func (s *Store) growLocked(sh *shard, r *room, now int64, fl *flushState) roomResult {
	if len(sh.slots) >= maxSlots {
		return roomFail
	}
	n := sh.grownSlots()
	size := int64(n)*slotSize + int64(ghostLen(n))*2
	if res := s.reserveLocked(sh, size, r, now, fl); res != roomOK {
		return res
	}
	// Eviction may have emptied the index enough.
	if !sh.needsGrowth() {
		return roomOK
	}
	r.got -= size
	old := sh.indexBytes()
	stale := sh.slots
	sh.rehash(allocSlots(n))
	freeSlots(stale)
	sh.ghost = make([]uint16, ghostLen(n))
	s.used.Add(-old)
	return roomOK
}

// room is the memory one write has taken from the budget so far and not yet
// used: bytes added to Store.used, or freed from pages and kept there.
type room struct {
	got       int64
	need      int64 // with roomRetry: the bytes to take from other shards
	pending   int64 // with roomRetry: bytes reserved until the steal is done, then given back
	rounds    int
	exhausted bool   // a round of stealing freed nothing
	evicted   uint64 // pages emptied for the write, not yet counted in its class
}

// roomResult is the outcome of making room.
type roomResult uint8

const (
	roomOK    roomResult = iota // the room is had
	roomRetry                   // sh has none to give: take r.need from other shards with sh.mu released (stealFor), then re-evaluate (see writeKey)
	roomFail                    // there is no room
)

// tryReserve adds n bytes to Store.used if that keeps it within MaxBytes.
func (s *Store) tryReserve(n int64) bool {
	for {
		u := s.used.Load()
		if u+n > s.maxBytes.Load() {
			return false
		}
		if s.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// release gives back whatever r still holds.
func (s *Store) release(r *room) {
	if n := r.got + r.pending; n != 0 {
		s.used.Add(-n)
		r.got, r.pending = 0, 0
	}
}
