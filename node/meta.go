package node

import (
	"strconv"

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
func (s *Server) metaDeadline(exptime int64) int64 { return s.deadline(exptime) }

// appendMetaTTL appends the TTL memcached's t flag shows: -1 for an item that
// never expires, else the seconds left as an unsigned 32-bit number, as
// memcached's itoa_u32 renders it. Deadlines are computed from
// Server.currentTime, and so are the seconds left.
func (s *Server) appendMetaTTL(dst []byte, deadline int64) []byte {
	if deadline == 0 {
		return append(dst, "-1"...)
	}
	return strconv.AppendUint(dst, uint64(uint32(s.relTime(deadline)-s.relTime(s.currentTime()))), 10)
}

// relTime is memcached's rel_time_t of a unix time: seconds since its
// process_started, which it sets 62 seconds (ITEM_UPDATE_INTERVAL + 2)
// before it starts. The deadline 1, "already past", is memcached's relative
// time 1.
func (s *Server) relTime(unix int64) int64 {
	if unix == 1 {
		return 1
	}
	return unix - s.started.Unix() + 62
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
func (c *conn) metaGet(req *protocol.Request) {
	s := c.srv
	m := &req.Meta
	key := req.Key()
	opt := store.MetaGetOptions{NoBump: m.NoBump}
	if m.HasTTL {
		opt.Touch, opt.Deadline = true, s.metaDeadline(m.TTL)
	}
	if m.HasVivify {
		opt.Vivify, opt.VivifyDeadline = true, s.metaDeadline(m.Vivify)
		opt.VivifyCAS = explicitCAS(m)
	}
	if m.HasRecache {
		opt.Recache, opt.RecacheDeadline = true, s.metaDeadline(m.Recache)
	}
	value, it, lookup := s.store.MetaGet(key, opt, c.scratch[:0])
	c.scratch = value
	s.counters.detail.recordGet(key, lookup == store.Hit)
	if s.watching()&logFetchers != 0 {
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
		s.counters.cmdTouch.Add(1)
	} else {
		s.counters.cmdGet.Add(1)
	}
	if lookup != store.Hit {
		switch lookup {
		case store.MissExpired:
			s.counters.getExpired.Add(1)
		case store.MissFlushed:
			s.counters.getFlushed.Add(1)
		}
		s.counters.getMisses.Add(1)
		if m.Quiet {
			return
		}
		c.out = append(c.out, metaEN...)
		c.out = appendOpaqueAndKey(c.out, req)
		c.out = append(c.out, '\r', '\n')
		return
	}
	// The store counted the hit, as a touch with T, in the item's class.
	if m.Value {
		c.out = append(c.out, "VA "...)
		c.out = strconv.AppendInt(c.out, int64(len(value)), 10)
	} else {
		c.out = append(c.out, metaHD...)
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
			c.out = append(c.out, " s"...)
			c.out = strconv.AppendInt(c.out, int64(len(value)), 10)
		case 't':
			c.out = append(c.out, " t"...)
			c.out = s.appendMetaTTL(c.out, deadline)
		case 'c':
			c.out = append(c.out, " c"...)
			c.out = strconv.AppendUint(c.out, it.CAS, 10)
		case 'f':
			c.out = append(c.out, " f"...)
			c.out = strconv.AppendUint(c.out, uint64(it.Flags), 10)
		case 'l':
			c.out = append(c.out, " l"...)
			c.out = strconv.AppendUint(c.out, uint64(uint32(it.Now-it.Access)), 10)
		case 'h':
			if it.Fetched {
				c.out = append(c.out, " h1"...)
			} else {
				c.out = append(c.out, " h0"...)
			}
		case 'O':
			c.out = append(c.out, ' ')
			c.out = append(c.out, f...)
		case 'k':
			c.out = protocol.AppendMetaKey(c.out, key, m.Base64)
		}
	}
	if it.TokenSent {
		c.out = append(c.out, " Z"...)
	}
	if it.Stale {
		c.out = append(c.out, " X"...)
	}
	if it.Won {
		c.out = append(c.out, " W"...)
	}
	c.out = append(c.out, '\r', '\n')
	if m.Value {
		c.out = append(c.out, value...)
		c.out = append(c.out, '\r', '\n')
	}
}

// metaSetModes maps ms's mode switch to the store's modes.
var metaSetModes = [256]store.Mode{
	'E': store.ModeAdd, 'A': store.ModeAppend, 'P': store.ModePrepend,
	'R': store.ModeReplace, 'S': store.ModeSet, 0: store.ModeSet,
}

// metaSet answers ms. With E the item stored gets E's token as its CAS
// unique (memcached versions after 1.6.18; 1.6.18 refuses E); C still compares.
func (c *conn) metaSet(req *protocol.Request) {
	s := c.srv
	m := &req.Meta
	key := req.Key()
	s.counters.detail.recordSet(key)
	mode := metaStoreMode(m)
	var cas uint64
	if m.HasCAS {
		cas = m.CAS
	}
	deadline := s.metaDeadline(m.TTL)
	if !m.HasTTL {
		deadline = 0
	}
	var (
		status store.Status
		newCAS uint64
	)
	nc := explicitCAS(m)
	set := func() (store.Status, uint64) {
		if m.Invalidate && mode == store.ModeCAS {
			return s.store.SetStale(key, req.Data, m.ClientFlags, deadline, cas, nc)
		}
		return s.store.SetCAS(mode, key, req.Data, m.ClientFlags, deadline, cas, nc)
	}
	if w := s.watching(); w&(logFetchers|logMutations) != 0 {
		e := storeEvent{key: key, cmd: storeCmd(mode, 0), size: len(req.Data), flags: m.ClientFlags, deadline: deadline}
		status, newCAS = c.storeWatched(w, e, allocMeta, true, set)
	} else {
		status, newCAS = set()
	}
	if mode == store.ModeCAS {
		s.counters.countCASMiss(status)
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
		s.counters.storeTooLarge.Add(1)
		s.store.Drop(key)
		c.out = protocol.AppendLine(c.out, protocol.ErrTooLarge.Line)
		return
	default:
		s.counters.storeNoMemory.Add(1)
		s.store.Drop(key)
		c.out = protocol.AppendLine(c.out, protocol.ErrOutOfMemory.Line)
		return
	}
	c.out = append(c.out, code...)
	for _, f := range m.Flags {
		switch f[0] {
		case 'O':
			c.out = append(c.out, ' ')
			c.out = append(c.out, f...)
		case 'k':
			c.out = protocol.AppendMetaKey(c.out, key, m.Base64)
		case 'c':
			c.out = append(c.out, " c"...)
			c.out = strconv.AppendUint(c.out, newCAS, 10)
		}
	}
	c.out = append(c.out, '\r', '\n')
}

// metaDelete answers md. x (memcached versions after 1.6.18; 1.6.18 refuses it)
// empties the item instead of removing it; E gives an item that I or x
// keeps E's token as its CAS unique.
func (c *conn) metaDelete(req *protocol.Request) {
	s := c.srv
	m := &req.Meta
	key := req.Key()
	s.counters.detail.recordDelete(key)
	opt := store.MetaDeleteOptions{
		HasCAS: m.HasCAS, CAS: m.CAS,
		Invalidate: m.Invalidate, RemoveValue: m.RemoveValue, Flags: m.ClientFlags,
		Touch: m.HasTTL, NewCAS: explicitCAS(m),
	}
	if m.HasTTL {
		opt.Deadline = s.metaDeadline(m.TTL)
	}
	c.watchLookup(key)
	status := s.store.MetaDelete(key, opt)
	var code string
	switch status {
	case store.OK: // a delete hit unless I, counted by the store
		if m.Quiet {
			return
		}
		code = metaHD
	case store.Exists:
		s.counters.deleteMisses.Add(1)
		code = metaEX
	default:
		s.counters.deleteMisses.Add(1)
		code = metaNF
	}
	c.out = append(c.out, code...)
	c.out = appendOpaqueAndKey(c.out, req)
	c.out = append(c.out, '\r', '\n')
}

// metaArith answers ma. With E the item counted or created gets E's token
// as its CAS unique (memcached versions after 1.6.18; 1.6.18 refuses E).
func (c *conn) metaArith(req *protocol.Request) {
	s := c.srv
	m := &req.Meta
	key := req.Key()
	incr := m.Mode != 'D' && m.Mode != '-'
	var vivifyDeadline int64
	if m.HasVivify {
		vivifyDeadline = s.metaDeadline(m.Vivify)
	}
	var cas uint64
	if m.HasCAS {
		cas = m.CAS
	}
	// Tell a created item from a counted one: memcached answers a created
	// one even when quiet. (A concurrent delete between the two calls can
	// make a created item look counted; it only decides whether q hides
	// the reply.)
	w := s.watching()
	c.watchLookup(key)
	existed := true
	if m.HasVivify {
		_, existed = s.store.MetaDebug(key)
	}
	v, newCAS, status := s.store.ArithCAS(key, incr, m.Delta, m.Initial, m.HasVivify, vivifyDeadline, cas, explicitCAS(m))
	misses := &s.counters.decrMisses
	if incr {
		misses = &s.counters.incrMisses
	}
	switch status {
	case store.OK:
	case store.NotFound:
		misses.Add(1)
		c.out = append(c.out, metaNF...)
		c.out = appendOpaqueAndKey(c.out, req)
		c.out = append(c.out, '\r', '\n')
		return
	case store.Exists:
		c.out = append(c.out, metaEX...)
		c.out = appendOpaqueAndKey(c.out, req)
		c.out = append(c.out, '\r', '\n')
		return
	case store.NonNumeric:
		c.out = protocol.AppendLine(c.out, protocol.ErrNonNumeric.Line)
		return
	default:
		c.out = protocol.AppendLine(c.out, "SERVER_ERROR out of memory")
		return
	}
	created := m.HasVivify && !existed // else a hit, counted by the store
	if created && w&(logFetchers|logMutations) != 0 {
		c.logCreated(w, key, v, vivifyDeadline)
	}
	var info store.MetaItem
	for _, f := range m.Flags {
		if f[0] == 't' || f[0] == 'T' || f[0] == 'N' {
			info, _ = s.store.MetaDebug(key)
			break
		}
	}
	deadline := info.OldDeadline
	if created {
		deadline = 0 // memcached creates it without, and N sets it below
	}
	// The flags apply in order: T (and N on a created item) set the
	// deadline, t shows it as it stands.
	tDeadline := s.metaDeadline(m.TTL)
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
		s.store.SetDeadline(key, final)
	}
	if m.Quiet && !created {
		return
	}
	var digits [20]byte
	num := strconv.AppendUint(digits[:0], v, 10)
	if m.Value {
		c.out = append(c.out, "VA "...)
		c.out = strconv.AppendInt(c.out, int64(len(num)), 10)
	} else {
		c.out = append(c.out, metaHD...)
	}
	for _, f := range m.Flags {
		switch f[0] {
		case 'c':
			c.out = append(c.out, " c"...)
			c.out = strconv.AppendUint(c.out, newCAS, 10)
		case 't':
			c.out = append(c.out, " t"...)
			c.out = s.appendMetaTTL(c.out, deadline)
		case 'T':
			deadline = tDeadline
		case 'N':
			if created {
				deadline = vivifyDeadline
			}
		case 'O':
			c.out = append(c.out, ' ')
			c.out = append(c.out, f...)
		case 'k':
			c.out = protocol.AppendMetaKey(c.out, key, m.Base64)
		}
	}
	c.out = append(c.out, '\r', '\n')
	if m.Value {
		c.out = append(c.out, num...)
		c.out = append(c.out, '\r', '\n')
	}
}

