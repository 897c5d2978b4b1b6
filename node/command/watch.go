package command

// Watch streams: memcached's "watch" command.
//
// "watch [stream …]" turns a text connection into a watcher: the node
// answers OK and from then on writes to it, one line each, the events of the
// streams it asked for, in memcached 1.6.18's log line format, and serves it
// no command again. The streams are memcached's: fetchers (an item_get line
// for every lookup of a key, by any protocol), mutations (an item_store line
// for every storage command), evictions (an eviction line for every live
// item evicted to make room) and connevents (conn_new and conn_close).
// memcached's other stream names (rawcmds, sysevents, proxyreqs,
// proxyevents, proxyuser) are accepted, but their events do not exist here
// and nothing is written for them. With no stream named, a watcher watches
// fetchers, as memcached's does. A line reads, for example:
//
//	ts=1700000000.123456 gid=42 type=item_get key=foo status=found clsid=1 cfd=25 size=3
//
// ts is the time of the event (seconds and microseconds, the latter not
// padded, as memcached prints them), gid a number every line of the node
// takes in turn, so that lines can be put back in order, cfd the socket
// descriptor of the connection the event was on. Keys are URL-encoded as
// memcached encodes them: every byte but letters, digits and "-._~" as %XX.
// The events are logged where memcached logs them, so that the same requests
// give the same lines: a storage command logs the lookup of the item it
// replaces, then its own outcome; incr, decr, touch and delete log the
// lookup; an allocation that fails logs memcached's line for it.
//
// # Cost
//
// A watcher must never slow the node. With no watcher, the request path pays
// one atomic load per event site (Handler.watching), and nothing else: no
// lock, no allocation, no time read. With watchers, an event is formatted on
// the stack of the goroutine that serves the request and copied into each
// interested watcher's buffer under that watcher's own short lock; nothing
// waits for a watcher's client. A watcher's buffer is bounded (-o
// watcher_logbuf_size, 256 KiB by default, as memcached's): when a line does
// not fit it is dropped and counted (log_watcher_skipped), and the next line
// that fits is preceded by memcached's notice of the loss, "skipped=N". The
// watcher's connection goroutine writes its buffer out, swapping it for a
// second one of the same size, so a watcher holds at most twice its buffer
// however slowly its client reads; a client that never reads costs its
// buffers and its socket's and nothing more. At most 20 watchers may
// connect at once, memcached's limit.
//
// A watch ends when its client closes the connection (or sends anything
// and then closes it: what a watcher sends is read and ignored, as memcached
// does) and when the node shuts down; the connection is closed then.

