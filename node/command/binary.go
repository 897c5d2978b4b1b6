package command

// The binary protocol's dispatcher. protocol/binary_notes.md records, byte
// for byte, what memcached 1.6.18 answers to every opcode; this file
// reproduces it over the store. The decoder (protocol.ReadBinaryHead and
// ReadBinaryBody) already answers malformed requests the way memcached does;
// this file turns its errors into replies and serves the well-formed ones.

import (
	"time"

	"github.com/memcluster/memcluster/internal/freelist"
	"github.com/memcluster/memcluster/node/metrics"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/sasl"
)

const (
	// counterNoCreate as the expiration of an Increment or Decrement means:
	// fail with KeyNotFound on a miss rather than create the counter.
	counterNoCreate = 0xffffffff
	// saslMechMax is memcached's MAX_SASL_MECH_LEN: a longer mechanism name
	// is answered StatusInvalidArgs.
	saslMechMax = 32
)

// memcached's texts for StatusOutOfMemory, which name what failed.
const (
	oomItem        = "Out of memory allocating item"
	oomNewCounter  = "Out of memory allocating new item"
	oomIncrementOp = "Out of memory incrementing value"
)

// binaryConn is the binary-protocol state of one connection: the request it
// decodes into, reused from request to request, and whether the replies
// gathered so far must be written before the next request is read.
type binaryConn struct {
	*session
	// req is the request being served, lent from binaryRequests while
	// the connection is busy (see serveRequest and Rest).
	req *protocol.BinaryRequest

	// flushNow is set by a reply memcached writes at once: an error (and
	// with it every reply before it) or Noop's. Successful replies wait
	// until no complete request header is buffered, and so do errors that
	// follow a swallowed value (TooLarge, out of memory, unknown command).
	flushNow bool

	// authed is set once a SASL exchange succeeds (-S); every AUTH clears
	// it first. exchange is the SASL exchange under way, if any: an AUTH
	// starts a new one, STEP continues it, and its end (success or
	// failure) clears it. authFailures counts the failed AUTH and STEP
	// requests since the last success (see maxAuthFailures).
	authed       bool
	authFailures uint8
	exchange     sasl.Server
}

// serveBinary serves the binary protocol until the connection ends.
//
// Replies are gathered in c.Out and written when the read buffer holds less
// than a request header (memcached's "need more data"), when a reply is an
// error or Noop's, or when enough has gathered (afterRequest).
func (c *session) serveBinary() {
	b := &binaryConn{session: c}
	c.ServeOnLoop(b)
	b.ServeRequests()
}

// ServeRequests serves binary requests on the connection's goroutine until
// the connection ends or rests. It satisfies netserve.LoopServer.
func (b *binaryConn) ServeRequests() {
	c := b.session
	for c.WaitForRequest() {
		// What is owed is written before the rest of a request is
		// waited for (see connReader).
		if !b.serveRequest() {
			return
		}
		if b.flushNow {
			b.flushNow = false
			if c.Flush() != nil {
				return
			}
		}
		if !c.AfterRequest() {
			return
		}
	}
}

// HasPending reports false: the binary protocol leaves a request the loop
// must not serve unread (see AnswerReady).
func (b *binaryConn) HasPending() bool { return false }

// Rest gives back the request of a connection that rests (see
// netserve.LoopServer), with its buffer unless that grew past KeepBuffer.
// It satisfies netserve.LoopServer.
func (b *binaryConn) Rest() {
	if b.req != nil {
		b.req.ReleaseBuffer(netserve.KeepBuffer)
		binaryRequests.Put(b.req)
		b.req = nil
	}
}

// binaryRequests lend connections the request they decode into, with its
// buffer, while they are busy.
var binaryRequests = freelist.List[protocol.BinaryRequest]{New: func() *protocol.BinaryRequest { return new(protocol.BinaryRequest) }, Max: 256}

