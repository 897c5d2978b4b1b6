package command

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// memcached's LRU crawler commands ("lru_crawler crawl|metadump|sleep|
// tocrawl|enable|disable") and "stats cachedump", answered as memcached
// 1.6.18 answers them.
//
// memcached's crawler is a thread that walks its LRU lists for one job at
// a time: removing dead items ("crawl", and its own periodic passes) or
// listing items to a client ("metadump"). Here the store's background
// reclaimer does the periodic passes, "lru_crawler enable" and "disable"
// start and stop it, and a crawl or a metadump is a walk of the store (see
// store.Dump and store.Crawl) in steps that each hold one shard's lock for
// about crawlStep index slots, resting lru_crawler_sleep microseconds
// after every crawlStep items, as memcached rests after every
// crawls_persleep items. One job runs at a time, as in memcached: another
// meanwhile is answered BUSY.
//
// A metadump streams its lines to the client as the walk produces them,
// on the connection's goroutine: no lock is held while it writes, so a
// slow reader delays only itself.
const (
	// crawlStep is how many index slots a crawl or dump step examines,
	// and how many items a crawl or metadump examines between two rests:
	// memcached's crawls_persleep.
	crawlStep = 1000
	// cachedumpMax is memcached's cap on a "stats cachedump" reply, END
	// and a terminating NUL included.
	cachedumpMax = 2 << 20
	// maxClasses is memcached's MAX_NUMBER_OF_SLAB_CLASSES: class numbers
	// run from 1 to maxClasses-1.
	maxClasses = 64
)

// Replies of the crawler commands, memcached's.
const (
	crawlerDisabled   = "CLIENT_ERROR lru crawler disabled"
	crawlerBadFormat  = "CLIENT_ERROR bad command line format"
	crawlerBadClass   = "BADCLASS invalid class id"
	crawlerBusy       = "BUSY currently processing crawler request"
	crawlerNotStarted = "NOTSTARTED no items to crawl"
	crawlerUnknown    = "ERROR an unknown error happened"
)

