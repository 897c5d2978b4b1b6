package node

import (
	"math/bits"
	"os"
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

// The statistics follow one rule: a stat is printed under memcached's name
// only if memcluster has an honest value for it, one it measures or a
// setting it acts on. memcached's internals (its hash table, slab mover,
// LRU crawler and maintainer, logger, extstore, OpenSSL's buffers …) have no
// counterpart here and are left out rather than filled with invented
// values.

// counters are the server's command counters, under memcached's stat names,
// and its per-prefix statistics. Every field is updated atomically (detail
// under its own lock) by any connection goroutine.
type counters struct {
	cmdGet, cmdSet, cmdFlush, cmdTouch         atomic.Uint64
	cmdMeta                                    atomic.Uint64 // me commands, as memcached's meta_cmds
	getHits, getMisses, getExpired, getFlushed atomic.Uint64
	deleteHits, deleteMisses                   atomic.Uint64
	incrHits, incrMisses, decrHits, decrMisses atomic.Uint64
	casHits, casMisses, casBadval              atomic.Uint64
	touchHits, touchMisses                     atomic.Uint64
	bytesRead, bytesWritten                    atomic.Uint64
	totalConns, rejectedConns                  atomic.Uint64
	storeTooLarge, storeNoMemory               atomic.Uint64
	authCmds, authErrors                       atomic.Uint64
	sslHandshakeErrors, sslNewSessions         atomic.Uint64
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

// countCAS counts the outcome of a store that compared a CAS unique.
func (c *counters) countCAS(status store.Status) {
	switch status {
	case store.OK:
		c.casHits.Add(1)
	case store.Exists:
		c.casBadval.Add(1)
	case store.NotFound:
		c.casMisses.Add(1)
	}
}

// reset zeroes the counters that memcached's "stats reset" zeroes, and
// forgets the per-prefix statistics as it does (whether "stats detail" is
// on is kept).
func (c *counters) reset() {
	for _, v := range []*atomic.Uint64{
		&c.cmdGet, &c.cmdSet, &c.cmdFlush, &c.cmdTouch, &c.cmdMeta,
		&c.getHits, &c.getMisses, &c.getExpired, &c.getFlushed,
		&c.deleteHits, &c.deleteMisses, &c.incrHits, &c.incrMisses,
		&c.decrHits, &c.decrMisses, &c.casHits, &c.casMisses, &c.casBadval,
		&c.touchHits, &c.touchMisses, &c.bytesRead, &c.bytesWritten,
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
// cumulative item counters (total_items, evictions, reclaimed,
// expired_unfetched, evicted_unfetched, in total and per class) and the
// per-prefix statistics. Gauges (curr_items, bytes, curr_connections …)
// are kept.
func (s *Server) resetStats() {
	s.counters.reset()
	s.store.ResetStats()
}

// Stat is one statistic: a name and its value, as "stats" prints them.
type Stat struct {
	Name, Value string
}

// Stats returns the general statistics of "stats", in memcached's order.
// Left out: libevent (none is used) and conn_yields (connections do not
// yield after -R requests), with memcached's internals. reclaimed counts
// what memcached splits into reclaimed and crawler_reclaimed. With TLS on,
// the TLS statistics follow threads, as in memcached (see tlsStats).
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
		{"pointer_size", strconv.Itoa(strconv.IntSize)},
		{"rusage_user", rusage(ru.Utime)},
		{"rusage_system", rusage(ru.Stime)},
		{"max_connections", strconv.Itoa(s.cfg.MaxConns)},
		{"curr_connections", i(s.currConnections())},
		{"total_connections", ld(&c.totalConns)},
		{"rejected_connections", ld(&c.rejectedConns)},
		{"connection_structures", i(s.peakConns.Load())},
		{"cmd_get", ld(&c.cmdGet)},
		{"cmd_set", ld(&c.cmdSet)},
		{"cmd_flush", ld(&c.cmdFlush)},
		{"cmd_touch", ld(&c.cmdTouch)},
		{"cmd_meta", ld(&c.cmdMeta)},
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
		{"listen_disabled_num", "0"}, // listening is never disabled: -c is enforced per connection
		{"threads", strconv.Itoa(s.cfg.Threads)},
	}
	stats = append(stats, s.tlsStats()...)
	stats = append(stats, []Stat{
		{"bytes", i(st.Bytes)},
		{"curr_items", i(st.CurrItems)},
		{"total_items", u(st.TotalItems)},
		{"expired_unfetched", u(st.ExpiredUnfetched)},
		{"evicted_unfetched", u(st.EvictedUnfetched)},
		{"evictions", u(st.Evictions)},
		{"reclaimed", u(st.Reclaimed)},
	}...)
	return stats
}

// Settings returns the statistics of "stats settings": the settings
// memcluster acts on, under memcached's names and in its order. memcached's
// settings that tune what memcluster does not have (slab mover, LRU
// crawler and maintainer, hash table, logger, extstore, OpenSSL's ciphers,
// buffers and kernel TLS, UDP) are left out; so are -R and -b, which
// memcluster accepts but does not act on.
// growth_factor and chunk_size are those of the size classes "stats items"
// and "stats slabs" report.
func (s *Server) Settings() []Stat {
	cfg := &s.cfg
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
	return append([]Stat{
		{"maxbytes", strconv.FormatInt(cfg.MemoryLimit, 10)},
		{"maxconns", itoa(cfg.MaxConns)},
		{"tcpport", itoa(max(cfg.Port, 0))},
		{"udpport", "0"}, // UDP is not served
		{"inter", iface},
		{"verbosity", itoa(int(s.verbosity.Load()))},
		{"evictions", onOff(!cfg.NoEvictions)},
		{"domain_socket", sock},
		{"umask", strconv.FormatUint(uint64(cfg.UnixMask), 8)},
		{"shutdown_command", yesNo(cfg.EnableShutdown)},
		{"growth_factor", "1.25"},
		{"chunk_size", "48"},
		{"num_threads", itoa(cfg.Threads)},
		{"stat_key_prefix", string(s.counters.detail.delim)},
		{"detail_enabled", yesNo(s.counters.detail.enabled())},
		{"cas_enabled", yesNo(!cfg.NoCAS)},
		{"binding_protocol", cfg.Protocol + protocolSuffix(cfg.Protocol)},
		{"auth_enabled_sasl", yesNo(cfg.SASL)},
		{"auth_enabled_ascii", authFileSetting(cfg.AuthFile)},
		{"item_size_max", itoa(cfg.ItemSizeMax)},
		{"maxconns_fast", "yes"},
		{"flush_enabled", yesNo(!cfg.DisableFlushAll)},
		{"idle_timeout", itoa(int(cfg.IdleTimeout / time.Second))},
		{"track_sizes", "no"}, // "stats sizes" is disabled
	}, s.tlsSettings()...)
}

// protocolSuffix renders -B as memcached's "stats settings" does.
func protocolSuffix(p string) string {
	if p == "auto" {
		return "-negotiate"
	}
	return ""
}

// itemStats returns "stats items": for each size class that holds items,
// in memcached's class numbering, the fields memcluster counts. memcached's
// LRU segment sizes and ages, and its crawler and slab mover counters, have
// no counterpart here. reclaimed counts the dead items the background
// reclaimer removed as well, which memcached counts apart as
// crawler_reclaimed.
func (s *Server) itemStats() []Stat {
	var out []Stat
	for _, c := range s.store.ClassStats() {
		if c.Items == 0 {
			continue // as memcached: only classes holding items
		}
		p := "items:" + strconv.Itoa(c.ID) + ":"
		out = append(out,
			Stat{p + "number", strconv.FormatInt(c.Items, 10)},
			Stat{p + "mem_requested", strconv.FormatInt(c.RequestedBytes, 10)},
			Stat{p + "evicted", strconv.FormatUint(c.Evictions, 10)},
			Stat{p + "reclaimed", strconv.FormatUint(c.Reclaimed, 10)},
			Stat{p + "expired_unfetched", strconv.FormatUint(c.ExpiredUnfetched, 10)},
			Stat{p + "evicted_unfetched", strconv.FormatUint(c.EvictedUnfetched, 10)},
		)
	}
	return out
}

// slabStats returns "stats slabs": for each size class in use, its chunk
// size and how many items it holds (each item is one chunk), then
// memcached's totals: the classes listed, and the bytes held against -m.
// There are no slab pages, so memcached's page and free-chunk counts are
// left out.
func (s *Server) slabStats() []Stat {
	classes := s.store.ClassStats()
	var out []Stat
	var malloced int64
	for _, c := range classes {
		p := strconv.Itoa(c.ID) + ":"
		out = append(out,
			Stat{p + "chunk_size", strconv.Itoa(c.ChunkSize)},
			Stat{p + "used_chunks", strconv.FormatInt(c.Items, 10)},
		)
		malloced += c.Bytes
	}
	return append(out,
		Stat{"active_slabs", strconv.Itoa(len(classes))},
		Stat{"total_malloced", strconv.FormatInt(malloced, 10)},
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
