package command

import (
	"context"
	"encoding/binary"
	"strconv"

	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// warm brings key from its previous owner before a read looks it up, in a
// hand-off window (see node/handoff), if the node has come to own it and
// lacks it. It reports false if the read must wait for the network and the
// connection is on its event loop, which must not: the caller then leaves
// the read to the connection's goroutine, before counting anything of it.
func (c *session) warm(key []byte) bool {
	ho := c.h.handoff
	if ho == nil || !ho.Wants(key) {
		return true
	}
	if _, lk := c.h.store.Peek(key); lk == store.Hit {
		return true
	}
	if c.OnLoop() {
		return false
	}
	ho.Warm(context.Background(), key)
	return true
}

// isHandoffFetch reports whether m, a meta command's flags, carries the
// opaque token of the hand-off (handoff.Opaque): another node's fetch (mg)
// or push (ms), answered from this node's store alone and never forwarded.
func isHandoffFetch(m *protocol.MetaArgs) bool {
	for _, f := range m.Flags {
		if f[0] == 'O' && string(f[1:]) == handoff.Opaque {
			return true
		}
	}
	return false
}

// binaryWantsWarm reports whether the binary request buffered in full in
// c.In, a get or gat, reads a key the hand-off would fetch (see warm): the
// event loop then leaves it to the goroutine.
func (c *session) binaryWantsWarm() bool {
	ho := c.h.handoff
	if ho == nil || !ho.Active() {
		return false
	}
	key := c.bufferedBinaryKey()
	if key == nil || !ho.Wants(key) {
		return false
	}
	_, lk := c.h.store.Peek(key)
	return lk != store.Hit
}

// bufferedBinaryKey returns the key of the binary request at the head of
// c.In if it is buffered in full, else nil. It reads nothing: the key is
// valid until c.In is next read.
func (c *session) bufferedBinaryKey() []byte {
	// Peek only what is buffered: a Peek past it would wait for the
	// socket.
	if c.In.Buffered() < protocol.BinaryHeaderLen {
		return nil
	}
	head, _ := c.In.Peek(protocol.BinaryHeaderLen)
	keyLen, extLen := int(binary.BigEndian.Uint16(head[2:4])), int(head[4])
	n := protocol.BinaryHeaderLen + extLen + keyLen
	if keyLen == 0 || c.In.Buffered() < n {
		return nil
	}
	b, _ := c.In.Peek(n)
	return b[protocol.BinaryHeaderLen+extLen:]
}

// handoffGet answers a HandoffGet, another node's hand-off fetch over the
// binary protocol (see protocol.OpHandoffGet): from this node's store
// alone, with the item's flags and the seconds it has left.
func (b *binaryConn) handoffGet() {
	s, req := b.h, b.req
	h := &req.Header
	s.counters.CmdGet.Add(1)
	value, meta, lookup := s.store.Get(req.Key, b.Scratch[:0])
	b.Scratch = value
	if lookup == store.Hit && s.handoff != nil && !s.handoff.Fresh(req.Key, meta.CAS) {
		lookup = store.Miss // stale: see handoff.Handoff.Fresh
	}
	if lookup != store.Hit {
		b.countMiss(lookup, false)
		b.fail(protocol.StatusKeyNotFound)
		return
	}
	var ttl int64
	if meta.Deadline != 0 {
		ttl = max(meta.Deadline-s.store.Now(), 1)
	}
	extras := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, meta.Flags), uint32(min(ttl, 1<<31)))
	b.Out = protocol.AppendBinaryResponse(b.Out, h.Opcode, protocol.StatusOK, h.Opaque, meta.CAS, extras, nil, value)
}

// handoffAdd answers a HandoffAdd, a leaving node's push over the binary
// protocol (see protocol.OpHandoffAdd): stored unless this node has the
// key or wrote it lately (handoff.Handoff.Accept).
func (b *binaryConn) handoffAdd() {
	s, req := b.h, b.req
	flags, exptime := req.StorageExtras()
	deadline := s.deadline(int64(exptime))
	var (
		status store.Status
		cas    uint64
	)
	if s.handoff != nil {
		status, cas = s.handoff.Accept(req.Key, req.Value, flags, deadline)
	} else {
		status, cas = s.store.Set(store.ModeAdd, req.Key, req.Value, flags, deadline, 0)
	}
	switch status {
	case store.OK:
		b.ok(cas)
	case store.TooLarge:
		b.fail(protocol.StatusTooLarge)
	case store.NoMemory:
		b.fail(protocol.StatusOutOfMemory)
	default:
		b.fail(protocol.StatusNotStored)
	}
}

// handoffMetaGet answers an mg that carries the hand-off's opaque (see
// isHandoffFetch), another node's fetch: from this node's store alone, and
// only an item handoff.Handoff.Fresh lets go, as "VA <len> f<flags>
// t<seconds left, -1 for none> O<opaque>" or "EN".
func (c *session) handoffMetaGet(req *protocol.Request) {
	h := c.h
	key := req.Key()
	h.counters.CmdGet.Add(1)
	value, meta, lookup := h.store.Get(key, c.Scratch[:0])
	c.Scratch = value
	if lookup != store.Hit || !h.handoff.Fresh(key, meta.CAS) {
		h.counters.GetMisses.Add(1)
		c.Out = append(c.Out, "EN\r\n"...)
		return
	}
	ttl := int64(-1)
	if meta.Deadline != 0 {
		ttl = max(meta.Deadline-h.store.Now(), 1)
	}
	c.Out = append(c.Out, "VA "...)
	c.Out = strconv.AppendInt(c.Out, int64(len(value)), 10)
	c.Out = append(c.Out, " f"...)
	c.Out = strconv.AppendUint(c.Out, uint64(meta.Flags), 10)
	c.Out = append(c.Out, " t"...)
	c.Out = strconv.AppendInt(c.Out, ttl, 10)
	c.Out = append(c.Out, " O"+handoff.Opaque+"\r\n"...)
	c.Out = append(c.Out, value...)
	c.Out = append(c.Out, '\r', '\n')
}
