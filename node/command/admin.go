package command

import (
	"sync"

	"github.com/memcluster/memcluster/protocol"
)

// memcached's administrative commands that tune its memory: cache_memlimit,
// which the node acts on, and slabs and lru, which tune memcached's slab
// mover and segmented LRU, neither of which the node has. Those are
// answered as memcached answers them, its errors for bad arguments
// included, and what they set shows in "stats settings" as it would in
// memcached's; nothing else changes.

// compatSettings are memcached's settings that the node shows in "stats
// settings" without acting on them, as the slabs and lru commands set
// them. All methods are safe for concurrent use.
type compatSettings struct {
	mu sync.Mutex // guards the fields below
	compatValues
}

// compatValues are the values of compatSettings.
type compatValues struct {
	slabAutomove                int
	slabAutomoveRatio           float64
	lruSegmented                bool
	hotLRUPct, warmLRUPct       uint32
	hotMaxFactor, warmMaxFactor float64
	tempLRU                     bool
	temporaryTTL                int32
}

// init sets memcached 1.6.18's defaults.
func (c *compatSettings) init() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compatValues = compatValues{
		slabAutomove:      1,
		slabAutomoveRatio: 0.8,
		lruSegmented:      true,
		hotLRUPct:         20,
		warmLRUPct:        40,
		hotMaxFactor:      0.2,
		warmMaxFactor:     2.0,
		temporaryTTL:      61,
	}
}

// snapshot returns the values now.
func (c *compatSettings) snapshot() compatValues {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.compatValues
}

// update changes the values under the lock.
func (c *compatSettings) update(f func(v *compatValues)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.compatValues)
}

// Limits of cache_memlimit's argument, in megabytes, as memcached's.
const (
	memlimitMin = 8
	memlimitMax = 1_000_000_000
)

// adminReply appends line unless noreply.
func (c *session) adminReply(noreply bool, line string) {
	if !noreply {
		c.Out = protocol.AppendLine(c.Out, line)
	}
}

// lastIsNoreply reports whether the last word is "noreply", as memcached's
// set_noreply_maybe decides for the commands that call it.
func lastIsNoreply(args [][]byte) bool {
	return len(args) > 0 && string(args[len(args)-1]) == "noreply"
}

