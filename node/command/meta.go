package command

import (
	"strconv"

	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// The meta protocol's return codes.
const (
	metaHD = "HD"
	metaEN = "EN"
	metaNS = "NS"
	metaEX = "EX"
	metaNF = "NF"
)

// metaDeadline converts a meta flag's exptime to a store deadline as
// memcached's realtime(EXPTIME_TO_POSITIVE_TIME(t)) does: as a classic
// exptime, a negative one already past.
func (h *Handler) metaDeadline(exptime int64) int64 { return h.deadline(exptime) }

// appendMetaTTL appends the TTL memcached's t flag shows: -1 for an item that
// never expires, else the seconds left as an unsigned 32-bit number, as
// memcached's itoa_u32 renders it. Deadlines are computed from
// Handler.currentTime, and so are the seconds left.
func (h *Handler) appendMetaTTL(dst []byte, deadline int64) []byte {
	if deadline == 0 {
		return append(dst, "-1"...)
	}
	return strconv.AppendUint(dst, uint64(uint32(h.relTime(deadline)-h.relTime(h.currentTime()))), 10)
}

// relTime is memcached's rel_time_t of a unix time: seconds since its
// process_started, which it sets 62 seconds (ITEM_UPDATE_INTERVAL + 2)
// before it starts. The deadline 1, "already past", is memcached's relative
// time 1.
func (h *Handler) relTime(unix int64) int64 {
	if unix == 1 {
		return 1
	}
	return unix - h.started.Unix() + 62
}

// explicitCAS is the CAS unique a meta command's E flag asks for, if any.
func explicitCAS(m *protocol.MetaArgs) store.NewCAS {
	return store.NewCAS{Value: m.NewCAS, Explicit: m.HasNewCAS}
}

// appendOpaqueAndKey appends the O and k flags of a reply, in request order.
func appendOpaqueAndKey(dst []byte, req *protocol.Request) []byte {
	for _, f := range req.Meta.Flags {
		switch f[0] {
		case 'O':
			dst = append(dst, ' ')
			dst = append(dst, f...)
		case 'k':
			dst = protocol.AppendMetaKey(dst, req.Key(), req.Meta.Base64)
		}
	}
	return dst
}

// metaGet answers mg.
func (c *session) metaGet(req *protocol.Request) {
	h := c.h
	m := &req.Meta
	key := req.Key()
	if isHandoffFetch(m) {
		if h.handoff != nil {
			c.handoffMetaGet(req)
			return
		}
	} else if !c.warm(key) {
		c.pendingReq = req // on the event loop: the goroutine reads it
		return
	}
	opt := store.MetaGetOptions{NoBump: m.NoBump}
	if m.HasTTL {
		opt.Touch, opt.Deadline = true, h.metaDeadline(m.TTL)
	}
	if m.HasVivify {
		opt.Vivify, opt.VivifyDeadline = true, h.metaDeadline(m.Vivify)
		opt.VivifyCAS = explicitCAS(m)
	}
	if m.HasRecache {
		opt.Recache, opt.RecacheDeadline = true, h.metaDeadline(m.Recache)
	}
	opt.Share = true
	value, it, lookup := h.store.MetaGet(key, opt, c.Scratch[:0])
	if !it.Shared {
		c.Scratch = value
	}
	h.counters.Detail.RecordGet(key, lookup == store.Hit)
	if h.watching()&logFetchers != 0 {
		if it.Created {
			// memcached logs the lookup that missed, and not the
			// empty item it makes.
			c.logFetch(key, store.Miss, 0, 0)
		} else {
			c.logFetch(key, lookup, it.Size, it.Flags)
		}
	}
	// memcached 1.6.18 counts a hit with T as a touch, any other hit
	// (a vivified item too) and every miss as a get.
	if m.HasTTL && lookup == store.Hit {
		h.counters.CmdTouch.Add(1)
	} else {
		h.counters.CmdGet.Add(1)
	}
	if lookup != store.Hit {
		switch lookup {
		case store.MissExpired:
			h.counters.GetExpired.Add(1)
		case store.MissFlushed:
			h.counters.GetFlushed.Add(1)
		}
		h.counters.GetMisses.Add(1)
		if m.Quiet {
			return
		}
		c.Out = append(c.Out, metaEN...)
		c.Out = appendOpaqueAndKey(c.Out, req)
		c.Out = append(c.Out, '\r', '\n')
		return
	}
	// The store counted the hit, as a touch with T, in the item's class.
	if m.Value {
		c.Out = append(c.Out, "VA "...)
		c.Out = strconv.AppendInt(c.Out, int64(len(value)), 10)
	} else {
		c.Out = append(c.Out, metaHD...)
	}
	deadline := it.OldDeadline
	if it.Created {
		deadline = 0
	}
	for _, f := range m.Flags {
		switch f[0] {
		case 'T':
			deadline = opt.Deadline
		case 'N':
			if it.Created {
				deadline = opt.VivifyDeadline
			}
		case 's':
			c.Out = append(c.Out, " s"...)
			c.Out = strconv.AppendInt(c.Out, int64(len(value)), 10)
		case 't':
			c.Out = append(c.Out, " t"...)
			c.Out = h.appendMetaTTL(c.Out, deadline)
		case 'c':
			c.Out = append(c.Out, " c"...)
			c.Out = strconv.AppendUint(c.Out, it.CAS, 10)
		case 'f':
			c.Out = append(c.Out, " f"...)
			c.Out = strconv.AppendUint(c.Out, uint64(it.Flags), 10)
		case 'l':
			c.Out = append(c.Out, " l"...)
			c.Out = strconv.AppendUint(c.Out, uint64(uint32(it.Now-it.Access)), 10)
		case 'h':
			if it.Fetched {
				c.Out = append(c.Out, " h1"...)
			} else {
				c.Out = append(c.Out, " h0"...)
			}
		case 'O':
			c.Out = append(c.Out, ' ')
			c.Out = append(c.Out, f...)
		case 'k':
			c.Out = protocol.AppendMetaKey(c.Out, key, m.Base64)
		}
	}
	if it.TokenSent {
		c.Out = append(c.Out, " Z"...)
	}
	if it.Stale {
		c.Out = append(c.Out, " X"...)
	}
	if it.Won {
		c.Out = append(c.Out, " W"...)
	}
	c.Out = append(c.Out, '\r', '\n')
	if m.Value {
		// A large value is written from the store's buffer (see fetch).
		if c.AppendValue(value) != nil {
			c.CloseAfterReplies(netserve.CloseError)
		}
		c.Out = append(c.Out, '\r', '\n')
	}
}

// metaSetModes maps ms's mode switch to the store's modes.
var metaSetModes = [256]store.Mode{
	'E': store.ModeAdd, 'A': store.ModeAppend, 'P': store.ModePrepend,
	'R': store.ModeReplace, 'S': store.ModeSet, 0: store.ModeSet,
}

// metaSet answers ms. With E the item stored gets E's token as its CAS
// unique (memcached versions after 1.6.18; 1.6.18 refuses E); C still compares.
func (c *session) metaSet(req *protocol.Request) {
	h := c.h
	m := &req.Meta
	key := req.Key()
	h.counters.Detail.RecordSet(key)
	mode := metaStoreMode(m)
	var cas uint64
	if m.HasCAS {
		cas = m.CAS
	}
	deadline := h.metaDeadline(m.TTL)
	if !m.HasTTL {
		deadline = 0
	}
	var (
		status store.Status
		newCAS uint64
	)
	nc := explicitCAS(m)
	// An add carrying the hand-off's opaque is a leaving node's push
	// (handoff.Push): stored unless written here lately.
	pushed := mode == store.ModeAdd && h.handoff != nil && isHandoffFetch(m)
	set := func() (store.Status, uint64) {
		if pushed {
			return h.handoff.Accept(key, req.Data, m.ClientFlags, deadline)
		}
		if m.Invalidate && mode == store.ModeCAS {
			return h.store.SetStale(key, req.Data, m.ClientFlags, deadline, cas, nc)
		}
		return h.store.SetCAS(mode, key, req.Data, m.ClientFlags, deadline, cas, nc)
	}
	if w := h.watching(); w&(logFetchers|logMutations) != 0 {
		e := storeEvent{key: key, cmd: storeCmd(mode, 0), size: len(req.Data), flags: m.ClientFlags, deadline: deadline}
		status, newCAS = c.storeWatched(w, e, allocMeta, true, set)
	} else {
		status, newCAS = set()
	}
	if mode == store.ModeCAS {
		h.countCASMiss(status)
	}
	var code string
	switch status {
	case store.OK:
		if m.Quiet {
			return
		}
		code = metaHD
	case store.NotStored:
		code = metaNS
	case store.Exists:
		code = metaEX
	case store.NotFound:
		code = metaNF
	case store.TooLarge:
		h.counters.StoreTooLarge.Add(1)
		h.store.Drop(key)
		c.Out = protocol.AppendLine(c.Out, protocol.ErrTooLarge.Line)
		return
	default:
		h.counters.StoreNoMemory.Add(1)
		h.store.Drop(key)
		c.Out = protocol.AppendLine(c.Out, protocol.ErrOutOfMemory.Line)
		return
	}
	c.Out = append(c.Out, code...)
	for _, f := range m.Flags {
		switch f[0] {
		case 'O':
			c.Out = append(c.Out, ' ')
			c.Out = append(c.Out, f...)
		case 'k':
			c.Out = protocol.AppendMetaKey(c.Out, key, m.Base64)
		case 'c':
			c.Out = append(c.Out, " c"...)
			c.Out = strconv.AppendUint(c.Out, newCAS, 10)
		}
	}
	c.Out = append(c.Out, '\r', '\n')
}

// metaDelete answers md. x (memcached versions after 1.6.18; 1.6.18 refuses it)
// empties the item instead of removing it; E gives an item that I or x
// keeps E's token as its CAS unique.
func (c *session) metaDelete(req *protocol.Request) {
	h := c.h
	m := &req.Meta
	key := req.Key()
	h.counters.Detail.RecordDelete(key)
	opt := store.MetaDeleteOptions{
		HasCAS: m.HasCAS, CAS: m.CAS,
		Invalidate: m.Invalidate, RemoveValue: m.RemoveValue, Flags: m.ClientFlags,
		Touch: m.HasTTL, NewCAS: explicitCAS(m),
	}
	if m.HasTTL {
		opt.Deadline = h.metaDeadline(m.TTL)
	}
	c.watchLookup(key)
	status := h.store.MetaDelete(key, opt)
	var code string
	switch status {
	case store.OK: // a delete hit unless I, counted by the store
		if m.Quiet {
			return
		}
		code = metaHD
	case store.Exists:
		h.counters.DeleteMisses.Add(1)
		code = metaEX
	default:
		h.counters.DeleteMisses.Add(1)
		code = metaNF
	}
	c.Out = append(c.Out, code...)
	c.Out = appendOpaqueAndKey(c.Out, req)
	c.Out = append(c.Out, '\r', '\n')
}

// metaArith answers ma. With E the item counted or created gets E's token
// as its CAS unique (memcached versions after 1.6.18; 1.6.18 refuses E).
func (c *session) metaArith(req *protocol.Request) {
	h := c.h
	m := &req.Meta
	key := req.Key()
	incr := m.Mode != 'D' && m.Mode != '-'
	var vivifyDeadline int64
	if m.HasVivify {
		vivifyDeadline = h.metaDeadline(m.Vivify)
	}
	var cas uint64
	if m.HasCAS {
		cas = m.CAS
	}
	// Tell a created item from a counted one: memcached answers a created
	// one even when quiet. (A concurrent delete between the two calls can
	// make a created item look counted; it only decides whether q hides
	// the reply.)
	w := h.watching()
	c.watchLookup(key)
	existed := true
	if m.HasVivify {
		_, existed = h.store.MetaDebug(key)
	}
	v, newCAS, status := h.store.ArithCAS(key, incr, m.Delta, m.Initial, m.HasVivify, vivifyDeadline, cas, explicitCAS(m))
	misses := &h.counters.DecrMisses
	if incr {
		misses = &h.counters.IncrMisses
	}
	switch status {
	case store.OK:
	case store.NotFound:
		misses.Add(1)
		c.Out = append(c.Out, metaNF...)
		c.Out = appendOpaqueAndKey(c.Out, req)
		c.Out = append(c.Out, '\r', '\n')
		return
	case store.Exists:
		c.Out = append(c.Out, metaEX...)
		c.Out = appendOpaqueAndKey(c.Out, req)
		c.Out = append(c.Out, '\r', '\n')
		return
	case store.NonNumeric:
		c.Out = protocol.AppendLine(c.Out, protocol.ErrNonNumeric.Line)
		return
	default:
		c.Out = protocol.AppendLine(c.Out, "SERVER_ERROR out of memory")
		return
	}
	created := m.HasVivify && !existed // else a hit, counted by the store
	if created && w&(logFetchers|logMutations) != 0 {
		c.logCreated(w, key, v, vivifyDeadline)
	}
	var info store.MetaItem
	for _, f := range m.Flags {
		if f[0] == 't' || f[0] == 'T' || f[0] == 'N' {
			info, _ = h.store.MetaDebug(key)
			break
		}
	}
	deadline := info.OldDeadline
	if created {
		deadline = 0 // memcached creates it without, and N sets it below
	}
	// The flags apply in order: T (and N on a created item) set the
	// deadline, t shows it as it stands.
	tDeadline := h.metaDeadline(m.TTL)
	final, changed := deadline, false
	for _, f := range m.Flags {
		switch {
		case f[0] == 'T':
			final, changed = tDeadline, true
		case f[0] == 'N' && created:
			final, changed = vivifyDeadline, true
		}
	}
	if changed && final != info.OldDeadline {
		h.store.SetDeadline(key, final)
	}
	if m.Quiet && !created {
		return
	}
	var digits [20]byte
	num := strconv.AppendUint(digits[:0], v, 10)
	if m.Value {
		c.Out = append(c.Out, "VA "...)
		c.Out = strconv.AppendInt(c.Out, int64(len(num)), 10)
	} else {
		c.Out = append(c.Out, metaHD...)
	}
	for _, f := range m.Flags {
		switch f[0] {
		case 'c':
			c.Out = append(c.Out, " c"...)
			c.Out = strconv.AppendUint(c.Out, newCAS, 10)
		case 't':
			c.Out = append(c.Out, " t"...)
			c.Out = h.appendMetaTTL(c.Out, deadline)
		case 'T':
			deadline = tDeadline
		case 'N':
			if created {
				deadline = vivifyDeadline
			}
		case 'O':
			c.Out = append(c.Out, ' ')
			c.Out = append(c.Out, f...)
		case 'k':
			c.Out = protocol.AppendMetaKey(c.Out, key, m.Base64)
		}
	}
	c.Out = append(c.Out, '\r', '\n')
	if m.Value {
		c.Out = append(c.Out, num...)
		c.Out = append(c.Out, '\r', '\n')
	}
}

// metaDebug answers me.
func (c *session) metaDebug(req *protocol.Request) {
	c.h.counters.CmdMeta.Add(1)
	c.watchLookup(req.Key())
	it, ok := c.h.store.MetaDebug(req.Key())
	if !ok {
		c.Out = append(c.Out, "EN\r\n"...)
		return
	}
	c.Out = append(c.Out, "ME "...)
	if req.Meta.Base64 {
		c.Out = appendBase64(c.Out, req.Key())
	} else {
		c.Out = append(c.Out, req.Key()...)
	}
	c.Out = append(c.Out, " exp="...)
	if it.Deadline == 0 {
		c.Out = append(c.Out, "-1"...)
	} else {
		// memcached prints current_time - exptime, as a signed number.
		h := c.h
		c.Out = strconv.AppendInt(c.Out, int64(int32(h.relTime(h.currentTime())-h.relTime(it.Deadline))), 10)
	}
	c.Out = append(c.Out, " la="...)
	c.Out = strconv.AppendUint(c.Out, uint64(uint32(it.Now-it.Access)), 10)
	c.Out = append(c.Out, " cas="...)
	c.Out = strconv.AppendUint(c.Out, it.CAS, 10)
	if it.Fetched {
		c.Out = append(c.Out, " fetch=yes"...)
	} else {
		c.Out = append(c.Out, " fetch=no"...)
	}
	c.Out = append(c.Out, " cls="...)
	c.Out = strconv.AppendInt(c.Out, int64(it.Class), 10)
	c.Out = append(c.Out, " size="...)
	c.Out = strconv.AppendInt(c.Out, int64(it.ItemSize), 10)
	c.Out = append(c.Out, '\r', '\n')
}

// appendBase64 appends key base64-encoded.
func appendBase64(dst, key []byte) []byte {
	// AppendMetaKey writes " k<b64> b"; take the encoding from it.
	var tmp [2 + 4*((protocol.MaxKeyLen+2)/3) + 2]byte
	enc := protocol.AppendMetaKey(tmp[:0], key, true)
	return append(dst, enc[2:len(enc)-2]...)
}
