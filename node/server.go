// Package node is a memcluster node: a memcached-compatible server over the
// store, speaking the text and binary protocols on TCP and unix sockets,
// and a member of a cluster. It is the wiring only: New composes the store
// (node/store), the commands (node/command), the connection server
// (node/netserve), TLS (node/tlsconf), the statistics (node/stats) and the
// membership (node/cluster) from one Config; the Server starts, reloads and
// shuts them down in order. Come here to change how the parts are put
// together, not what any of them does.
package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/node/cluster"
	"github.com/memcluster/memcluster/node/command"
	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/node/metrics"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/peer"
	"github.com/memcluster/memcluster/node/scavenge"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/node/tlsconf"
	"github.com/memcluster/memcluster/ring"
)

// Version is the memcached protocol version the node reports to clients
// ("version", "stats"): clients check it to know which commands exist.
const Version = command.Version

// The node's configuration, and the errors and views it returns, are its
// parts' own; these names let a program that runs a node use this package
// alone.
type (
	// Config configures a node; see config.Config.
	Config = config.Config
	// ClusterConfig configures a node's membership; see cluster.Config.
	ClusterConfig = cluster.Config
	// TLSConfig configures TLS; see tlsconf.Config.
	TLSConfig = tlsconf.Config
	// TLSFileError reports a TLS file that could not be loaded; see
	// tlsconf.FileError.
	TLSFileError = tlsconf.FileError
	// ClusterView is a node's view of the cluster; see cluster.View.
	ClusterView = cluster.View
	// Stat is one statistic; see stats.Stat.
	Stat = stats.Stat
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = netserve.ErrServerClosed

// ErrClusterStarted is returned by StartCluster when it has already been
// called.
var ErrClusterStarted = cluster.ErrStarted

// FileReserve is how many open files a node with threads worker threads
// keeps for itself beyond its client connections (see netserve.FileReserve).
func FileReserve(threads int) int { return netserve.FileReserve(threads) }

// Server is one memcluster node. Create it with New; its methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	store    *store.Store
	tls      *tlsconf.State // nil without TLS
	cluster  *cluster.Cluster
	handoff  *handoff.Handoff // nil if the node has no cluster or no hand-off
	peers    *peer.Client     // the hand-off's client to the other nodes
	commands *command.Handler
	net      *netserve.Server
	metrics  *metrics.Server // nil without Config.MetricsAddr

	mu        sync.Mutex   // guards metricsLn
	metricsLn net.Listener // opened by Listen, served by ServeListeners
	serving   atomic.Bool  // ServeListeners has begun

	done     chan struct{} // closed by closeDone
	doneOnce sync.Once
}

// New returns a server for cfg. It does not listen until ListenAndServe or
// Serve is called.
func New(cfg Config) *Server {
	cfg = cfg.WithDefaults()
	started := time.Now()
	s := &Server{cfg: cfg, done: make(chan struct{})}
	s.cluster = cluster.New(cfg.Cluster, cfg.Port, cfg.Logger)
	if cfg.TLS != nil {
		s.tls = tlsconf.NewState(*cfg.TLS)
	}
	storeCfg := store.Config{
		MaxBytes:    cfg.MemoryLimit,
		ItemSizeMax: cfg.ItemSizeMax,
		NoEvictions: cfg.NoEvictions,
		NoCAS:       cfg.NoCAS,
		Epoch:       started,
		OnEvict:     func(ev store.Eviction) { s.commands.LogEviction(ev) },
	}
	if cfg.Cluster.Enabled() && cfg.Cluster.Handoff >= 0 {
		// The hand-off learns of every write from the store, so it is
		// made first, and given the store after.
		var ho *handoff.Handoff
		storeCfg.OnWrite = func(keyHash uint64) {
			if ho != nil {
				ho.Wrote(keyHash)
			}
		}
		s.store = store.New(storeCfg)
		s.peers = s.newPeers()
		if s.peers != nil {
			ho = s.newHandoff()
			s.handoff = ho
		}
	} else {
		s.store = store.New(storeCfg)
		if cfg.Cluster.Enabled() && cfg.Cluster.Forward {
			if s.peers = s.newPeers(); s.peers != nil {
				s.cluster.OnViewChange(func(_ ring.Member, old, cur *ring.Ring) { s.peers.Retain(old, cur) })
			}
		}
	}
	var forward *peer.Client
	if cfg.Cluster.Enabled() && cfg.Cluster.Forward {
		forward = s.peers
	}
	var latency *metrics.Latency
	if cfg.MetricsAddr != "" {
		latency = metrics.NewLatency()
	}
	s.commands = command.New(cfg, command.Options{
		Latency:  latency,
		Store:    s.store,
		Started:  started,
		TLS:      s.tls,
		Cluster:  s.cluster,
		Handoff:  s.handoff,
		Forward:  forward,
		Done:     s.done,
		Shutdown: s.closeDone,
		MemoryLimitSet: func(bytes int64) {
			if cfg.RuntimeMemoryLimit {
				scavenge.SetMemoryLimit(bytes)
			}
		},
	})
	s.net = netserve.New(cfg, netserve.Options{
		Handler:  s.commands,
		TLS:      s.tls,
		Counters: s.commands.Counters(),
		Clock:    s.store.CoarseNow,
		Verbose:  func() bool { return s.commands.Verbosity() > 1 },
	})
	s.commands.SetConns(s.net)
	if cfg.MetricsAddr != "" {
		s.metrics = metrics.New(metrics.Config{
			Source:  s,
			Cluster: s.clusterState,
			Ready:   s.ready,
			Latency: latency,
			Version: Version,
			Logger:  cfg.Logger,
		})
	}
	if cfg.RuntimeMemoryLimit {
		scavenge.SetMemoryLimit(cfg.MemoryLimit)
	}
	// What large requests and replies leave behind goes back to the
	// system once the node is quiet, not at the runtime's leisure.
	counters := s.commands.Counters()
	scavenger := &scavenge.Scavenger{
		Every: scavengeEvery, Slack: scavengeSlack, Logger: cfg.Logger,
		Activity:      func() uint64 { return counters.BytesRead.Load() + counters.BytesWritten.Load() },
		QuietActivity: scavengeQuietBytes,
	}
	go scavenger.Run(s.done)
	return s
}

