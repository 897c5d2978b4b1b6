// Package config is a node's configuration: memcached's command-line flags
// and the node's own, as one struct with memcached's defaults. Every other
// package of the node reads its settings from a Config; come here to add a
// setting, then wire it where it acts.
package config

import (
	"log/slog"
	"os"
	"time"

	"github.com/memcluster/memcluster/node/cluster"
	"github.com/memcluster/memcluster/node/tlsconf"
)

// Config describes one node. The zero value is a node with memcached's
// defaults; every field documents its own default. The node never modifies
// the caller's Config.
type Config struct {
	// Port is the TCP port (-p). If zero, defaults to 11211. A negative
	// value disables TCP (as memcached's -p 0 with -s).
	Port int

	// ListenAddrs are the interfaces to listen on (-l), each an IP or
	// host, optionally with ":port". If empty, the node listens on all
	// interfaces ("" host), as memcached does.
	ListenAddrs []string

	// UnixSocket is the path of a unix socket to listen on (-s). When set,
	// TCP is disabled, as in memcached.
	UnixSocket string

	// UnixMask is the access mask of the unix socket (-a). If zero,
	// defaults to 0700.
	UnixMask os.FileMode

	// MaxConns is the connection limit (-c). If zero, defaults to 1024.
	MaxConns int

	// Threads is the number of worker threads (-t), used as GOMAXPROCS by
	// the daemon and reported by stats. If zero, defaults to 4.
	Threads int

	// MaxReqsPerEvent (-R) bounds how many pipelined requests one
	// connection is served in a row: after that many it writes its replies
	// and lets the other connections run before it is served again, as in
	// memcached ("stats" counts conn_yields). If zero, defaults to 20.
	MaxReqsPerEvent int

	// Backlog is the listen backlog of the TCP and unix listeners (-b):
	// how many connections the kernel queues before they are accepted (it
	// caps it at net.core.somaxconn). If zero, defaults to 1024.
	Backlog int

	// Verbosity is the -v count: 1 logs errors, 2 logs every command.
	Verbosity int

	// MemoryLimit is the byte bound of the cache (-m, given in megabytes
	// on the command line). If zero, defaults to 64 MiB.
	MemoryLimit int64

	// RuntimeMemoryLimit keeps the Go runtime's soft memory limit in step
	// with MemoryLimit (and cache_memlimit), so that garbage never lets
	// the process outgrow its cache by much (see scavenge.SetMemoryLimit):
	// for a process that runs this node alone, as the daemon does. The
	// GOMEMLIMIT environment variable, if set, wins.
	RuntimeMemoryLimit bool

	// ItemSizeMax is the largest item accepted (-I). If zero, defaults to
	// 1 MiB. memcached accepts 1k to 1024m.
	ItemSizeMax int

	// NoEvictions refuses stores when memory is full instead of evicting
	// (-M).
	NoEvictions bool

	// NoCAS disables CAS unique values (-C).
	NoCAS bool

	// Protocol is "auto", "ascii" or "binary" (-B). If empty, defaults to
	// "auto": each connection's first byte chooses.
	Protocol string

	// SASL turns on SASL authentication of the binary protocol (-S):
	// before a connection authenticates, only the SASL opcodes and Version
	// execute. Without AuthFile, text connections are refused as well
	// (memcached's SASL is binary-only).
	SASL bool

	// SASLPasswordFile is the credentials file SASL checks users against
	// (memcached's $MEMCACHED_SASL_PWDB): "user:password" lines, or
	// "user:SCRAM-SHA-256$..." verifiers (see package sasl). Reload
	// re-reads it. If empty, no user exists and no client authenticates.
	SASLPasswordFile string

	// SASLMechanisms are the mechanisms SASL offers, strongest first, each
	// one of sasl.Mechanisms. If empty, defaults to all of them.
	SASLMechanisms []string

	// AuthFile turns on memcached's ASCII authentication (-Y) with the
	// credentials in this file, in SASLPasswordFile's format: a text
	// connection's first command must be "set <key> <flags> <exptime>
	// <bytes>" with "<user> <password>" as its data, and every command
	// before it is answered "CLIENT_ERROR unauthenticated". Reload re-reads
	// it. If empty, text connections need no authentication.
	AuthFile string

	// DisableFlushAll refuses flush_all (-F).
	DisableFlushAll bool

	// EnableShutdown allows the shutdown command (-A).
	EnableShutdown bool

	// DisableDumping refuses "stats cachedump" and "lru_crawler metadump"
	// (-X).
	DisableDumping bool

	// NoLRUCrawler starts the node with its LRU crawler off (-o
	// no_lru_crawler): the background reclaimer removes no expired or
	// flushed items (reads, writes and eviction still do), and "lru_crawler
	// crawl" and "metadump" are refused, until "lru_crawler enable".
	NoLRUCrawler bool

	// LRUCrawlerSleep is how long, in microseconds, "lru_crawler crawl"
	// and "metadump" rest after every 1000 items they examine (-o
	// lru_crawler_sleep), at most 1000000. If zero, defaults to
	// DefaultLRUCrawlerSleep; a negative value means no rest (memcached's
	// lru_crawler_sleep=0).
	LRUCrawlerSleep int

	// LRUCrawlerToCrawl bounds how many items of each size class one
	// "lru_crawler crawl" examines (-o lru_crawler_tocrawl). If zero, there
	// is no bound.
	LRUCrawlerToCrawl uint32

	// TLS turns on TLS for the TCP listeners (-Z with -o ssl_*). If nil,
	// no TLS.
	TLS *tlsconf.Config

	// IdleTimeout closes connections idle for longer (-o idle_timeout).
	// If zero, connections never time out.
	IdleTimeout time.Duration

	// PrefixDelimiter ends a key's prefix in the per-prefix statistics of
	// "stats detail" (-D). Setting it turns those statistics on from the
	// start, as memcached's -D does. If zero, defaults to ':' with the
	// statistics off until "stats detail on".
	PrefixDelimiter byte

	// DisableWatch refuses the watch command (-W), as memcached's
	// "CLIENT_ERROR watch commands not allowed".
	DisableWatch bool

	// WatcherBufSize bounds the lines a watch connection may have waiting
	// to be written (-o watcher_logbuf_size, given in kilobytes on the
	// command line): a line that does not fit is dropped. If zero,
	// defaults to DefaultWatcherBufSize, 256 KiB.
	WatcherBufSize int

	// Logger receives the node's logs. If nil, defaults to slog.Default().
	Logger *slog.Logger

	// MetricsAddr, if set, is the host:port of an HTTP listener serving
	// the node's Prometheus metrics (/metrics) and health checks (/livez,
	// /readyz); see node/metrics. Request latencies are measured only
	// then. If empty, none.
	MetricsAddr string

	// Cluster configures membership. Its zero value is a single node that
	// gossips with no one.
	Cluster cluster.Config
}

