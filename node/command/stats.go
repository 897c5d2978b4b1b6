package command

import (
	"math/bits"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/node/store"
	"golang.org/x/sys/unix"
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

// countCASMiss counts a compare-and-swap that found no item; its hits and
// mismatches are counted by the store.
func (h *Handler) countCASMiss(status store.Status) {
	if status == store.NotFound {
		h.counters.CASMisses.Add(1)
	}
}

// resetStats answers "stats reset": it zeroes what memcached's stats_reset
// zeroes, the command, byte and connection counters, the store's
// cumulative counters (total_items, and every counter of every class) and
// the per-prefix statistics. Gauges (curr_items, bytes, curr_connections …)
// are kept.
func (h *Handler) resetStats() {
	h.counters.Reset()
	h.store.ResetStats()
}

// Stats returns the general statistics of "stats", in memcached's order:
// every name memcached 1.6.18 prints, with idle_kicks under an idle
// timeout and the TLS statistics with TLS on, as memcached prints them.
// reclaimed counts the dead items removed to reuse their memory, by the
// node's background reclaimer (the work of memcached's LRU maintainer) and
// by eviction passes; crawler_reclaimed and crawler_items_checked count
// what "lru_crawler crawl" removed and examined, as memcached's crawler.
func (h *Handler) Stats() []stats.Stat {
	now := time.Now()
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	st := h.store.Stats()
	c := &h.counters
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	ld := func(a *atomic.Uint64) string { return u(a.Load()) }
	zero := stats.Compat("0")
	list := []stats.Stat{
		{Name: "pid", Value: strconv.Itoa(os.Getpid())},
		{Name: "uptime", Value: i(int64(now.Sub(h.started).Seconds()))},
		{Name: "time", Value: i(now.Unix())},
		{Name: "version", Value: Version},
		{Name: "libevent", Value: stats.Compat(runtime.Version())}, // no libevent: the event loops are Go's and the node's own
		{Name: "pointer_size", Value: strconv.Itoa(strconv.IntSize)},
		{Name: "rusage_user", Value: stats.Seconds(int64(ru.Utime.Sec), int64(ru.Utime.Usec))},
		{Name: "rusage_system", Value: stats.Seconds(int64(ru.Stime.Sec), int64(ru.Stime.Usec))},
		{Name: "max_connections", Value: strconv.Itoa(h.cfg.MaxConns)},
		{Name: "curr_connections", Value: i(h.conns.CurrConnections())},
		{Name: "total_connections", Value: ld(&c.TotalConns)},
		{Name: "rejected_connections", Value: ld(&c.RejectedConns)},
		{Name: "connection_structures", Value: i(h.conns.PeakConns())},
		// memcached's response objects and pooled read buffers.
		{Name: "response_obj_oom", Value: zero},
		{Name: "response_obj_count", Value: zero},
		{Name: "response_obj_bytes", Value: zero},
		{Name: "read_buf_count", Value: zero},
		{Name: "read_buf_bytes", Value: zero},
		{Name: "read_buf_bytes_free", Value: zero},
		{Name: "read_buf_oom", Value: zero},
		{Name: "reserved_fds", Value: strconv.Itoa(netserve.FileReserve(h.cfg.Threads))}, // kept beyond -c (see netserve.connLimit)
		{Name: "cmd_get", Value: ld(&c.CmdGet)},
		{Name: "cmd_set", Value: u(st.SetCmds)},
		{Name: "cmd_flush", Value: ld(&c.CmdFlush)},
		{Name: "cmd_touch", Value: ld(&c.CmdTouch)},
		{Name: "cmd_meta", Value: ld(&c.CmdMeta)},
		{Name: "get_hits", Value: u(st.GetHits)},
		{Name: "get_misses", Value: ld(&c.GetMisses)},
		{Name: "get_expired", Value: ld(&c.GetExpired)},
		{Name: "get_flushed", Value: ld(&c.GetFlushed)},
		{Name: "delete_misses", Value: ld(&c.DeleteMisses)},
		{Name: "delete_hits", Value: u(st.DeleteHits)},
		{Name: "incr_misses", Value: ld(&c.IncrMisses)},
		{Name: "incr_hits", Value: u(st.IncrHits)},
		{Name: "decr_misses", Value: ld(&c.DecrMisses)},
		{Name: "decr_hits", Value: u(st.DecrHits)},
		{Name: "cas_misses", Value: ld(&c.CASMisses)},
		{Name: "cas_hits", Value: u(st.CASHits)},
		{Name: "cas_badval", Value: u(st.CASBadval)},
		{Name: "touch_hits", Value: u(st.TouchHits)},
		{Name: "touch_misses", Value: ld(&c.TouchMisses)},
		{Name: "store_too_large", Value: ld(&c.StoreTooLarge)},
		{Name: "store_no_memory", Value: ld(&c.StoreNoMemory)},
		{Name: "auth_cmds", Value: ld(&c.AuthCmds)},
		{Name: "auth_errors", Value: ld(&c.AuthErrors)},
	}
	if h.cfg.IdleTimeout > 0 {
		list = append(list, stats.Stat{Name: "idle_kicks", Value: ld(&c.IdleKicks)})
	}
	list = append(list, []stats.Stat{
		{Name: "bytes_read", Value: ld(&c.BytesRead)},
		{Name: "bytes_written", Value: ld(&c.BytesWritten)},
		{Name: "limit_maxbytes", Value: i(st.LimitMaxBytes)},
		{Name: "accepting_conns", Value: stats.Bool(h.conns.Accepting())},
	}...)
	if h.cluster.Draining() {
		// memcluster's own, and only while it holds: at rest the list
		// is memcached's.
		list = append(list, stats.Stat{Name: "draining", Value: "1"})
	}
	list = append(list, []stats.Stat{
		{Name: "listen_disabled_num", Value: "0"},        // listening is never disabled: -c is enforced per connection
		{Name: "time_in_listen_disabled_us", Value: "0"}, // and so never for any time
		{Name: "threads", Value: strconv.Itoa(h.cfg.Threads)},
		{Name: "conn_yields", Value: ld(&c.ConnYields)},
		{Name: "hash_power_level", Value: strconv.Itoa(bits.Len64(uint64(st.IndexSlots)) - 1)},
		{Name: "hash_bytes", Value: i(st.IndexSlots * 8)},
		{Name: "hash_is_expanding", Value: "0"}, // an index grows at once, under its shard's lock
		// memcached's slab mover.
		{Name: "slab_reassign_rescues", Value: zero},
		{Name: "slab_reassign_chunk_rescues", Value: zero},
		{Name: "slab_reassign_evictions_nomem", Value: zero},
		{Name: "slab_reassign_inline_reclaim", Value: zero},
		{Name: "slab_reassign_busy_items", Value: zero},
		{Name: "slab_reassign_busy_deletes", Value: zero},
		{Name: "slab_reassign_running", Value: zero},
		{Name: "slabs_moved", Value: zero},
	}...)
	if cr := h.crawlerState(); cr.Enabled {
		list = append(list,
			stats.Stat{Name: "lru_crawler_running", Value: stats.Bool(cr.Running)},
			stats.Stat{Name: "lru_crawler_starts", Value: u(cr.Starts)},
		)
	}
	list = append(list, []stats.Stat{
		{Name: "lru_maintainer_juggles", Value: zero}, // memcached's LRU maintainer thread
		{Name: "malloc_fails", Value: zero},           // memcached's slab allocator
		{Name: "log_worker_dropped", Value: zero},     // memcached's per-thread log buffers
		{Name: "log_worker_written", Value: zero},
		{Name: "log_watcher_skipped", Value: ld(&c.LogWatcherSkipped)},
		{Name: "log_watcher_sent", Value: ld(&c.LogWatcherSent)},
		{Name: "log_watchers", Value: i(c.LogWatchers.Load())},
	}...)
	list = append(list, h.tls.Stats(&h.counters)...)
	list = append(list, []stats.Stat{
		{Name: "unexpected_napi_ids", Value: zero}, // memcached's NAPI ids (-o napi_ids)
		{Name: "round_robin_fallback", Value: zero},
		{Name: "bytes", Value: i(st.Bytes)},
		{Name: "curr_items", Value: i(st.CurrItems)},
		{Name: "total_items", Value: u(st.TotalItems)},
		{Name: "slab_global_page_pool", Value: i(st.FreePageBytes / slabPageSize)},
		{Name: "expired_unfetched", Value: u(st.ExpiredUnfetched)},
		{Name: "evicted_unfetched", Value: u(st.EvictedUnfetched)},
		{Name: "evicted_active", Value: u(st.EvictedActive)},
		{Name: "evictions", Value: u(st.Evictions)},
		{Name: "reclaimed", Value: u(st.Reclaimed)},
		{Name: "crawler_reclaimed", Value: u(st.CrawlerReclaimed)}, // lru_crawler crawl; the reclaimer's count under reclaimed
		{Name: "crawler_items_checked", Value: u(st.CrawlerChecked)},
		{Name: "lrutail_reflocked", Value: zero}, // items are never reference-counted
		{Name: "moves_to_cold", Value: zero},     // no COLD LRU
		{Name: "moves_to_warm", Value: u(st.MovesToMain)},
		{Name: "moves_within_lru", Value: u(st.MovesWithinMain)},
		{Name: "direct_reclaims", Value: u(st.DirectReclaims)},
		{Name: "lru_bumps_dropped", Value: zero}, // reads never queue their bumps
	}...)
	if ho := h.handoff; ho != nil {
		list = appendHandoffStats(list, ho)
	}
	if h.forward != nil {
		list = append(list,
			stats.Stat{Name: "forwarded", Value: stats.Uint(c.Forwarded.Load())},
			stats.Stat{Name: "forward_errors", Value: stats.Uint(c.ForwardErrors.Load())})
	}
	if n, show := h.cluster.GossipDropped(); show {
		list = append(list, stats.Stat{Name: "gossip_dropped", Value: stats.Uint(n)})
	}
	return list
}

// appendHandoffStats appends the hand-off's counts (see node/handoff),
// memcluster's own, once a change of membership has begun a hand-off or
// another node pushed here: a node that never had one lists memcached's
// names alone.
func appendHandoffStats(list []stats.Stat, ho *handoff.Handoff) []stats.Stat {
	hs, active := ho.Stats(), ho.Active()
	if active || hs.Fetches > 0 || hs.Accepted > 0 {
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		list = append(list, []stats.Stat{
			{Name: "handoff_active", Value: stats.Bool(active)},
			{Name: "handoff_fetches", Value: u(hs.Fetches)},
			{Name: "handoff_hits", Value: u(hs.Hits)},
			{Name: "handoff_misses", Value: u(hs.Misses)},
			{Name: "handoff_errors", Value: u(hs.Errors)},
			{Name: "handoff_skipped", Value: u(hs.Skipped)},
			{Name: "handoff_accepted", Value: u(hs.Accepted)},
		}...)
	}
	return list
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
func (h *Handler) Settings() []stats.Stat {
	cfg := &h.cfg
	crawler := h.crawlerState()
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
	compat := h.compat.snapshot()
	sizes := h.store.ChunkSizes()
	out := []stats.Stat{
		{Name: "maxbytes", Value: strconv.FormatInt(h.store.MaxBytes(), 10)},
		{Name: "maxconns", Value: itoa(cfg.MaxConns)},
		{Name: "tcpport", Value: itoa(max(cfg.Port, 0))},
		{Name: "udpport", Value: "0"}, // UDP is not served
		{Name: "inter", Value: iface},
		{Name: "verbosity", Value: itoa(int(h.verbosity.Load()))},
		{Name: "oldest", Value: strconv.FormatInt(h.oldestLive.Load(), 10)},
		{Name: "evictions", Value: stats.OnOff(!cfg.NoEvictions)},
		{Name: "domain_socket", Value: sock},
		{Name: "umask", Value: strconv.FormatUint(uint64(cfg.UnixMask), 8)},
		{Name: "shutdown_command", Value: stats.YesNo(cfg.EnableShutdown)},
		{Name: "growth_factor", Value: "1.25"},
		{Name: "chunk_size", Value: "48"},
		{Name: "num_threads", Value: itoa(cfg.Threads)},
		{Name: "num_threads_per_udp", Value: stats.Compat(itoa(cfg.Threads))}, // memcached's default: one UDP thread per worker
		{Name: "stat_key_prefix", Value: string(h.counters.Detail.Delimiter())},
		{Name: "detail_enabled", Value: stats.YesNo(h.counters.Detail.Enabled())},
		{Name: "reqs_per_event", Value: itoa(cfg.MaxReqsPerEvent)},
		{Name: "cas_enabled", Value: stats.YesNo(!cfg.NoCAS)},
		{Name: "tcp_backlog", Value: itoa(cfg.Backlog)},
		{Name: "binding_protocol", Value: cfg.Protocol + protocolSuffix(cfg.Protocol)},
		{Name: "auth_enabled_sasl", Value: stats.YesNo(cfg.SASL)},
		{Name: "auth_enabled_ascii", Value: authFileSetting(cfg.AuthFile)},
		{Name: "item_size_max", Value: itoa(cfg.ItemSizeMax)},
		{Name: "maxconns_fast", Value: "yes"},
		{Name: "hashpower_init", Value: stats.Compat("0")},
		{Name: "slab_reassign", Value: stats.Compat("yes")},
		{Name: "slab_automove", Value: itoa(compat.slabAutomove)},
		{Name: "slab_automove_ratio", Value: stats.C2(compat.slabAutomoveRatio)},
		{Name: "slab_automove_window", Value: stats.Compat("30")},
		{Name: "slab_chunk_max", Value: itoa(sizes[len(sizes)-1])},
		{Name: "lru_crawler", Value: stats.YesNo(crawler.Enabled)},
		{Name: "lru_crawler_sleep", Value: strconv.FormatUint(uint64(crawler.Sleep), 10)},
		{Name: "lru_crawler_tocrawl", Value: strconv.FormatUint(uint64(crawler.ToCrawl), 10)},
		{Name: "tail_repair_time", Value: stats.Compat("0")},
		{Name: "flush_enabled", Value: stats.YesNo(!cfg.DisableFlushAll)},
		{Name: "dump_enabled", Value: stats.YesNo(crawler.DumpEnabled)},
		{Name: "hash_algorithm", Value: "xxh64"}, // the index hashes keys with xxHash64
		{Name: "lru_maintainer_thread", Value: stats.Compat("yes")},
		{Name: "lru_segmented", Value: stats.YesNo(compat.lruSegmented)},
		{Name: "hot_lru_pct", Value: strconv.Itoa(int(int32(compat.hotLRUPct)))},
		{Name: "warm_lru_pct", Value: strconv.Itoa(int(int32(compat.warmLRUPct)))},
		{Name: "hot_max_factor", Value: stats.C2(compat.hotMaxFactor)},
		{Name: "warm_max_factor", Value: stats.C2(compat.warmMaxFactor)},
		{Name: "temp_lru", Value: stats.YesNo(compat.tempLRU)},
		{Name: "temporary_ttl", Value: strconv.FormatInt(int64(compat.temporaryTTL), 10)},
		{Name: "idle_timeout", Value: itoa(int(cfg.IdleTimeout / time.Second))},
		{Name: "watcher_logbuf_size", Value: itoa(cfg.WatcherBufSize)},
		{Name: "worker_logbuf_size", Value: stats.Compat("65536")},
		{Name: "read_buf_mem_limit", Value: stats.Compat("0")},
		{Name: "track_sizes", Value: "no"}, // "stats sizes" is disabled
		{Name: "inline_ascii_response", Value: stats.Compat("no")},
		// memcached's extstore, not configured.
		{Name: "ext_item_size", Value: stats.Compat("512")},
		{Name: "ext_item_age", Value: stats.Compat("4294967295")},
		{Name: "ext_low_ttl", Value: stats.Compat("0")},
		{Name: "ext_recache_rate", Value: stats.Compat("2000")},
		{Name: "ext_wbuf_size", Value: stats.Compat("4194304")},
		{Name: "ext_compact_under", Value: stats.Compat("0")},
		{Name: "ext_drop_under", Value: stats.Compat("0")},
		{Name: "ext_max_sleep", Value: stats.Compat("1000000")},
		{Name: "ext_max_frag", Value: stats.Compat("0.80")},
		{Name: "slab_automove_freeratio", Value: stats.Compat("0.010")},
		{Name: "ext_drop_unread", Value: stats.Compat("no")},
	}
	out = append(out, h.tls.Settings()...)
	return append(out,
		stats.Stat{Name: "num_napi_ids", Value: stats.Compat("(null)")},
		stats.Stat{Name: "memory_file", Value: stats.Compat("(null)")},
	)
}

// protocolSuffix renders -B as memcached's "stats settings" does.
func protocolSuffix(p string) string {
	if p == "auto" {
		return "-negotiate"
	}
	return ""
}

// ItemStats returns the statistics of "stats items", in memcached's order
// (see itemStats).
func (h *Handler) ItemStats() []stats.Stat { return h.itemStats() }

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
func (h *Handler) itemStats() []stats.Stat {
	temp := h.compat.snapshot().tempLRU
	var out []stats.Stat
	for _, c := range h.store.ClassStats() {
		if c.Items == 0 {
			continue // as memcached: only classes holding items
		}
		p := "items:" + strconv.Itoa(c.ID) + ":"
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		zero := stats.Compat("0")
		out = append(out,
			stats.Stat{Name: p + "number", Value: i(c.Items)},
			stats.Stat{Name: p + "number_hot", Value: i(c.SmallItems)},
			stats.Stat{Name: p + "number_warm", Value: i(c.MainItems)},
			stats.Stat{Name: p + "number_cold", Value: zero},
		)
		if temp {
			out = append(out, stats.Stat{Name: p + "number_temp", Value: zero})
		}
		out = append(out,
			stats.Stat{Name: p + "age_hot", Value: u(uint64(c.OldestSmall))},
			stats.Stat{Name: p + "age_warm", Value: u(uint64(c.OldestMain))},
			stats.Stat{Name: p + "age", Value: u(uint64(max(c.OldestSmall, c.OldestMain)))},
			stats.Stat{Name: p + "mem_requested", Value: i(c.RequestedBytes)},
			stats.Stat{Name: p + "evicted", Value: u(c.Evictions)},
			stats.Stat{Name: p + "evicted_nonzero", Value: u(c.EvictedNonzero)},
			stats.Stat{Name: p + "evicted_time", Value: u(uint64(c.EvictedAge))},
			stats.Stat{Name: p + "outofmemory", Value: u(c.OutOfMemory)},
			stats.Stat{Name: p + "tailrepairs", Value: zero},
			stats.Stat{Name: p + "reclaimed", Value: u(c.Reclaimed)},
			stats.Stat{Name: p + "expired_unfetched", Value: u(c.ExpiredUnfetched)},
			stats.Stat{Name: p + "evicted_unfetched", Value: u(c.EvictedUnfetched)},
			stats.Stat{Name: p + "evicted_active", Value: u(c.EvictedActive)},
			stats.Stat{Name: p + "crawler_reclaimed", Value: strconv.FormatUint(c.CrawlerReclaimed, 10)},
			stats.Stat{Name: p + "crawler_items_checked", Value: strconv.FormatUint(c.CrawlerChecked, 10)},
			stats.Stat{Name: p + "lrutail_reflocked", Value: zero},
			stats.Stat{Name: p + "moves_to_cold", Value: zero},
			stats.Stat{Name: p + "moves_to_warm", Value: u(c.MovesToMain)},
			stats.Stat{Name: p + "moves_within_lru", Value: u(c.MovesWithinMain)},
			stats.Stat{Name: p + "direct_reclaims", Value: u(c.DirectReclaims)},
			stats.Stat{Name: p + "hits_to_hot", Value: u(c.SmallHits)},
			stats.Stat{Name: p + "hits_to_warm", Value: u(c.MainHits)},
			stats.Stat{Name: p + "hits_to_cold", Value: zero},
			stats.Stat{Name: p + "hits_to_temp", Value: zero},
		)
	}
	return out
}

// SlabStats returns the statistics of "stats slabs", in memcached's order
// (see slabStats).
func (h *Handler) SlabStats() []stats.Stat { return h.slabStats() }

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
func (h *Handler) slabStats() []stats.Stat {
	classes := h.store.ClassStats()
	st := h.store.Stats()
	var out []stats.Stat
	for _, c := range classes {
		p := strconv.Itoa(c.ID) + ":"
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		out = append(out,
			stats.Stat{Name: p + "chunk_size", Value: strconv.Itoa(c.ChunkSize)},
			stats.Stat{Name: p + "chunks_per_page", Value: strconv.Itoa(slabPageSize / c.ChunkSize)},
			stats.Stat{Name: p + "total_pages", Value: i(c.Bytes / slabPageSize)},
			stats.Stat{Name: p + "total_chunks", Value: i(c.Items)},
			stats.Stat{Name: p + "used_chunks", Value: i(c.Items)},
			stats.Stat{Name: p + "free_chunks", Value: "0"},
			stats.Stat{Name: p + "free_chunks_end", Value: "0"},
			stats.Stat{Name: p + "get_hits", Value: u(c.Hits())},
			stats.Stat{Name: p + "cmd_set", Value: u(c.SetCmds)},
			stats.Stat{Name: p + "delete_hits", Value: u(c.DeleteHits)},
			stats.Stat{Name: p + "incr_hits", Value: u(c.IncrHits)},
			stats.Stat{Name: p + "decr_hits", Value: u(c.DecrHits)},
			stats.Stat{Name: p + "cas_hits", Value: u(c.CASHits)},
			stats.Stat{Name: p + "cas_badval", Value: u(c.CASBadval)},
			stats.Stat{Name: p + "touch_hits", Value: u(c.TouchHits)},
		)
	}
	return append(out,
		stats.Stat{Name: "active_slabs", Value: strconv.Itoa(len(classes))},
		stats.Stat{Name: "total_malloced", Value: strconv.FormatInt(st.PageBytes+st.ExternBytes, 10)},
	)
}

// authFileSetting is stats settings' auth_enabled_ascii: as memcached's,
// the -Y file's name as given, or "no".
func authFileSetting(file string) string {
	if file == "" {
		return "no"
	}
	return file
}