// AnswerReady answers, on the event loop, for the binary protocol, the requests the loop's read
// completed, and reports whether the connection may stay on the loop. A
// request the loop must not serve (see onLoop), or not yet wholly arrived,
// is left unread for the goroutine. The replies stay in c.Out unless enough
// gather to write at once (see session.AnswerReady).
func (b *binaryConn) AnswerReady() bool {
	c := b.session
	for n := 0; protocol.BinaryNextBuffered(c.In) && b.onLoop(); n++ {
		if n == c.h.cfg.MaxReqsPerEvent {
			// Served -R requests: the others' turn, this one's
			// again in the loop's next round (see eventLoop.serve).
			c.YieldOnLoop()
			return true
		}
		if !b.serveRequest() {
			c.CloseAfterReplies(netserve.CloseUnknown) // with c.Out dropped: close at once
			return false
		}
		if b.flushNow {
			b.flushNow = false
			if !c.TryFlush() {
				return false
			}
		}
		if !c.AfterRequestNow() {
			return false
		}
		if c.TurnOver() {
			return true
		}
	}
	return true
}

// onLoop reports whether the event loop may serve the buffered request: a
// command answered at once from the store, on a connection that needs no
// authentication or has it. Stats, SASL, quit and flush are the
// goroutine's.
func (b *binaryConn) onLoop() bool {
	if b.h.cfg.SASL && !b.authed {
		return false
	}
	head, _ := b.In.Peek(2)
	if b.routing() && binaryKeyed(protocol.BinaryOpcode(head[1])) {
		if key := b.bufferedBinaryKey(); key != nil {
			if _, remote := b.route(key); remote {
				return false // the network is the goroutine's
			}
		}
	}
	switch protocol.BinaryOpcode(head[1]).Loud() {
	case protocol.OpGet, protocol.OpGetK, protocol.OpGAT, protocol.OpGATK:
		// Unless the hand-off would fetch the key: the network is the
		// goroutine's.
		return !b.binaryWantsWarm()
	case protocol.OpTouch,
		protocol.OpSet, protocol.OpAdd, protocol.OpReplace, protocol.OpAppend, protocol.OpPrepend,
		protocol.OpDelete, protocol.OpIncrement, protocol.OpDecrement, protocol.OpNoop, protocol.OpVersion:
		return true
	}
	return false
}

// serveRequest reads and answers one request. It returns false when the
// connection must close at once, without writing the replies it holds; a
// reply followed by a close is instead CloseAfterReplies.
func (b *binaryConn) serveRequest() bool {
	if b.req == nil {
		b.req = binaryRequests.Get()
	}
	c, req := b.session, b.req
	err := protocol.ReadBinaryHead(c.In, req)
	if err == nil && c.h.cfg.SASL && !b.authed && !req.Header.Opcode.AuthExempt() {
		// memcached checks authentication right after the head, before
		// any other length or the value: with -S every request but
		// Version and the SASL opcodes is refused on a connection that
		// has not authenticated, and the connection closed, as memcached
		// does. Nothing of the request is read or executed.
		c.Out = protocol.AppendBinaryError(c.Out, req.Header.Opcode, protocol.StatusAuthError, req.Header.Opaque)
		c.CloseAfterReplies(netserve.CloseUnknown)
		return true
	}
	if err == nil {
		err = protocol.ReadBinaryBody(c.In, req, b.maxValue())
	}
	if err != nil {
		return b.readError(err)
	}
	if b.h.latency != nil {
		start := time.Now()
		b.dispatch()
		b.h.latency.Observe(binaryFamily(req.Header.Opcode), metrics.ProtocolBinary, time.Since(start))
	} else {
		b.dispatch()
	}
	return true
}

