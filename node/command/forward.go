package command

// Forwarding (--forward): a request for a key another node owns is sent to
// that node, the owner, and its reply relayed, so that a client with one
// address sees the whole cluster's cache. A request goes on a pooled
// connection marked as a peer's (protocol.CmdPeer), which the owner serves
// from its own store: no request is forwarded twice. Each forwarded request
// is followed by a no-op (mn, or a binary Noop), whose reply marks where
// the request's replies end, quiet modes included; the owner's replies are
// relayed byte for byte. Commands without a key stay local.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/memcluster/memcluster/internal/freelist"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/peer"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// DefaultForwardTimeout is how long the exchange with an owner may take,
// from the first request written to the last reply read (a connection is
// dialed within peer.Config.DialTimeout before that), unless
// Options.ForwardTimeout says otherwise.
const DefaultForwardTimeout = 2 * time.Second

// replyBackendFailure is the reply to a request whose owner could not be
// reached, memcached's proxy's.
var replyBackendFailure = []byte("SERVER_ERROR backend failure\r\n")

// routing reports whether the connection's keyed requests go to their
// owners: forwarding is on, and the connection is not another node's.
func (c *session) routing() bool { return c.h.forward != nil && !c.peer }

// route returns the owner of key and whether it is another node.
func (c *session) route(key []byte) (ring.Member, bool) { return c.h.cluster.Route(key) }

// textForwards reports whether req, which the decoder returned without
// error, is a keyed command at least one of whose keys (of the batch at
// hand, for a retrieval) another node owns: the event loop leaves it to the
// goroutine.
func (c *session) textForwards(req *protocol.Request) bool {
	if !c.routing() || !forwardable(req.Command) || isHandoffFetch(&req.Meta) {
		return false
	}
	for _, k := range req.Keys[c.resumeKey:] {
		if _, remote := c.route(k); remote {
			return true
		}
	}
	return false
}

// forwardable reports whether cmd is a keyed command, which forwarding
// sends to its key's owner.
func forwardable(cmd protocol.Command) bool {
	switch cmd {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats,
		protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas,
		protocol.CmdDelete, protocol.CmdIncr, protocol.CmdDecr, protocol.CmdTouch,
		protocol.CmdMetaGet, protocol.CmdMetaSet, protocol.CmdMetaDelete, protocol.CmdMetaArith, protocol.CmdMetaDebug:
		return true
	}
	return false
}

// maxForwardRun is the most requests a run of forwarded requests holds: a
// pipeline of keyed requests that other nodes own goes to the owners at
// once, up to this many, before their replies are read.
const maxForwardRun = 64

// forwardRun is a run of forwarded requests: the connections to their
// owners, and each request's owner, in the client's order.
type forwardRun struct {
	conns []runConn
	reqs  []runReq
}

// runConn is a run's connection to one owner.
type runConn struct {
	owner ring.Member
	fc    *peer.ForwardConn // nil if it could not be had, or failed
	// head is a retrieval's reply line read and not yet relayed: a hit
	// for a later key, or its END. It is valid until fc.R is next read.
	head []byte
}

// runReq is one request of a run.
type runReq struct {
	conn   int                   // index in conns
	op     protocol.BinaryOpcode // a binary request's opcode and opaque, for its error reply
	opaque uint32
}

// forwardRuns lend runs their slices.
var forwardRuns = freelist.List[forwardRun]{New: func() *forwardRun { return new(forwardRun) }, Max: 256}

// conn returns the index in r.conns of the connection to owner, lending one
// if the run has none: a failure to get it leaves it nil, and the requests
// sent to it fail.
func (r *forwardRun) conn(c *session, owner ring.Member, binary bool) int {
	for i := range r.conns {
		if r.conns[i].owner == owner {
			return i
		}
	}
	fc, err := c.openForward(owner, binary)
	if err != nil {
		c.forwardFailed(owner, err)
	}
	r.conns = append(r.conns, runConn{owner: owner, fc: fc})
	return len(r.conns) - 1
}