import (
	"net"
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

// logStream is a set of watch streams, one bit each.
type logStream uint32

// memcached's watch streams.
const (
	logRawCmds logStream = 1 << iota
	logEvictions
	logFetchers
	logMutations
	logSysEvents
	logConnEvents
	logProxyReqs
	logProxyEvents
	logProxyUser
)

// logStreamByName maps the names "watch" takes to their streams.
var logStreamByName = map[string]logStream{
	"rawcmds": logRawCmds, "evictions": logEvictions, "fetchers": logFetchers,
	"mutations": logMutations, "sysevents": logSysEvents, "connevents": logConnEvents,
	"proxyreqs": logProxyReqs, "proxyevents": logProxyEvents, "proxyuser": logProxyUser,
}

const (
	// maxWatchers is memcached's WATCHER_LIMIT.
	maxWatchers = 20
	// watchOK is what a watcher is sent first.
	watchOK = "OK\r\n"
	// logLineMax is room for a line whose key is encoded to three times
	// its length: a line formatted on the stack needs no allocation.
	logLineMax = 1024
)

// parseStreams returns the streams the words after "watch" name: fetchers if
// none; false if a word is not a stream's name (memcached answers ERROR).
func parseStreams(args [][]byte) (logStream, bool) {
	if len(args) == 0 {
		return logFetchers, true
	}
	var st logStream
	for _, a := range args {
		s, ok := logStreamByName[string(a)]
		if !ok {
			return 0, false
		}
		st |= s
	}
	return st, true
}

// watchHub is the server's watchers and the streams they watch.
type watchHub struct {
	// streams is the union of what the watchers watch, 0 with none: the
	// one word the request path reads.
	streams atomic.Uint32
	// gid numbers the lines, memcached's logger gid.
	gid atomic.Uint64
	// list is the watchers, an immutable slice replaced whole under mu,
	// so that events read it without a lock.
	list atomic.Pointer[[]*watcher]
	mu   sync.Mutex // serialises changes to list and streams
}

// watching returns the streams some watcher watches: 0, the usual case,
// costs the request path one atomic load.
func (h *Handler) watching() logStream { return logStream(h.watch.streams.Load()) }

// watcherBufSize is the size of each of a watcher's two buffers.
func (h *Handler) watcherBufSize() int {
	if n := h.cfg.WatcherBufSize; n > 0 {
		return max(n, len(watchOK))
	}
	return config.DefaultWatcherBufSize
}

// add makes a watcher of streams with buffers of size bytes, its first
// buffer holding watchOK. It returns false if maxWatchers are connected.
func (h *watchHub) add(streams logStream, size int, c *stats.Counters) (*watcher, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var old []*watcher
	if p := h.list.Load(); p != nil {
		old = *p
	}
	if len(old) >= maxWatchers {
		return nil, false
	}
	w := &watcher{
		streams: streams,
		ready:   make(chan struct{}, 1),
		buf:     append(make([]byte, 0, size), watchOK...),
		size:    size,
		// Lines numbered before the watcher joined are not its, even
		// if they are handed out after.
		minGID: h.gid.Load() + 1,
	}
	w.ready <- struct{}{}
	list := append(append(make([]*watcher, 0, len(old)+1), old...), w)
	h.list.Store(&list)
	h.streams.Store(uint32(unionOf(list)))
	c.LogWatchers.Add(1)
	return w, true
}

// remove forgets w.
func (h *watchHub) remove(w *watcher, c *stats.Counters) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.list.Load()
	list := make([]*watcher, 0, len(old))
	for _, o := range old {
		if o != w {
			list = append(list, o)
		}
	}
	h.list.Store(&list)
	h.streams.Store(uint32(unionOf(list)))
	c.LogWatchers.Add(-1)
}

// unionOf is the streams some watcher of list watches.
func unionOf(list []*watcher) logStream {
	var st logStream
	for _, w := range list {
		st |= w.streams
	}
	return st
}

// begin starts a line in dst: the time and the next gid, which it returns.
func (h *watchHub) begin(dst []byte) ([]byte, uint64) {
	now := time.Now()
	gid := h.gid.Add(1)
	dst = append(dst, "ts="...)
	dst = strconv.AppendInt(dst, now.Unix(), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(now.Nanosecond()/1000), 10)
	dst = append(dst, " gid="...)
	dst = strconv.AppendUint(dst, gid, 10)
	return append(dst, ' '), gid
}

// publish hands the line numbered gid, of stream st, to every watcher of
// st. It never waits for a watcher's client.
func (h *watchHub) publish(st logStream, gid uint64, line []byte, c *stats.Counters) {
	p := h.list.Load()
	if p == nil {
		return
	}
	for _, w := range *p {
		if w.streams&st != 0 && gid >= w.minGID {
			w.offer(line, c)
		}
	}
}

// watcher is one watching connection's streams and buffer.
type watcher struct {
	streams logStream
	minGID  uint64        // the first line number it may be sent
	ready   chan struct{} // holds a token while buf may hold lines
	size    int           // the capacity of buf, never exceeded

	mu      sync.Mutex // guards buf and skipped
	buf     []byte     // lines not yet taken to be written
	skipped uint64     // lines dropped since the last one buffered
}

