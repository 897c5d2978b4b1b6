package netserve

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/memcluster/memcluster/node/stats"
)

// listenerInfo is what "stats conns" shows of a listener: its id, in the
// sequence of connections' ids, and the unix second it opened, since
// which it has served no command (memcached's secs_since_last_cmd of a
// listening connection).
type listenerInfo struct {
	id     uint64
	opened int64
}

// ConnStats returns "stats conns": every listener and connection, in the
// order of their ids, as memcached lists them in the order of their file
// descriptors.
func (s *Server) ConnStats() []stats.Stat {
	type entry struct {
		id    uint64
		stats []stats.Stat
	}
	var entries []entry
	now := s.clock()
	s.mu.Lock()
	for l, info := range s.listeners {
		id := strconv.FormatUint(info.id, 10)
		entries = append(entries, entry{info.id, []stats.Stat{
			{Name: id + ":addr", Value: addrString(l.Addr())},
			{Name: id + ":state", Value: "conn_listening"},
			{Name: id + ":secs_since_last_cmd", Value: strconv.FormatInt(now-info.opened, 10)},
		}})
	}
	for c := range s.conns {
		id := strconv.FormatUint(c.id, 10)
		state := "conn_parse_cmd"
		if c.idle.Load() {
			state = "conn_waiting"
		}
		entries = append(entries, entry{c.id, []stats.Stat{
			{Name: id + ":addr", Value: addrString(c.nc.RemoteAddr())},
			{Name: id + ":listen_addr", Value: addrString(c.nc.LocalAddr())},
			{Name: id + ":state", Value: state},
			{Name: id + ":secs_since_last_cmd", Value: strconv.FormatInt(now-c.lastCmd.Load(), 10)},
		}})
	}
	s.mu.Unlock()
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.id, b.id) })
	var out []stats.Stat
	for _, e := range entries {
		out = append(out, e.stats...)
	}
	return out
}

// addrString renders an address as memcached does: "tcp:host:port" or
// "unix:path".
func addrString(a interface {
	Network() string
	String() string
}) string {
	if a == nil {
		return "unknown"
	}
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.Network() + ":" + a.String()
}