// maxValue is the longest value the request may carry, computed from its
// head as memcached computes an item's size: its header, the key and its
// terminator, the value and its "\r\n", 4 bytes for non-zero flags and 8
// for the CAS unique unless -C. Longer values are swallowed by the decoder
// and answered StatusTooLarge, as memcached does.
func (b *binaryConn) maxValue() int {
	h := b.req.Header
	var flags uint32
	switch h.Opcode.Loud() {
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace:
		flags, _ = b.req.StorageExtras()
	case protocol.OpAppend, protocol.OpPrepend:
		// memcached sizes the appended part alone, with flags 0.
	case protocol.OpSASLAuth, protocol.OpSASLStep:
		// SASL data must fit one slab chunk, half the item size limit
		// (observed: 600 KiB is refused under -I 1m).
		return max(b.h.cfg.ItemSizeMax/2, 1)
	default:
		return b.h.cfg.ItemSizeMax
	}
	n := b.h.cfg.ItemSizeMax - store.ItemSize(int(h.KeyLen), 0)
	if flags != 0 {
		n -= 4
	}
	if !b.h.cfg.NoCAS {
		n -= 8
	}
	// A limit of zero or less means the default to the decoder; the store
	// refuses what is still too large.
	return max(n, 1)
}

// readError answers a request the decoder refused, as the error says:
// a reply or none, the connection kept or closed.
func (b *binaryConn) readError(err error) bool {
	c, h := b.session, b.req.Header
	be, ok := err.(*protocol.BinaryError)
	if !ok {
		// The client left in mid-request, or the read failed: memcached
		// closes without writing what it still owed.
		c.ReadEnded(err)
		c.Out = c.Out[:0]
		return false
	}
	if !be.Close && isSASLOpcode(h.Opcode) && !c.h.cfg.SASL {
		// Without -S memcached answers every SASL opcode that passed
		// the length checks Unknown command, however large its data.
		be = protocol.ErrBinaryUnknownCommand
	}
	switch {
	case !be.Reply:
		// Bad magic, or a head beyond memcached's read buffer: memcached
		// closes at once, and replies not yet written are lost.
		c.Out = c.Out[:0]
		return false
	case be.Close:
		c.Out = protocol.AppendBinaryError(c.Out, h.Opcode, be.Status, h.Opaque)
		c.CloseAfterReplies(netserve.CloseUnknown)
		return true
	}
	// The connection is kept and the value was swallowed; memcached
	// answers once the swallow is over, with the next write.
	if be == protocol.ErrBinarySASLValueTooLarge && h.Opcode == protocol.OpSASLAuth {
		// An AUTH ends the authentication and exchange before it, even
		// when its data is refused (see sasl).
		b.authed, b.exchange = false, nil
	}
	if be == protocol.ErrBinaryValueTooLarge {
		c.h.counters.Detail.RecordSet(b.req.Key)
		b.logTooLarge()
		if h.Opcode.Loud() == protocol.OpSet {
			// A failed set leaves no stale value behind.
			c.h.store.Drop(b.req.Key)
		}
	}
	c.Out = protocol.AppendBinaryError(c.Out, h.Opcode, be.Status, h.Opaque)
	return true
}

func isSASLOpcode(op protocol.BinaryOpcode) bool {
	return op == protocol.OpSASLListMechs || op == protocol.OpSASLAuth || op == protocol.OpSASLStep
}

// dispatch answers a well-formed request. Quiet opcodes are served as their
// loud variant; only the replies binary_notes.md lists are left out.
func (b *binaryConn) dispatch() {
	if b.h.verbosity.Load() >= 2 {
		b.h.log.Debug("binary command", "conn", b.ID(), "opcode", b.req.Header.Opcode.String(), "key", string(b.req.Key))
	}
	h := b.req.Header
	if b.routing() && binaryKeyed(h.Opcode) && b.forwardBinary() {
		return
	}
	switch h.Opcode.Loud() {
	case protocol.OpGet, protocol.OpGetK:
		b.get(false)
	case protocol.OpGAT, protocol.OpGATK:
		b.get(true)
	case protocol.OpTouch:
		b.touch()
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace:
		b.storeItem()
	case protocol.OpAppend, protocol.OpPrepend:
		b.concat()
	case protocol.OpDelete:
		b.deleteItem()
	case protocol.OpHandoffGet:
		b.handoffGet()
	case protocol.OpHandoffAdd:
		b.handoffAdd()
	case protocol.OpConfigGet:
		b.configGet()
	case protocol.OpPeer:
		b.peer = true
		b.ok(0)
	case protocol.OpIncrement, protocol.OpDecrement:
		b.arith()
	case protocol.OpQuit:
		// Pending replies are written first; QuitQ adds none.
		b.ok(0)
		b.CloseAfterReplies(netserve.CloseNormal)
	case protocol.OpFlush:
		b.flushAll()
	case protocol.OpNoop:
		b.ok(0)
		b.flushNow = true
	case protocol.OpVersion:
		b.Out = protocol.AppendBinaryText(b.Out, h.Opcode, h.Opaque, Version)
	case protocol.OpStat:
		b.stat()
	case protocol.OpSASLListMechs, protocol.OpSASLAuth, protocol.OpSASLStep:
		b.sasl()
	default:
		// Validate lets no other opcode through.
		b.fail(protocol.StatusUnknownCommand)
	}
}

