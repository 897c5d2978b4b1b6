// Package command is memcached's commands: the text, meta and binary
// protocols' dispatch over the store, the authentication gates (SASL and
// ASCII), the stats groups, watch streams, the LRU crawler and the admin
// commands. A Handler serves each connection netserve hands it, reading
// requests from the connection's buffer and appending replies; it needs no
// socket, so it can be driven over an in-memory connection in tests and
// fuzzing. Come here to change what a command does or answers.
package command

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/node/metrics"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/peer"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/node/tlsconf"
	"github.com/memcluster/memcluster/ring"
)

// Version is the memcached protocol version the node reports to clients
// ("version", "stats"): clients check it to know which commands exist.
const Version = "1.6.18"

// Cluster is the node's view of the cluster, as "config get" answers it.
// Its methods are called concurrently by every connection.
type Cluster interface {
	// ConfigReply returns the reply to "config get cluster" for a client
	// that reached the node at local; the caller does not modify it.
	ConfigReply(local net.Addr) []byte
	// Owner returns the member that owns key, for that client.
	Owner(local net.Addr, key []byte) ring.Member
	// RingMode returns the mode of the cluster's ring, which "config
	// get ring" announces.
	RingMode() ring.Mode
	// Draining reports whether the node has left the cluster and serves
	// on only until its clients have moved away ("stats" says so).
	Draining() bool
	// WatchConfig returns ConfigReply's reply if its version is above
	// after; otherwise nil and a channel closed at the view's next change.
	WatchConfig(local net.Addr, after uint64) ([]byte, <-chan struct{})
	// Route returns the member that owns key in the node's view, and
	// whether that is another node. It must not allocate: forwarding
	// calls it for every key.
	Route(key []byte) (owner ring.Member, remote bool)
	// MembersReply returns the reply to "config get members" (the
	// members with their names) for a client that reached the node at
	// local; the caller does not modify it.
	MembersReply(local net.Addr) []byte
	// GossipDropped returns the count of gossip messages dropped as
	// undecodable or wrongly keyed, and whether "stats" lists it.
	GossipDropped() (n uint64, show bool)
}

// Conns are the node's connections, as "stats" counts them. Its methods are
// called concurrently.
type Conns interface {
	// CurrConnections is memcached's curr_connections.
	CurrConnections() int64
	// PeakConns is memcached's connection_structures.
	PeakConns() int64
	// ConnStats is "stats conns".
	ConnStats() []stats.Stat
	// Accepting reports whether the node takes connections: false once
	// it shuts down.
	Accepting() bool
}

// Options is what a Handler needs besides the node's settings. Every field
// is required unless it says otherwise.
type Options struct {
	Store *store.Store
	// Started is when the node started: uptime, and the unix times before
	// it, which are already past as exptimes.
	Started time.Time
	// TLS is the node's TLS, for refresh_certs and the stats; nil
	// without TLS.
	TLS     *tlsconf.State
	Cluster Cluster
	// Conns are the node's connections. It may be set after New, but
	// before any connection is served (see SetConns).
	Conns Conns
	// Done is closed when the node begins to shut down: watch streams
	// and background crawls end.
	Done <-chan struct{}
	// Shutdown asks the node to shut down, for the "shutdown" command
	// (-A); it must not wait for the shutdown.
	Shutdown func()
	// Handoff, if not nil, warms the cache after a change of membership:
	// reads of keys the node has just come to own consult it (see
	// node/handoff), and flush_all ends its window.
	Handoff *handoff.Handoff
	// MemoryLimitSet, if not nil, is told the cache's new bound when
	// cache_memlimit sets it.
	MemoryLimitSet func(bytes int64)
	// Forward, if not nil, forwards each keyed request that another node
	// owns to that node over its connections (see forward.go), except
	// on connections marked as a peer's; nil serves every key here, as
	// memcached does.
	Forward *peer.Client
	// ForwardTimeout bounds a forwarded request. If zero,
	// DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// Latency, if not nil, is told how long each request took to answer
	// (see metrics.Latency); nil measures nothing.
	Latency *metrics.Latency
}

