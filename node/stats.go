package node

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

// counters are the server's command counters, under memcached's stat names.
// Every field is updated atomically by any connection goroutine.
type counters struct {
	cmdGet, cmdSet, cmdFlush, cmdTouch         atomic.Uint64
	getHits, getMisses, getExpired, getFlushed atomic.Uint64
	deleteHits, deleteMisses                   atomic.Uint64
	incrHits, incrMisses, decrHits, decrMisses atomic.Uint64
	casHits, casMisses, casBadval              atomic.Uint64
	touchHits, touchMisses                     atomic.Uint64
	bytesRead, bytesWritten                    atomic.Uint64
	totalConns, rejectedConns                  atomic.Uint64
	storeTooLarge, storeNoMemory               atomic.Uint64
	authCmds, authErrors                       atomic.Uint64
	connYields                                 atomic.Uint64
}

// reset zeroes the counters that memcached's "stats reset" zeroes.
func (c *counters) reset() {
	for _, v := range []*atomic.Uint64{
		&c.cmdGet, &c.cmdSet, &c.cmdFlush, &c.cmdTouch,
		&c.getHits, &c.getMisses, &c.getExpired, &c.getFlushed,
		&c.deleteHits, &c.deleteMisses, &c.incrHits, &c.incrMisses,
		&c.decrHits, &c.decrMisses, &c.casHits, &c.casMisses, &c.casBadval,
		&c.touchHits, &c.touchMisses, &c.bytesRead, &c.bytesWritten,
		&c.totalConns, &c.rejectedConns, &c.storeTooLarge, &c.storeNoMemory,
		&c.authCmds, &c.authErrors, &c.connYields,
	} {
		v.Store(0)
	}
}

// Stat is one statistic: a name and its value, as "stats" prints them.
type Stat struct {
	Name, Value string
}

// Stats returns the general statistics of "stats", in memcached's order.
func (s *Server) Stats() []Stat {
	now := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	st := s.store.Stats()
	c := &s.counters
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	ld := func(a *atomic.Uint64) string { return u(a.Load()) }
	getHits := c.getHits.Load()
	stats := []Stat{
		{"pid", strconv.Itoa(os.Getpid())},
		{"uptime", i(int64(now.Sub(s.started).Seconds()))},
		{"time", i(now.Unix())},
		{"version", Version},
		{"libevent", "go" + runtime.Version()[2:]},
		{"pointer_size", strconv.Itoa(strconv.IntSize)},
		{"rusage_user", rusage(ru.Utime)},
		{"rusage_system", rusage(ru.Stime)},
		{"max_connections", strconv.Itoa(s.cfg.MaxConns)},
		{"curr_connections", i(s.currConns.Load() + int64(s.listenerCount()))},
		{"total_connections", ld(&c.totalConns)},
		{"rejected_connections", ld(&c.rejectedConns)},
		{"connection_structures", i(s.currConns.Load() + int64(s.listenerCount()))},
		{"cmd_get", ld(&c.cmdGet)},
		{"cmd_set", ld(&c.cmdSet)},
		{"cmd_flush", ld(&c.cmdFlush)},
		{"cmd_touch", ld(&c.cmdTouch)},
		{"get_hits", u(getHits)},
		{"get_misses", ld(&c.getMisses)},
		{"get_expired", ld(&c.getExpired)},
		{"get_flushed", ld(&c.getFlushed)},
		{"delete_misses", ld(&c.deleteMisses)},
		{"delete_hits", ld(&c.deleteHits)},
		{"incr_misses", ld(&c.incrMisses)},
		{"incr_hits", ld(&c.incrHits)},
		{"decr_misses", ld(&c.decrMisses)},
		{"decr_hits", ld(&c.decrHits)},
		{"cas_misses", ld(&c.casMisses)},
		{"cas_hits", ld(&c.casHits)},
		{"cas_badval", ld(&c.casBadval)},
		{"touch_hits", ld(&c.touchHits)},
		{"touch_misses", ld(&c.touchMisses)},
		{"store_too_large", ld(&c.storeTooLarge)},
		{"store_no_memory", ld(&c.storeNoMemory)},
		{"auth_cmds", ld(&c.authCmds)},
		{"auth_errors", ld(&c.authErrors)},
		{"bytes_read", ld(&c.bytesRead)},
		{"bytes_written", ld(&c.bytesWritten)},
		{"limit_maxbytes", i(st.LimitMaxBytes)},
		{"accepting_conns", boolStat(!s.shuttingDown.Load())},
		{"listen_disabled_num", "0"},
		{"threads", strconv.Itoa(s.cfg.Threads)},
		{"conn_yields", ld(&c.connYields)},
		{"bytes", i(st.Bytes)},
		{"curr_items", i(st.CurrItems)},
		{"total_items", u(st.TotalItems)},
		{"expired_unfetched", u(st.ExpiredUnfetched)},
		{"evicted_unfetched", u(st.EvictedUnfetched)},
		{"evictions", u(st.Evictions)},
		{"reclaimed", u(st.Reclaimed)},
	}
	return stats
}