// ok appends a successful reply with no body unless the opcode is quiet.
func (b *binaryConn) ok(cas uint64) {
	h := b.req.Header
	if !h.Opcode.Quiet() {
		b.Out = protocol.AppendBinaryResponse(b.Out, h.Opcode, protocol.StatusOK, h.Opaque, cas, nil, nil, nil)
	}
}

// fail appends an error reply, which memcached writes at once (quiet
// opcodes included).
func (b *binaryConn) fail(status protocol.BinaryStatus) {
	h := b.req.Header
	b.Out = protocol.AppendBinaryError(b.Out, h.Opcode, status, h.Opaque)
	b.flushNow = true
}

// failLater appends an error reply that memcached gives after swallowing
// the value: it is written with the next batch rather than at once.
func (b *binaryConn) failLater(status protocol.BinaryStatus, msg string) {
	h := b.req.Header
	if msg == "" {
		msg = status.Message()
	}
	b.Out = protocol.AppendBinaryErrorMessage(b.Out, h.Opcode, status, h.Opaque, msg)
}

// get answers Get, GetQ, GetK, GetKQ and, with touch, GAT, GATQ, GATK and
// GATKQ.
func (b *binaryConn) get(touch bool) {
	s, req := b.h, b.req
	h := &req.Header
	loud := h.Opcode.Loud()
	withKey := loud == protocol.OpGetK || loud == protocol.OpGATK
	b.warm(req.Key) // on the loop, only if the window began since onLoop
	var (
		value  []byte
		meta   store.Meta
		lookup store.Lookup
		shared bool
	)
	if touch {
		s.counters.CmdTouch.Add(1)
		value, meta, lookup, shared = s.store.GetAndTouchShared(req.Key, s.deadline(int64(req.Exptime())), b.Scratch[:0])
	} else {
		s.counters.CmdGet.Add(1)
		value, meta, lookup, shared = s.store.GetShared(req.Key, b.Scratch[:0])
	}
	if !shared {
		b.Scratch = value
	}
	s.counters.Detail.RecordGet(req.Key, lookup == store.Hit)
	if s.watching()&logFetchers != 0 {
		b.logFetch(req.Key, lookup, len(value), meta.Flags)
	}
	var key []byte
	if withKey {
		key = req.Key
	}
	if lookup == store.Hit { // the store counted the hit in the item's class
		// A large value is written from the store's buffer (see fetch).
		b.Out = protocol.AppendBinaryGetResponseHead(b.Out, h.Opcode, h.Opaque, meta.CAS, meta.Flags, key, len(value))
		if b.AppendValue(value) != nil {
			b.CloseAfterReplies(netserve.CloseError)
		}
		return
	}
	b.countMiss(lookup, touch)
	switch {
	case h.Opcode.Quiet():
		// GetQ, GetKQ, GATQ and GATKQ are silent on a miss.
	case withKey:
		// GetK and GATK answer a miss with the key as key and body.
		b.Out = protocol.AppendBinaryResponse(b.Out, h.Opcode, protocol.StatusKeyNotFound, h.Opaque, 0, nil, key, nil)
		b.flushNow = true
	default:
		b.fail(protocol.StatusKeyNotFound)
	}
}