// fail marks conn failed: its requests still unanswered fail.
func (r *forwardRun) fail(c *session, conn int, err error) {
	rc := &r.conns[conn]
	if rc.fc != nil {
		c.forwardFailed(rc.owner, err)
		rc.fc.Release(false)
		rc.fc = nil
	}
}

// failAll closes every connection of the run: their replies will not be
// read to their ends.
func (r *forwardRun) failAll() {
	for i := range r.conns {
		if fc := r.conns[i].fc; fc != nil {
			fc.Release(false)
			r.conns[i].fc = nil
		}
	}
}

// flush writes what each connection buffered.
func (r *forwardRun) flush(c *session) {
	for i := range r.conns {
		if fc := r.conns[i].fc; fc != nil {
			if err := fc.W.Flush(); err != nil {
				r.fail(c, i, err)
			}
		}
	}
}

// release gives back the run's connections, those not failed to their
// pools, and the run.
func (r *forwardRun) release() {
	for i := range r.conns {
		if fc := r.conns[i].fc; fc != nil {
			fc.Release(true)
		}
		r.conns[i] = runConn{}
	}
	r.conns, r.reqs = r.conns[:0], r.reqs[:0]
	forwardRuns.Put(r)
}

// forwardText forwards req, a keyed text request other than a retrieval,
// if another node owns its key, and with it the requests buffered after it
// that other nodes own too (up to maxForwardRun), relaying the owners'
// replies in order; it reports whether it did. The first request buffered
// that it does not forward is left pending (see nextText). It runs on the
// connection's goroutine.
func (c *session) forwardText(req *protocol.Request) bool {
	owner, remote := c.textRoute(req)
	if !remote {
		return false
	}
	r := forwardRuns.Get()
	defer r.release()
	c.Linger()
	for {
		c.h.counters.Forwarded.Add(1)
		i := r.conn(c, owner, false)
		r.reqs = append(r.reqs, runReq{conn: i})
		if fc := r.conns[i].fc; fc != nil {
			appendTextRequest(fc.W, req)
			fc.W.WriteString("mn\r\n")
		}
		if len(r.reqs) == maxForwardRun || !c.text.NextBuffered() {
			break
		}
		next, err := c.text.Next()
		if err == nil {
			owner, remote = c.textRoute(next)
		}
		if err != nil || !remote {
			c.pendingReq, c.pendingErr = next, err // answered next
			break
		}
		req = next
	}
	r.flush(c)
	for _, rq := range r.reqs {
		if fc := r.conns[rq.conn].fc; fc != nil {
			mark := len(c.Out)
			if err := c.relayText(fc.R); err != nil {
				c.Out = c.Out[:mark]
				r.fail(c, rq.conn, err)
			} else {
				continue
			}
		}
		c.Out = append(c.Out, replyBackendFailure...)
	}
	return true
}

// textRoute returns the owner of req's key and whether forwardText sends it
// there: a keyed request other than a retrieval, whose key another node
// owns.
func (c *session) textRoute(req *protocol.Request) (ring.Member, bool) {
	switch req.Command {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		return ring.Member{}, false // see retrieve
	}
	if !forwardable(req.Command) || isHandoffFetch(&req.Meta) {
		// Another node's hand-off fetch or push is answered here.
		return ring.Member{}, false
	}
	return c.route(req.Key())
}

// openForward lends a connection to owner for forwarding, its deadline set.
func (c *session) openForward(owner ring.Member, binary bool) (*peer.ForwardConn, error) {
	// Dialing is bounded by the peer client's own timeout: a context
	// per request would cost a timer.
	fc, err := c.h.forward.Forwarding(context.Background(), owner, binary)
	if err != nil {
		return nil, err
	}
	if err := fc.SetDeadline(time.Now().Add(c.h.forwardTimeout)); err != nil {
		fc.Release(false)
		return nil, err
	}
	return fc, nil
}

// forwardFailed counts and logs a forwarded request that failed.
func (c *session) forwardFailed(owner ring.Member, err error) {
	c.h.counters.ForwardErrors.Add(1)
	c.h.log.Debug("forwarding failed", "owner", owner.Addr(), "err", err)
}