// offer buffers line unless it does not fit, in which case it is dropped
// and counted. The first line buffered after drops is preceded by
// memcached's notice of them, "skipped=N".
func (w *watcher) offer(line []byte, c *stats.Counters) {
	w.mu.Lock()
	need := len(line)
	if w.skipped > 0 {
		need += len("skipped=\n") + decimalLen(w.skipped)
	}
	if len(w.buf)+need > w.size {
		w.skipped++
		w.mu.Unlock()
		c.LogWatcherSkipped.Add(1)
		return
	}
	if w.skipped > 0 {
		w.buf = append(w.buf, "skipped="...)
		w.buf = strconv.AppendUint(w.buf, w.skipped, 10)
		w.buf = append(w.buf, '\n')
		w.skipped = 0
	}
	w.buf = append(w.buf, line...)
	w.mu.Unlock()
	c.LogWatcherSent.Add(1)
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// take returns the buffered lines and buffers from now on into spare,
// emptied: the caller writes what take returned and passes it back as the
// next spare.
func (w *watcher) take(spare []byte) []byte {
	w.mu.Lock()
	out := w.buf
	w.buf = spare[:0]
	w.mu.Unlock()
	return out
}

// decimalLen is the number of digits of n.
func decimalLen(n uint64) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// watchCommand answers "watch [stream …]" as memcached's
// process_watch_command: refused with -W, after other commands pipelined
// in the same read, for a word that names no stream (noreply among them:
// memcached then answers nothing) and past maxWatchers. Otherwise the
// connection watches until its client closes it or the node shuts down,
// and then closes.
func (c *session) watchCommand(req *protocol.Request) {
	h := c.h
	noreply := len(req.Args) > 0 && string(req.Args[len(req.Args)-1]) == "noreply"
	reply := func(line string) {
		if !noreply {
			c.Out = protocol.AppendLine(c.Out, line)
		}
	}
	if h.cfg.DisableWatch {
		reply("CLIENT_ERROR watch commands not allowed")
		return
	}
	if c.Owed() {
		reply("ERROR cannot pipeline other commands before watch")
		return
	}
	streams, ok := parseStreams(req.Args)
	if !ok {
		reply("ERROR")
		return
	}
	w, ok := h.watch.add(streams, h.watcherBufSize(), &h.counters)
	if !ok {
		reply("WATCHER_TOO_MANY log watcher limit reached")
		return
	}
	c.serveWatch(w)
	c.CloseAfterReplies(netserve.CloseUnknown)
}

// serveWatch writes w's lines to the connection until its client closes it,
// a write fails or the node shuts down (see netserve.Conn.Stream).
func (c *session) serveWatch(w *watcher) {
	h := c.h
	defer h.watch.remove(w, &h.counters)
	c.SetCloseReason(netserve.CloseError) // memcached logs a watcher's end so
	c.Stream(h.done, w.ready, make([]byte, 0, w.size), w.take)
}

// Line formats. Each appends one line, "\n"-terminated, after begin's
// prefix.

// lookupStatus is memcached's word for a lookup's result.
func lookupStatus(lk store.Lookup) string {
	switch lk {
	case store.Hit:
		return "found"
	case store.MissFlushed:
		return "flushed"
	case store.MissExpired:
		return "expired"
	}
	return "not_found"
}

// storeStatus is memcached's word for a storage command's outcome.
func storeStatus(st store.Status) string {
	switch st {
	case store.OK:
		return "stored"
	case store.Exists:
		return "exists"
	case store.NotFound:
		return "not_found"
	case store.TooLarge:
		return "too_large"
	case store.NoMemory:
		return "no_memory"
	}
	return "not_stored"
}

// storeCmd is memcached's name of a storage command as it ran: the mode the
// store was asked for, a set or replace with a CAS unique being a cas.
func storeCmd(mode store.Mode, cas uint64) string {
	switch mode {
	case store.ModeAdd:
		return "add"
	case store.ModeReplace:
		if cas != 0 {
			return "cas"
		}
		return "replace"
	case store.ModeAppend:
		return "append"
	case store.ModePrepend:
		return "prepend"
	case store.ModeCAS:
		return "cas"
	}
	if cas != 0 {
		return "cas"
	}
	return "set"
}

// appendURIKey appends key URL-encoded as memcached's uriencode does.
func appendURIKey(dst, key []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, b := range key {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}

// ttlOf is the seconds an item with deadline has left as memcached's
// logger prints them: its exptime less current_time, both memcached
// relative times, as an unsigned 32-bit number; 0 if it never expires.
func (h *Handler) ttlOf(deadline int64) uint32 {
	if deadline == 0 {
		return 0
	}
	return uint32(h.relTime(deadline) - h.relTime(h.currentTime()))
}

// logFetch logs the lookup of key with result lk (fetchers): size and
// flags are the item's value length and client flags on a hit.
func (c *session) logFetch(key []byte, lk store.Lookup, size int, flags uint32) {
	h := c.h
	var buf [logLineMax]byte
	line, gid := h.watch.begin(buf[:0])
	line = append(line, "type=item_get key="...)
	line = appendURIKey(line, key)
	line = append(line, " status="...)
	line = append(line, lookupStatus(lk)...)
	line = append(line, " clsid="...)
	clsid := 0
	if lk != store.Hit {
		size = 0
	} else {
		clsid = h.store.ClassOf(len(key), size, flags)
	}
	line = strconv.AppendInt(line, int64(clsid), 10)
	line = append(line, " cfd="...)
	line = strconv.AppendInt(line, int64(c.FD()), 10)
	line = append(line, " size="...)
	line = strconv.AppendInt(line, int64(size), 10)
	line = append(line, '\n')
	h.watch.publish(logFetchers, gid, line, &h.counters)
}

// watchLookup is logLookup when fetchers are watched, and one atomic load
// otherwise.
func (c *session) watchLookup(key []byte) {
	if c.h.watching()&logFetchers != 0 {
		c.logLookup(key)
	}
}

// logLookup logs, for an operation whose lookup the store does not report
// (touch, delete, incr, decr, md, me), the lookup of key it is about to
// make: the item as it stands before the operation.
func (c *session) logLookup(key []byte) {
	p, lk := c.h.store.Peek(key)
	c.logFetch(key, lk, p.Size, p.Flags)
}

// storeEvent is a storage command, for the lines it logs.
type storeEvent struct {
	key      []byte
	cmd      string // storeCmd's
	size     int    // the value's length
	flags    uint32
	deadline int64
	// before is the key's item before the command and beforeLk the
	// lookup's result, if the watchers want fetchers (see peekBefore).
	before   store.Peeked
	beforeLk store.Lookup
}

// peekBefore records in e the key's item before the command runs, when w
// holds fetchers: memcached logs that lookup.
func (c *session) peekBefore(w logStream, e *storeEvent) {
	if w&logFetchers != 0 {
		e.before, e.beforeLk = c.h.store.Peek(e.key)
	}
}

// logStore logs what memcached's do_store_item logs for a storage command
// that ran with outcome st: the lookup of the item it replaces (fetchers),
// then its outcome (mutations), with the item stored: the joined one of an
// append or prepend.
func (c *session) logStore(w logStream, e *storeEvent, st store.Status) {
	h := c.h
	if w&logFetchers != 0 {
		c.logFetch(e.key, e.beforeLk, e.before.Size, e.before.Flags)
	}
	if w&logMutations == 0 {
		return
	}
	size, flags, deadline := e.size, e.flags, e.deadline
	if st == store.OK && (e.cmd == "append" || e.cmd == "prepend") {
		if p, lk := h.store.Peek(e.key); lk == store.Hit {
			size, flags, deadline = p.Size, p.Flags, p.Deadline
		}
	}
	c.logStoreLine(e.key, storeStatus(st), e.cmd, h.ttlOf(deadline), h.store.ClassOf(len(e.key), size, flags), c.FD(), size)
}

// logStoreLine logs an item_store line (mutations).
func (c *session) logStoreLine(key []byte, status, cmd string, ttl uint32, clsid, cfd, size int) {
	h := c.h
	var buf [logLineMax]byte
	line, gid := h.watch.begin(buf[:0])
	line = append(line, "type=item_store key="...)
	line = appendURIKey(line, key)
	line = append(line, " status="...)
	line = append(line, status...)
	line = append(line, " cmd="...)
	line = append(line, cmd...)
	line = append(line, " ttl="...)
	line = strconv.AppendUint(line, uint64(ttl), 10)
	line = append(line, " clsid="...)
	line = strconv.AppendInt(line, int64(clsid), 10)
	line = append(line, " cfd="...)
	line = strconv.AppendInt(line, int64(cfd), 10)
	line = append(line, " size="...)
	line = strconv.AppendInt(line, int64(size), 10)
	line = append(line, '\n')
	h.watch.publish(logMutations, gid, line, &h.counters)
}

// allocFailure is where an item could not be made, for logAllocFailed.
type allocFailure uint8

const (
	allocText   allocFailure = iota // a text storage command
	allocMeta                       // ms
	allocBinary                     // a binary Set, Add or Replace
	allocSilent                     // a binary Append or Prepend: memcached logs nothing
)

// storeWatched runs a storage command (set) while watchers want its lines:
// it notes the key's item before, runs it and logs what memcached logs for
// it, whether it stored (logStore) or could not allocate its item
// (logAllocFailed: where and unlink say how memcached logs that). The
// request path calls it only when watchers want fetchers or mutations,
// and calls the store directly otherwise.
func (c *session) storeWatched(w logStream, e storeEvent, where allocFailure, unlink bool, set func() (store.Status, uint64)) (store.Status, uint64) {
	c.peekBefore(w, &e)
	st, cas := set()
	switch {
	case st != store.TooLarge && st != store.NoMemory:
		c.logStore(w, &e, st)
	case where != allocSilent:
		c.logAllocFailed(w, &e, st, where, unlink)
	}
	return st, cas
}

// logAllocFailed logs what memcached logs when a storage command cannot
// allocate its item (too large, or out of memory; st is TooLarge or
// NoMemory): an item_store line with none of the item's values, then, when
// the command drops the key's present item as memcached does (unlink: a
// text or binary set, any ms), the lookup of that item (e.before).
//
// memcached's line is as its code makes it: the text protocol's call passes
// one argument too few, so that the descriptor lands in clsid and cfd is
// undefined (printed here as 0); ms's passes two too few (both undefined:
// printed as the text protocol's); the binary protocol's names no command
// (cmd=null) and reads the class of the item it failed to make, which
// crashes memcached 1.6.18: its intended line is printed.
func (c *session) logAllocFailed(w logStream, e *storeEvent, st store.Status, where allocFailure, unlink bool) {
	if w&logMutations != 0 {
		if where == allocBinary {
			c.logStoreLine(e.key, storeStatus(st), "null", 0, 0, c.FD(), 0)
		} else {
			c.logStoreLine(e.key, storeStatus(st), e.cmd, 0, c.FD(), 0, 0)
		}
	}
	if unlink && w&logFetchers != 0 {
		c.logFetch(e.key, e.beforeLk, e.before.Size, e.before.Flags)
	}
}

// logCreated logs the lines of a counter that incr (binary) or ma created
// on a miss, as memcached's store of it logs them: its lookup, a miss, and
// its add.
func (c *session) logCreated(w logStream, key []byte, value uint64, deadline int64) {
	var digits [20]byte
	e := storeEvent{key: key, cmd: "add", size: len(strconv.AppendUint(digits[:0], value, 10)), deadline: deadline, beforeLk: store.Miss}
	c.logStore(w, &e, store.OK)
}

// LogEviction is the store's OnEvict: an eviction line (evictions). It runs
// under the evicted item's shard lock.
func (h *Handler) LogEviction(ev store.Eviction) {
	if h.watching()&logEvictions == 0 {
		return
	}
	var buf [logLineMax]byte
	line, gid := h.watch.begin(buf[:0])
	line = append(line, "type=eviction key="...)
	line = appendURIKey(line, ev.Key)
	if ev.Fetched {
		line = append(line, " fetch=yes"...)
	} else {
		line = append(line, " fetch=no"...)
	}
	line = append(line, " ttl="...)
	ttl := int64(-1)
	if ev.Deadline != 0 {
		ttl = h.relTime(ev.Deadline) - h.relTime(ev.Now)
	}
	line = strconv.AppendInt(line, ttl, 10)
	line = append(line, " la="...)
	line = strconv.AppendInt(line, int64(int32(ev.Now-ev.Access)), 10)
	line = append(line, " clsid="...)
	line = strconv.AppendInt(line, int64(h.store.ClassOf(len(ev.Key), ev.Size, ev.Flags)), 10)
	line = append(line, " size="...)
	line = strconv.AppendInt(line, int64(ev.Size), 10)
	line = append(line, '\n')
	h.watch.publish(logEvictions, gid, line, &h.counters)
}

// logConn logs the connection's conn_new line, or its conn_close line if
// closing (connevents).
func (c *session) logConn(closing bool) {
	h := c.h
	rip, rport, transport := "unix", 0, "local"
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		rip, rport, transport = a.IP.String(), a.Port, "tcp"
	}
	var buf [logLineMax]byte
	line, gid := h.watch.begin(buf[:0])
	if closing {
		line = append(line, "type=conn_close rip="...)
	} else {
		line = append(line, "type=conn_new rip="...)
	}
	line = append(line, rip...)
	line = append(line, " rport="...)
	line = strconv.AppendInt(line, int64(rport), 10)
	line = append(line, " transport="...)
	line = append(line, transport...)
	if closing {
		reason := c.CloseReason()
		if reason == netserve.CloseUnknown && !h.conns.Accepting() {
			reason = netserve.CloseShutdown
		}
		line = append(line, " reason="...)
		line = append(line, reason.String()...)
	}
	line = append(line, " cfd="...)
	line = strconv.AppendInt(line, int64(c.FD()), 10)
	line = append(line, '\n')
	h.watch.publish(logConnEvents, gid, line, &h.counters)
}

// metaStoreMode is the mode ms runs in: its mode switch, a set or replace
// with a CAS unique (C) being a cas, as in memcached.
func metaStoreMode(m *protocol.MetaArgs) store.Mode {
	mode := metaSetModes[m.Mode]
	if m.HasCAS && (mode == store.ModeSet || mode == store.ModeReplace) {
		mode = store.ModeCAS
	}
	return mode
}

// logTooLarge logs a text storage command or ms whose data block the
// decoder refused as too large: memcached's allocation failure.
func (c *session) logTooLarge(req *protocol.Request) {
	w := c.h.watching()
	if w&(logFetchers|logMutations) == 0 {
		return
	}
	e := storeEvent{key: req.Key()}
	where, unlink := allocText, req.Command == protocol.CmdSet
	if req.Command == protocol.CmdMetaSet {
		where, unlink = allocMeta, true
		e.cmd = storeCmd(metaStoreMode(&req.Meta), 0)
	} else {
		e.cmd = storeCmd(storageMode(req.Command), 0)
	}
	c.peekBefore(w, &e)
	c.logAllocFailed(w, &e, store.TooLarge, where, unlink)
}

// logTooLarge logs a binary Set, Add or Replace whose value the decoder
// refused as too large: memcached's allocation failure. Append and Prepend
// log nothing, as in memcached.
func (b *binaryConn) logTooLarge() {
	w := b.h.watching()
	if w&(logFetchers|logMutations) == 0 {
		return
	}
	h := &b.req.Header
	op := h.Opcode.Loud()
	if op != protocol.OpSet && op != protocol.OpAdd && op != protocol.OpReplace {
		return
	}
	e := storeEvent{key: b.req.Key}
	b.peekBefore(w, &e)
	b.logAllocFailed(w, &e, store.TooLarge, allocBinary, op == protocol.OpSet)
}