// newPeers makes the node's client to the other nodes (node/peer), for the
// hand-off and forwarding, over their memcached listeners with the node's
// TLS, authenticating as --peer-auth-file says where the nodes' clients
// must; nil, with a warning, if they must and there are no credentials.
// Its idle connections to departed nodes are closed at each change of the
// cluster's view.
func (s *Server) newPeers() *peer.Client {
	// The others serve the protocols this node does, and authenticate
	// as it does: the hand-off speaks the binary protocol if its clients
	// must use it (with SASL if on), else the meta protocol (with ASCII
	// authentication if on, -Y).
	pc := peer.Config{MaxValue: s.cfg.ItemSizeMax, SASL: s.cfg.SASL, ASCII: s.cfg.AuthFile != ""}
	pc.Binary = s.cfg.Protocol == "binary" || (s.cfg.SASL && (s.cfg.AuthFile == "" || s.cfg.Protocol != "ascii"))
	if pc.SASL || pc.ASCII {
		file := s.cfg.Cluster.PeerAuthFile
		if file == "" {
			s.cfg.Logger.Warn("the hand-off after a change of membership, and forwarding, are off: this node's clients authenticate, " +
				"and it has no credentials to authenticate to the other nodes with (--peer-auth-file)")
			return nil
		}
		pc.Auth = func() (string, string, error) { return readPeerAuth(file) }
	}
	if s.tls != nil {
		pc.TLS = s.tls.ClientConfig
	}
	return peer.New(pc)
}

// newHandoff makes the node's hand-off (node/handoff), fetching from the
// other nodes with s.peers, and told of every change of the cluster's
// view.
func (s *Server) newHandoff() *handoff.Handoff {
	ho := handoff.New(handoff.Config{
		Store:   s.store,
		Fetcher: s.peers,
		Window:  s.cfg.Cluster.Handoff,
		Logger:  s.cfg.Logger,
	})
	s.cluster.OnViewChange(func(self ring.Member, old, cur *ring.Ring) {
		ho.ViewChanged(self, old, cur)
		s.peers.Retain(old, cur)
	})
	go ho.Run(s.done)
	return ho
}

// How often the heap is looked at for memory to give back to the system,
// and how much free memory it may keep (see scavenge.Scavenger).
// A period in which the node read and wrote no more than
// scavengeQuietBytes is quiet: the heap is left to the runtime while the
// node serves.
const (
	scavengeEvery      = 2 * time.Second
	scavengeSlack      = 16 << 20
	scavengeQuietBytes = 1 << 20
)

// Done is closed when the server begins to shut down, whether by Shutdown or
// by a client's "shutdown" command.
func (s *Server) Done() <-chan struct{} { return s.done }

// closeDone closes done once, however often it is called.
func (s *Server) closeDone() { s.doneOnce.Do(func() { close(s.done) }) }