// appendTextRequest writes req, a keyed text request the decoder read, as
// the owner is to read it: the command, its key (base64-encoded again if it
// came so) and its arguments, and the data block of a storage command.
func appendTextRequest(w *bufio.Writer, req *protocol.Request) {
	var num [20]byte
	w.WriteString(req.Command.String())
	w.WriteByte(' ')
	key := req.Key()
	if req.Meta.Base64 {
		enc := base64.NewEncoder(base64.StdEncoding, w)
		enc.Write(key)
		enc.Close()
	} else {
		w.Write(key)
	}
	switch req.Command {
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas:
		w.WriteByte(' ')
		w.Write(strconv.AppendUint(num[:0], uint64(req.Flags), 10))
		w.WriteByte(' ')
		w.Write(strconv.AppendInt(num[:0], req.Exptime, 10))
		w.WriteByte(' ')
		w.Write(strconv.AppendInt(num[:0], int64(len(req.Data)), 10))
		if req.Command == protocol.CmdCas {
			w.WriteByte(' ')
			w.Write(strconv.AppendUint(num[:0], req.CAS, 10))
		}
	case protocol.CmdIncr, protocol.CmdDecr:
		w.WriteByte(' ')
		w.Write(strconv.AppendUint(num[:0], req.Delta, 10))
	case protocol.CmdTouch:
		w.WriteByte(' ')
		w.Write(strconv.AppendInt(num[:0], req.Exptime, 10))
	case protocol.CmdMetaSet:
		w.WriteByte(' ')
		w.Write(strconv.AppendInt(num[:0], int64(len(req.Data)), 10))
	}
	for _, f := range req.Meta.Flags {
		w.WriteByte(' ')
		w.Write(f)
	}
	if req.Noreply {
		w.WriteString(" noreply")
	}
	w.WriteString("\r\n")
	if req.Command.IsStorage() || req.Command == protocol.CmdMetaSet {
		w.Write(req.Data)
		w.WriteString("\r\n")
	}
}

// relayText appends the owner's replies, read from r, up to the "MN" that
// ends them.
func (c *session) relayText(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if bytes.Equal(line, protocol.ReplyMetaNoop) {
			return nil
		}
		if err := c.relayReply(r, line); err != nil {
			return err
		}
	}
}

// relayReply appends line, a reply line read from r, and the data block
// that follows it, if any.
func (c *session) relayReply(r *bufio.Reader, line []byte) error {
	n, err := protocol.ReplyDataLen(line)
	if err != nil {
		return err
	}
	c.Out = append(c.Out, line...)
	if n < 0 {
		return nil
	}
	if n > c.h.cfg.ItemSizeMax {
		return fmt.Errorf("%w: a value of %d bytes", peer.ErrBadReply, n)
	}
	at := len(c.Out)
	c.Out = slices.Grow(c.Out, n+2)[:at+n+2]
	if _, err := io.ReadFull(r, c.Out[at:]); err != nil {
		return err
	}
	if c.Out[at+n] != '\r' || c.Out[at+n+1] != '\n' {
		return fmt.Errorf("%w: a value not ended by CRLF", peer.ErrBadReply)
	}
	return nil
}

