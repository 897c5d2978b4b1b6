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

// ClassStats are the counters and gauges of one size class.
type ClassStats struct {
	ID               int    // memcached's class number, from 1
	ChunkSize        int    // the largest item the class holds, by memcached's ITEM_ntotal; the last class also holds all larger items
	Items            int64  // live items held (and dead ones not yet removed)
	RequestedBytes   int64  // the sum of their sizes by memcached's ITEM_ntotal: its mem_requested
	Bytes            int64  // what they count against MaxBytes
	Evictions        uint64 // live items removed to make room
	EvictedUnfetched uint64 // evicted items that were never read
	Reclaimed        uint64 // dead items removed by the reclaimer or to make room
	ExpiredUnfetched uint64 // expired items reclaimed that were never read
}

// ClassStats returns the classes that hold items or have counted anything,
// in ascending size. Like Stats, it locks each shard in turn.
func (s *Store) ClassStats() []ClassStats {
	out := make([]ClassStats, len(s.classes))
	for i, size := range s.classes {
		out[i].ID = i + 1
		out[i].ChunkSize = size
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for j := range sh.classes {
			c, o := &sh.classes[j], &out[j]
			o.Items += c.items
			o.Bytes += c.bytes
			o.RequestedBytes += c.requested
			o.Evictions += c.evictions
			o.EvictedUnfetched += c.evictedUnfetched
			o.Reclaimed += c.reclaimed
			o.ExpiredUnfetched += c.expiredUnfetched
		}
		sh.mu.Unlock()
	}
	n := 0
	for _, o := range out {
		if o.Items == 0 && o.Evictions == 0 && o.Reclaimed == 0 {
			continue
		}
		out[n] = o
		n++
	}
	return out[:n]
}

// ResetStats zeroes the cumulative counters, as memcached's "stats reset"
// does: TotalItems, Evictions, EvictedUnfetched, Reclaimed and
// ExpiredUnfetched, in Stats and in every class. The gauges (Bytes,
// CurrItems, the classes' Items, Bytes and RequestedBytes) are kept. Like
// Stats, it locks each shard in turn.
func (s *Store) ResetStats() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.totalItems = 0
		for j := range sh.classes {
			c := &sh.classes[j]
			c.evictions, c.evictedUnfetched = 0, 0
			c.reclaimed, c.expiredUnfetched = 0, 0
		}
		sh.mu.Unlock()
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
