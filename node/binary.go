package node

// The binary protocol's dispatcher. protocol/binary_notes.md records, byte
// for byte, what memcached 1.6.18 answers to every opcode; this file
// reproduces it over the store. The decoder (protocol.ReadBinaryHead and
// ReadBinaryBody) already answers malformed requests the way memcached does;
// this file turns its errors into replies and serves the well-formed ones.

import (
	"strings"

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
	*conn
	req protocol.BinaryRequest

	// flushNow is set by a reply memcached writes at once: an error (and
	// with it every reply before it) or Noop's. Successful replies wait
	// until no complete request header is buffered, and so do errors that
	// follow a swallowed value (TooLarge, out of memory, unknown command).
	flushNow bool

	// authed is set once a SASL exchange succeeds (-S); every AUTH clears
	// it first. exchange is the SASL exchange under way, if any: an AUTH
	// starts a new one, STEP continues it, and its end (success or
	// failure) clears it.
	authed   bool
	exchange sasl.Server
}

// serveBinary serves the binary protocol until the connection ends.
//
// Replies are gathered in c.out and written when the read buffer holds less
// than a request header (memcached's "need more data"), when a reply is an
// error or Noop's, or when enough has gathered (afterRequest).
func (c *conn) serveBinary() {
	b := &binaryConn{conn: c}
	c.answerReady = b.answerReady
	for c.waitForRequest() {
		// What is owed is written before the rest of a request is
		// waited for (see connReader).
		if !b.serveRequest() {
			return
		}
		b.tidy()
		if b.flushNow {
			b.flushNow = false
			if c.flush() != nil {
				return
			}
		}
		if !c.afterRequest() {
			return
		}
	}
}

// tidy drops the buffers one large request grew.
func (b *binaryConn) tidy() {
	b.req.ReleaseBuffer(keepBuffer)
	if cap(b.scratch) > keepBuffer {
		b.scratch = nil
	}
}

// answerReady answers, on the event loop, the requests the loop's read
// completed, and reports whether the connection may stay on the loop. A
// request the loop must not serve (see onLoop), or not yet wholly arrived,
// is left unread for the goroutine. The replies stay in c.out unless enough
// gather to write at once (see answerTextReady).
func (b *binaryConn) answerReady() bool {
	c := b.conn
	for n := 0; protocol.BinaryNextBuffered(c.br) && b.onLoop(); n++ {
		if n == c.srv.cfg.MaxReqsPerEvent {
			// Served -R requests: the others' turn, this one's
			// again in the loop's next round (see eventLoop.serve).
			c.srv.counters.connYields.Add(1)
			c.yielded = true
			return true
		}
		if !b.serveRequest() {
			c.closeAfter = true // with c.out dropped: close at once
			return false
		}
		b.tidy()
		if b.flushNow {
			b.flushNow = false
			if !c.tryFlush() {
				return false
			}
		}
		if !c.afterRequestNow() {
			return false
		}
	}
	return true
}

// onLoop reports whether the event loop may serve the buffered request: a
// command answered at once from the store, on a connection that needs no
// authentication or has it. Stats, SASL, quit and flush are the
// goroutine's.
func (b *binaryConn) onLoop() bool {
	if b.srv.cfg.SASL && !b.authed {
		return false
	}
	head, _ := b.br.Peek(2)
	switch protocol.BinaryOpcode(head[1]).Loud() {
	case protocol.OpGet, protocol.OpGetK, protocol.OpGAT, protocol.OpGATK, protocol.OpTouch,
		protocol.OpSet, protocol.OpAdd, protocol.OpReplace, protocol.OpAppend, protocol.OpPrepend,
		protocol.OpDelete, protocol.OpIncrement, protocol.OpDecrement, protocol.OpNoop, protocol.OpVersion:
		return true
	}
	return false
}