// retrieveForwarded answers the keys from index from of a retrieval's
// batch, some of which other nodes own: it sends each owner a retrieval of
// its keys, then answers every key in order, from the store or from its
// owner's reply, writing as the reply grows (see retrieve). An error means
// an owner could not be reached or answered amiss, or the client's
// connection failed; the caller then fails the request.
func (c *session) retrieveForwarded(req *protocol.Request, from int, touch, withCAS bool, deadline int64) (err error) {
	keys := req.Keys[from:]
	r := forwardRuns.Get()
	c.Linger()
	defer func() {
		if err != nil {
			r.failAll() // replies not read to their ends
		}
		r.release()
	}()
	// r.reqs: per key, its owner's connection, or -1 for a key of this
	// node's. Every owner's request goes out before any reply is read.
	for _, k := range keys {
		if m, remote := c.route(k); remote {
			r.reqs = append(r.reqs, runReq{conn: r.conn(c, m, false)})
		} else {
			r.reqs = append(r.reqs, runReq{conn: -1})
		}
	}
	c.h.counters.Forwarded.Add(uint64(len(r.conns)))
	var num [20]byte
	for o := range r.conns {
		fc := r.conns[o].fc
		if fc == nil {
			return errOwnerUnreachable
		}
		fc.W.WriteString(req.Command.String())
		if touch {
			fc.W.WriteByte(' ')
			fc.W.Write(strconv.AppendInt(num[:0], req.Exptime, 10))
		}
		for i, k := range keys {
			if r.reqs[i].conn == o {
				fc.W.WriteByte(' ')
				fc.W.Write(k)
			}
		}
		fc.W.WriteString("\r\nmn\r\n")
	}
	r.flush(c)
	// fail closes o's connection, whose reply is not read to its end.
	fail := func(o int, err error) error {
		r.fail(c, o, err)
		return err
	}
	for i, k := range keys {
		if o := r.reqs[i].conn; o < 0 {
			c.warm(k) // on the goroutine: the hand-off may fetch it
			if !c.fetch(k, touch, withCAS, deadline) {
				return errClientWrite
			}
		} else {
			rc := &r.conns[o]
			if rc.fc == nil {
				return errOwnerUnreachable
			}
			if rc.head == nil {
				line, err := rc.fc.R.ReadSlice('\n')
				if err != nil {
					return fail(o, err)
				}
				rc.head = line
			}
			if isValueFor(rc.head, k) {
				if err := c.relayReply(rc.fc.R, rc.head); err != nil {
					return fail(o, err)
				}
				rc.head = nil
			} // else a miss: the owner's next line is a later key's
		}
		if len(c.Out) >= netserve.FlushThreshold && c.FlushPart() != nil {
			return errClientWrite
		}
	}
	for o := range r.conns {
		rc := &r.conns[o]
		if rc.fc == nil {
			return errOwnerUnreachable
		}
		for _, want := range [][]byte{protocol.ReplyEnd, protocol.ReplyMetaNoop} {
			line := rc.head
			rc.head = nil
			if line == nil {
				var rerr error
				if line, rerr = rc.fc.R.ReadSlice('\n'); rerr != nil {
					return fail(o, rerr)
				}
			}
			if !bytes.Equal(line, want) {
				return fail(o, fmt.Errorf("%w: %q where %q was due", peer.ErrBadReply, line, want))
			}
		}
	}
	return nil
}

// errOwnerUnreachable is retrieveForwarded's error when an owner's
// connection could not be had or failed (logged as it did).
var errOwnerUnreachable = errors.New("node: an owner could not be reached")

// errClientWrite is retrieveForwarded's error when the client's
// connection failed.
var errClientWrite = errors.New("node: writing to the client failed")

// isValueFor reports whether line is the VALUE line of key.
func isValueFor(line, key []byte) bool {
	return len(line) > 6+len(key) && string(line[:6]) == "VALUE " &&
		bytes.Equal(line[6:6+len(key)], key) && line[6+len(key)] == ' '
}

// binaryKeyed reports whether op is a keyed binary command, which
// forwarding sends to its key's owner.
func binaryKeyed(op protocol.BinaryOpcode) bool {
	switch op.Loud() {
	case protocol.OpGet, protocol.OpGetK, protocol.OpGAT, protocol.OpGATK, protocol.OpTouch,
		protocol.OpSet, protocol.OpAdd, protocol.OpReplace, protocol.OpAppend, protocol.OpPrepend,
		protocol.OpDelete, protocol.OpIncrement, protocol.OpDecrement:
		return true
	}
	return false
}