// crawler is the node's LRU crawler: memcached's settings lru_crawler,
// lru_crawler_sleep and lru_crawler_tocrawl, which its commands change and
// its jobs follow, and the one job it runs at a time. Its fields are safe
// for concurrent use.
type crawler struct {
	mu      sync.Mutex  // serialises enable and disable
	enabled atomic.Bool // lru_crawler: crawls and metadumps allowed, the reclaimer running
	sleep   atomic.Uint32
	tocrawl atomic.Uint32
	running atomic.Bool   // a crawl or a metadump is under way
	starts  atomic.Uint64 // crawls and metadumps started, memcached's lru_crawler_starts
	// jobsMu guards stopped and the additions to wg, which counts the
	// background crawls: none starts once stopped is set, and
	// StopCrawls waits for those under way.
	jobsMu  sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// StopCrawls waits for the background crawls, which stop at their next
// step once the node's done channel is closed, and refuses new ones. The
// node calls it as it shuts down.
func (h *Handler) StopCrawls() {
	cr := &h.crawler
	cr.jobsMu.Lock()
	cr.stopped = true
	cr.jobsMu.Unlock()
	cr.wg.Wait()
}

// crawlerState is what "stats" and "stats settings" show of the LRU
// crawler, under memcached's names.
type crawlerState struct {
	Enabled     bool   // stats settings: lru_crawler (yes/no)
	Sleep       uint32 // stats settings: lru_crawler_sleep, microseconds
	ToCrawl     uint32 // stats settings: lru_crawler_tocrawl
	DumpEnabled bool   // stats settings: dump_enabled (yes/no): false with -X
	Running     bool   // stats: lru_crawler_running (0/1)
	Starts      uint64 // stats: lru_crawler_starts
}

// crawlerState returns the LRU crawler's settings and state now.
func (h *Handler) crawlerState() crawlerState {
	cr := &h.crawler
	return crawlerState{
		Enabled:     cr.enabled.Load(),
		Sleep:       cr.sleep.Load(),
		ToCrawl:     cr.tocrawl.Load(),
		DumpEnabled: !h.cfg.DisableDumping,
		Running:     cr.running.Load(),
		Starts:      cr.starts.Load(),
	}
}

// initCrawler sets the crawler up from the configuration.
func (h *Handler) initCrawler() {
	h.crawler.enabled.Store(!h.cfg.NoLRUCrawler)
	h.crawler.sleep.Store(uint32(h.cfg.LRUCrawlerSleep))
	h.crawler.tocrawl.Store(h.cfg.LRUCrawlerToCrawl)
	h.store.PauseReclaimer(h.cfg.NoLRUCrawler)
}

// crawlerRest waits lru_crawler_sleep microseconds on t, a rest of the
// crawler between two stretches of a job. It reports false if the server
// began to shut down.
func (h *Handler) crawlerRest(t *time.Timer) bool {
	d := time.Duration(h.crawler.sleep.Load()) * time.Microsecond
	if d == 0 {
		select {
		case <-h.done:
			return false
		default:
			return true
		}
	}
	t.Reset(d)
	select {
	case <-h.done:
		t.Stop()
		return false
	case <-t.C:
		return true
	}
}

// lruCrawlerCommand answers "lru_crawler …" as memcached's
// process_lru_crawler_command does.
func (c *session) lruCrawlerCommand(req *protocol.Request) {
	h := c.h
	args := req.Args
	word := func(i int, w string) bool { return len(args) > i && string(args[i]) == w }
	switch {
	case len(args) == 2 && word(0, "crawl"):
		c.Out = protocol.AppendLine(c.Out, h.startCrawl(args[1]))
	case len(args) == 2 && word(0, "metadump"):
		c.metadump(args[1])
	case len(args) == 2 && word(0, "tocrawl"):
		n, ok := protocol.ParseUint32(args[1])
		if !ok {
			c.Out = protocol.AppendLine(c.Out, crawlerBadFormat)
			return
		}
		h.crawler.tocrawl.Store(n)
		c.Out = append(c.Out, protocol.ReplyOK...)
	case len(args) == 2 && word(0, "sleep"):
		n, ok := protocol.ParseUint32(args[1])
		switch {
		case !ok:
			c.Out = protocol.AppendLine(c.Out, crawlerBadFormat)
		case n > config.MaxLRUCrawlerSleep:
			c.Out = protocol.AppendLine(c.Out, "CLIENT_ERROR sleep must be one second or less")
		default:
			h.crawler.sleep.Store(n)
			c.Out = append(c.Out, protocol.ReplyOK...)
		}
	case len(args) == 1 && word(0, "enable"):
		if !h.setCrawler(true) {
			c.Out = protocol.AppendLine(c.Out, "ERROR failed to start lru crawler thread")
			return
		}
		c.Out = append(c.Out, protocol.ReplyOK...)
	case len(args) == 1 && word(0, "disable"):
		h.setCrawler(false)
		c.Out = append(c.Out, protocol.ReplyOK...)
	default:
		c.textError(req, protocol.ErrUnknownCommand)
	}
}

// setCrawler turns the crawler on or off, with the store's reclaimer. It
// reports false when asked to turn on a crawler already on, which
// memcached refuses; turning off one already off is no fault.
func (h *Handler) setCrawler(on bool) bool {
	cr := &h.crawler
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if on && cr.enabled.Load() {
		return false
	}
	cr.enabled.Store(on)
	h.store.PauseReclaimer(!on)
	return true
}

// crawlTarget is what "lru_crawler crawl" or "metadump" was asked to walk.
type crawlTarget struct {
	classes uint64 // bit n for class n; 0 with all
	all     bool   // "all": every class
	hash    bool   // "hash": memcached's hash table walk, every item
}

// parseCrawlTarget reads the argument of "lru_crawler crawl|metadump" as
// memcached's lru_crawler_crawl: "all", "hash", or class numbers from 1 to
// 63 separated by commas (empty ones skipped, as strtok does). ok false
// is BADCLASS.
func parseCrawlTarget(arg []byte) (t crawlTarget, ok bool) {
	switch string(arg) {
	case "all":
		return crawlTarget{all: true}, true
	case "hash":
		return crawlTarget{hash: true}, true
	}
	for _, id := range bytes.Split(arg, []byte(",")) {
		if len(id) == 0 {
			continue
		}
		n, ok := protocol.ParseUint32(id)
		if !ok || n < 1 || n >= maxClasses {
			return crawlTarget{}, false
		}
		t.classes |= 1 << n
	}
	return t, true
}

// startCrawl answers "lru_crawler crawl <arg>": it starts a crawl that
// removes the dead items of the classes named, in the background, and
// returns the reply line.
func (h *Handler) startCrawl(arg []byte) string {
	cr := &h.crawler
	if !cr.enabled.Load() {
		return crawlerDisabled
	}
	t, ok := parseCrawlTarget(arg)
	if !ok {
		return crawlerBadClass
	}
	if !cr.running.CompareAndSwap(false, true) {
		return crawlerBusy
	}
	switch {
	case t.hash:
		// memcached walks its hash table only to dump it.
		cr.running.Store(false)
		return crawlerUnknown
	case !t.all && t.classes == 0:
		cr.running.Store(false)
		return crawlerNotStarted
	}
	cr.starts.Add(1)
	c := store.Crawl{Classes: t.classes, Limit: cr.tocrawl.Load()}
	// The first steps are the command's own work: a small store is
	// crawled before the OK, so that a command that follows it does not
	// find the crawler busy for want of the scheduler's attention.
	for range inlineCrawlSteps {
		if !h.store.CrawlNext(&c, crawlStep) {
			cr.running.Store(false)
			return "OK"
		}
	}
	cr.jobsMu.Lock()
	if cr.stopped {
		cr.jobsMu.Unlock()
		cr.running.Store(false)
		return "OK"
	}
	cr.wg.Add(1)
	cr.jobsMu.Unlock()
	go h.crawl(c)
	return "OK"
}

// inlineCrawlSteps is how many crawl steps "lru_crawler crawl" takes before
// it answers; the rest of the crawl runs in the background.
const inlineCrawlSteps = 64

// crawl runs a crawl to its end, or until the server shuts down.
func (h *Handler) crawl(c store.Crawl) {
	defer h.crawler.wg.Done()
	defer h.crawler.running.Store(false)
	t := time.NewTimer(time.Hour)
	t.Stop()
	rested := 0 // items examined at the last rest
	for h.store.CrawlNext(&c, crawlStep) {
		if c.Examined-rested < crawlStep {
			continue
		}
		rested = c.Examined
		if !h.crawlerRest(t) {
			return
		}
	}
	if h.verbosity.Load() >= 2 {
		h.log.Debug("lru crawler pass done", "examined", c.Examined, "reclaimed", c.Reclaimed)
	}
}

// metadump answers "lru_crawler metadump <arg>": a line for each live item
// of the classes named, in memcached's format, then END. The lines are
// written to the client as the walk produces them.
func (c *session) metadump(arg []byte) {
	h := c.h
	cr := &h.crawler
	if !cr.enabled.Load() {
		c.Out = protocol.AppendLine(c.Out, crawlerDisabled)
		return
	}
	if h.cfg.DisableDumping {
		c.Out = protocol.AppendLine(c.Out, "ERROR metadump not allowed")
		return
	}
	// memcached hands the connection to its crawler thread, which it can
	// do only with no reply owed: not after other requests of the same
	// read (unless a get or mn had it write what it owed), nor after
	// another metadump of it.
	if c.Owed() {
		c.Out = protocol.AppendLine(c.Out, "ERROR cannot pipeline other commands before metadump")
		return
	}
	t, ok := parseCrawlTarget(arg)
	if !ok {
		c.Out = protocol.AppendLine(c.Out, crawlerBadClass)
		return
	}
	if !cr.running.CompareAndSwap(false, true) {
		c.Out = protocol.AppendLine(c.Out, crawlerBusy)
		return
	}
	defer cr.running.Store(false)
	if !t.all && !t.hash && t.classes == 0 {
		c.Out = protocol.AppendLine(c.Out, crawlerNotStarted)
		return
	}
	cr.starts.Add(1)
	d := store.Dump{Classes: t.classes}
	var b store.Batch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	unrested := 0 // items listed since the last rest
	for more := true; more; {
		more = h.store.DumpNext(&d, crawlStep, &b)
		for i := range b.Items {
			c.Out = appendMetadumpLine(c.Out, b.Key(i), &b.Items[i])
		}
		if len(c.Out) >= netserve.FlushThreshold && c.Flush() != nil {
			c.CloseAfterReplies(netserve.CloseUnknown)
			return
		}
		if unrested += len(b.Items); unrested < crawlStep {
			continue
		}
		unrested = 0
		if more && !h.crawlerRest(timer) {
			// Shutting down: end the connection rather than let an
			// END claim the listing whole.
			c.CloseAfterReplies(netserve.CloseUnknown)
			return
		}
	}
	c.Out = append(c.Out, protocol.ReplyEnd...)
}

// appendMetadumpLine appends memcached's metadump line for an item:
// "key=<key, URI-encoded> exp=<unix second, -1 never> la=<unix second>
// cas=<n> fetch=<yes|no> cls=<class> size=<bytes>\n".
func appendMetadumpLine(dst, key []byte, it *store.ItemInfo) []byte {
	dst = append(dst, "key="...)
	dst = appendURIKey(dst, key)
	dst = append(dst, " exp="...)
	if it.Deadline == 0 {
		dst = append(dst, "-1"...)
	} else {
		dst = strconv.AppendInt(dst, it.Deadline, 10)
	}
	dst = append(dst, " la="...)
	dst = strconv.AppendInt(dst, it.Access, 10)
	dst = append(dst, " cas="...)
	dst = strconv.AppendUint(dst, it.CAS, 10)
	dst = append(dst, " fetch="...)
	dst = append(dst, stats.YesNo(it.Fetched)...)
	dst = append(dst, " cls="...)
	dst = strconv.AppendInt(dst, int64(it.Class), 10)
	dst = append(dst, " size="...)
	dst = strconv.AppendInt(dst, int64(it.Size), 10)
	return append(dst, '\n')
}

// cachedump answers "stats cachedump <class> <limit>" as memcached's
// item_cachedump: a line "ITEM <key> [<value bytes> b; <expiry, unix
// second, 0 never> s]" for each item of the class (at most limit of them
// unless limit is 0), the dead ones not yet removed included, the whole
// reply at most 2 MiB; then END. memcached skips the keys a meta command
// set in binary (base64, its b flag); the store does not keep that, so
// the keys no text command could name (holding a space, a newline or a
// NUL), which would break the line, are skipped instead.
func (c *session) cachedump(req *protocol.Request) {
	h := c.h
	if h.cfg.DisableDumping {
		c.Out = protocol.AppendLine(c.Out, "CLIENT_ERROR stats cachedump not allowed")
		return
	}
	if len(req.Args) < 3 {
		c.Out = protocol.AppendLine(c.Out, "CLIENT_ERROR bad command line")
		return
	}
	id, ok := protocol.ParseUint32(req.Args[1])
	limit, ok2 := protocol.ParseUint32(req.Args[2])
	if !ok || !ok2 {
		c.Out = protocol.AppendLine(c.Out, crawlerBadFormat)
		return
	}
	if id >= maxClasses {
		c.Out = protocol.AppendLine(c.Out, "CLIENT_ERROR Illegal slab id")
		return
	}
	if classHolds(h.store.ClassStats(), int(id)) {
		c.cachedumpClass(int(id), limit)
	}
	c.Out = append(c.Out, protocol.ReplyEnd...)
}

// classHolds reports whether class id holds items.
func classHolds(classes []store.ClassStats, id int) bool {
	for _, cs := range classes {
		if cs.ID == id {
			return cs.Items > 0
		}
	}
	return false
}

// cachedumpClass writes the ITEM lines of a cachedump of class id.
func (c *session) cachedumpClass(id int, limit uint32) {
	h := c.h
	d := store.Dump{Classes: 1 << id, Dead: true}
	var b store.Batch
	written, shown := 0, uint32(0)
	for more := true; more; {
		more = h.store.DumpNext(&d, crawlStep, &b)
		for i := range b.Items {
			if limit != 0 && shown >= limit {
				return
			}
			key := b.Key(i)
			if bytes.IndexByte(key, ' ') >= 0 || bytes.IndexByte(key, '\n') >= 0 || bytes.IndexByte(key, 0) >= 0 {
				continue
			}
			mark := len(c.Out)
			c.Out = appendCachedumpLine(c.Out, key, &b.Items[i])
			n := len(c.Out) - mark
			if written+n+len("END\r\n\x00") > cachedumpMax {
				c.Out = c.Out[:mark]
				return
			}
			written += n
			shown++
		}
		if len(c.Out) >= netserve.FlushThreshold && c.Flush() != nil {
			c.CloseAfterReplies(netserve.CloseUnknown)
			return
		}
	}
}

// appendCachedumpLine appends memcached's cachedump line for an item.
func appendCachedumpLine(dst, key []byte, it *store.ItemInfo) []byte {
	dst = append(dst, "ITEM "...)
	dst = append(dst, key...)
	dst = append(dst, " ["...)
	dst = strconv.AppendInt(dst, int64(it.ValueLen), 10)
	dst = append(dst, " b; "...)
	dst = strconv.AppendInt(dst, it.Deadline, 10)
	return append(dst, " s]\r\n"...)
}