// cacheMemlimit answers "cache_memlimit <mb> [noreply]": the memory bound
// becomes mb megabytes. A smaller bound is reached before the reply (see
// store.SetMaxBytes); stats' limit_maxbytes and stats settings' maxbytes
// follow.
func (c *session) cacheMemlimit(req *protocol.Request) {
	h := c.h
	mb, ok := protocol.ParseUint32(req.Args[0])
	switch {
	case !ok:
		c.adminReply(req.Noreply, "ERROR")
	case mb < memlimitMin:
		c.adminReply(req.Noreply, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
	case mb > memlimitMax:
		c.adminReply(req.Noreply, "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
	default:
		h.store.SetMaxBytes(int64(mb) << 20)
		if h.memSet != nil {
			h.memSet(int64(mb) << 20)
		}
		if h.verbosity.Load() > 0 {
			h.log.Info("maxbytes adjusted", "mb", mb)
		}
		c.adminReply(req.Noreply, "OK")
	}
}

// slabsCommand answers "slabs reassign <src> <dst>" and "slabs automove
// <0|1|2>" (or "slabs automove ratio <r>") as memcached does. Pages are
// not moved: the node's pages belong to no class. A reassignment is
// judged against the pages "stats slabs" reports, so its errors are
// memcached's for what the node shows, and OK otherwise.
func (c *session) slabsCommand(req *protocol.Request) {
	args := req.Args
	ntokens := len(args) + 2 // memcached counts the name and a terminal token
	switch {
	case ntokens == 5 && string(args[0]) == "reassign":
		src, ok1 := protocol.ParseInt32(args[1])
		dst, ok2 := protocol.ParseInt32(args[2])
		if !ok1 || !ok2 {
			c.adminReply(false, "CLIENT_ERROR bad command line format")
			return
		}
		c.adminReply(false, c.h.reassign(int(src), int(dst)))
	case ntokens >= 4 && string(args[0]) == "automove":
		noreply := lastIsNoreply(args)
		if string(args[1]) == "ratio" {
			if ntokens < 5 {
				c.adminReply(noreply, "ERROR")
				return
			}
			ratio, ok := protocol.ParseDouble(args[2])
			if !ok {
				c.adminReply(noreply, "ERROR")
				return
			}
			c.h.compat.update(func(v *compatValues) { v.slabAutomoveRatio = ratio })
			c.adminReply(noreply, "OK")
			return
		}
		level, ok := protocol.ParseUint32(args[1])
		switch {
		case !ok:
			c.adminReply(noreply, "CLIENT_ERROR bad command line format")
		case level > 2:
			c.adminReply(noreply, "ERROR")
		default:
			c.h.compat.update(func(v *compatValues) { v.slabAutomove = int(level) })
			c.adminReply(noreply, "OK")
		}
	default:
		c.adminReply(false, "ERROR")
	}
}

// reassign is memcached's slabs_reassign, judged against the classes and
// pages "stats slabs" reports: class 0 is memcached's global page pool
// (slab_global_page_pool), -1 as src picks any class with a page to spare.
// It returns the reply line.
func (h *Handler) reassign(src, dst int) string {
	if src == dst {
		return "SAME src and dst class are identical"
	}
	largest := len(h.store.ChunkSizes())
	pages := make([]int64, largest+1)
	for _, c := range h.store.ClassStats() {
		pages[c.ID] = c.Bytes / slabPageSize
	}
	pages[0] = h.store.Stats().FreePageBytes / slabPageSize
	if src == -1 {
		for id := 1; id <= largest; id++ {
			if id != dst && pages[id] > 1 {
				src = id
				break
			}
		}
	}
	if src < 0 || src > largest || dst < 0 || dst > largest {
		return "BADCLASS invalid src or dst class id"
	}
	if pages[src] < 2 {
		return "NOSPARE source class has no spare pages"
	}
	return "OK"
}

// lruCommand answers "lru tune <hot pct> <warm pct> <hot factor> <warm
// factor>", "lru mode flat|segmented" and "lru temp_ttl <ttl>" as
// memcached does.
func (c *session) lruCommand(req *protocol.Request) {
	args := req.Args
	ntokens := len(args) + 2
	noreply := lastIsNoreply(args)
	switch {
	case string(args[0]) == "tune" && ntokens >= 7:
		hot, ok1 := protocol.ParseUint32(args[1])
		warm, ok2 := protocol.ParseUint32(args[2])
		hotFactor, ok3 := protocol.ParseDouble(args[3])
		warmFactor, ok4 := protocol.ParseDouble(args[4])
		switch {
		case !ok1 || !ok2 || !ok3 || !ok4:
			c.adminReply(noreply, "ERROR")
		case hot+warm > 80: // in 32 bits, as memcached adds them
			c.adminReply(noreply, "ERROR hot and warm pcts must not exceed 80")
		case warmFactor <= 0 || hotFactor <= 0:
			c.adminReply(noreply, "ERROR hot/warm age factors must be greater than 0")
		default:
			c.h.compat.update(func(v *compatValues) {
				v.hotLRUPct, v.warmLRUPct = hot, warm
				v.hotMaxFactor, v.warmMaxFactor = hotFactor, warmFactor
			})
			c.adminReply(noreply, "OK")
		}
	case string(args[0]) == "mode" && ntokens >= 4:
		switch string(args[1]) {
		case "flat":
			c.h.compat.update(func(v *compatValues) { v.lruSegmented = false })
			c.adminReply(noreply, "OK")
		case "segmented":
			c.h.compat.update(func(v *compatValues) { v.lruSegmented = true })
			c.adminReply(noreply, "OK")
		default:
			c.adminReply(noreply, "ERROR")
		}
	case string(args[0]) == "temp_ttl" && ntokens >= 4:
		ttl, ok := protocol.ParseInt32(args[1])
		if !ok {
			c.adminReply(noreply, "ERROR")
			return
		}
		c.h.compat.update(func(v *compatValues) {
			if ttl < 0 {
				v.tempLRU = false
			} else {
				v.tempLRU, v.temporaryTTL = true, ttl
			}
		})
		c.adminReply(noreply, "OK")
	default:
		c.adminReply(noreply, "ERROR")
	}
}
