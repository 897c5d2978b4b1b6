package node

import (
	"math"
	"math/bits"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// The statistics follow one rule: every name memcached 1.6.18 prints is
// printed, in memcached's order, and a number printed is real: measured,
// or a setting the node acts on. Where the node has no such thing
// (memcached's slab mover, LRU crawler and maintainer, logger buffers,
// extstore, OpenSSL's buffers …) the stat is present for compatibility with
// 0 or the value memcached shows by default; the README lists them
// (compatStat marks each here). memcached's LRUs are the node's queues:
// its small queue, which new keys enter, stands for HOT and its main queue
// for WARM; there is no COLD or TEMP.

// compatStat is the value of a stat present for compatibility: the node
// has no such thing, so it shows what a memcached without it would.
func compatStat(v string) string { return v }

// counters are the server's command counters, under memcached's stat names,
// and its per-prefix statistics. Every field is updated atomically (detail
// under its own lock) by any connection goroutine.
type counters struct {
	// The hits of get, touch, delete, incr and decr, compare-and-swap's
	// hits and mismatches, and the storage commands are counted by the
	// store, in the class of their item (see store.ClassStats); the
	// totals are their sums, as memcached's are.
	cmdGet, cmdFlush, cmdTouch           atomic.Uint64
	cmdMeta                              atomic.Uint64 // me commands, as memcached's meta_cmds
	getMisses, getExpired, getFlushed    atomic.Uint64
	deleteMisses, incrMisses, decrMisses atomic.Uint64
	casMisses, touchMisses               atomic.Uint64
	bytesRead, bytesWritten              atomic.Uint64
	totalConns, rejectedConns            atomic.Uint64
	storeTooLarge, storeNoMemory         atomic.Uint64
	authCmds, authErrors                 atomic.Uint64
	sslHandshakeErrors, sslNewSessions   atomic.Uint64
	// connYields counts the times a connection that had been served -R
	// requests in one event let the others run (memcached's conn_yields);
	// idleKicks the connections closed for idling past -o idle_timeout.
	connYields, idleKicks atomic.Uint64
	// The watch streams' counters, memcached's log_watchers (watchers
	// connected now), log_watcher_sent (lines sent to watchers) and
	// log_watcher_skipped (lines a watcher missed because it did not
	// read them in time). "stats reset" keeps them, as memcached's does.
	logWatchers                       atomic.Int64
	logWatcherSent, logWatcherSkipped atomic.Uint64

	detail detailStats // "stats detail"
}

// countCASMiss counts a compare-and-swap that found no item; its hits and
// mismatches are counted by the store.
func (c *counters) countCASMiss(status store.Status) {
	if status == store.NotFound {
		c.casMisses.Add(1)
	}
}

// reset zeroes the counters that memcached's "stats reset" zeroes, and
// forgets the per-prefix statistics as it does (whether "stats detail" is
// on is kept).
func (c *counters) reset() {
	for _, v := range []*atomic.Uint64{
		&c.cmdGet, &c.cmdFlush, &c.cmdTouch, &c.cmdMeta,
		&c.getMisses, &c.getExpired, &c.getFlushed,
		&c.deleteMisses, &c.incrMisses, &c.decrMisses, &c.casMisses,
		&c.touchMisses, &c.bytesRead, &c.bytesWritten,
		&c.totalConns, &c.rejectedConns, &c.storeTooLarge, &c.storeNoMemory,
		&c.authCmds, &c.authErrors, &c.sslHandshakeErrors, &c.sslNewSessions,
		&c.connYields, &c.idleKicks,
	} {
		v.Store(0)
	}
	c.detail.clear()
}

// resetStats answers "stats reset": it zeroes what memcached's stats_reset
// zeroes, the command, byte and connection counters, the store's
// cumulative counters (total_items, and every counter of every class) and
// the per-prefix statistics. Gauges (curr_items, bytes, curr_connections …)
// are kept.
func (s *Server) resetStats() {
	s.counters.reset()
	s.store.ResetStats()
}

// Stat is one statistic: a name and its value, as "stats" prints them.
type Stat struct {
	Name, Value string
}

// Stats returns the general statistics of "stats", in memcached's order:
// every name memcached 1.6.18 prints, with idle_kicks under an idle
// timeout and the TLS statistics with TLS on, as memcached prints them.
// reclaimed counts the dead items removed to reuse their memory, by the
// node's background reclaimer (the work of memcached's LRU maintainer) and
// by eviction passes; crawler_reclaimed and crawler_items_checked count
// what "lru_crawler crawl" removed and examined, as memcached's crawler.
func (s *Server) Stats() []Stat {
	now := time.Now()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	st := s.store.Stats()
	c := &s.counters
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	ld := func(a *atomic.Uint64) string { return u(a.Load()) }
	zero := compatStat("0")
	stats := []Stat{
		{"pid", strconv.Itoa(os.Getpid())},
		{"uptime", i(int64(now.Sub(s.started).Seconds()))},
		{"time", i(now.Unix())},
		{"version", Version},
		{"libevent", compatStat(runtime.Version())}, // no libevent: the event loops are Go's and the node's own
		{"pointer_size", strconv.Itoa(strconv.IntSize)},
		{"rusage_user", rusage(ru.Utime)},
		{"rusage_system", rusage(ru.Stime)},
		{"max_connections", strconv.Itoa(s.cfg.MaxConns)},
		{"curr_connections", i(s.currConnections())},
		{"total_connections", ld(&c.totalConns)},
		{"rejected_connections", ld(&c.rejectedConns)},
		{"connection_structures", i(s.peakConns.Load())},
		// memcached's response objects and pooled read buffers.
		{"response_obj_oom", zero},
		{"response_obj_count", zero},
		{"response_obj_bytes", zero},
		{"read_buf_count", zero},
		{"read_buf_bytes", zero},
		{"read_buf_bytes_free", zero},
		{"read_buf_oom", zero},
		{"reserved_fds", strconv.Itoa(FileReserve(s.cfg.Threads))}, // kept beyond -c (see connLimit)
		{"cmd_get", ld(&c.cmdGet)},
		{"cmd_set", u(st.SetCmds)},
		{"cmd_flush", ld(&c.cmdFlush)},
		{"cmd_touch", ld(&c.cmdTouch)},
		{"cmd_meta", ld(&c.cmdMeta)},
		{"get_hits", u(st.GetHits)},
		{"get_misses", ld(&c.getMisses)},
		{"get_expired", ld(&c.getExpired)},
		{"get_flushed", ld(&c.getFlushed)},
		{"delete_misses", ld(&c.deleteMisses)},
		{"delete_hits", u(st.DeleteHits)},
		{"incr_misses", ld(&c.incrMisses)},
		{"incr_hits", u(st.IncrHits)},
		{"decr_misses", ld(&c.decrMisses)},
		{"decr_hits", u(st.DecrHits)},
		{"cas_misses", ld(&c.casMisses)},
		{"cas_hits", u(st.CASHits)},
		{"cas_badval", u(st.CASBadval)},
		{"touch_hits", u(st.TouchHits)},
		{"touch_misses", ld(&c.touchMisses)},
		{"store_too_large", ld(&c.storeTooLarge)},
		{"store_no_memory", ld(&c.storeNoMemory)},
		{"auth_cmds", ld(&c.authCmds)},
		{"auth_errors", ld(&c.authErrors)},
	}
	if s.cfg.IdleTimeout > 0 {
		stats = append(stats, Stat{"idle_kicks", ld(&c.idleKicks)})
	}
	stats = append(stats, []Stat{
		{"bytes_read", ld(&c.bytesRead)},
		{"bytes_written", ld(&c.bytesWritten)},
		{"limit_maxbytes", i(st.LimitMaxBytes)},
		{"accepting_conns", boolStat(!s.shuttingDown.Load())},
		{"listen_disabled_num", "0"},        // listening is never disabled: -c is enforced per connection
		{"time_in_listen_disabled_us", "0"}, // and so never for any time
		{"threads", strconv.Itoa(s.cfg.Threads)},
		{"conn_yields", ld(&c.connYields)},
		{"hash_power_level", strconv.Itoa(bits.Len64(uint64(st.IndexSlots)) - 1)},
		{"hash_bytes", i(st.IndexSlots * 8)},
		{"hash_is_expanding", "0"}, // an index grows at once, under its shard's lock
		// memcached's slab mover.
		{"slab_reassign_rescues", zero},
		{"slab_reassign_chunk_rescues", zero},
		{"slab_reassign_evictions_nomem", zero},
		{"slab_reassign_inline_reclaim", zero},
		{"slab_reassign_busy_items", zero},
		{"slab_reassign_busy_deletes", zero},
		{"slab_reassign_running", zero},
		{"slabs_moved", zero},
	}...)
	if cr := s.crawlerState(); cr.Enabled {
		stats = append(stats,
			Stat{"lru_crawler_running", boolStat(cr.Running)},
			Stat{"lru_crawler_starts", u(cr.Starts)},
		)
	}
	stats = append(stats, []Stat{
		{"lru_maintainer_juggles", zero}, // memcached's LRU maintainer thread
		{"malloc_fails", zero},           // memcached's slab allocator
		{"log_worker_dropped", zero},     // memcached's per-thread log buffers
		{"log_worker_written", zero},
		{"log_watcher_skipped", ld(&c.logWatcherSkipped)},
		{"log_watcher_sent", ld(&c.logWatcherSent)},
		{"log_watchers", i(c.logWatchers.Load())},
	}...)
	stats = append(stats, s.tlsStats()...)
	return append(stats, []Stat{
		{"unexpected_napi_ids", zero}, // memcached's NAPI ids (-o napi_ids)
		{"round_robin_fallback", zero},
		{"bytes", i(st.Bytes)},
		{"curr_items", i(st.CurrItems)},
		{"total_items", u(st.TotalItems)},
		{"slab_global_page_pool", i(st.FreePageBytes / slabPageSize)},
		{"expired_unfetched", u(st.ExpiredUnfetched)},
		{"evicted_unfetched", u(st.EvictedUnfetched)},
		{"evicted_active", u(st.EvictedActive)},
		{"evictions", u(st.Evictions)},
		{"reclaimed", u(st.Reclaimed)},
		{"crawler_reclaimed", u(st.CrawlerReclaimed)}, // lru_crawler crawl; the reclaimer's count under reclaimed
		{"crawler_items_checked", u(st.CrawlerChecked)},
		{"lrutail_reflocked", zero}, // items are never reference-counted
		{"moves_to_cold", zero},     // no COLD LRU
		{"moves_to_warm", u(st.MovesToMain)},
		{"moves_within_lru", u(st.MovesWithinMain)},
		{"direct_reclaims", u(st.DirectReclaims)},
		{"lru_bumps_dropped", zero}, // reads never queue their bumps
	}...)
}

// slabPageSize is memcached's slab page: "stats slabs" counts pages of
// this size (see slabStats).
const slabPageSize = 1 << 20

// Settings returns the statistics of "stats settings": every name
// memcached 1.6.18 prints, in its order. The settings of what the node has
// are its own; memcached's settings of what it lacks (slab mover, LRU
// crawler and maintainer, logger, extstore, OpenSSL's ciphers, buffers and
// kernel TLS, UDP, NAPI, memory file) are present for compatibility with
// memcached's defaults, or with what the slabs automove and lru commands
// set, which memcached's stats settings would show. growth_factor,
// chunk_size and slab_chunk_max are those of the size classes "stats
// items" and "stats slabs" report.
func (s *Server) Settings() []Stat {
	cfg := &s.cfg
	crawler := s.crawlerState()
	itoa := strconv.Itoa
	iface := "NULL"
	if len(cfg.ListenAddrs) > 0 {
		addrs := cfg.ListenAddrs
		if cfg.TLS != nil && len(cfg.TLS.NoTLSAddrs) > 0 {
			addrs = make([]string, len(cfg.ListenAddrs))
			for i, a := range cfg.ListenAddrs {
				if slices.Contains(cfg.TLS.NoTLSAddrs, a) {
					a = "notls:" + a
				}
				addrs[i] = a
			}
		}
		iface = strings.Join(addrs, ",")
	}
	sock := "NULL"
	if cfg.UnixSocket != "" {
		sock = cfg.UnixSocket
	}
	compat := s.compat.snapshot()
	sizes := s.store.ChunkSizes()
	out := []Stat{
		{"maxbytes", strconv.FormatInt(s.store.MaxBytes(), 10)},
		{"maxconns", itoa(cfg.MaxConns)},
		{"tcpport", itoa(max(cfg.Port, 0))},
		{"udpport", "0"}, // UDP is not served
		{"inter", iface},
		{"verbosity", itoa(int(s.verbosity.Load()))},
		{"oldest", strconv.FormatInt(s.oldestLive.Load(), 10)},
		{"evictions", onOff(!cfg.NoEvictions)},
		{"domain_socket", sock},
		{"umask", strconv.FormatUint(uint64(cfg.UnixMask), 8)},
		{"shutdown_command", yesNo(cfg.EnableShutdown)},
		{"growth_factor", "1.25"},
		{"chunk_size", "48"},
		{"num_threads", itoa(cfg.Threads)},
		{"num_threads_per_udp", compatStat(itoa(cfg.Threads))}, // memcached's default: one UDP thread per worker
		{"stat_key_prefix", string(s.counters.detail.delim)},
		{"detail_enabled", yesNo(s.counters.detail.enabled())},
		{"reqs_per_event", itoa(cfg.MaxReqsPerEvent)},
		{"cas_enabled", yesNo(!cfg.NoCAS)},
		{"tcp_backlog", itoa(cfg.Backlog)},
		{"binding_protocol", cfg.Protocol + protocolSuffix(cfg.Protocol)},
		{"auth_enabled_sasl", yesNo(cfg.SASL)},
		{"auth_enabled_ascii", authFileSetting(cfg.AuthFile)},
		{"item_size_max", itoa(cfg.ItemSizeMax)},
		{"maxconns_fast", "yes"},
		{"hashpower_init", compatStat("0")},
		{"slab_reassign", compatStat("yes")},
		{"slab_automove", itoa(compat.slabAutomove)},
		{"slab_automove_ratio", formatC2(compat.slabAutomoveRatio)},
		{"slab_automove_window", compatStat("30")},
		{"slab_chunk_max", itoa(sizes[len(sizes)-1])},
		{"lru_crawler", yesNo(crawler.Enabled)},
		{"lru_crawler_sleep", strconv.FormatUint(uint64(crawler.Sleep), 10)},
		{"lru_crawler_tocrawl", strconv.FormatUint(uint64(crawler.ToCrawl), 10)},
		{"tail_repair_time", compatStat("0")},
		{"flush_enabled", yesNo(!cfg.DisableFlushAll)},
		{"dump_enabled", yesNo(crawler.DumpEnabled)},
		{"hash_algorithm", "xxh64"}, // the index hashes keys with xxHash64
		{"lru_maintainer_thread", compatStat("yes")},
		{"lru_segmented", yesNo(compat.lruSegmented)},
		{"hot_lru_pct", strconv.Itoa(int(int32(compat.hotLRUPct)))},
		{"warm_lru_pct", strconv.Itoa(int(int32(compat.warmLRUPct)))},
		{"hot_max_factor", formatC2(compat.hotMaxFactor)},
		{"warm_max_factor", formatC2(compat.warmMaxFactor)},
		{"temp_lru", yesNo(compat.tempLRU)},
		{"temporary_ttl", strconv.FormatInt(int64(compat.temporaryTTL), 10)},
		{"idle_timeout", itoa(int(cfg.IdleTimeout / time.Second))},
		{"watcher_logbuf_size", itoa(cfg.WatcherBufSize)},
		{"worker_logbuf_size", compatStat("65536")},
		{"read_buf_mem_limit", compatStat("0")},
		{"track_sizes", "no"}, // "stats sizes" is disabled
		{"inline_ascii_response", compatStat("no")},
		// memcached's extstore, not configured.
		{"ext_item_size", compatStat("512")},
		{"ext_item_age", compatStat("4294967295")},
		{"ext_low_ttl", compatStat("0")},
		{"ext_recache_rate", compatStat("2000")},
		{"ext_wbuf_size", compatStat("4194304")},
		{"ext_compact_under", compatStat("0")},
		{"ext_drop_under", compatStat("0")},
		{"ext_max_sleep", compatStat("1000000")},
		{"ext_max_frag", compatStat("0.80")},
		{"slab_automove_freeratio", compatStat("0.010")},
		{"ext_drop_unread", compatStat("no")},
	}
	out = append(out, s.tlsSettings()...)
	return append(out,
		Stat{"num_napi_ids", compatStat("(null)")},
		Stat{"memory_file", compatStat("(null)")},
	)
}

// protocolSuffix renders -B as memcached's "stats settings" does.
func protocolSuffix(p string) string {
	if p == "auto" {
		return "-negotiate"
	}
	return ""
}

// formatC2 renders v as C's printf "%.2f" does, NaN and infinities
// included: memcached's lru tune takes them.
func formatC2(v float64) string {
	switch {
	case math.IsNaN(v):
		if math.Signbit(v) {
			return "-nan"
		}
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// itemStats returns "stats items": for each size class that holds items,
// in memcached's class numbering, memcached's 28 fields (29 with a TEMP
// LRU set by "lru temp_ttl"). The small queue is memcached's HOT LRU, the
// main queue its WARM one: number_hot and number_warm are the items in
// each, hits_to_hot and hits_to_warm the reads of items in each, moves_to_warm
// the items an eviction pass moved from the small to the main queue, and
// moves_within_lru those it kept in the main queue. age_hot and age_warm
// are the seconds since the last access of each queue's least recently
// accessed item, and age the older of the two, as of the background
// reclaimer's last full pass (it walks every item, 2,560 a second per
// shard). The node has no COLD or TEMP LRU, no LRU crawler and no
// reference counts: their fields are present for compatibility, 0.
func (s *Server) itemStats() []Stat {
	temp := s.compat.snapshot().tempLRU
	var out []Stat
	for _, c := range s.store.ClassStats() {
		if c.Items == 0 {
			continue // as memcached: only classes holding items
		}
		p := "items:" + strconv.Itoa(c.ID) + ":"
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		zero := compatStat("0")
		out = append(out,
			Stat{p + "number", i(c.Items)},
			Stat{p + "number_hot", i(c.SmallItems)},
			Stat{p + "number_warm", i(c.MainItems)},
			Stat{p + "number_cold", zero},
		)
		if temp {
			out = append(out, Stat{p + "number_temp", zero})
		}
		out = append(out,
			Stat{p + "age_hot", u(uint64(c.OldestSmall))},
			Stat{p + "age_warm", u(uint64(c.OldestMain))},
			Stat{p + "age", u(uint64(max(c.OldestSmall, c.OldestMain)))},
			Stat{p + "mem_requested", i(c.RequestedBytes)},
			Stat{p + "evicted", u(c.Evictions)},
			Stat{p + "evicted_nonzero", u(c.EvictedNonzero)},
			Stat{p + "evicted_time", u(uint64(c.EvictedAge))},
			Stat{p + "outofmemory", u(c.OutOfMemory)},
			Stat{p + "tailrepairs", zero},
			Stat{p + "reclaimed", u(c.Reclaimed)},
			Stat{p + "expired_unfetched", u(c.ExpiredUnfetched)},
			Stat{p + "evicted_unfetched", u(c.EvictedUnfetched)},
			Stat{p + "evicted_active", u(c.EvictedActive)},
			Stat{p + "crawler_reclaimed", strconv.FormatUint(c.CrawlerReclaimed, 10)},
			Stat{p + "crawler_items_checked", strconv.FormatUint(c.CrawlerChecked, 10)},
			Stat{p + "lrutail_reflocked", zero},
			Stat{p + "moves_to_cold", zero},
			Stat{p + "moves_to_warm", u(c.MovesToMain)},
			Stat{p + "moves_within_lru", u(c.MovesWithinMain)},
			Stat{p + "direct_reclaims", u(c.DirectReclaims)},
			Stat{p + "hits_to_hot", u(c.SmallHits)},
			Stat{p + "hits_to_warm", u(c.MainHits)},
			Stat{p + "hits_to_cold", zero},
			Stat{p + "hits_to_temp", zero},
		)
	}
	return out
}

// slabStats returns "stats slabs": for each size class that holds or has
// held items, memcached's 15 fields, then the classes listed and the bytes
// the node holds for items.
//
// The node has no slabs: items of every class are packed, back to back
// and at their own size, in pages of its own that hold items of any class
// (see node/store). So, for a class:
//   - chunk_size is the largest item it holds, and chunks_per_page how many
//     such chunks fill one of memcached's 1 MiB pages: properties of the
//     class;
//   - an item is one chunk: used_chunks is the items held, and as items
//     are packed without slack there are no free chunks (free_chunks and
//     free_chunks_end are 0) and total_chunks is used_chunks;
//   - total_pages is the whole 1 MiB pages' worth of memory the class's
//     items take (what they count against -m, rounded down), so that the
//     pages listed never add up to more memory than the node holds;
//   - the command counters are the store's, counted in the class of the
//     item each command read or would store, as memcached counts them.
//
// total_malloced is the bytes of the node's pages and of the values too
// large for a page: the memory it holds for items, as memcached's is the
// memory of its slab pages (neither counts the hash index).
func (s *Server) slabStats() []Stat {
	classes := s.store.ClassStats()
	st := s.store.Stats()
	var out []Stat
	for _, c := range classes {
		p := strconv.Itoa(c.ID) + ":"
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		out = append(out,
			Stat{p + "chunk_size", strconv.Itoa(c.ChunkSize)},
			Stat{p + "chunks_per_page", strconv.Itoa(slabPageSize / c.ChunkSize)},
			Stat{p + "total_pages", i(c.Bytes / slabPageSize)},
			Stat{p + "total_chunks", i(c.Items)},
			Stat{p + "used_chunks", i(c.Items)},
			Stat{p + "free_chunks", "0"},
			Stat{p + "free_chunks_end", "0"},
			Stat{p + "get_hits", u(c.Hits())},
			Stat{p + "cmd_set", u(c.SetCmds)},
			Stat{p + "delete_hits", u(c.DeleteHits)},
			Stat{p + "incr_hits", u(c.IncrHits)},
			Stat{p + "decr_hits", u(c.DecrHits)},
			Stat{p + "cas_hits", u(c.CASHits)},
			Stat{p + "cas_badval", u(c.CASBadval)},
			Stat{p + "touch_hits", u(c.TouchHits)},
		)
	}
	return append(out,
		Stat{"active_slabs", strconv.Itoa(len(classes))},
		Stat{"total_malloced", strconv.FormatInt(st.PageBytes+st.ExternBytes, 10)},
	)
}

// defaultPrefixDelimiter ends a key's prefix for "stats detail" unless -D
// names another.
const defaultPrefixDelimiter = ':'

// prefixBuckets is memcached's PREFIX_HASH_SIZE: "stats detail dump" lists
// prefixes bucket by bucket, as memcached does.
const prefixBuckets = 256

// detailStats are memcached's per-prefix statistics ("stats detail"): for
// each key prefix (a key's bytes before its first delimiter), how many
// get, set and delete commands named it and how many of the gets hit. Keys
// without the delimiter are not counted. Nothing is recorded unless
// "stats detail on"; while off, a record call costs one atomic load.
//
// All methods are safe for concurrent use. Keys passed in are not retained.
type detailStats struct {
	on    atomic.Bool
	delim byte // ends a key's prefix; set before any use

	mu       sync.Mutex               // guards prefixes and buckets
	prefixes map[string]*prefixCounts // by prefix
	// buckets order the dump as memcached's: by bucket, murmur3 of the
	// prefix modulo prefixBuckets, and in a bucket newest first.
	buckets [prefixBuckets]*prefixCounts
}

// prefixCounts are the counters of one prefix.
type prefixCounts struct {
	next                   *prefixCounts // in the same bucket, older
	prefix                 string
	gets, hits, sets, dels uint64
}

// The commands detailStats counts.
const (
	detailGet = iota
	detailSet
	detailDelete
)

func (d *detailStats) enabled() bool { return d.on.Load() }

// setEnabled turns recording on or off; counts so far are kept.
func (d *detailStats) setEnabled(on bool) { d.on.Store(on) }

// recordGet counts a get of key (get, gets, gat, gats, for each key) that
// hit or missed.
func (d *detailStats) recordGet(key []byte, hit bool) {
	if d.on.Load() {
		d.record(key, detailGet, hit)
	}
}

// recordSet counts a storage command (set, add, replace, append, prepend,
// cas) for key, whatever its outcome.
func (d *detailStats) recordSet(key []byte) {
	if d.on.Load() {
		d.record(key, detailSet, false)
	}
}

// recordDelete counts a delete of key, whether it found the key or not.
func (d *detailStats) recordDelete(key []byte) {
	if d.on.Load() {
		d.record(key, detailDelete, false)
	}
}

func (d *detailStats) record(key []byte, op int, hit bool) {
	n := -1
	for i, b := range key {
		if b == d.delim {
			n = i
			break
		}
		if b == 0 { // memcached reads the key as a C string
			return
		}
	}
	if n < 0 {
		return
	}
	prefix := key[:n]
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.prefixes[string(prefix)]
	if p == nil {
		if d.prefixes == nil {
			d.prefixes = make(map[string]*prefixCounts)
		}
		p = &prefixCounts{prefix: string(prefix)}
		b := murmur3(prefix) % prefixBuckets
		p.next, d.buckets[b] = d.buckets[b], p
		d.prefixes[p.prefix] = p
	}
	switch op {
	case detailGet:
		p.gets++
		if hit {
			p.hits++
		}
	case detailSet:
		p.sets++
	case detailDelete:
		p.dels++
	}
}

// clear forgets every prefix, as "stats reset".
func (d *detailStats) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prefixes = nil
	d.buckets = [prefixBuckets]*prefixCounts{}
}

// appendDump appends the reply to "stats detail dump": a line
// "PREFIX <prefix> get <n> hit <n> set <n> del <n>" for each prefix, in
// memcached's order, then END.
func (d *detailStats) appendDump(dst []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.buckets {
		for ; p != nil; p = p.next {
			dst = append(dst, "PREFIX "...)
			dst = append(dst, p.prefix...)
			dst = append(dst, " get "...)
			dst = strconv.AppendUint(dst, p.gets, 10)
			dst = append(dst, " hit "...)
			dst = strconv.AppendUint(dst, p.hits, 10)
			dst = append(dst, " set "...)
			dst = strconv.AppendUint(dst, p.sets, 10)
			dst = append(dst, " del "...)
			dst = strconv.AppendUint(dst, p.dels, 10)
			dst = append(dst, '\r', '\n')
		}
	}
	return append(dst, protocol.ReplyEnd...)
}

// murmur3 is MurmurHash3_x86_32 with seed 0, memcached's default hash,
// which places prefixes in its buckets.
func murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for ; len(data) >= 4; data = data[4:] {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
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

// authFileSetting is stats settings' auth_enabled_ascii: as memcached's,
// the -Y file's name as given, or "no".
func authFileSetting(file string) string {
	if file == "" {
		return "no"
	}
	return file
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
