package store

// MaxBytes returns the store's memory bound: Config.MaxBytes, or what
// SetMaxBytes last set.
func (s *Store) MaxBytes() int64 { return s.maxBytes.Load() }

// SetMaxBytes changes the memory bound at run time, as memcached's
// cache_memlimit. A larger bound lets writes take more memory at once. A
// smaller one is reached before SetMaxBytes returns, unless NoEvictions
// forbids evicting what it would take (writes then find no room until the
// items are deleted or expire): the store gives memory back a page at a
// time, shard after shard, shrinking first the hash indexes that
// evictions have left mostly empty, then releasing free pages, then
// evicting a page's worth of items as a full store does. Each step holds
// one shard's lock for about as long as a write that evicts, so the store
// keeps serving meanwhile. n must be positive.
func (s *Store) SetMaxBytes(n int64) {
	s.maxBytes.Store(n)
	for s.used.Load() > n {
		progress := false
		for i := range s.shards {
			if s.used.Load() <= s.maxBytes.Load() {
				return
			}
			sh := &s.shards[i]
			now := s.now()
			fl := s.flushAt(now)
			sh.with(func() {
				if s.shrinkLocked(sh, now, fl) {
					progress = true
				}
			})
		}
		if !progress || s.maxBytes.Load() != n {
			// Nothing left to give, or another call took over.
			return
		}
	}
}

// shrinkLocked gives one step's worth of sh's memory back to the budget: the
// room its index no longer needs, else a free page, else a page it empties.
// It reports whether it gave anything.
func (s *Store) shrinkLocked(sh *shard, now int64, fl *flushState) bool {
	if s.shrinkIndexLocked(sh) {
		return true
	}
	if len(sh.free) == 0 {
		if sh.queued() == 0 || !s.evictPageLocked(sh, now, fl) {
			return false
		}
	}
	sh.releasePage(sh.popFree())
	s.used.Add(-int64(s.pageSize))
	return true
}

// shrinkIndexLocked rebuilds sh's index (and renews its ghost table) at
// twice the length its keys need, when that halves it at least, and gives
// the difference back to the budget. It reports whether it did.
func (s *Store) shrinkIndexLocked(sh *shard) bool {
	n := max(minSlots, 2*sh.count)
	if len(sh.slots) < 2*n {
		return false
	}
	old := sh.indexBytes()
	stale := sh.slots
	sh.rehash(allocSlots(n))
	freeSlots(stale)
	sh.ghost = make([]uint16, ghostLen(n))
	s.used.Add(sh.indexBytes() - old)
	return true
}

// ChunkSizes returns the chunk sizes of the size classes, ascending:
// memcached's slab classes, the last its largest chunk (slab_chunk_max).
// The caller may modify the result.
func (s *Store) ChunkSizes() []int { return append([]int(nil), s.classes...) }