// prepare loads what serving needs from files, the TLS certificates and
// the credentials, if not loaded yet. An error loading the certificates is
// a *TLSFileError.
func (s *Server) prepare() error {
	if s.tls != nil {
		if err := s.tls.EnsureLoaded(); err != nil {
			return fmt.Errorf("node: TLS: %w", err)
		}
	}
	return s.commands.Prepare()
}

// Listen opens the listeners cfg names: the unix socket if one is set,
// otherwise TCP on every -l address (all interfaces if none). With TLS on,
// it first loads the certificates; an error loading them is a
// *TLSFileError.
func (s *Server) Listen() ([]net.Listener, error) {
	if err := s.prepare(); err != nil {
		return nil, err
	}
	if s.metrics != nil {
		s.mu.Lock()
		if s.metricsLn == nil {
			l, err := net.Listen("tcp", s.cfg.MetricsAddr)
			if err != nil {
				s.mu.Unlock()
				return nil, fmt.Errorf("node: metrics listener: %w", err)
			}
			s.metricsLn = l
		}
		s.mu.Unlock()
	}
	ls, err := s.net.Listen()
	if err != nil && s.metricsLn != nil {
		s.mu.Lock()
		s.metricsLn.Close()
		s.metricsLn = nil
		s.mu.Unlock()
	}
	return ls, err
}

// clusterState is the node's view of its cluster, for the metrics.
func (s *Server) clusterState() metrics.ClusterState {
	if !s.cfg.Cluster.Enabled() {
		return metrics.ClusterState{}
	}
	v, r, self := s.cluster.Placement()
	cs := metrics.ClusterState{Enabled: true, Members: r.Len(), Version: v, Draining: s.cluster.Draining()}
	if self >= 0 {
		cs.Share = r.Shares()[self]
	}
	return cs
}

// ErrNotReady is wrapped by the reasons /readyz gives for a node not ready
// to be sent traffic.
var ErrNotReady = metrics.ErrNotReady

// ready returns why the node should not be sent traffic yet, or nil: it
// must serve its listeners, have joined its cluster, and not be draining.
func (s *Server) ready() error {
	switch {
	case !s.serving.Load():
		return fmt.Errorf("%w: not serving yet", ErrNotReady)
	case !s.cluster.Joined():
		return fmt.Errorf("%w: not joined to the cluster's seeds yet", ErrNotReady)
	case s.cluster.Draining():
		return fmt.Errorf("%w: draining: leaving the cluster", ErrNotReady)
	}
	return nil
}

// Items returns the statistics of "stats items", in memcached's order.
func (s *Server) Items() []Stat { return s.commands.ItemStats() }

// Slabs returns the statistics of "stats slabs", in memcached's order.
func (s *Server) Slabs() []Stat { return s.commands.SlabStats() }

// MetricsAddr returns the address the metrics listener listens on, once
// Listen has opened it; nil without one.
func (s *Server) MetricsAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// ListenAndServe opens cfg's listeners, starts the cluster (StartCluster),
// and serves the listeners until Shutdown, when it returns ErrServerClosed.
func (s *Server) ListenAndServe() error {
	ls, err := s.Listen()
	if err != nil {
		return err
	}
	if err := s.StartCluster(context.Background(), ls); err != nil {
		for _, l := range ls {
			l.Close()
		}
		return err
	}
	return s.ServeListeners(ls)
}

// ServeListeners serves every listener in ls, each as Serve does, until
// Shutdown, when it returns ErrServerClosed. It closes them all.
func (s *Server) ServeListeners(ls []net.Listener) error {
	if err := s.prepare(); err != nil {
		for _, l := range ls {
			l.Close()
		}
		return err
	}
	s.mu.Lock()
	if s.metricsLn != nil {
		go func(l net.Listener) {
			if err := s.metrics.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.cfg.Logger.Error("metrics listener stopped", "err", err)
			}
		}(s.metricsLn)
	}
	s.mu.Unlock()
	s.serving.Store(true)
	return s.net.ServeListeners(ls)
}

// Serve accepts connections on l, each served on its own goroutine, until
// Shutdown; it then returns ErrServerClosed. Serve closes l.
//
// With TLS on, connections on a TCP listener are TLS, unless Listen opened
// it for an address of TLSConfig.NoTLSAddrs; each connection makes its
// handshake on its own goroutine. If the certificates are not loaded yet,
// Serve loads them first, and returns the error if it cannot.
func (s *Server) Serve(l net.Listener) error {
	if err := s.prepare(); err != nil {
		l.Close()
		return err
	}
	return s.net.Serve(l)
}