// Settings returns the statistics of "stats settings": the configuration
// under memcached's names.
func (s *Server) Settings() []Stat {
	cfg := &s.cfg
	itoa := strconv.Itoa
	iface := "NULL"
	if len(cfg.ListenAddrs) > 0 {
		iface = strings.Join(cfg.ListenAddrs, ",")
	}
	sock := "NULL"
	if cfg.UnixSocket != "" {
		sock = cfg.UnixSocket
	}
	return []Stat{
		{"maxbytes", strconv.FormatInt(cfg.MemoryLimit, 10)},
		{"maxconns", itoa(cfg.MaxConns)},
		{"tcpport", itoa(max(cfg.Port, 0))},
		{"udpport", "0"},
		{"inter", iface},
		{"verbosity", itoa(int(s.verbosity.Load()))},
		{"oldest", "0"},
		{"evictions", onOff(!cfg.NoEvictions)},
		{"domain_socket", sock},
		{"umask", strconv.FormatUint(uint64(cfg.UnixMask), 8)},
		{"shutdown_command", yesNo(cfg.EnableShutdown)},
		{"growth_factor", "1.25"},
		{"chunk_size", "48"},
		{"num_threads", itoa(cfg.Threads)},
		{"num_threads_per_udp", itoa(cfg.Threads)},
		{"stat_key_prefix", ":"},
		{"detail_enabled", "no"},
		{"reqs_per_event", itoa(cfg.MaxReqsPerEvent)},
		{"cas_enabled", yesNo(!cfg.NoCAS)},
		{"tcp_backlog", itoa(cfg.Backlog)},
		{"binding_protocol", cfg.Protocol + protocolSuffix(cfg.Protocol)},
		{"auth_enabled_sasl", yesNo(cfg.SASL)},
		{"auth_enabled_ascii", "no"},
		{"item_size_max", itoa(cfg.ItemSizeMax)},
		{"maxconns_fast", "yes"},
		{"hashpower_init", "0"},
		{"slab_reassign", "yes"},
		{"slab_automove", "1"},
		{"lru_crawler", "yes"},
		{"lru_maintainer_thread", "yes"},
		{"flush_enabled", yesNo(!cfg.DisableFlushAll)},
		{"dump_enabled", "yes"},
		{"idle_timeout", itoa(int(cfg.IdleTimeout / time.Second))},
		{"watcher_logbuf_size", "262144"},
		{"worker_logbuf_size", "65536"},
		{"read_buf_mem_limit", "0"},
		{"track_sizes", "no"},
		{"inline_ascii_response", "no"},
		{"ssl_enabled", "no"},
	}
}

// protocolSuffix renders -B as memcached's "stats settings" does.
func protocolSuffix(p string) string {
	if p == "auto" {
		return "-negotiate"
	}
	return ""
}

// itemStats returns "stats items" lines for the store's size classes.
func (s *Server) itemStats() []Stat {
	st := s.store.Stats()
	if st.CurrItems == 0 {
		return nil
	}
	p := "items:1:"
	return []Stat{
		{p + "number", strconv.FormatInt(st.CurrItems, 10)},
		{p + "evicted", strconv.FormatUint(st.Evictions, 10)},
		{p + "evicted_unfetched", strconv.FormatUint(st.EvictedUnfetched, 10)},
		{p + "reclaimed", strconv.FormatUint(st.Reclaimed, 10)},
		{p + "expired_unfetched", strconv.FormatUint(st.ExpiredUnfetched, 10)},
	}
}

// slabStats returns "stats slabs" lines: one pseudo class holding every
// item, and memcached's totals.
func (s *Server) slabStats() []Stat {
	st := s.store.Stats()
	var out []Stat
	if st.CurrItems > 0 {
		out = append(out,
			Stat{"1:used_chunks", strconv.FormatInt(st.CurrItems, 10)},
			Stat{"1:mem_requested", strconv.FormatInt(st.Bytes, 10)},
		)
	}
	active := 0
	if st.CurrItems > 0 {
		active = 1
	}
	return append(out,
		Stat{"active_slabs", strconv.Itoa(active)},
		Stat{"total_malloced", strconv.FormatInt(st.Bytes, 10)},
	)
}

// appendStats appends stats lines and the terminating END.
func appendStats(dst []byte, stats []Stat) []byte {
	for _, st := range stats {
		dst = protocol.AppendStat(dst, st.Name, st.Value)
	}
	return append(dst, protocol.ReplyEnd...)
}

func rusage(tv syscall.Timeval) string {
	return strconv.FormatInt(int64(tv.Sec), 10) + "." + pad6(int64(tv.Usec))
}

func pad6(v int64) string {
	s := strconv.FormatInt(v, 10)
	for len(s) < 6 {
		s = "0" + s
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func boolStat(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