// countMiss counts a read that missed, and why.
func (b *binaryConn) countMiss(lookup store.Lookup, touch bool) {
	c := &b.h.counters
	switch lookup {
	case store.MissExpired:
		c.GetExpired.Add(1)
	case store.MissFlushed:
		c.GetFlushed.Add(1)
	}
	if touch {
		c.TouchMisses.Add(1)
	} else {
		c.GetMisses.Add(1)
	}
}

// touch answers Touch: on a hit the flags as extras and the item's CAS, no
// value.
func (b *binaryConn) touch() {
	s, req := b.h, b.req
	h := &req.Header
	s.counters.CmdTouch.Add(1)
	value, meta, lookup := s.store.GetAndTouch(req.Key, s.deadline(int64(req.Exptime())), b.Scratch[:0])
	b.Scratch = value
	s.counters.Detail.RecordGet(req.Key, lookup == store.Hit)
	if s.watching()&logFetchers != 0 {
		b.logFetch(req.Key, lookup, len(value), meta.Flags)
	}
	if lookup != store.Hit {
		b.countMiss(lookup, true)
		b.fail(protocol.StatusKeyNotFound)
		return
	}
	b.Out = protocol.AppendBinaryGetResponse(b.Out, h.Opcode, h.Opaque, meta.CAS, meta.Flags, nil, nil)
}

// storeItem answers Set, Add and Replace and their quiet variants.
func (b *binaryConn) storeItem() {
	s, req := b.h, b.req
	h := &req.Header
	mode := store.ModeSet
	switch h.Opcode.Loud() {
	case protocol.OpAdd:
		mode = store.ModeAdd
	case protocol.OpReplace:
		mode = store.ModeReplace
	}
	cas := h.CAS
	if s.cfg.NoCAS {
		// memcached -C keeps no CAS on the item it builds, so the
		// request's CAS is never compared.
		cas = 0
	}
	if cas != 0 && mode == store.ModeAdd {
		// memcached runs any storage request with a CAS as a cas.
		mode = store.ModeCAS
	}
	flags, exptime := req.StorageExtras()
	s.counters.Detail.RecordSet(req.Key)
	deadline := s.deadline(int64(exptime))
	var (
		status store.Status
		newCAS uint64
	)
	if w := s.watching(); w&(logFetchers|logMutations) != 0 {
		e := storeEvent{key: req.Key, cmd: storeCmd(mode, cas), size: len(req.Value), flags: flags, deadline: deadline}
		status, newCAS = b.storeWatched(w, e, allocBinary, h.Opcode.Loud() == protocol.OpSet, func() (store.Status, uint64) {
			return s.store.Set(mode, req.Key, req.Value, flags, deadline, cas)
		})
	} else {
		status, newCAS = s.store.Set(mode, req.Key, req.Value, flags, deadline, cas)
	}
	switch status {
	case store.TooLarge:
		// The store dropped the old value of a Set, as memcached does.
		b.failLater(protocol.StatusTooLarge, "")
		return
	case store.NoMemory:
		b.failLater(protocol.StatusOutOfMemory, oomItem)
		return
	}
	// The store counted the command, and a compare-and-swap's hit or
	// mismatch, in the classes of the items; a miss is counted here.
	if cas != 0 {
		s.countCASMiss(status)
	}
	switch status {
	case store.OK:
		b.ok(newCAS)
	case store.NotStored:
		if mode == store.ModeAdd {
			b.fail(protocol.StatusKeyExists)
		} else {
			b.fail(protocol.StatusKeyNotFound)
		}
	case store.Exists:
		b.fail(protocol.StatusKeyExists)
	default:
		b.fail(protocol.StatusKeyNotFound)
	}
}

