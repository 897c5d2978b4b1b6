package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node/cluster"
	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/node/tlsconf"
)

// testServer is a node as these tests need one: the store, a Handler and
// a netserve.Server, wired as package node wires them, with the Handler's
// internals at hand. It mirrors node.Server's methods the tests call.
type testServer struct {
	*Handler
	net      *netserve.Server
	cluster  *cluster.Cluster
	doneCh   chan struct{}
	doneOnce sync.Once
}

// Config is the node's settings, under the name the tests knew.
type Config = config.Config

// newTestServer returns a test server for cfg, as node.New.
func newTestServer(cfg Config) *testServer {
	cfg = cfg.WithDefaults()
	started := time.Now()
	s := &testServer{doneCh: make(chan struct{})}
	s.cluster = cluster.New(cfg.Cluster, cfg.Port, cfg.Logger)
	var tlsState *tlsconf.State
	if cfg.TLS != nil {
		tlsState = tlsconf.NewState(*cfg.TLS)
	}
	st := store.New(store.Config{
		MaxBytes:    cfg.MemoryLimit,
		ItemSizeMax: cfg.ItemSizeMax,
		NoEvictions: cfg.NoEvictions,
		NoCAS:       cfg.NoCAS,
		Epoch:       started,
		OnEvict:     func(ev store.Eviction) { s.LogEviction(ev) },
	})
	s.Handler = New(cfg, Options{
		Store: st, Started: started, TLS: tlsState,
		Cluster: s.cluster, Done: s.doneCh, Shutdown: s.closeDone,
	})
	s.net = netserve.New(cfg, netserve.Options{
		Handler: s.Handler, TLS: tlsState, Counters: s.Counters(), Clock: st.CoarseNow,
		Verbose: func() bool { return s.Verbosity() > 1 },
	})
	s.SetConns(s.net)
	return s
}

func (s *testServer) closeDone() { s.doneOnce.Do(func() { close(s.doneCh) }) }

// Done is node.Server.Done.
func (s *testServer) Done() <-chan struct{} { return s.doneCh }

func (s *testServer) prepare() error {
	if s.tls != nil {
		if err := s.tls.EnsureLoaded(); err != nil {
			return fmt.Errorf("node: TLS: %w", err)
		}
	}
	return s.Prepare()
}

// Listen is node.Server.Listen.
func (s *testServer) Listen() ([]net.Listener, error) {
	if err := s.prepare(); err != nil {
		return nil, err
	}
	return s.net.Listen()
}

// Serve is node.Server.Serve.
func (s *testServer) Serve(l net.Listener) error {
	if err := s.prepare(); err != nil {
		l.Close()
		return err
	}
	return s.net.Serve(l)
}

// ServeListeners is node.Server.ServeListeners.
func (s *testServer) ServeListeners(ls []net.Listener) error {
	if err := s.prepare(); err != nil {
		for _, l := range ls {
			l.Close()
		}
		return err
	}
	return s.net.ServeListeners(ls)
}

// StartCluster is node.Server.StartCluster.
func (s *testServer) StartCluster(ctx context.Context, ls []net.Listener) error {
	return s.cluster.Start(ctx, ls)
}

// Reload is node.Server.Reload.
func (s *testServer) Reload() error {
	var errs []error
	if s.tls != nil {
		if err := s.tls.Load(); err != nil {
			errs = append(errs, fmt.Errorf("node: reload TLS certificates: %w", err))
		}
	}
	for _, r := range s.Reloaders() {
		if err := r.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("node: reload %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown is node.Server.Shutdown.
func (s *testServer) Shutdown(ctx context.Context) error {
	s.cluster.Leave(ctx)
	first := s.net.BeginShutdown()
	s.closeDone()
	s.StopCrawls()
	err := s.net.Wait(ctx)
	if first {
		s.store.Close()
	}
	return err
}

// ErrServerClosed is node.ErrServerClosed.
var ErrServerClosed = netserve.ErrServerClosed

// newTestSession returns a session of s's commands over nc, which the
// tests serve by calling serveText or serveBinary themselves.
func newTestSession(s *testServer, nc net.Conn) *session {
	return &session{Conn: s.net.NewConn(nc), h: s.Handler}
}

// checkBatchAllocs serves fc's requests (requests of them) with serve, once
// to warm up and then under testing.AllocsPerRun: a run makes the
// per-connection state afresh (a few allocations); the requests must add
// nothing.
func checkBatchAllocs(t *testing.T, fc *testutil.ReplayConn, requests int, serve func()) {
	t.Helper()
	run := func() {
		fc.Rewind(1)
		serve()
	}
	run()
	if fc.Written == 0 {
		t.Fatal("no replies written")
	}
	allocs := testing.AllocsPerRun(5, run)
	if perReq := allocs / float64(requests); allocs > 10 {
		t.Errorf("%v allocations for %d requests (%.4f per request)", allocs, requests, perReq)
	}
}