// forwardBinary forwards the request b holds, a keyed binary request, if
// another node owns its key, and with it the requests buffered whole after
// it that other nodes own too (up to maxForwardRun: a GetKQ pipeline),
// relaying the owners' responses in order; it reports whether it did. It
// runs on the connection's goroutine.
func (b *binaryConn) forwardBinary() bool {
	owner, remote := b.route(b.req.Key)
	if !remote {
		return false
	}
	r := forwardRuns.Get()
	defer r.release()
	b.Linger()
	var pending error // a request read after the run that the decoder refused
	for {
		req := b.req
		h := &req.Header
		b.h.counters.Forwarded.Add(1)
		i := r.conn(b.session, owner, true)
		r.reqs = append(r.reqs, runReq{conn: i, op: h.Opcode, opaque: h.Opaque})
		if fc := r.conns[i].fc; fc != nil {
			// The head, extras and key; the value is written from
			// where it is, not copied.
			var buf [protocol.BinaryHeaderLen + 20 + protocol.MaxKeyLen]byte
			head := protocol.AppendBinaryRequest(buf[:0], h.Opcode, h.Opaque, h.CAS, req.Extras, req.Key, nil)
			binary.BigEndian.PutUint32(head[8:12], uint32(len(req.Extras)+len(req.Key)+len(req.Value)))
			fc.W.Write(head)
			fc.W.Write(req.Value)
			fc.W.Write(protocol.AppendBinaryRequest(buf[:0], protocol.OpNoop, 0, 0, nil, nil, nil))
		}
		if len(r.reqs) == maxForwardRun || !b.nextForwards() {
			break
		}
		err := protocol.ReadBinaryHead(b.In, req)
		if err == nil {
			err = protocol.ReadBinaryBody(b.In, req, b.maxValue())
		}
		if err != nil {
			pending = err
			break
		}
		owner, _ = b.route(req.Key)
	}
	r.flush(b.session)
	for _, rq := range r.reqs {
		if fc := r.conns[rq.conn].fc; fc != nil {
			mark := len(b.Out)
			if err := b.relayBinary(fc.R); err != nil {
				b.Out = b.Out[:mark]
				r.fail(b.session, rq.conn, err)
			} else {
				continue
			}
		}
		b.Out = protocol.AppendBinaryError(b.Out, rq.op, protocol.StatusInternalError, rq.opaque)
		b.flushNow = true
	}
	if pending != nil && !b.readError(pending) {
		// A request memcached would close the connection at: what is
		// not written yet is lost, as there.
		b.Out = b.Out[:0]
		b.CloseAfterReplies(netserve.CloseUnknown)
	}
	return true
}

// nextForwards reports whether the request buffered next, whole, is a keyed
// request that another node owns: forwardBinary sends it in the same run.
func (b *binaryConn) nextForwards() bool {
	if !protocol.BinaryNextBuffered(b.In) {
		return false
	}
	head, _ := b.In.Peek(2)
	if !binaryKeyed(protocol.BinaryOpcode(head[1])) {
		return false
	}
	key := b.bufferedBinaryKey()
	if key == nil {
		return false
	}
	_, remote := b.route(key)
	return remote
}

// relayBinary appends the owner's responses, read from r, up to the Noop's
// that ends them, byte for byte.
func (b *binaryConn) relayBinary(r *bufio.Reader) error {
	for {
		head, err := r.Peek(protocol.BinaryHeaderLen)
		if err != nil {
			return err
		}
		var h protocol.BinaryHeader
		_ = h.Decode(head)
		if h.Magic != protocol.BinaryMagicResponse {
			return fmt.Errorf("%w: magic %#x", peer.ErrBadReply, h.Magic)
		}
		if int64(h.BodyLen) > int64(b.h.cfg.ItemSizeMax)+protocol.BinaryHeaderLen+protocol.MaxKeyLen {
			return fmt.Errorf("%w: a body of %d bytes", peer.ErrBadReply, h.BodyLen)
		}
		n := protocol.BinaryHeaderLen + int(h.BodyLen)
		if h.Opcode == protocol.OpNoop {
			_, err := r.Discard(n)
			return err
		}
		at := len(b.Out)
		b.Out = slices.Grow(b.Out, n)[:at+n]
		if _, err := io.ReadFull(r, b.Out[at:]); err != nil {
			return err
		}
	}
}