// concat answers Append and Prepend and their quiet variants.
func (b *binaryConn) concat() {
	s, req := b.h, b.req
	h := &req.Header
	mode := store.ModeAppend
	if h.Opcode.Loud() == protocol.OpPrepend {
		mode = store.ModePrepend
	}
	s.counters.Detail.RecordSet(req.Key)
	var (
		status store.Status
		newCAS uint64
	)
	if w := s.watching(); w&(logFetchers|logMutations) != 0 {
		e := storeEvent{key: req.Key, cmd: storeCmd(mode, 0), size: len(req.Value)}
		status, newCAS = b.storeWatched(w, e, allocSilent, false, func() (store.Status, uint64) {
			return s.store.Set(mode, req.Key, req.Value, 0, 0, h.CAS)
		})
	} else {
		status, newCAS = s.store.Set(mode, req.Key, req.Value, 0, 0, h.CAS)
	}
	switch status {
	case store.NoMemory:
		b.failLater(protocol.StatusOutOfMemory, oomItem)
		return
	case store.TooLarge:
		b.failLater(protocol.StatusTooLarge, "")
		return
	}
	switch status {
	case store.OK:
		b.ok(newCAS)
	case store.Exists:
		b.fail(protocol.StatusKeyExists)
	default:
		// A missing key, or a joined value over the item size limit.
		b.fail(protocol.StatusNotStored)
	}
}

// deleteItem answers Delete and DeleteQ. A non-zero CAS must match.
func (b *binaryConn) deleteItem() {
	s, req := b.h, b.req
	s.counters.Detail.RecordDelete(req.Key)
	b.watchLookup(req.Key)
	switch s.store.Delete(req.Key, req.Header.CAS) {
	case store.OK:
		b.ok(0)
	case store.NotFound:
		s.counters.DeleteMisses.Add(1)
		b.fail(protocol.StatusKeyNotFound)
	default:
		b.fail(protocol.StatusKeyExists)
	}
}

// arith answers Increment and Decrement and their quiet variants. A miss
// creates the counter with the initial value unless the expiration is
// 0xffffffff; memcached counts neither a hit nor a miss for a created
// counter.
func (b *binaryConn) arith() {
	s, req := b.h, b.req
	h := &req.Header
	incr := h.Opcode.Loud() == protocol.OpIncrement
	delta, initial, exptime := req.CounterExtras()
	w := s.watching()
	b.watchLookup(req.Key)
	v, cas, status := s.store.Arith(req.Key, incr, delta, 0, false, 0, h.CAS)
	created := false
	if status == store.NotFound && exptime != counterNoCreate {
		created = true
		deadline := s.deadline(int64(exptime))
		v, cas, status = s.store.Arith(req.Key, incr, delta, initial, true, deadline, h.CAS)
		if status == store.OK && w&(logFetchers|logMutations) != 0 {
			b.logCreated(w, req.Key, v, deadline)
		}
	}
	misses := &s.counters.DecrMisses
	if incr {
		misses = &s.counters.IncrMisses
	}
	switch status {
	case store.OK: // a hit, unless created, counted by the store
		if !h.Opcode.Quiet() {
			b.Out = protocol.AppendBinaryCounterResponse(b.Out, h.Opcode, h.Opaque, cas, v)
		}
	case store.NotFound:
		misses.Add(1)
		b.fail(protocol.StatusKeyNotFound)
	case store.NonNumeric:
		b.fail(protocol.StatusNonNumeric)
	case store.Exists:
		b.fail(protocol.StatusKeyExists)
	default:
		msg := oomIncrementOp
		if created {
			msg = oomNewCounter
		}
		b.Out = protocol.AppendBinaryErrorMessage(b.Out, h.Opcode, protocol.StatusOutOfMemory, h.Opaque, msg)
		b.flushNow = true
	}
}

// flushAll answers Flush and FlushQ: with 4 bytes of extras, a delay or
// time as flush_all's; refused with Auth failure under -F.
func (b *binaryConn) flushAll() {
	h := b.h
	if h.cfg.DisableFlushAll {
		// memcached's answer, uncounted.
		b.fail(protocol.StatusAuthError)
		return
	}
	h.counters.CmdFlush.Add(1)
	h.flushAll(int64(b.req.Exptime()))
	b.ok(0)
}
