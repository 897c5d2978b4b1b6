// Package stats holds a node's statistics as memcached names them: the
// command, byte and connection counters every connection updates
// (Counters), memcached's per-prefix statistics of "stats detail" (Detail),
// and the way "stats" prints them (Stat, Append and the value formats
// memcached uses). Come here to add a counter or change how a value is
// printed; what each "stats" group lists, and in which order, is the
// commands' (node/command).
package stats

import (
	"math"
	"strconv"
	"sync/atomic"

	"github.com/memcluster/memcluster/protocol"
)

// Stat is one statistic: a name and its value, as "stats" prints them.
type Stat struct {
	Name, Value string
}

// Append appends stats lines and the terminating END.
func Append(dst []byte, stats []Stat) []byte {
	for _, st := range stats {
		dst = protocol.AppendStat(dst, st.Name, st.Value)
	}
	return append(dst, protocol.ReplyEnd...)
}

// Counters are a server's command counters, under memcached's stat names,
// and its per-prefix statistics. Every field is updated atomically (Detail
// under its own lock) by any connection goroutine.
type Counters struct {
	// The hits of get, touch, delete, incr and decr, compare-and-swap's
	// hits and mismatches, and the storage commands are counted by the
	// store, in the class of their item (see store.ClassStats); the
	// totals are their sums, as memcached's are.
	CmdGet, CmdFlush, CmdTouch           atomic.Uint64
	CmdMeta                              atomic.Uint64 // me commands, as memcached's meta_cmds
	GetMisses, GetExpired, GetFlushed    atomic.Uint64
	DeleteMisses, IncrMisses, DecrMisses atomic.Uint64
	CASMisses, TouchMisses               atomic.Uint64
	BytesRead, BytesWritten              atomic.Uint64
	TotalConns, RejectedConns            atomic.Uint64
	StoreTooLarge, StoreNoMemory         atomic.Uint64
	AuthCmds, AuthErrors                 atomic.Uint64
	SSLHandshakeErrors, SSLNewSessions   atomic.Uint64
	// ConnYields counts the times a connection that had been served -R
	// requests in one event let the others run (memcached's conn_yields);
	// IdleKicks the connections closed for idling past -o idle_timeout.
	ConnYields, IdleKicks atomic.Uint64
	// The watch streams' counters, memcached's log_watchers (watchers
	// connected now), log_watcher_sent (lines sent to watchers) and
	// log_watcher_skipped (lines a watcher missed because it did not
	// read them in time). "stats reset" keeps them, as memcached's does.
	LogWatchers                       atomic.Int64
	LogWatcherSent, LogWatcherSkipped atomic.Uint64
	// Forwarded counts the requests sent to their keys' owners (one per
	// owner for a retrieval's batch of keys), ForwardErrors those that
	// failed (see node/command's forwarding): memcluster's own.
	Forwarded, ForwardErrors atomic.Uint64

	Detail Detail // "stats detail"
}

// Reset zeroes the counters that memcached's "stats reset" zeroes, and
// forgets the per-prefix statistics as it does (whether "stats detail" is
// on is kept).
func (c *Counters) Reset() {
	for _, v := range []*atomic.Uint64{
		&c.CmdGet, &c.CmdFlush, &c.CmdTouch, &c.CmdMeta,
		&c.GetMisses, &c.GetExpired, &c.GetFlushed,
		&c.DeleteMisses, &c.IncrMisses, &c.DecrMisses, &c.CASMisses,
		&c.TouchMisses, &c.BytesRead, &c.BytesWritten,
		&c.TotalConns, &c.RejectedConns, &c.StoreTooLarge, &c.StoreNoMemory,
		&c.AuthCmds, &c.AuthErrors, &c.SSLHandshakeErrors, &c.SSLNewSessions,
		&c.ConnYields, &c.IdleKicks, &c.Forwarded, &c.ForwardErrors,
	} {
		v.Store(0)
	}
	c.Detail.clear()
}

// Compat is the value of a stat present for compatibility: the node has no
// such thing, so it shows what a memcached without it would. It marks such
// stats where they are listed.
func Compat(v string) string { return v }

// Uint formats a counter.
func Uint(v uint64) string { return strconv.FormatUint(v, 10) }

// Int formats a gauge.
func Int(v int64) string { return strconv.FormatInt(v, 10) }

// Seconds formats a time of seconds and microseconds as memcached's
// rusage_user: "12.000345".
func Seconds(sec, usec int64) string {
	return strconv.FormatInt(sec, 10) + "." + pad6(usec)
}

func pad6(v int64) string {
	s := strconv.FormatInt(v, 10)
	for len(s) < 6 {
		s = "0" + s
	}
	return s
}

// YesNo formats a setting as memcached's "yes" or "no".
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// OnOff formats a setting as memcached's "on" or "off".
func OnOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Bool formats a state as memcached's "1" or "0".
func Bool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// C2 renders v as C's printf "%.2f" does, NaN and infinities included:
// memcached's lru tune takes them.
func C2(v float64) string {
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