// serveRequest reads and answers one request. It returns false when the
// connection must close at once, without writing the replies it holds; a
// reply followed by a close is instead c.closeAfter.
func (b *binaryConn) serveRequest() bool {
	c, req := b.conn, &b.req
	err := protocol.ReadBinaryHead(c.br, req)
	if err == nil && c.srv.cfg.SASL && !b.authed && !req.Header.Opcode.AuthExempt() {
		// memcached checks authentication right after the head, before
		// any other length or the value: with -S every request but
		// Version and the SASL opcodes is refused on a connection that
		// has not authenticated, and the connection closed, as memcached
		// does. Nothing of the request is read or executed.
		c.out = protocol.AppendBinaryError(c.out, req.Header.Opcode, protocol.StatusAuthError, req.Header.Opaque)
		c.closeAfter = true
		return true
	}
	if err == nil {
		err = protocol.ReadBinaryBody(c.br, req, b.maxValue())
	}
	if err != nil {
		return b.readError(err)
	}
	b.dispatch()
	return true
}

// maxValue is the longest value the request may carry, computed from its
// head as memcached computes an item's size: its header, the key and its
// terminator, the value and its "\r\n", 4 bytes for non-zero flags and 8
// for the CAS unique unless -C. Longer values are swallowed by the decoder
// and answered StatusTooLarge, as memcached does.
func (b *binaryConn) maxValue() int {
	h := &b.req.Header
	var flags uint32
	switch h.Opcode.Loud() {
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace:
		flags, _ = b.req.StorageExtras()
	case protocol.OpAppend, protocol.OpPrepend:
		// memcached sizes the appended part alone, with flags 0.
	case protocol.OpSASLAuth, protocol.OpSASLStep:
		// SASL data must fit one slab chunk, half the item size limit
		// (observed: 600 KiB is refused under -I 1m).
		return max(b.srv.cfg.ItemSizeMax/2, 1)
	default:
		return b.srv.cfg.ItemSizeMax
	}
	n := b.srv.cfg.ItemSizeMax - store.ItemSize(int(h.KeyLen), 0)
	if flags != 0 {
		n -= 4
	}
	if !b.srv.cfg.NoCAS {
		n -= 8
	}
	// A limit of zero or less means the default to the decoder; the store
	// refuses what is still too large.
	return max(n, 1)
}

// readError answers a request the decoder refused, as the error says:
// a reply or none, the connection kept or closed.
func (b *binaryConn) readError(err error) bool {
	c, h := b.conn, &b.req.Header
	be, ok := err.(*protocol.BinaryError)
	if !ok {
		// The client left in mid-request, or the read failed: memcached
		// closes without writing what it still owed.
		c.readEnded(err)
		c.out = c.out[:0]
		return false
	}
	if !be.Close && isSASLOpcode(h.Opcode) && !c.srv.cfg.SASL {
		// Without -S memcached answers every SASL opcode that passed
		// the length checks Unknown command, however large its data.
		be = protocol.ErrBinaryUnknownCommand
	}
	switch {
	case !be.Reply:
		// Bad magic, or a head beyond memcached's read buffer: memcached
		// closes at once, and replies not yet written are lost.
		c.out = c.out[:0]
		return false
	case be.Close:
		c.out = protocol.AppendBinaryError(c.out, h.Opcode, be.Status, h.Opaque)
		c.closeAfter = true
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
		c.srv.counters.detail.recordSet(b.req.Key)
		b.logTooLarge()
		if h.Opcode.Loud() == protocol.OpSet {
			// A failed set leaves no stale value behind.
			c.srv.store.Drop(b.req.Key)
		}
	}
	c.out = protocol.AppendBinaryError(c.out, h.Opcode, be.Status, h.Opaque)
	return true
}

func isSASLOpcode(op protocol.BinaryOpcode) bool {
	return op == protocol.OpSASLListMechs || op == protocol.OpSASLAuth || op == protocol.OpSASLStep
}