// Handler serves memcached's commands over a node's store. Create it with
// New; its methods are safe for concurrent use.
type Handler struct {
	cfg            config.Config
	log            *slog.Logger
	store          *store.Store
	counters       stats.Counters // updated by every connection; see Counters
	started        time.Time
	tls            *tlsconf.State
	cluster        Cluster
	handoff        *handoff.Handoff // nil if none
	forward        *peer.Client     // nil if requests are not forwarded
	forwardTimeout time.Duration
	latency        *metrics.Latency // nil if not measured
	conns          Conns
	done           <-chan struct{}
	shutdown       func()
	auth           *auth // nil if authErr
	authErr        error // a bad authentication setting, returned by Prepare
	authWarnOnce   sync.Once

	compat     compatSettings // memcached's settings the node shows but has no use for
	oldestLive atomic.Int64   // stats settings' oldest: memcached's oldest_live, set by flush_all
	verbosity  atomic.Int32

	memSet  func(int64) // Options.MemoryLimitSet
	crawler crawler     // the LRU crawler's settings and jobs; see crawler.go
	watch   watchHub    // the watch streams' watchers; see watch.go
}

// New returns a handler for the node's settings cfg, with their defaults
// applied (config.Config.WithDefaults).
func New(cfg config.Config, opts Options) *Handler {
	s := &Handler{
		cfg:            cfg,
		log:            cfg.Logger,
		store:          opts.Store,
		started:        opts.Started,
		tls:            opts.TLS,
		cluster:        opts.Cluster,
		handoff:        opts.Handoff,
		conns:          opts.Conns,
		done:           opts.Done,
		shutdown:       opts.Shutdown,
		memSet:         opts.MemoryLimitSet,
		forward:        opts.Forward,
		forwardTimeout: opts.ForwardTimeout,
		latency:        opts.Latency,
	}
	if s.forwardTimeout <= 0 {
		s.forwardTimeout = DefaultForwardTimeout
	}
	s.auth, s.authErr = newAuth(cfg)
	s.verbosity.Store(int32(cfg.Verbosity))
	s.compat.init()
	if cfg.PrefixDelimiter != 0 {
		s.counters.Detail.SetDelimiter(cfg.PrefixDelimiter)
		s.counters.Detail.SetEnabled(true)
	}
	s.initCrawler()
	return s
}

// Counters returns the counters the handler updates, for the connection
// server to update the byte and connection counts in too.
func (h *Handler) Counters() *stats.Counters { return &h.counters }

// SetConns sets Options.Conns, for a node that makes its connection server
// after the handler; it must be called before any connection is served.
func (h *Handler) SetConns(c Conns) { h.conns = c }

// Verbosity returns the verbosity -v set and the "verbosity" command
// changes: 0, 1 or 2.
func (h *Handler) Verbosity() int { return int(h.verbosity.Load()) }

// Prepare checks the authentication settings and reads the credentials
// files not read yet; the node calls it before it serves. SASL without a
// credentials file is allowed, as in memcached, but lets no one in, so it
// is worth a warning.
func (h *Handler) Prepare() error {
	if h.authErr != nil {
		return h.authErr
	}
	if err := h.auth.ensureLoaded(); err != nil {
		return fmt.Errorf("node: credentials: %w", err)
	}
	if h.auth.sasl != nil && h.auth.sasl.file == "" {
		h.authWarnOnce.Do(func() {
			h.log.Warn("SASL is on (-S) but no credentials file is set ($MEMCACHED_SASL_PWDB or --sasl-pwdb): no client can authenticate")
		})
	}
	return nil
}

// Reloader is a part of the handler that reads a file again.
type Reloader struct {
	Name   string       // what it is, for errors
	Reload func() error // loads it again, keeping the old on failure
}

// Reloaders returns what the handler reloads on SIGHUP: the credentials
// files of SASL and of ASCII authentication, when set.
func (h *Handler) Reloaders() []Reloader {
	var rs []Reloader
	if h.auth != nil && h.auth.sasl != nil && h.auth.sasl.file != "" {
		rs = append(rs, Reloader{"SASL credentials", h.auth.sasl.load})
	}
	if h.auth != nil && h.auth.ascii != nil {
		rs = append(rs, Reloader{"ASCII authentication file", h.auth.ascii.load})
	}
	return rs
}

var _ netserve.Handler = (*Handler)(nil)
