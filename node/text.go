package node

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// maxRelativeExptime is memcached's REALTIME_MAXDELTA: exptimes up to 30 days
// are relative, larger ones are unix times.
const maxRelativeExptime = 60 * 60 * 24 * 30

// maxVerbosity is memcached's MAX_VERBOSITY_LEVEL.
const maxVerbosity = 2

// deadline converts a client's exptime to the store's absolute deadline as
// memcached's realtime() does: 0 never expires; up to 30 days is relative;
// larger is a unix time, already past if before the server started; negative
// is already past.
func (s *Server) deadline(exptime int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1
	case exptime > maxRelativeExptime:
		if exptime <= s.started.Unix() {
			return 1
		}
		return exptime
	default:
		return s.currentTime() + exptime
	}
}

// currentTime is the unix second memcached's current_time stands for:
// memcached's clock ticks once a second from the moment it started, so the
// second it reads lags the wall clock's by up to one. It is the store's
// clock, which counts from the server's start (store.Config.Epoch):
// deadlines and the seconds left that meta commands show are reckoned from
// the very clock the store checks items against, so an item given n
// seconds lives at least n-1, as in memcached, at any phase of the second.
func (s *Server) currentTime() int64 { return s.store.Now() }

// flushAll invalidates what the store holds, at once or, with a positive
// exptime, once that time comes. memcached with CAS on flushes a second
// early (its oldest_live is realtime(exptime) - 1), and so do we.
func (s *Server) flushAll(exptime int64) {
	// 0 is "now" on the store's own clock, which may lag the wall clock by
	// its tick; the wall clock's second could read as a delay.
	var at int64
	oldest := s.relTime(s.currentTime())
	if exptime > 0 {
		at = s.deadline(exptime)
		oldest = s.relTime(at)
		if !s.cfg.NoCAS {
			at--
		}
	}
	if !s.cfg.NoCAS {
		oldest--
	}
	s.oldestLive.Store(oldest) // as memcached's settings.oldest_live
	s.store.Flush(at)
}

// storageMode returns the store's mode for a storage command.
func storageMode(cmd protocol.Command) store.Mode {
	switch cmd {
	case protocol.CmdAdd:
		return store.ModeAdd
	case protocol.CmdReplace:
		return store.ModeReplace
	case protocol.CmdAppend:
		return store.ModeAppend
	case protocol.CmdPrepend:
		return store.ModePrepend
	case protocol.CmdCas:
		return store.ModeCAS
	}
	return store.ModeSet
}

// reply appends a reply line unless the request asked for none.
func (c *conn) reply(req *protocol.Request, line []byte) {
	if !req.Noreply {
		c.out = append(c.out, line...)
	}
}

// textError answers a request the decoder refused.
func (c *conn) textError(req *protocol.Request, te *protocol.TextError) {
	if req == nil {
		c.out = protocol.AppendLine(c.out, te.Line)
		return
	}
	if te == protocol.ErrTooLarge {
		c.srv.counters.storeTooLarge.Add(1)
		c.srv.counters.detail.recordSet(req.Key())
		if req.Command == protocol.CmdSet || req.Command == protocol.CmdMetaSet {
			// The store never saw this set; drop the old value as
			// memcached does, so no stale data outlives a failed update.
			c.srv.store.Drop(req.Key())
		}
	}
	if !req.Noreply {
		c.out = protocol.AppendLine(c.out, te.Line)
	}
}

// handleText executes one decoded text request, appending its reply.
func (c *conn) handleText(req *protocol.Request) {
	s := c.srv
	switch req.Command {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		c.retrieve(req)
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas:
		c.storeText(req)
	case protocol.CmdDelete:
		s.counters.detail.recordDelete(req.Key())
		c.watchLookup(req.Key())
		if s.store.Delete(req.Key(), 0) == store.OK { // the store counts the hit
			c.reply(req, protocol.ReplyDeleted)
		} else {
			s.counters.deleteMisses.Add(1)
			c.reply(req, protocol.ReplyNotFound)
		}
	case protocol.CmdIncr, protocol.CmdDecr:
		c.arithmetic(req)
	case protocol.CmdTouch:
		s.counters.cmdTouch.Add(1)
		c.watchLookup(req.Key())
		if s.store.Touch(req.Key(), s.deadline(req.Exptime)) == store.OK { // the store counts the hit
			c.reply(req, protocol.ReplyTouched)
		} else {
			s.counters.touchMisses.Add(1)
			c.reply(req, protocol.ReplyNotFound)
		}
	case protocol.CmdFlushAll:
		s.counters.cmdFlush.Add(1)
		if s.cfg.DisableFlushAll {
			c.textError(req, protocol.ErrFlushDisabled)
			return
		}
		s.flushAll(req.Exptime)
		c.reply(req, protocol.ReplyOK)
	case protocol.CmdVersion:
		c.out = protocol.AppendLine(c.out, "VERSION "+Version)
	case protocol.CmdVerbosity:
		s.verbosity.Store(int32(min(req.Verbosity, maxVerbosity)))
		c.reply(req, protocol.ReplyOK)
	case protocol.CmdQuit:
		c.closeAfter = true
		c.closeReason = closeNormal
	case protocol.CmdShutdown:
		c.shutdownCommand(req)
	case protocol.CmdStats:
		c.statsCommand(req)
	case protocol.CmdLruCrawler:
		c.lruCrawlerCommand(req)
	case protocol.CmdMetaNoop:
		c.out = append(c.out, protocol.ReplyMetaNoop...)
	case protocol.CmdMetaGet:
		c.metaGet(req)
	case protocol.CmdMetaSet:
		c.metaSet(req)
	case protocol.CmdMetaDelete:
		c.metaDelete(req)
	case protocol.CmdMetaArith:
		c.metaArith(req)
	case protocol.CmdMetaDebug:
		c.metaDebug(req)
	case protocol.CmdConfig:
		c.configCommand(req)
	case protocol.CmdRefreshCerts:
		c.refreshCerts(req)
	case protocol.CmdWatch:
		c.watchCommand(req)
	case protocol.CmdCacheMemlimit:
		c.cacheMemlimit(req)
	case protocol.CmdSlabs:
		c.slabsCommand(req)
	case protocol.CmdLru:
		c.lruCommand(req)
	default:
		c.textError(req, protocol.ErrUnknownCommand)
	}
}