// Defaults memcached 1.6 uses, and so do we.
const (
	DefaultPort            = 11211
	DefaultMaxConns        = 1024
	DefaultThreads         = 4
	DefaultMaxReqsPerEvent = 20
	DefaultBacklog         = 1024
	DefaultMemoryLimit     = 64 << 20
	DefaultItemSizeMax     = 1 << 20
	DefaultUnixMask        = 0o700
	// DefaultWatcherBufSize is a watcher's buffer unless WatcherBufSize
	// says otherwise: memcached's default -o watcher_logbuf_size, 256 KiB.
	DefaultWatcherBufSize  = 256 << 10
	DefaultLRUCrawlerSleep = 100 // microseconds
	// MinItemSizeMax and MaxItemSizeMax are memcached's bounds on -I.
	MinItemSizeMax = 1 << 10
	MaxItemSizeMax = 1 << 30
	// MaxLRUCrawlerSleep is memcached's bound on lru_crawler_sleep: one
	// second, in microseconds.
	MaxLRUCrawlerSleep = 1000000
)

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.UnixMask == 0 {
		c.UnixMask = DefaultUnixMask
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.Threads <= 0 {
		c.Threads = DefaultThreads
	}
	if c.MaxReqsPerEvent <= 0 {
		c.MaxReqsPerEvent = DefaultMaxReqsPerEvent
	}
	if c.Backlog <= 0 {
		c.Backlog = DefaultBacklog
	}
	if c.MemoryLimit <= 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	if c.ItemSizeMax <= 0 {
		c.ItemSizeMax = DefaultItemSizeMax
	}
	switch {
	case c.LRUCrawlerSleep == 0:
		c.LRUCrawlerSleep = DefaultLRUCrawlerSleep
	case c.LRUCrawlerSleep < 0:
		c.LRUCrawlerSleep = 0
	case c.LRUCrawlerSleep > MaxLRUCrawlerSleep:
		c.LRUCrawlerSleep = MaxLRUCrawlerSleep
	}
	if c.Protocol == "" {
		c.Protocol = "auto"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TLS != nil {
		t := c.TLS.WithDefaults()
		c.TLS = &t
	}
	c.Cluster = c.Cluster.WithDefaults()
	return c
}
