package store

import "github.com/cespare/xxhash/v2"

// Walks: listing the items (DumpNext) and removing the dead ones of chosen
// classes (CrawlNext), as memcached's "stats cachedump", "lru_crawler
// metadump" and "lru_crawler crawl" do.
//
// A walk visits the shards in turn and, in each, the entries of its index
// in the order of their tags (the bits of the key's hash the index files a
// key by; see index.go), one range of tags per call, under the shard's lock,
// which it releases between calls. A range covers about as many slots as the
// caller's budget, so no call holds a lock for long however large the store.
// The order of tags does not depend on the index's size, and a key keeps
// its tag (its slot may move, its record may be moved or replaced), so a
// walk lists exactly once every key that is present from its start to its
// end, however the store changes meanwhile; a key stored or removed during
// the walk is listed at most once. Walking the pages instead would miss a
// key whose record moved behind the walk, or list it twice.

// ItemInfo is one item as a walk reports it: what memcached's "stats
// cachedump" and "lru_crawler metadump" print of an item.
type ItemInfo struct {
	Class    int    // the item's size class, memcached's number (ClassStats.ID)
	Size     int    // its size by memcached's ITEM_ntotal: what ClassStats.RequestedBytes adds up
	ValueLen int    // its value's length
	Flags    uint32 // the client's flags
	Deadline int64  // the unix second it expires at; 0 never
	Access   int64  // the unix second of its last access, renewed by reads at most once a minute, as memcached's
	CAS      uint64 // its CAS unique; 0 with NoCAS
	Fetched  bool   // read since it was stored
	Dead     bool   // expired or flushed but not yet removed (listed only with Dump.Dead)

	keyOff, keyLen uint32 // the key's bytes in the batch's keys
}

// Batch receives the items one DumpNext call copies out of the store. It
// holds one buffer for all their keys and no pointer per item; once grown,
// reusing it for later calls allocates nothing.
type Batch struct {
	Items []ItemInfo
	keys  []byte
}

// Key returns the key of b.Items[i]. It aliases b's memory, which the next
// DumpNext into b overwrites.
func (b *Batch) Key(i int) []byte {
	it := &b.Items[i]
	return b.keys[it.keyOff : it.keyOff+it.keyLen]
}

// walkPos is a walk's position: the shard it is in and the first tag of
// that shard it has not visited.
type walkPos struct {
	shard int
	tag   uint64
	done  bool
}

// span returns the range of tags [lo, hi) the next step from p visits in a
// shard whose index has n slots: about budget slots' worth.
func (p *walkPos) span(n, budget int) (lo, hi uint64) {
	step := (uint64(max(budget, 1))<<tagBits + uint64(n) - 1) / uint64(n)
	return p.tag, min(p.tag+max(step, 1), 1<<tagBits)
}

// advance moves p past the range ending at hi, to the next shard after
// the last tag of one, and reports whether the walk goes on.
func (p *walkPos) advance(hi uint64, shards int) bool {
	p.tag = hi
	if hi == 1<<tagBits {
		p.shard, p.tag = p.shard+1, 0
	}
	p.done = p.shard >= shards
	return !p.done
}

// scanLocked calls visit with the location of each entry of sh's index
// whose tag lies in [lo, hi), lo < hi. visit must not change the index.
// sh.mu must be held.
//
// An entry sits at its home slot (homeOf its tag, which grows with the
// tag) or after it, in the run of occupied slots that holds its home, the
// table taken as a ring. So every entry of the range lies between the home
// of lo and the first empty slot after the home of hi-1.
func (sh *shard) scanLocked(lo, hi uint64, visit func(loc uint64)) {
	n := len(sh.slots)
	first := homeOf(lo, n)
	last := homeOf(hi-1, n) - first // how far the homes of the range reach
	for k, i := 0, first; k < n; k, i = k+1, next(i, n) {
		v := sh.slots[i]
		if v == 0 {
			if k > last {
				return
			}
			continue
		}
		if t := v >> locBits; t >= lo && t < hi {
			visit(v&locMask - 1)
		}
	}
}

// Dump is a position in a listing of the store's items, and which items it
// lists. The zero Dump lists every live item, from the start. A Dump is
// advanced by DumpNext; it is not safe for concurrent use.
type Dump struct {
	// Classes selects the size classes listed: bit n for class number n
	// (1 to 63, as ClassStats.ID). If zero, every class is.
	Classes uint64
	// Dead lists as well the items that have expired or been flushed but
	// have not been removed yet, as memcached's "stats cachedump" does
	// (they count in ClassStats.Items until then). Otherwise only live
	// items are listed, as by its "lru_crawler metadump".
	Dead bool

	pos walkPos
}

// Done reports whether d has listed the whole store.
func (d *Dump) Done() bool { return d.pos.done }