// metaDebug answers me.
func (c *conn) metaDebug(req *protocol.Request) {
	c.srv.counters.cmdMeta.Add(1)
	c.watchLookup(req.Key())
	it, ok := c.srv.store.MetaDebug(req.Key())
	if !ok {
		c.out = append(c.out, "EN\r\n"...)
		return
	}
	c.out = append(c.out, "ME "...)
	if req.Meta.Base64 {
		c.out = appendBase64(c.out, req.Key())
	} else {
		c.out = append(c.out, req.Key()...)
	}
	c.out = append(c.out, " exp="...)
	if it.Deadline == 0 {
		c.out = append(c.out, "-1"...)
	} else {
		// memcached prints current_time - exptime, as a signed number.
		s := c.srv
		c.out = strconv.AppendInt(c.out, int64(int32(s.relTime(s.currentTime())-s.relTime(it.Deadline))), 10)
	}
	c.out = append(c.out, " la="...)
	c.out = strconv.AppendUint(c.out, uint64(uint32(it.Now-it.Access)), 10)
	c.out = append(c.out, " cas="...)
	c.out = strconv.AppendUint(c.out, it.CAS, 10)
	if it.Fetched {
		c.out = append(c.out, " fetch=yes"...)
	} else {
		c.out = append(c.out, " fetch=no"...)
	}
	c.out = append(c.out, " cls="...)
	c.out = strconv.AppendInt(c.out, int64(it.Class), 10)
	c.out = append(c.out, " size="...)
	c.out = strconv.AppendInt(c.out, int64(it.ItemSize), 10)
	c.out = append(c.out, '\r', '\n')
}

// appendBase64 appends key base64-encoded.
func appendBase64(dst, key []byte) []byte {
	// AppendMetaKey writes " k<b64> b"; take the encoding from it.
	var tmp [2 + 4*((protocol.MaxKeyLen+2)/3) + 2]byte
	enc := protocol.AppendMetaKey(tmp[:0], key, true)
	return append(dst, enc[2:len(enc)-2]...)
}
