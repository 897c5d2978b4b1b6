package store

// Size classes: the store has no slabs, but it sorts items into memcached's
// slab classes by the size memcached gives them (ItemSize with the flags and
// CAS bytes it adds: its ITEM_ntotal) so that "stats items" and "stats
// slabs" can be answered in memcached's terms, an item in the class
// memcached would put it in.
const (
	classSmallest = 96      // memcached: sizeof(item) + the default -n 48
	classFactor   = 1.25    // memcached's default -f
	classAlign    = 8       // memcached's CHUNK_ALIGN_BYTES
	classMax      = 63      // memcached's MAX_NUMBER_OF_SLAB_CLASSES - 1
	slabChunkMax  = 1 << 19 // memcached's default slab_chunk_max: half its 1 MiB page
)

// ClassStats are the counters and gauges of one size class. The store has
// no LRU segments: in memcached's terms, its small queue (which new keys
// enter, and leave for the main queue once read) is the class's HOT LRU and
// its main queue the WARM one; it has no COLD or TEMP LRU.
type ClassStats struct {
	ID               int    // memcached's class number, from 1
	ChunkSize        int    // the largest item the class holds, by memcached's ITEM_ntotal; the last class also holds all larger items
	Items            int64  // live items held (and dead ones not yet removed)
	SmallItems       int64  // of them, those in the small queue (memcached's HOT)
	MainItems        int64  // and those in the main queue (memcached's WARM)
	RequestedBytes   int64  // the sum of their sizes by memcached's ITEM_ntotal: its mem_requested
	Bytes            int64  // what they count against MaxBytes
	Evictions        uint64 // live items removed to make room
	EvictedUnfetched uint64 // evicted items that were never read
	EvictedNonzero   uint64 // evicted items that had a deadline
	EvictedActive    uint64 // evicted items read since the last eviction pass, for want of a page to keep them in
	EvictedAge       uint32 // seconds between the last access of the item last evicted and its eviction
	Reclaimed        uint64 // dead items removed by the reclaimer or to make room
	ExpiredUnfetched uint64 // expired items reclaimed that were never read
	OutOfMemory      uint64 // writes of an item of the class that found no room
	MovesToMain      uint64 // items an eviction pass moved from the small to the main queue (memcached's moves_to_warm)
	MovesWithinMain  uint64 // items an eviction pass kept in the main queue (memcached's moves_within_lru)
	DirectReclaims   uint64 // pages emptied by writes of an item of the class to make room
	SmallHits        uint64 // reads (get hits) of items in the small queue
	MainHits         uint64 // reads (get hits) of items in the main queue
	TouchHits        uint64 // touches (touch, gat, mg with T) that found an item
	SetCmds          uint64 // storage commands, by the class of the item they would store
	DeleteHits       uint64 // deletes that removed an item
	IncrHits         uint64 // increments that found a number
	DecrHits         uint64 // decrements that found a number
	CASHits          uint64 // compare-and-swaps that stored
	CASBadval        uint64 // compare-and-swaps that found another CAS unique
	CrawlerChecked   uint64 // items a crawl (CrawlNext) examined
	CrawlerReclaimed uint64 // dead items a crawl removed, which Reclaimed does not count
	// OldestSmall and OldestMain are the seconds since the last access of
	// the least recently accessed item of each queue, as of the
	// reclaimer's last full pass over each shard; 0 if it met none.
	OldestSmall, OldestMain uint32
}

// Hits is the class's get hits: memcached's get_hits per class.
func (c *ClassStats) Hits() uint64 { return c.SmallHits + c.MainHits }

// ClassStats returns the classes that hold or have held items or have
// counted anything, in ascending size. Like Stats, it locks each shard in
// turn.
func (s *Store) ClassStats() []ClassStats {
	now := s.now()
	out := make([]ClassStats, len(s.classes))
	seen := make([]bool, len(s.classes))
	oldest := make([][2]secs, len(s.classes))
	evictedAt := make([]int64, len(s.classes))
	for i, size := range s.classes {
		out[i].ID = i + 1
		out[i].ChunkSize = size
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.with(func() {
			for j := range sh.classes {
				c, o := &sh.classes[j], &out[j]
				seen[j] = seen[j] || c.seen
				o.Items += c.items
				o.SmallItems += c.queued[qSmall]
				o.MainItems += c.queued[qMain]
				o.Bytes += c.bytes
				o.RequestedBytes += c.requested
				o.Evictions += c.evictions
				o.EvictedUnfetched += c.evictedUnfetched
				o.EvictedNonzero += c.evictedNonzero
				o.EvictedActive += c.evictedActive
				if c.evictions > 0 && c.evictedAt >= evictedAt[j] {
					evictedAt[j], o.EvictedAge = c.evictedAt, c.evictedAge
				}
				o.Reclaimed += c.reclaimed
				o.ExpiredUnfetched += c.expiredUnfetched
				o.OutOfMemory += c.outOfMemory
				o.MovesToMain += c.movesToMain
				o.MovesWithinMain += c.movesWithinMain
				o.DirectReclaims += c.directReclaims
				o.SmallHits += c.getHits[qSmall]
				o.MainHits += c.getHits[qMain]
				o.TouchHits += c.touchHits
				o.SetCmds += c.setCmds
				o.DeleteHits += c.deleteHits
				o.IncrHits += c.incrHits
				o.DecrHits += c.decrHits
				o.CrawlerChecked += c.crawlerChecked
				o.CrawlerReclaimed += c.crawlerReclaimed
				o.CASHits += c.casHits
				o.CASBadval += c.casBadval
				for q, t := range c.oldest {
					if t != 0 && (oldest[j][q] == 0 || t < oldest[j][q]) {
						oldest[j][q] = t
					}
				}
			}
		})
	}
	age := func(t secs) uint32 {
		if t == 0 || int64(t) >= now {
			return 0
		}
		return uint32(now - int64(t))
	}
	n := 0
	for j, o := range out {
		if !seen[j] && o.Items == 0 && o.SetCmds == 0 {
			continue
		}
		o.OldestSmall, o.OldestMain = age(oldest[j][qSmall]), age(oldest[j][qMain])
		out[n] = o
		n++
	}
	return out[:n]
}

// ResetStats zeroes the cumulative counters, as memcached's "stats reset"
// does: TotalItems and every counter of Stats and of the classes. The
// gauges (Bytes, CurrItems, the classes' items, bytes and ages) are kept.
// Like Stats, it locks each shard in turn.
func (s *Store) ResetStats() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.with(func() {
			sh.totalItems = 0
			for j := range sh.classes {
				sh.classes[j].resetCounters()
			}
		})
	}
}

// chunkSizeMax is the largest slab chunk memcached uses with an item size
// limit of itemMax: 512 KiB, or half of a smaller limit. Larger items are
// chunked.
func chunkSizeMax(itemMax int) int {
	return min(slabChunkMax, max(itemMax/2, classSmallest))
}

// slabClasses returns the chunk sizes of memcached's slab classes, as its
// slabs_init computes them with the default factor: from 96 bytes, times
// 1.25, aligned to 8, and last the largest chunk.
func slabClasses(chunkMax int) []int {
	var sizes []int
	size := classSmallest
	for len(sizes) < classMax-1 && float64(size) < float64(chunkMax)/classFactor {
		if size%classAlign != 0 {
			size += classAlign - size%classAlign
		}
		sizes = append(sizes, size)
		size = int(float64(size) * classFactor)
	}
	return append(sizes, chunkMax)
}
