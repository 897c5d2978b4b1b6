package store

import (
	"runtime"
	"time"

	"github.com/cespare/xxhash/v2"
)

// The background reclaimer keeps the store's clock (unless Config.Now is
// set) and removes expired and flushed items nobody asks for. Each shard
// has a cursor (shard.crawlPage, crawlOff) that walks its pages in page
// order, record by record, reclaiming dead items as it passes them; after
// the last page it goes back to the first and rests until the next tick.
// The work per tick and shard is bounded, so a shard's lock is never held
// for long.
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
		case <-t.C:
			s.clock.Store(s.clockNow())
			s.reclaimTick(reclaimBudget)
		}
	}
}

// reclaimTick advances every shard's cursor by up to budget records,
// unless the reclaimer is paused.
func (s *Store) reclaimTick(budget int) {
	if s.reclaimPaused.Load() {
		return
	}
	for i := range s.shards {
		if i > 0 {
			// A tick examines thousands of records; with one processor
			// (GOMAXPROCS=1, as a node pinned to a core runs) it held it
			// for 0.3-0.4 ms, and every request waited as long. Between
			// shards the others run.
			runtime.Gosched()
		}
		sh := &s.shards[i]
		now := s.now()
		fl := s.flushAt(now)
		sh.with(func() { s.crawlLocked(sh, budget, now, fl) })
	}
}

// crawlLocked moves sh's cursor over up to budget records, in page order,
// reclaiming the dead ones. After the last page the cursor returns to the
// first and crawlLocked returns. sh.mu must be held.
func (s *Store) crawlLocked(sh *shard, budget int, now int64, fl *flushState) {
	for budget > 0 {
		p := sh.crawlPage
		if int(p) >= len(sh.pages) {
			// A full pass: its ages are the classes' ages now; start
			// the next one at the first page.
			for i := range sh.classes {
				c := &sh.classes[i]
				c.oldest, c.passOldest = c.passOldest, [2]secs{}
			}
			sh.crawlPage, sh.crawlOff = 0, 0
			return
		}
		m := &sh.meta[p]
		if m.queue < 0 {
			sh.crawlPage, sh.crawlOff = p+1, 0
			continue
		}
		if m.gen != sh.crawlGen {
			// The page was emptied since: its records are new.
			sh.crawlOff, sh.crawlGen = 0, m.gen
		}
		var n int
		sh.crawlOff, n = s.reclaimPageLocked(sh, p, sh.crawlOff, budget, now, fl, true)
		budget -= n
		if sh.crawlOff >= m.used {
			sh.crawlPage, sh.crawlOff = p+1, 0
			if int(p+1) < len(sh.meta) {
				sh.crawlGen = sh.meta[p+1].gen
			}
		}
	}
}

// reclaimPageLocked examines up to budget records of page p from offset off
// on, reclaiming the expired and flushed ones. With ages, it notes the last
// access of each live record in its class's passOldest. It returns the
// offset it stopped at and how many records it examined. sh.mu must be
// held.
func (s *Store) reclaimPageLocked(sh *shard, p, off int32, budget int, now int64, fl *flushState, ages bool) (int32, int) {
	page := sh.pages[p]
	q := sh.meta[p].queue
	n := 0
	for ; n < budget && off < sh.meta[p].used; n++ {
		rec := page[off:]
		loc := uint64(p)<<pageShift | uint64(off)
		off += int32(lenOf(rec))
		if rec[offBits]&bitDead != 0 {
			continue
		}
		h := readHdr(rec)
		if fl.check(&h, now) != Hit {
			s.reclaimLocked(sh, sh.slotAt(xxhash.Sum64(keyOf(rec)), loc), loc, &h)
			continue
		}
		if ages {
			c := s.classLocked(sh, &h)
			if t := max(h.access, 1); c.passOldest[q] == 0 || t < c.passOldest[q] {
				c.passOldest[q] = t
			}
		}
	}
	return off, n
}
