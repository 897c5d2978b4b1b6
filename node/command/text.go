package command

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
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
func (h *Handler) deadline(exptime int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1
	case exptime > maxRelativeExptime:
		if exptime <= h.started.Unix() {
			return 1
		}
		return exptime
	default:
		return h.currentTime() + exptime
	}
}

// currentTime is the unix second memcached's current_time stands for:
// memcached's clock ticks once a second from the moment it started, so the
// second it reads lags the wall clock's by up to one. It is the store's
// clock, which counts from the server's start (store.Config.Epoch):
// deadlines and the seconds left that meta commands show are reckoned from
// the very clock the store checks items against, so an item given n
// seconds lives at least n-1, as in memcached, at any phase of the second.
func (h *Handler) currentTime() int64 { return h.store.Now() }

// flushAll invalidates what the store holds, at once or, with a positive
// exptime, once that time comes. memcached with CAS on flushes a second
// early (its oldest_live is realtime(exptime) - 1), and so do we.
func (h *Handler) flushAll(exptime int64) {
	// 0 is "now" on the store's own clock, which may lag the wall clock by
	// its tick; the wall clock's second could read as a delay.
	var at int64
	oldest := h.relTime(h.currentTime())
	if exptime > 0 {
		at = h.deadline(exptime)
		oldest = h.relTime(at)
		if !h.cfg.NoCAS {
			at--
		}
	}
	if !h.cfg.NoCAS {
		oldest--
	}
	h.oldestLive.Store(oldest) // as memcached's settings.oldest_live
	h.store.Flush(at)
	if h.handoff != nil {
		h.handoff.Flushed() // what was flushed must not come back
	}
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
func (c *session) reply(req *protocol.Request, line []byte) {
	if !req.Noreply {
		c.Out = append(c.Out, line...)
	}
}

// textError answers a request the decoder refused.
func (c *session) textError(req *protocol.Request, te *protocol.TextError) {
	if req == nil {
		c.Out = protocol.AppendLine(c.Out, te.Line)
		return
	}
	if te == protocol.ErrTooLarge {
		c.h.counters.StoreTooLarge.Add(1)
		c.h.counters.Detail.RecordSet(req.Key())
		if req.Command == protocol.CmdSet || req.Command == protocol.CmdMetaSet {
			// The store never saw this set; drop the old value as
			// memcached does, so no stale data outlives a failed update.
			c.h.store.Drop(req.Key())
		}
	}
	if !req.Noreply {
		c.Out = protocol.AppendLine(c.Out, te.Line)
	}
}

// handleText executes one decoded text request, appending its reply.
func (c *session) handleText(req *protocol.Request) {
	h := c.h
	if c.routing() && c.forwardText(req) {
		return
	}
	switch req.Command {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		c.retrieve(req)
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas:
		c.storeText(req)
	case protocol.CmdDelete:
		h.counters.Detail.RecordDelete(req.Key())
		c.watchLookup(req.Key())
		if h.store.Delete(req.Key(), 0) == store.OK { // the store counts the hit
			c.reply(req, protocol.ReplyDeleted)
		} else {
			h.counters.DeleteMisses.Add(1)
			c.reply(req, protocol.ReplyNotFound)
		}
	case protocol.CmdIncr, protocol.CmdDecr:
		c.arithmetic(req)
	case protocol.CmdTouch:
		h.counters.CmdTouch.Add(1)
		c.watchLookup(req.Key())
		if h.store.Touch(req.Key(), h.deadline(req.Exptime)) == store.OK { // the store counts the hit
			c.reply(req, protocol.ReplyTouched)
		} else {
			h.counters.TouchMisses.Add(1)
			c.reply(req, protocol.ReplyNotFound)
		}
	case protocol.CmdFlushAll:
		h.counters.CmdFlush.Add(1)
		if h.cfg.DisableFlushAll {
			c.textError(req, protocol.ErrFlushDisabled)
			return
		}
		h.flushAll(req.Exptime)
		c.reply(req, protocol.ReplyOK)
	case protocol.CmdVersion:
		c.Out = protocol.AppendLine(c.Out, "VERSION "+Version)
	case protocol.CmdVerbosity:
		h.verbosity.Store(int32(min(req.Verbosity, maxVerbosity)))
		c.reply(req, protocol.ReplyOK)
	case protocol.CmdQuit:
		c.CloseAfterReplies(netserve.CloseNormal)
	case protocol.CmdShutdown:
		c.shutdownCommand(req)
	case protocol.CmdStats:
		c.statsCommand(req)
	case protocol.CmdLruCrawler:
		c.lruCrawlerCommand(req)
	case protocol.CmdMetaNoop:
		c.Out = append(c.Out, protocol.ReplyMetaNoop...)
	case protocol.CmdPeer:
		c.peer = true
		c.Out = append(c.Out, protocol.ReplyOK...)
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

// retrieve answers get, gets, gat and gats, a batch of keys at a time as
// the decoder reads them (see protocol.Request.MoreKeys). However many keys
// the line names and however large their values, the reply is written as it
// grows past netserve.FlushThreshold: on the connection's goroutine at
// once; on the event loop as far as the socket takes it, and if it does not
// take it all the request is left pending, to be resumed by the goroutine
// from the next key (resumeKey) once the rest is written.
func (c *session) retrieve(req *protocol.Request) {
	h := c.h
	touch := req.Command == protocol.CmdGat || req.Command == protocol.CmdGats
	withCAS := req.Command == protocol.CmdGets || req.Command == protocol.CmdGats
	var deadline int64
	if touch {
		deadline = h.deadline(req.Exptime)
	}
	// Where the reply begins in the stream of replies: reading on in a
	// long line writes what is gathered first (see netserve.Conn).
	start, from := c.Written()+int64(len(c.Out)), c.resumeKey
	resumed := from > 0 // part of the reply is written
	c.resumeKey = 0
	batches := 0
	failed := false // forwarding failed: the rest is read, not answered
	for {
		for i := from; i < len(req.Keys) && !failed; i++ {
			if c.routing() {
				if _, remote := c.route(req.Keys[i]); remote {
					if c.OnLoop() {
						c.pendingReq, c.resumeKey = req, i
						return
					}
					failed = c.retrieveForwarded(req, i, touch, withCAS, deadline) != nil
					break // the batch is answered
				}
			}
			if !c.warm(req.Keys[i]) {
				// On the event loop: the goroutine reads it.
				c.pendingReq, c.resumeKey = req, i
				return
			}
			if !c.fetch(req.Keys[i], touch, withCAS, deadline) {
				c.CloseAfterReplies(netserve.CloseError)
				return
			}
			if c.OnLoop() {
				if (len(c.Out) >= netserve.FlushThreshold && !c.TryFlush()) || c.TurnSpent() {
					c.pendingReq, c.resumeKey = req, i+1
					return
				}
			} else if len(c.Out) >= netserve.FlushThreshold && c.FlushPart() != nil {
				c.CloseAfterReplies(netserve.CloseError)
				return
			}
		}
		if !req.MoreKeys {
			break
		}
		if batches++; batches%yieldEveryBatches == 0 && !c.OnLoop() {
			// A long line of keys that miss writes nothing and never
			// waits: let the event loops run meanwhile.
			runtime.Gosched()
		}
		from = 0
		c.ReadOnly(true)
		err := c.text.NextKeys(req)
		c.ReadOnly(false)
		if err != nil {
			var te *protocol.TextError
			if !errors.As(err, &te) {
				c.ReadEnded(err)
				c.CloseAfterReplies(netserve.CloseUnknown)
				return
			}
			// memcached answers a key too long with the error alone,
			// as this does unless part of the reply is written.
			if unwritten := start - c.Written(); unwritten >= 0 && !resumed {
				c.Out = c.Out[:unwritten]
			}
			c.textError(req, te)
			return
		}
	}
	if failed {
		// memcached's proxy answers a get it could not complete with
		// its error alone; if part of the reply is written, the client
		// can only be told by closing.
		if unwritten := start - c.Written(); unwritten >= 0 && !resumed {
			c.Out = append(c.Out[:unwritten], replyBackendFailure...)
		} else {
			c.CloseAfterReplies(netserve.CloseError)
		}
		return
	}
	c.Out = append(c.Out, protocol.ReplyEnd...)
}

// yieldEveryBatches is how many batches of a get line's keys its goroutine
// answers before it lets the other goroutines run: 256 lookups. With a
// full cache, 1,024 missing keys took up to 0.3 ms, as long as every
// request waited for the processor.
const yieldEveryBatches = 8

// fetch answers one key of a get, gets, gat or gats. A large value is
// written from the store's own buffer, not copied (see store.GetShared and
// netserve.Conn.AppendValue). It reports false if a write failed.
func (c *session) fetch(key []byte, touch, withCAS bool, deadline int64) bool {
	h := c.h
	var (
		value  []byte
		meta   store.Meta
		lookup store.Lookup
		shared bool
	)
	if touch {
		value, meta, lookup, shared = h.store.GetAndTouchShared(key, deadline, c.Scratch[:0])
		h.counters.CmdTouch.Add(1)
	} else {
		value, meta, lookup, shared = h.store.GetShared(key, c.Scratch[:0])
		h.counters.CmdGet.Add(1)
	}
	if !shared {
		c.Scratch = value
	}
	h.counters.Detail.RecordGet(key, lookup == store.Hit)
	if h.watching()&logFetchers != 0 {
		c.logFetch(key, lookup, len(value), meta.Flags)
	}
	switch lookup {
	case store.Hit: // the store counted the hit in the item's class
		c.Out = protocol.AppendValueHeader(c.Out, key, meta.Flags, len(value), meta.CAS, withCAS)
		err := c.AppendValue(value)
		c.Out = append(c.Out, '\r', '\n')
		return err == nil
	case store.MissExpired:
		h.counters.GetExpired.Add(1)
	case store.MissFlushed:
		h.counters.GetFlushed.Add(1)
	}
	if touch {
		h.counters.TouchMisses.Add(1)
	} else {
		h.counters.GetMisses.Add(1)
	}
	return true
}

// storeValue stores req's value by mode. A large value's buffer is given
// to the store, which keeps it rather than a copy (see store.GiveSet), and
// the decoder reads the next data block into a new one: a large value is
// copied once, from the socket's buffer into its item, as memcached's is.
func (c *session) storeValue(req *protocol.Request, mode store.Mode, deadline int64, cas uint64) (store.Status, uint64) {
	if len(req.Data) > store.GivenValue && mode != store.ModeAppend && mode != store.ModePrepend {
		c.text.TakeData()
		return c.h.store.GiveSet(mode, req.Key(), req.Data, req.Flags, deadline, cas)
	}
	return c.h.store.Set(mode, req.Key(), req.Data, req.Flags, deadline, cas)
}

// storeText answers set, add, replace, append, prepend and cas.
func (c *session) storeText(req *protocol.Request) {
	h := c.h
	h.counters.Detail.RecordSet(req.Key())
	var cas uint64
	if req.Command == protocol.CmdCas {
		cas = req.CAS
	}
	mode, deadline := storageMode(req.Command), h.deadline(req.Exptime)
	var status store.Status
	if w := h.watching(); w&(logFetchers|logMutations) != 0 {
		e := storeEvent{key: req.Key(), cmd: storeCmd(mode, 0), size: len(req.Data), flags: req.Flags, deadline: deadline}
		status, _ = c.storeWatched(w, e, allocText, req.Command == protocol.CmdSet, func() (store.Status, uint64) {
			return c.storeValue(req, mode, deadline, cas)
		})
	} else {
		status, _ = c.storeValue(req, mode, deadline, cas)
	}
	if req.Command == protocol.CmdCas {
		h.countCASMiss(status)
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
		h.counters.StoreNoMemory.Add(1)
		c.textError(req, protocol.ErrOutOfMemory)
	}
}

// arithmetic answers incr and decr.
func (c *session) arithmetic(req *protocol.Request) {
	h := c.h
	incr := req.Command == protocol.CmdIncr
	c.watchLookup(req.Key())
	v, _, status := h.store.Arith(req.Key(), incr, req.Delta, 0, false, 0, 0)
	misses := &h.counters.DecrMisses
	if incr {
		misses = &h.counters.IncrMisses
	}
	switch status {
	case store.OK: // a hit, counted by the store
		if !req.Noreply {
			c.Out = protocol.AppendNumber(c.Out, v)
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
func (c *session) shutdownCommand(req *protocol.Request) {
	if !c.h.cfg.EnableShutdown {
		c.textError(req, protocol.ErrShutdownDisabled)
		return
	}
	if len(req.Args) == 0 || (len(req.Args) == 1 && string(req.Args[0]) == "graceful") {
		c.h.log.Info("shutdown requested by a client", "remote", c.RemoteAddr().String())
		c.CloseAfterReplies(netserve.CloseShutdown)
		c.h.shutdown()
		return
	}
	c.textError(req, protocol.ErrShutdownMode)
}

// statsCommand answers "stats" and its groups.
func (c *session) statsCommand(req *protocol.Request) {
	h := c.h
	if len(req.Args) == 0 {
		c.Out = stats.Append(c.Out, h.Stats())
		return
	}
	switch string(req.Args[0]) {
	case "reset":
		h.resetStats()
		c.Out = append(c.Out, protocol.ReplyReset...)
	case "detail":
		c.statsDetail(req)
	case "settings":
		c.Out = stats.Append(c.Out, h.Settings())
	case "items":
		c.Out = stats.Append(c.Out, h.itemStats())
	case "slabs":
		c.Out = stats.Append(c.Out, h.slabStats())
	case "sizes":
		c.Out = stats.Append(c.Out, []stats.Stat{{Name: "sizes_status", Value: "disabled"}})
	case "conns":
		c.Out = stats.Append(c.Out, h.conns.ConnStats())
	case "cachedump":
		c.cachedump(req)
	case "extstore":
		// memcached without extstore configured: an empty block.
		c.Out = append(c.Out, protocol.ReplyEnd...)
	default:
		c.textError(req, protocol.ErrUnknownCommand)
	}
}

// statsDetail answers "stats detail on|off|dump" as memcached: words after
// the first are ignored, and a missing or unknown one is a usage error.
func (c *session) statsDetail(req *protocol.Request) {
	d := &c.h.counters.Detail
	sub := ""
	if len(req.Args) > 1 {
		sub = string(req.Args[1])
	}
	switch sub {
	case "on":
		d.SetEnabled(true)
		c.Out = append(c.Out, protocol.ReplyOK...)
	case "off":
		d.SetEnabled(false)
		c.Out = append(c.Out, protocol.ReplyOK...)
	case "dump":
		c.Out = d.AppendDump(c.Out)
	default:
		c.Out = protocol.AppendLine(c.Out, "CLIENT_ERROR usage: stats detail on|off|dump")
	}
}

// configCommand answers "config get cluster" in ElastiCache's Auto Discovery
// format, and memcluster's "config get owner <key>", "config get ring"
// (the ring's mode, see ring.AppendRingConfig) and "config get members"
// (the members with their names, see cluster.Cluster.MembersReply) in the
// same framing:
//
//	CONFIG owner 0 <bytes>\r\n<host>|<ip>|<port>\r\nEND\r\n
//	CONFIG ring 0 <bytes>\r\n<mode>\r\nEND\r\n
//
// where <bytes> counts the entry alone, as ElastiCache's count covers the
// block between the header and its closing \r\n. Any other "config" command
// is unknown, as it is to memcached.
func (c *session) configCommand(req *protocol.Request) {
	args := req.Args
	if len(args) == 3 && string(args[0]) == "watch" && string(args[1]) == "cluster" {
		c.configWatch(req)
		return
	}
	if len(args) < 2 || string(args[0]) != "get" {
		c.textError(req, protocol.ErrUnknownCommand)
		return
	}
	switch {
	case len(args) == 2 && string(args[1]) == "cluster":
		c.Out = append(c.Out, c.h.cluster.ConfigReply(c.LocalAddr())...)
	case len(args) == 2 && string(args[1]) == "ring":
		c.Out = ring.AppendRingConfig(c.Out, c.h.cluster.RingMode())
	case len(args) == 2 && string(args[1]) == "members":
		c.Out = append(c.Out, c.h.cluster.MembersReply(c.LocalAddr())...)
	case len(args) == 3 && string(args[1]) == "owner":
		if len(args[2]) > protocol.MaxKeyLen {
			c.textError(req, protocol.ErrBadFormat)
			return
		}
		c.Out = appendOwner(c.Out, c.h.cluster.Owner(c.LocalAddr(), args[2]))
	default:
		c.textError(req, protocol.ErrUnknownCommand)
	}
}

// configWatchWait is the longest "config watch cluster" waits for a new
// view before it answers with the one it has: a client that went away
// meanwhile holds its goroutine no longer.
const configWatchWait = 20 * time.Second

// configWatch answers memcluster's "config watch cluster <version>": as
// "config get cluster" does, once the node's view has a version above
// <version> (at once if it has), or after configWatchWait with the view it
// has, or at shutdown. A ring client waits on it to follow the cluster at
// once rather than at its next poll. The connection waits meanwhile; its
// goroutine serves it, never the event loop (see textOnLoop).
func (c *session) configWatch(req *protocol.Request) {
	after, err := strconv.ParseUint(string(req.Args[2]), 10, 64)
	if err != nil {
		c.textError(req, protocol.ErrBadFormat)
		return
	}
	timer := time.NewTimer(configWatchWait)
	defer timer.Stop()
	for {
		reply, changed := c.h.cluster.WatchConfig(c.LocalAddr(), after)
		if reply != nil {
			c.Out = append(c.Out, reply...)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			c.Out = append(c.Out, c.h.cluster.ConfigReply(c.LocalAddr())...)
			return
		case <-c.h.done:
			c.Out = append(c.Out, c.h.cluster.ConfigReply(c.LocalAddr())...)
			return
		}
	}
}

// appendOwner appends the reply to "config get owner" naming m.
func appendOwner(b []byte, m ring.Member) []byte {
	return ring.AppendConfigValue(b, "owner", m.Entry())
}

// refreshCerts answers memcached's refresh_certs: the TLS certificate, key
// and CAs are read again now, as on SIGHUP. As memcached: "OK" (not with
// noreply) when they load; otherwise the error, which noreply does not
// silence, and the old material stays.
func (c *session) refreshCerts(req *protocol.Request) {
	h := c.h
	if h.tls == nil {
		c.Out = protocol.AppendLine(c.Out, "Error TLS not enabled")
		return
	}
	if err := h.tls.Load(); err != nil {
		h.log.Error("refresh_certs: keeping the certificates loaded before", "err", err)
		msg := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, err.Error())
		c.Out = protocol.AppendLine(c.Out, msg)
		return
	}
	h.log.Info("refresh_certs: certificates reloaded")
	c.reply(req, protocol.ReplyOK)
}
