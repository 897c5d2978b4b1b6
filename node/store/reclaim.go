package store

import "time"

// The background reclaimer keeps the store's clock (unless Config.Now is
// set) and removes expired and flushed items nobody asks
// for. Each shard's LRU list holds a cursor (shard.crawl) that walks from the
// least recently used end towards the most recently used, removing dead
// items as it passes them; at the head it goes back to the tail and rests
// until the next tick. The work per tick and shard is bounded, so a shard's
// lock is never held for long.
const (
	reclaimInterval = 100 * time.Millisecond
	reclaimBudget   = 256 // items examined per shard and tick
)

// reclaimLoop runs the reclaimer until Close.
func (s *Store) reclaimLoop() {
	defer close(s.done)
	t := time.NewTicker(reclaimInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.clock.Store(now.Unix())
			s.reclaimTick(reclaimBudget)
		}
	}
}

// reclaimTick advances every shard's cursor by up to budget items.
func (s *Store) reclaimTick(budget int) {
	for i := range s.shards {
		sh := &s.shards[i]
		now, fl := s.now(), s.flush.Load()
		sh.mu.Lock()
		s.crawlLocked(sh, budget, now, fl)
		sh.mu.Unlock()
	}
}

// crawlLocked moves sh's cursor towards the head by up to budget items,
// reclaiming the dead ones. At the head the cursor returns to the tail and
// crawlLocked returns. sh.mu must be held.
func (s *Store) crawlLocked(sh *shard, budget int, now int64, fl *flushState) {
	c := &sh.crawl
	for range budget {
		e := c.prev
		if e == &sh.root {
			// A full pass: start the next one at the tail.
			sh.unlink(c)
			sh.insertAfter(c, sh.root.prev)
			return
		}
		if lk := fl.check(e, now); lk != Hit {
			s.used.Add(-s.reclaimLocked(sh, e, lk))
			continue
		}
		sh.unlink(c)
		sh.insertAfter(c, e.prev)
	}
}