// retrieve answers get, gets, gat and gats.
func (c *conn) retrieve(req *protocol.Request) {
	s := c.srv
	touch := req.Command == protocol.CmdGat || req.Command == protocol.CmdGats
	withCAS := req.Command == protocol.CmdGets || req.Command == protocol.CmdGats
	var deadline int64
	if touch {
		deadline = s.deadline(req.Exptime)
	}
	for _, key := range req.Keys {
		var (
			value  []byte
			meta   store.Meta
			lookup store.Lookup
		)
		if touch {
			value, meta, lookup = s.store.GetAndTouch(key, deadline, c.scratch[:0])
			s.counters.cmdTouch.Add(1)
		} else {
			value, meta, lookup = s.store.Get(key, c.scratch[:0])
			s.counters.cmdGet.Add(1)
		}
		c.scratch = value
		s.counters.detail.recordGet(key, lookup == store.Hit)
		if s.watching()&logFetchers != 0 {
			c.logFetch(key, lookup, len(value), meta.Flags)
		}
		switch lookup {
		case store.Hit: // the store counted the hit in the item's class
			c.out = protocol.AppendValueHeader(c.out, key, meta.Flags, len(value), meta.CAS, withCAS)
			c.out = append(c.out, value...)
			c.out = append(c.out, '\r', '\n')
			continue
		case store.MissExpired:
			s.counters.getExpired.Add(1)
		case store.MissFlushed:
			s.counters.getFlushed.Add(1)
		}
		if touch {
			s.counters.touchMisses.Add(1)
		} else {
			s.counters.getMisses.Add(1)
		}
	}
	c.out = append(c.out, protocol.ReplyEnd...)
}

// storeText answers set, add, replace, append, prepend and cas.
func (c *conn) storeText(req *protocol.Request) {
	s := c.srv
	s.counters.detail.recordSet(req.Key())
	var cas uint64
	if req.Command == protocol.CmdCas {
		cas = req.CAS
	}
	mode, deadline := storageMode(req.Command), s.deadline(req.Exptime)
	var status store.Status
	if w := s.watching(); w&(logFetchers|logMutations) != 0 {
		e := storeEvent{key: req.Key(), cmd: storeCmd(mode, 0), size: len(req.Data), flags: req.Flags, deadline: deadline}
		status, _ = c.storeWatched(w, e, allocText, req.Command == protocol.CmdSet, func() (store.Status, uint64) {
			return s.store.Set(mode, req.Key(), req.Data, req.Flags, deadline, cas)
		})
	} else {
		status, _ = s.store.Set(mode, req.Key(), req.Data, req.Flags, deadline, cas)
	}
	if req.Command == protocol.CmdCas {
		s.counters.countCASMiss(status)
	}
	switch status {
	case store.OK:
		c.reply(req, protocol.ReplyStored)
	case store.NotStored:
		c.reply(req, protocol.ReplyNotStored)
	case store.Exists:
		c.reply(req, protocol.ReplyExists)
	case store.NotFound:
		c.reply(req, protocol.ReplyNotFound)
	case store.TooLarge:
		c.textError(req, protocol.ErrTooLarge)
	default:
		s.counters.storeNoMemory.Add(1)
		c.textError(req, protocol.ErrOutOfMemory)
	}
}