// DumpNext resets b and copies into it the items d selects from the next
// range of d's walk, examining about budget index slots under one shard's
// lock (see the top of this file), and advances d. It reports whether the
// walk goes on; b may be empty even then. Listing an item does not count
// as reading it.
func (s *Store) DumpNext(d *Dump, budget int, b *Batch) bool {
	b.Items, b.keys = b.Items[:0], b.keys[:0]
	if d.pos.done {
		return false
	}
	return s.step(&d.pos, budget, func(sh *shard, lo, hi uint64, now int64, fl *flushState) {
		sh.scanLocked(lo, hi, func(loc uint64) {
			rec := sh.record(loc)
			h := readHdrCAS(rec)
			dead := fl.check(&h, now) != Hit
			if dead && !d.Dead {
				return
			}
			size := s.limitSize(h.keyLen, h.valueLen, h.flags)
			class := int(s.classOf(size)) + 1
			if d.Classes != 0 && d.Classes&(1<<class) == 0 {
				return
			}
			b.Items = append(b.Items, ItemInfo{
				Class:    class,
				Size:     size,
				ValueLen: h.valueLen,
				Flags:    h.flags,
				Deadline: int64(h.deadline),
				Access:   int64(h.access),
				CAS:      s.casOf(&h),
				Fetched:  h.bits&bitFetched != 0,
				Dead:     dead,
				keyOff:   uint32(len(b.keys)),
				keyLen:   uint32(h.keyLen),
			})
			b.keys = append(b.keys, keyOf(rec)...)
		})
	})
}

// Crawl is a pass of memcached's LRU crawler ("lru_crawler crawl") over the
// store: it removes the expired and flushed items of the classes it
// selects, as the background reclaimer does at its own pace, counting them
// apart from it, as memcached's crawler does (see CrawlNext). The zero Crawl examines every class without limit. A Crawl
// is advanced by CrawlNext; it is not safe for concurrent use.
type Crawl struct {
	// Classes selects the size classes crawled, as Dump.Classes. If
	// zero, every class is.
	Classes uint64
	// Limit bounds how many items of each class the pass examines, as
	// memcached's lru_crawler_tocrawl. If zero, there is no bound.
	Limit uint32

	// Examined counts the items examined so far, Reclaimed those removed.
	Examined, Reclaimed int

	pos      walkPos
	perClass [classMax + 1]uint32 // items examined, by class number
	dead     []uint64             // locations of the dead records of a range
}

// Done reports whether c has crawled the whole store.
func (c *Crawl) Done() bool { return c.pos.done }

// CrawlNext crawls the next range of c's walk, examining about budget
// index slots under one shard's lock (see the top of this file), and
// advances c. It reports whether the walk goes on. The classes count what
// it examined and removed (ClassStats' CrawlerChecked and
// CrawlerReclaimed) and, of the expired items removed, those never read
// (ExpiredUnfetched), as memcached's crawler counts them: not under
// Reclaimed.
func (s *Store) CrawlNext(c *Crawl, budget int) bool {
	if c.pos.done {
		return false
	}
	return s.step(&c.pos, budget, func(sh *shard, lo, hi uint64, now int64, fl *flushState) {
		c.dead = c.dead[:0]
		sh.scanLocked(lo, hi, func(loc uint64) {
			rec := sh.record(loc)
			h := readHdr(rec)
			class := s.ClassOf(h.keyLen, h.valueLen, h.flags)
			if c.Classes != 0 && c.Classes&(1<<class) == 0 {
				return
			}
			if c.Limit != 0 {
				if c.perClass[class] >= c.Limit {
					return
				}
				c.perClass[class]++
			}
			c.Examined++
			sh.classes[class-1].crawlerChecked++
			if fl.check(&h, now) != Hit {
				c.dead = append(c.dead, loc)
			}
		})
		// Removing an entry shifts others in the index: remove only once
		// the range has been scanned.
		for _, loc := range c.dead {
			rec := sh.record(loc)
			h := readHdr(rec)
			slot := sh.slotAt(xxhash.Sum64(keyOf(rec)), loc)
			counts := s.killLocked(sh, slot, loc, &h)
			counts.crawlerReclaimed++
			if h.bits&bitFetched == 0 && fl.check(&h, now) != MissFlushed {
				counts.expiredUnfetched++ // as memcached's crawler, not for a flushed item
			}
			c.Reclaimed++
		}
	})
}

// step calls visit with the shard of the next range of pos's walk, about
// budget index slots, locked, and with the range and the clock and flushes
// to judge its items by; the shard is unlocked when visit returns or
// panics. Then it advances pos past the range and reports whether the walk
// goes on.
func (s *Store) step(pos *walkPos, budget int, visit func(sh *shard, lo, hi uint64, now int64, fl *flushState)) bool {
	sh := &s.shards[pos.shard]
	now := s.now()
	fl := s.flushAt(now)
	var hi uint64
	sh.with(func() {
		var lo uint64
		lo, hi = pos.span(len(sh.slots), budget)
		visit(sh, lo, hi, now, fl)
	})
	return pos.advance(hi, len(s.shards))
}

// PauseReclaimer stops (paused true) or restarts the background reclaimer's
// removal of dead items, as memcached's "lru_crawler disable" and "enable"
// stop and start its crawler. The store's clock keeps ticking either way,
// and dead items are still removed when found by a read or a write, and
// when eviction empties their page.
func (s *Store) PauseReclaimer(paused bool) { s.reclaimPaused.Store(paused) }
