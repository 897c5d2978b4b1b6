// Package node is a memcluster node: a memcached-compatible server over the
// store, speaking the text and binary protocols on TCP and unix sockets.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/memcluster/memcluster/node/store"
	"golang.org/x/sys/unix"
)

// Version is the memcached protocol version the node reports to clients
// ("version", "stats"): clients check it to know which commands exist.
const Version = "1.6.18"

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = errors.New("node: server closed")

// Server is one memcluster node. Create it with New; its methods are safe for
// concurrent use.
type Server struct {
	cfg          Config
	log          *slog.Logger
	store        *store.Store
	started      time.Time
	cluster      *cluster
	tls          *tlsState // nil without TLS
	auth         *auth     // nil if authErr
	authErr      error     // a bad authentication setting, returned by Listen and Serve
	authWarnOnce sync.Once

	counters   counters
	compat     compatSettings // memcached's settings the node shows but has no use for
	oldestLive atomic.Int64   // stats settings' oldest: memcached's oldest_live, set by flush_all
	verbosity  atomic.Int32
	currConns  atomic.Int64
	// peakConns is the most connections and listeners ever open at once:
	// memcached's connection_structures, the structures it allocated.
	peakConns atomic.Int64
	// maxClients is how many client connections are accepted at once:
	// Config.MaxConns unless the open-file limit holds fewer (connLimit).
	maxClients   int64
	shuttingDown atomic.Bool
	nextConnID   atomic.Uint64

	mu        sync.Mutex // guards listeners and conns
	listeners map[net.Listener]listenerInfo
	conns     map[*conn]struct{}
	connsWG   sync.WaitGroup
	done      chan struct{} // closed by closeDone
	doneOnce  sync.Once

	crawler crawler // the LRU crawler's settings and jobs; see crawler.go

	loops     []*eventLoop // serve connections between requests; see eventLoopFor
	loopsOnce sync.Once

	watch watchHub // the watch streams' watchers; see watch.go
}

// New returns a server for cfg. It does not listen until ListenAndServe or
// Serve is called.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		started:   time.Now(),
		listeners: make(map[net.Listener]listenerInfo),
		conns:     make(map[*conn]struct{}),
		done:      make(chan struct{}),
	}
	s.cluster = newCluster(s)
	n, fileLimit := connLimit(&cfg)
	s.maxClients = int64(n)
	if n < cfg.MaxConns {
		s.log.Warn("the open-file limit holds fewer connections than the connection limit (-c); "+
			"clients past them get \"ERROR Too many open connections\"",
			"file_limit", fileLimit, "conn_limit", cfg.MaxConns, "connections", n)
	}
	if cfg.TLS != nil {
		s.tls = newTLSState(*cfg.TLS)
	}
	s.auth, s.authErr = newAuth(cfg)
	s.verbosity.Store(int32(cfg.Verbosity))
	s.compat.init()
	s.counters.detail.delim = defaultPrefixDelimiter
	if cfg.PrefixDelimiter != 0 {
		s.counters.detail.delim = cfg.PrefixDelimiter
		s.counters.detail.setEnabled(true)
	}
	s.store = store.New(store.Config{
		MaxBytes:    cfg.MemoryLimit,
		ItemSizeMax: cfg.ItemSizeMax,
		NoEvictions: cfg.NoEvictions,
		NoCAS:       cfg.NoCAS,
		Epoch:       s.started,
		OnEvict:     s.logEviction,
	})
	s.initCrawler()
	return s
}

// Done is closed when the server begins to shut down, whether by Shutdown or
// by a client's "shutdown" command.
func (s *Server) Done() <-chan struct{} { return s.done }

// Listen opens the listeners cfg names: the unix socket if one is set,
// otherwise TCP on every -l address (all interfaces if none). With TLS on,
// it first loads the certificates; an error loading them is a
// *TLSFileError.
func (s *Server) Listen() ([]net.Listener, error) {
	if s.tls != nil {
		if err := s.tls.ensureLoaded(); err != nil {
			return nil, fmt.Errorf("node: TLS: %w", err)
		}
	}
	if err := s.ensureAuth(); err != nil {
		return nil, err
	}
	var ls []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	if s.cfg.UnixSocket != "" {
		_ = os.Remove(s.cfg.UnixSocket)
		old := syscall.Umask(0o777 &^ int(s.cfg.UnixMask))
		l, err := net.Listen("unix", s.cfg.UnixSocket)
		syscall.Umask(old)
		if err == nil {
			err = setBacklog(l, s.cfg.Backlog)
		}
		if err != nil {
			return fail(fmt.Errorf("listen on unix socket %s: %w", s.cfg.UnixSocket, err))
		}
		return append(ls, l), nil
	}
	if s.cfg.Port < 0 {
		return nil, errors.New("node: no listener: TCP is off and no unix socket is set")
	}
	addrs := s.cfg.ListenAddrs
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	for _, a := range addrs {
		addr := withPort(a, s.cfg.Port)
		l, err := net.Listen("tcp", addr)
		if err == nil {
			if err = setBacklog(l, s.cfg.Backlog); err != nil {
				l.Close()
			}
		}
		if err != nil {
			return fail(fmt.Errorf("listen on %s: %w", addr, err))
		}
		if s.tls != nil && slices.Contains(s.cfg.TLS.NoTLSAddrs, a) {
			l = plainListener{l}
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// setBacklog sets the listen backlog of l, a TCP or unix listener, to n:
// Go listens with the system's largest (net.core.somaxconn), and on Linux
// listening again on a listening socket sets its backlog anew.
func setBacklog(l net.Listener, n int) error {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = unix.Listen(int(fd), n) }); err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	if lerr != nil {
		return fmt.Errorf("backlog: %w", os.NewSyscallError("listen", lerr))
	}
	return nil
}

// withPort adds port to host unless host already names one.
func withPort(host string, port int) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
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
	errc := make(chan error, len(ls))
	for _, l := range ls {
		s.log.Info("listening", "addr", l.Addr().String(), "tls", s.servesTLS(l))
		go func() { errc <- s.Serve(l) }()
	}
	var first error
	for range ls {
		if err := <-errc; first == nil || errors.Is(first, ErrServerClosed) {
			first = err
		}
	}
	return first
}

