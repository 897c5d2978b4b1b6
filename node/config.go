package node

import (
	"log/slog"
	"os"
	"time"
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

	// MaxReqsPerEvent (-R) bounds how many pipelined requests one connection
	// serves before its replies are flushed. If zero, defaults to 20.
	MaxReqsPerEvent int

	// Backlog is the listen backlog (-b). If zero, defaults to 1024.
	Backlog int

	// Verbosity is the -v count: 1 logs errors, 2 logs every command.
	Verbosity int

	// MemoryLimit is the byte bound of the cache (-m, given in megabytes
	// on the command line). If zero, defaults to 64 MiB.
	MemoryLimit int64

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

	// SASL turns on SASL authentication (-S).
	SASL bool

	// DisableFlushAll refuses flush_all (-F).
	DisableFlushAll bool

	// EnableShutdown allows the shutdown command (-A).
	EnableShutdown bool

	// IdleTimeout closes connections idle for longer (-o idle_timeout).
	// If zero, connections never time out.
	IdleTimeout time.Duration

	// PrefixDelimiter ends a key's prefix in the per-prefix statistics of
	// "stats detail" (-D). Setting it turns those statistics on from the
	// start, as memcached's -D does. If zero, defaults to ':' with the
	// statistics off until "stats detail on".
	PrefixDelimiter byte

	// Logger receives the node's logs. If nil, defaults to slog.Default().
	Logger *slog.Logger
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
	// MinItemSizeMax and MaxItemSizeMax are memcached's bounds on -I.
	MinItemSizeMax = 1 << 10
	MaxItemSizeMax = 1 << 30
)

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
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
	if c.Protocol == "" {
		c.Protocol = "auto"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
