package command

import (
	"context"
	"encoding/binary"

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

// isHandoffFetch reports whether m, an mg's flags, carries the opaque
// token of a hand-off fetch from another node (handoff.Opaque): such a
// read is answered from this node's store alone.
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
	// Peek only what is buffered: a Peek past it would wait for the
	// socket.
	if c.In.Buffered() < protocol.BinaryHeaderLen {
		return false
	}
	head, _ := c.In.Peek(protocol.BinaryHeaderLen)
	keyLen, extLen := int(binary.BigEndian.Uint16(head[2:4])), int(head[4])
	n := protocol.BinaryHeaderLen + extLen + keyLen
	if keyLen == 0 || c.In.Buffered() < n {
		return false
	}
	b, _ := c.In.Peek(n)
	key := b[protocol.BinaryHeaderLen+extLen:]
	if !ho.Wants(key) {
		return false
	}
	_, lk := c.h.store.Peek(key)
	return lk != store.Hit
}
