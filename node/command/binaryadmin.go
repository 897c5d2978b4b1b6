package command

// The binary protocol's commands that are not the store's: Stat, and the
// SASL exchange of -S.

import (
	"strings"

	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
	"github.com/memcluster/memcluster/sasl"
)

// stat answers Stat: one packet per statistic of the group its key names,
// then an empty packet, as memcached's process_bin_stat. Groups are matched
// as memcached matches them: "reset", "settings" and "detail" by prefix,
// the others exactly.
func (b *binaryConn) stat() {
	s, h := b.h, b.req.Header
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
			dump := s.counters.Detail.AppendDump(nil)
			b.Out = protocol.AppendBinaryStat(b.Out, h.Opaque, "detailed", string(dump))
		case strings.HasPrefix(sub, " on"):
			s.counters.Detail.SetEnabled(true)
		case strings.HasPrefix(sub, " off"):
			s.counters.Detail.SetEnabled(false)
		default:
			b.fail(protocol.StatusKeyNotFound)
			return
		}
	case group == "items":
		b.appendStats(s.itemStats())
	case group == "slabs":
		b.appendStats(s.slabStats())
	case group == "sizes":
		b.appendStats([]stats.Stat{{Name: "sizes_status", Value: "disabled"}})
	default:
		// Unknown groups, and "conns", which memcached serves in text
		// only.
		b.fail(protocol.StatusKeyNotFound)
		return
	}
	b.Out = protocol.AppendBinaryStatEnd(b.Out, h.Opaque)
}

// appendStats appends one Stat packet per statistic.
func (b *binaryConn) appendStats(list []stats.Stat) {
	opaque := b.req.Header.Opaque
	for _, st := range list {
		b.Out = protocol.AppendBinaryStat(b.Out, opaque, st.Name, st.Value)
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
// unauthenticated and may try again, up to maxAuthFailures failures in a
// row.
func (b *binaryConn) sasl() {
	s, req := b.h, b.req
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
		b.Out = protocol.AppendBinaryText(b.Out, h.Opcode, h.Opaque, s.auth.list)
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
	s.counters.AuthCmds.Add(1)
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
		b.Out = protocol.AppendBinaryResponse(b.Out, h.Opcode, protocol.StatusAuthContinue, h.Opaque, 0, nil, nil, challenge)
	default:
		b.exchange = nil
		b.authed = true
		b.authFailures = 0
		if len(challenge) == 0 {
			challenge = []byte("Authenticated")
		}
		b.Out = protocol.AppendBinaryResponse(b.Out, h.Opcode, protocol.StatusOK, h.Opaque, 0, nil, nil, challenge)
	}
}

// authFailed answers a failed SASL attempt, as memcached does, and counts
// it. The connection stays open and unauthenticated, unless the attempt is
// its maxAuthFailures-th failure in a row: then it closes once the reply is
// written.
func (b *binaryConn) authFailed() {
	b.h.counters.AuthErrors.Add(1)
	b.fail(protocol.StatusAuthError)
	if b.authFailures++; b.authFailures >= maxAuthFailures {
		b.CloseAfterReplies(netserve.CloseUnknown)
	}
}

// configGet answers a ConfigGet (see protocol.OpConfigGet): for the key
// "cluster", the reply of the text "config get cluster" as its value, for
// "ring" that of "config get ring", and for "members" that of "config get
// members", so that a client of a SASL node, which serves no text command,
// can find the cluster, its ring mode and its members' names once it has
// logged in.
func (b *binaryConn) configGet() {
	h := &b.req.Header
	var value []byte
	switch string(b.req.Key) {
	case "cluster":
		value = b.h.cluster.ConfigReply(b.LocalAddr())
	case "ring":
		value = ring.AppendRingConfig(nil, b.h.cluster.RingMode())
	case "members":
		value = b.h.cluster.MembersReply(b.LocalAddr())
	default:
		b.fail(protocol.StatusKeyNotFound)
		return
	}
	b.Out = protocol.AppendBinaryResponse(b.Out, h.Opcode, protocol.StatusOK, h.Opaque, 0, nil, nil, value)
}