// Serve accepts connections on l, each served on its own goroutine, until
// Shutdown; it then returns ErrServerClosed. Serve closes l.
//
// With TLS on, connections on a TCP listener are TLS, unless Listen opened
// it for an address of TLSConfig.NoTLSAddrs; each connection makes its
// handshake on its own goroutine. If the certificates are not loaded yet,
// Serve loads them first, and returns the error if it cannot.
func (s *Server) Serve(l net.Listener) error {
	useTLS := s.servesTLS(l)
	if useTLS {
		if err := s.tls.ensureLoaded(); err != nil {
			l.Close()
			return fmt.Errorf("node: TLS: %w", err)
		}
	}
	if err := s.ensureAuth(); err != nil {
		l.Close()
		return err
	}
	if !s.trackListener(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(l)
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors or a passing fault: back off as
				// net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		delay = 0
		if s.currConns.Load() >= s.maxClients {
			s.counters.rejectedConns.Add(1)
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write([]byte("ERROR Too many open connections\r\n"))
			nc.Close()
			continue
		}
		if useTLS {
			nc = tls.Server(nc, s.tls.config) // the handshake waits for c.serve
		}
		c := newConn(s, nc)
		if !s.trackConn(c) {
			nc.Close()
			return ErrServerClosed
		}
		if s.verbosity.Load() > 0 {
			s.log.Info("connection opened", "conn", c.id, "remote", nc.RemoteAddr().String(), "listener", l.Addr().String())
		}
		go c.serve()
	}
}

func (s *Server) trackListener(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Load() {
		return false
	}
	s.listeners[l] = listenerInfo{id: s.nextConnID.Add(1), opened: s.currentTime()}
	s.counters.totalConns.Add(1) // memcached counts its listening connections too
	s.notePeakLocked()
	return true
}

func (s *Server) untrackListener(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

func (s *Server) listenerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

// notePeakLocked records the connections and listeners open now in
// peakConns if there were never more. s.mu must be held.
func (s *Server) notePeakLocked() {
	if n := s.currConns.Load() + int64(len(s.listeners)); n > s.peakConns.Load() {
		s.peakConns.Store(n)
	}
}

// currConnections is memcached's curr_connections: the open connections,
// counting the listeners as memcached counts its listening connections,
// less one, as memcached prints it.
func (s *Server) currConnections() int64 {
	return s.currConns.Load() + int64(s.listenerCount()) - 1
}

func (s *Server) trackConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.connsWG.Add(1)
	s.currConns.Add(1)
	s.counters.totalConns.Add(1)
	s.notePeakLocked()
	return true
}

func (s *Server) untrackConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if s.verbosity.Load() > 0 {
		s.log.Info("connection closed", "conn", c.id, "remote", c.nc.RemoteAddr().String())
	}
	s.currConns.Add(-1)
	s.connsWG.Done()
}

// Shutdown stops the server. A member of a cluster first leaves it, so that
// its peers drop it at once (waiting at most Config.Cluster.LeaveTimeout for
// the message to go out). It then closes the listeners, lets every
// connection finish the requests it has begun, closes idle connections, and
// waits for all of them until ctx is done. It then stops the store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cluster.leave(ctx)
	s.mu.Lock()
	first := !s.shuttingDown.Swap(true)
	s.closeDone()
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.wakeIfIdle()
	}
	s.mu.Unlock()
	s.stopEventLoops()
	s.crawler.wg.Wait() // crawls stop at their next step once done is closed

	finished := make(chan struct{})
	go func() {
		s.connsWG.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.abort()
		}
		s.mu.Unlock()
		<-finished
		if first {
			s.store.Close()
		}
		return ctx.Err()
	}
	if first {
		s.store.Close()
	}
	return nil
}

// closeDone closes done once, however often it is called.
func (s *Server) closeDone() { s.doneOnce.Do(func() { close(s.done) }) }
