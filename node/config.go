package node

import (
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
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
	TLS *TLSConfig

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

	// Cluster configures membership. Its zero value is a single node that
	// gossips with no one.
	Cluster ClusterConfig
}

// ClusterConfig configures a node's membership in a cluster: gossip with
// hashicorp/memberlist, the seeds it joins, and failure detection. The zero
// value is a single node: no gossip, and "config get cluster" lists the node
// alone. Clustering is on when GossipAddr or Transport is set.
type ClusterConfig struct {
	// GossipAddr is the host:port memberlist binds to, UDP and TCP. If
	// empty (and Transport is nil), the node does not gossip. The daemon
	// defaults it to DefaultGossipAddr.
	GossipAddr string

	// AdvertiseAddr is the address, host or host:port, other members and
	// clients reach this node at, for containers and NAT. Its host, a name
	// or an IP, is published as the node's memcached host and its IP
	// (resolved if it is a name) as the node's memcached IP; its port, if
	// given, is the gossip port advertised. If empty, memberlist chooses:
	// the gossip IP, or a private IP of the machine when GossipAddr is
	// 0.0.0.0; and the published host is that IP.
	AdvertiseAddr string

	// Name is this node's unique name in the cluster. The ring orders its
	// members by name, so a node restarted under the same name takes back
	// the same keys. If empty, defaults to "<hostname>:<memcached port>".
	Name string

	// Join lists seeds to join, each host:port of a member's gossip
	// address. A name is resolved to all its addresses, so a Kubernetes
	// headless service names every pod behind it. The node joins them at
	// start and then keeps retrying, every RejoinInterval, those that are
	// not members: two halves of a partition merge again once it heals.
	// Seeds that are unreachable at start are not an error.
	Join []string

	// RejoinInterval is how often the node retries the seeds that are not
	// members. If zero, defaults to DefaultRejoinInterval.
	RejoinInterval time.Duration

	// ProbeInterval is memberlist's failure-detection period: each node
	// probes one other every interval. If zero, defaults to
	// DefaultProbeInterval.
	ProbeInterval time.Duration

	// ProbeTimeout is how long a probe waits for its direct ack before
	// asking other members to probe indirectly. If zero, defaults to
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration

	// SuspicionMult scales how long a suspected member has to refute the
	// suspicion before it is declared dead: SuspicionMult × ProbeInterval
	// × max(1, log10(members)). If zero, defaults to DefaultSuspicionMult.
	SuspicionMult int

	// SuspicionMaxTimeoutMult bounds the suspicion timeout while too few
	// members have confirmed it, as a multiple of the shortest one. If
	// zero, defaults to DefaultSuspicionMaxTimeoutMult.
	SuspicionMaxTimeoutMult int

	// GossipInterval is how often a node sends queued gossip (joins,
	// leaves, suspicions) to GossipNodes random members. If zero, defaults
	// to DefaultGossipInterval.
	GossipInterval time.Duration

	// PushPullInterval is how often a node exchanges its full state with
	// a random member (anti-entropy). If zero, defaults to
	// DefaultPushPullInterval.
	PushPullInterval time.Duration

	// LeaveTimeout bounds how long Shutdown waits for the leave message to
	// go out. If zero, defaults to DefaultLeaveTimeout.
	LeaveTimeout time.Duration

	// GossipKeyFile, if set, encrypts the gossip with memberlist's AES-GCM
	// keyring: the file holds one base64 key a line (16, 24 or 32 bytes
	// decoded; blank lines and '#' comments are ignored), the first the
	// primary, which encrypts, the others accepted for decryption. Messages
	// not encrypted with one of the keys are dropped, so a node without
	// them can neither join nor change the cluster. StartCluster fails on
	// a file it cannot read or parse; Server.Reload re-reads it, to rotate
	// keys. If empty, the gossip is not encrypted.
	GossipKeyFile string

	// Transport, if set, carries the gossip instead of UDP and TCP on
	// GossipAddr, which is then ignored: for example an in-memory network
	// in tests (see internal/clustertest). The node shuts it down.
	Transport memberlist.Transport
}

// Cluster defaults. Failure detection is tuned for a LAN of a few nodes. A
// member killed outright is declared dead by every survivor within 3.5 s at
// worst (2.1 to 2.8 s measured, three nodes on loopback): its next probe comes within three intervals with 3 members (1.2 s),
// the probe and its indirect probes take one (0.4 s), the suspicion lasts
// SuspicionMult intervals (1.6 s) and the news one gossip interval. A member
// that is merely slow, on the other hand, has 250 ms to ack a probe, the rest
// of the interval for an indirect or TCP ack, and 1.6 s to refute the
// suspicion once it hears of it, which a process starved of CPU by others
// still does (a minute of busy loops on every CPU declared no node dead);
// and memberlist's Lifeguard awareness stretches the timeouts of a node that
// notices it is itself slow.
const (
	DefaultGossipPort              = 7946
	DefaultGossipAddr              = "0.0.0.0:7946"
	DefaultRejoinInterval          = 3 * time.Second
	DefaultProbeInterval           = 400 * time.Millisecond
	DefaultProbeTimeout            = 250 * time.Millisecond
	DefaultSuspicionMult           = 4
	DefaultSuspicionMaxTimeoutMult = 6
	DefaultGossipInterval          = 100 * time.Millisecond
	DefaultPushPullInterval        = 10 * time.Second
	DefaultLeaveTimeout            = 2 * time.Second
)

// Enabled reports whether c turns gossip on.
func (c ClusterConfig) Enabled() bool { return c.GossipAddr != "" || c.Transport != nil }

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.RejoinInterval <= 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.SuspicionMult <= 0 {
		c.SuspicionMult = DefaultSuspicionMult
	}
	if c.SuspicionMaxTimeoutMult <= 0 {
		c.SuspicionMaxTimeoutMult = DefaultSuspicionMaxTimeoutMult
	}
	if c.GossipInterval <= 0 {
		c.GossipInterval = DefaultGossipInterval
	}
	if c.PushPullInterval <= 0 {
		c.PushPullInterval = DefaultPushPullInterval
	}
	if c.LeaveTimeout <= 0 {
		c.LeaveTimeout = DefaultLeaveTimeout
	}
	c.Join = append([]string(nil), c.Join...)
	return c
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
	DefaultLRUCrawlerSleep = 100 // microseconds
	// MinItemSizeMax and MaxItemSizeMax are memcached's bounds on -I.
	MinItemSizeMax = 1 << 10
	MaxItemSizeMax = 1 << 30
	// MaxLRUCrawlerSleep is memcached's bound on lru_crawler_sleep: one
	// second, in microseconds.
	MaxLRUCrawlerSleep = 1000000
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
		t := c.TLS.withDefaults()
		c.TLS = &t
	}
	c.Cluster = c.Cluster.withDefaults()
	return c
}