// arithmetic answers incr and decr.
func (c *conn) arithmetic(req *protocol.Request) {
	s := c.srv
	incr := req.Command == protocol.CmdIncr
	c.watchLookup(req.Key())
	v, _, status := s.store.Arith(req.Key(), incr, req.Delta, 0, false, 0, 0)
	misses := &s.counters.decrMisses
	if incr {
		misses = &s.counters.incrMisses
	}
	switch status {
	case store.OK: // a hit, counted by the store
		if !req.Noreply {
			c.out = protocol.AppendNumber(c.out, v)
		}
	case store.NotFound:
		misses.Add(1)
		c.reply(req, protocol.ReplyNotFound)
	case store.NonNumeric:
		c.textError(req, protocol.ErrNonNumeric)
	default:
		c.textError(req, &protocol.TextError{Line: "SERVER_ERROR out of memory"})
	}
}

// shutdownCommand answers "shutdown [graceful]": refused unless -A.
func (c *conn) shutdownCommand(req *protocol.Request) {
	if !c.srv.cfg.EnableShutdown {
		c.textError(req, protocol.ErrShutdownDisabled)
		return
	}
	if len(req.Args) == 0 || (len(req.Args) == 1 && string(req.Args[0]) == "graceful") {
		c.srv.log.Info("shutdown requested by a client", "remote", c.nc.RemoteAddr().String())
		c.closeAfter = true
		c.closeReason = closeShutdown
		c.srv.closeDone()
		return
	}
	c.textError(req, protocol.ErrShutdownMode)
}

// statsCommand answers "stats" and its groups.
func (c *conn) statsCommand(req *protocol.Request) {
	s := c.srv
	if len(req.Args) == 0 {
		c.out = appendStats(c.out, s.Stats())
		return
	}
	switch string(req.Args[0]) {
	case "reset":
		s.resetStats()
		c.out = append(c.out, protocol.ReplyReset...)
	case "detail":
		c.statsDetail(req)
	case "settings":
		c.out = appendStats(c.out, s.Settings())
	case "items":
		c.out = appendStats(c.out, s.itemStats())
	case "slabs":
		c.out = appendStats(c.out, s.slabStats())
	case "sizes":
		c.out = appendStats(c.out, []Stat{{"sizes_status", "disabled"}})
	case "conns":
		c.out = appendStats(c.out, s.connStats())
	case "cachedump":
		c.cachedump(req)
	case "extstore":
		// memcached without extstore configured: an empty block.
		c.out = append(c.out, protocol.ReplyEnd...)
	default:
		c.textError(req, protocol.ErrUnknownCommand)
	}
}

// statsDetail answers "stats detail on|off|dump" as memcached: words after
// the first are ignored, and a missing or unknown one is a usage error.
func (c *conn) statsDetail(req *protocol.Request) {
	d := &c.srv.counters.detail
	sub := ""
	if len(req.Args) > 1 {
		sub = string(req.Args[1])
	}
	switch sub {
	case "on":
		d.setEnabled(true)
		c.out = append(c.out, protocol.ReplyOK...)
	case "off":
		d.setEnabled(false)
		c.out = append(c.out, protocol.ReplyOK...)
	case "dump":
		c.out = d.appendDump(c.out)
	default:
		c.out = protocol.AppendLine(c.out, "CLIENT_ERROR usage: stats detail on|off|dump")
	}
}

// listenerInfo is what "stats conns" shows of a listener: its id, in the
// sequence of connections' ids, and the unix second it opened, since
// which it has served no command (memcached's secs_since_last_cmd of a
// listening connection).
type listenerInfo struct {
	id     uint64
	opened int64
}

// connStats returns "stats conns": every listener and connection, in the
// order of their ids, as memcached lists them in the order of their file
// descriptors.
func (s *Server) connStats() []Stat {
	type entry struct {
		id    uint64
		stats []Stat
	}
	var entries []entry
	now := s.currentTime()
	s.mu.Lock()
	for l, info := range s.listeners {
		id := strconv.FormatUint(info.id, 10)
		entries = append(entries, entry{info.id, []Stat{
			{id + ":addr", addrString(l.Addr())},
			{id + ":state", "conn_listening"},
			{id + ":secs_since_last_cmd", strconv.FormatInt(now-info.opened, 10)},
		}})
	}
	for c := range s.conns {
		id := strconv.FormatUint(c.id, 10)
		state := "conn_parse_cmd"
		if c.idle.Load() {
			state = "conn_waiting"
		}
		entries = append(entries, entry{c.id, []Stat{
			{id + ":addr", addrString(c.nc.RemoteAddr())},
			{id + ":listen_addr", addrString(c.nc.LocalAddr())},
			{id + ":state", state},
			{id + ":secs_since_last_cmd", strconv.FormatInt(now-c.lastCmd.Load(), 10)},
		}})
	}
	s.mu.Unlock()
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.id, b.id) })
	var out []Stat
	for _, e := range entries {
		out = append(out, e.stats...)
	}
	return out
}

// addrString renders an address as memcached does: "tcp:host:port" or
// "unix:path".
func addrString(a interface {
	Network() string
	String() string
}) string {
	if a == nil {
		return "unknown"
	}
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.Network() + ":" + a.String()
}