// dispatch answers a well-formed request. Quiet opcodes are served as their
// loud variant; only the replies binary_notes.md lists are left out.
func (b *binaryConn) dispatch() {
	if b.srv.verbosity.Load() >= 2 {
		b.srv.log.Debug("binary command", "conn", b.id, "opcode", b.req.Header.Opcode.String(), "key", string(b.req.Key))
	}
	h := &b.req.Header
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
	case protocol.OpIncrement, protocol.OpDecrement:
		b.arith()
	case protocol.OpQuit:
		// Pending replies are written first; QuitQ adds none.
		b.ok(0)
		b.closeAfter = true
		b.closeReason = closeNormal
	case protocol.OpFlush:
		b.flushAll()
	case protocol.OpNoop:
		b.ok(0)
		b.flushNow = true
	case protocol.OpVersion:
		b.out = protocol.AppendBinaryText(b.out, h.Opcode, h.Opaque, Version)
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
	h := &b.req.Header
	if !h.Opcode.Quiet() {
		b.out = protocol.AppendBinaryResponse(b.out, h.Opcode, protocol.StatusOK, h.Opaque, cas, nil, nil, nil)
	}
}

// fail appends an error reply, which memcached writes at once (quiet
// opcodes included).
func (b *binaryConn) fail(status protocol.BinaryStatus) {
	h := &b.req.Header
	b.out = protocol.AppendBinaryError(b.out, h.Opcode, status, h.Opaque)
	b.flushNow = true
}

// failLater appends an error reply that memcached gives after swallowing
// the value: it is written with the next batch rather than at once.
func (b *binaryConn) failLater(status protocol.BinaryStatus, msg string) {
	h := &b.req.Header
	if msg == "" {
		msg = status.Message()
	}
	b.out = protocol.AppendBinaryErrorMessage(b.out, h.Opcode, status, h.Opaque, msg)
}

// get answers Get, GetQ, GetK, GetKQ and, with touch, GAT, GATQ, GATK and
// GATKQ.
func (b *binaryConn) get(touch bool) {
	s, req := b.srv, &b.req
	h := &req.Header
	loud := h.Opcode.Loud()
	withKey := loud == protocol.OpGetK || loud == protocol.OpGATK
	var (
		value  []byte
		meta   store.Meta
		lookup store.Lookup
	)
	if touch {
		s.counters.cmdTouch.Add(1)
		value, meta, lookup = s.store.GetAndTouch(req.Key, s.deadline(int64(req.Exptime())), b.scratch[:0])
	} else {
		s.counters.cmdGet.Add(1)
		value, meta, lookup = s.store.Get(req.Key, b.scratch[:0])
	}
	b.scratch = value
	s.counters.detail.recordGet(req.Key, lookup == store.Hit)
	if s.watching()&logFetchers != 0 {
		b.logFetch(req.Key, lookup, len(value), meta.Flags)
	}
	var key []byte
	if withKey {
		key = req.Key
	}
	if lookup == store.Hit { // the store counted the hit in the item's class
		b.out = protocol.AppendBinaryGetResponse(b.out, h.Opcode, h.Opaque, meta.CAS, meta.Flags, key, value)
		return
	}
	b.countMiss(lookup, touch)
	switch {
	case h.Opcode.Quiet():
		// GetQ, GetKQ, GATQ and GATKQ are silent on a miss.
	case withKey:
		// GetK and GATK answer a miss with the key as key and body.
		b.out = protocol.AppendBinaryResponse(b.out, h.Opcode, protocol.StatusKeyNotFound, h.Opaque, 0, nil, key, nil)
		b.flushNow = true
	default:
		b.fail(protocol.StatusKeyNotFound)
	}
}

// countMiss counts a read that missed, and why.
func (b *binaryConn) countMiss(lookup store.Lookup, touch bool) {
	c := &b.srv.counters
	switch lookup {
	case store.MissExpired:
		c.getExpired.Add(1)
	case store.MissFlushed:
		c.getFlushed.Add(1)
	}
	if touch {
		c.touchMisses.Add(1)
	} else {
		c.getMisses.Add(1)
	}
}