// StartCluster publishes the node under the memcached address of the first
// TCP listener in ls and, when Config.Cluster turns gossip on, starts
// memberlist and joins the seeds in the background (see cluster.Start).
// ListenAndServe calls it between Listen and serving; a program that calls
// Listen and Serve itself calls it in between too. Calling it a second
// time returns ErrClusterStarted.
func (s *Server) StartCluster(ctx context.Context, ls []net.Listener) error {
	return s.cluster.Start(ctx, ls)
}

// ClusterView returns the node's current view of the cluster. It is the
// zero ClusterView until StartCluster, and for a single node listening on
// every interface, whose entry depends on the address a client reached.
func (s *Server) ClusterView() ClusterView { return s.cluster.View() }

// Stats returns the general statistics of "stats", in memcached's order.
func (s *Server) Stats() []Stat { return s.commands.Stats() }

// Settings returns the statistics of "stats settings", in memcached's order.
func (s *Server) Settings() []Stat { return s.commands.Settings() }

// Drain begins a member's graceful departure: it leaves the cluster at once,
// so that every ring moves the node's keys to the others, and answers
// "config get cluster" without itself (see cluster.Cluster.Drain), while it
// goes on serving its clients and accepting connections, for clients on
// the old view. It returns once d has passed, ctx is done, or a client's
// shutdown command (-A) asked for the end; Shutdown then closes the node.
// It reports false, at once, for a node with no other members to drain
// to, which leaves the cluster and has nothing to wait for.
func (s *Server) Drain(ctx context.Context, d time.Duration) bool {
	if !s.cluster.Drain(ctx) {
		return false
	}
	// The push ends with the drain, whatever its peers do: its I/O is
	// bounded by this deadline.
	pushCtx, endPush := context.WithTimeout(ctx, d)
	pushed := make(chan struct{})
	if s.handoff != nil && s.cfg.Cluster.HandoffPush > 0 {
		go func() {
			defer close(pushed)
			s.push(pushCtx)
		}()
	} else {
		close(pushed)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
	endPush()
	<-pushed
	return true
}

// push sends the node's most recently used items, up to
// Config.Cluster.HandoffPush bytes, to their owners in the view the node
// drains to (see handoff.Push), until ctx ends.
func (s *Server) push(ctx context.Context) {
	v := s.cluster.View()
	res := handoff.Push(ctx, s.store, v.Members, v.Mode, s.peers, s.cfg.Cluster.HandoffPush, s.handoff.Fresh)
	s.cfg.Logger.Info("drain: pushed recently used items to their new owners",
		"items", res.Items, "bytes", res.Bytes, "stored", res.Stored, "failed_batches", res.Errors,
		"accessed_within_s", res.Cutoff, "took", res.Duration.Round(time.Millisecond))
}

// Shutdown stops the server. A member of a cluster first leaves it, so that
// its peers drop it at once (waiting at most Config.Cluster.LeaveTimeout for
// the message to go out). It then closes the listeners, lets every
// connection finish the requests it has begun, closes idle connections, and
// waits for all of them until ctx is done. It then stops the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cluster.Leave(ctx)
	if s.metrics != nil {
		// Probes see the node go: it is not ready from now on, and the
		// listener closes.
		s.serving.Store(false)
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.metrics.Shutdown(sctx)
		cancel()
		s.mu.Lock()
		if s.metricsLn != nil {
			s.metricsLn.Close()
		}
		s.mu.Unlock()
	}
	first := s.net.BeginShutdown()
	s.closeDone()
	s.commands.StopCrawls() // crawls stop at their next step once done is closed
	err := s.net.Wait(ctx)
	if first {
		if s.peers != nil {
			s.peers.Close()
		}
		s.store.Close()
	}
	return err
}

// readPeerAuth reads the user and password a node authenticates to the
// others with from file (Config.Cluster.PeerAuthFile): the first line that
// is neither blank nor a '#' comment, user:password. It is read at each
// new connection, so a changed file takes effect without a reload.
func readPeerAuth(file string) (user, password string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", fmt.Errorf("node: peer credentials: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, password, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return "", "", fmt.Errorf("node: peer credentials: %s: want user:password", file)
		}
		return user, password, nil
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("node: peer credentials: %s: %w", file, err)
	}
	return "", "", fmt.Errorf("node: peer credentials: %s: %w", file, errors.New("no user:password line"))
}

// NodeName returns the node's name in the cluster (its memberlist name)
// once StartCluster has started gossip; "" before, or without a cluster.
func (s *Server) NodeName() string { return s.cluster.Name() }