// touch answers Touch: on a hit the flags as extras and the item's CAS, no
// value.
func (b *binaryConn) touch() {
	s, req := b.srv, &b.req
	h := &req.Header
	s.counters.cmdTouch.Add(1)
	value, meta, lookup := s.store.GetAndTouch(req.Key, s.deadline(int64(req.Exptime())), b.scratch[:0])
	b.scratch = value
	s.counters.detail.recordGet(req.Key, lookup == store.Hit)
	if s.watching()&logFetchers != 0 {
		b.logFetch(req.Key, lookup, len(value), meta.Flags)
	}
	if lookup != store.Hit {
		b.countMiss(lookup, true)
		b.fail(protocol.StatusKeyNotFound)
		return
	}
	b.out = protocol.AppendBinaryGetResponse(b.out, h.Opcode, h.Opaque, meta.CAS, meta.Flags, nil, nil)
}

// storeItem answers Set, Add and Replace and their quiet variants.
func (b *binaryConn) storeItem() {
	s, req := b.srv, &b.req
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
	s.counters.detail.recordSet(req.Key)
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
		s.counters.countCASMiss(status)
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
	s, req := b.srv, &b.req
	h := &req.Header
	mode := store.ModeAppend
	if h.Opcode.Loud() == protocol.OpPrepend {
		mode = store.ModePrepend
	}
	s.counters.detail.recordSet(req.Key)
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
	s, req := b.srv, &b.req
	s.counters.detail.recordDelete(req.Key)
	b.watchLookup(req.Key)
	switch s.store.Delete(req.Key, req.Header.CAS) {
	case store.OK:
		b.ok(0)
	case store.NotFound:
		s.counters.deleteMisses.Add(1)
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
	s, req := b.srv, &b.req
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
	misses := &s.counters.decrMisses
	if incr {
		misses = &s.counters.incrMisses
	}
	switch status {
	case store.OK: // a hit, unless created, counted by the store
		if !h.Opcode.Quiet() {
			b.out = protocol.AppendBinaryCounterResponse(b.out, h.Opcode, h.Opaque, cas, v)
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
		b.out = protocol.AppendBinaryErrorMessage(b.out, h.Opcode, protocol.StatusOutOfMemory, h.Opaque, msg)
		b.flushNow = true
	}
}

// flushAll answers Flush and FlushQ: with 4 bytes of extras, a delay or
// time as flush_all's; refused with Auth failure under -F.
func (b *binaryConn) flushAll() {
	s := b.srv
	if s.cfg.DisableFlushAll {
		// memcached's answer, uncounted.
		b.fail(protocol.StatusAuthError)
		return
	}
	s.counters.cmdFlush.Add(1)
	s.flushAll(int64(b.req.Exptime()))
	b.ok(0)
}

// stat answers Stat: one packet per statistic of the group its key names,
// then an empty packet, as memcached's process_bin_stat. Groups are matched
// as memcached matches them: "reset", "settings" and "detail" by prefix,
// the others exactly.
func (b *binaryConn) stat() {
	s, h := b.srv, &b.req.Header
	group := string(b.req.Key) // Stat is rare; the copy is not on a hot path
	switch {
	case group == "":
		b.appendStats(s.Stats())
	case strings.HasPrefix(group, "reset"):
		s.resetStats()
	case strings.HasPrefix(group, "settings"):
		b.appendStats(s.Settings())
	case strings.HasPrefix(group, "detail"):
		switch sub := group[len("detail"):]; {
		case strings.HasPrefix(sub, " dump"):
			// One packet holds the whole text dump, END included.
			dump := s.counters.detail.appendDump(nil)
			b.out = protocol.AppendBinaryStat(b.out, h.Opaque, "detailed", string(dump))
		case strings.HasPrefix(sub, " on"):
			s.counters.detail.setEnabled(true)
		case strings.HasPrefix(sub, " off"):
			s.counters.detail.setEnabled(false)
		default:
			b.fail(protocol.StatusKeyNotFound)
			return
		}
	case group == "items":
		b.appendStats(s.itemStats())
	case group == "slabs":
		b.appendStats(s.slabStats())
	case group == "sizes":
		b.appendStats([]Stat{{"sizes_status", "disabled"}})
	default:
		// Unknown groups, and "conns", which memcached serves in text
		// only.
		b.fail(protocol.StatusKeyNotFound)
		return
	}
	b.out = protocol.AppendBinaryStatEnd(b.out, h.Opaque)
}

// appendStats appends one Stat packet per statistic.
func (b *binaryConn) appendStats(stats []Stat) {
	opaque := b.req.Header.Opaque
	for _, st := range stats {
		b.out = protocol.AppendBinaryStat(b.out, opaque, st.Name, st.Value)
	}
}

// sasl answers SASLListMechs, SASLAuth and SASLStep.
//
// Without -S memcached answers them Unknown command (at once when there was
// no data to swallow). With -S: LIST_MECHS names the mechanisms offered;
// AUTH (the mechanism as its key, the client's initial response as its
// value) drops any earlier authentication and exchange and starts a new
// one; STEP feeds the exchange under way. An exchange answers
// StatusAuthContinue with the server's challenge until it ends: in success
// ("Authenticated", or SCRAM's server-final message, which lets the client
// check the server) or in StatusAuthError, after which the connection is
// unauthenticated and may try again.
func (b *binaryConn) sasl() {
	s, req := b.srv, &b.req
	h := &req.Header
	if !s.cfg.SASL {
		if len(req.Value) == 0 {
			b.fail(protocol.StatusUnknownCommand)
		} else {
			b.failLater(protocol.StatusUnknownCommand, "")
		}
		return
	}
	if h.Opcode == protocol.OpSASLListMechs {
		b.out = protocol.AppendBinaryText(b.out, h.Opcode, h.Opaque, s.auth.list)
		return
	}
	if h.Opcode == protocol.OpSASLAuth {
		// Every AUTH ends what came before it, even one refused before
		// an exchange begins.
		b.authed, b.exchange = false, nil
	}
	if len(req.Key) > saslMechMax {
		b.failLater(protocol.StatusInvalidArgs, "")
		return
	}
	s.counters.authCmds.Add(1)
	mech := string(req.Key)
	if h.Opcode == protocol.OpSASLAuth {
		if !s.auth.offers(mech) {
			b.authFailed()
			return
		}
		ex, err := sasl.NewServer(mech, s.auth.sasl)
		if err != nil {
			b.authFailed()
			return
		}
		b.exchange = ex
	} else if b.exchange == nil || !strings.EqualFold(b.exchange.Mechanism(), mech) {
		// A STEP with no exchange under way, or for another mechanism.
		b.exchange = nil
		b.authFailed()
		return
	}
	challenge, done, err := b.exchange.Step(req.Value)
	switch {
	case err != nil:
		b.exchange = nil
		b.authFailed()
	case !done:
		b.out = protocol.AppendBinaryResponse(b.out, h.Opcode, protocol.StatusAuthContinue, h.Opaque, 0, nil, nil, challenge)
	default:
		b.exchange = nil
		b.authed = true
		if len(challenge) == 0 {
			challenge = []byte("Authenticated")
		}
		b.out = protocol.AppendBinaryResponse(b.out, h.Opcode, protocol.StatusOK, h.Opaque, 0, nil, nil, challenge)
	}
}

// authFailed answers a failed SASL attempt, as memcached does, and counts
// it. The connection stays open and unauthenticated.
func (b *binaryConn) authFailed() {
	b.srv.counters.authErrors.Add(1)
	b.fail(protocol.StatusAuthError)
}
