// Package netserve serves connections: the listeners (TCP, TLS, unix
// socket), the accept loop and the limit on connections, each connection's
// goroutine and buffers, raw socket I/O, the epoll loops that serve
// connections between their requests, the TLS handshake, and shutdown. It
// knows nothing of memcached's commands: it hands each connection to a
// Handler, as net/http hands requests to its Handler. Come here to change
// how bytes get in and out.
package netserve

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
	"syscall" // for syscall.Conn, the net package's access to a descriptor
	"time"

	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/node/tlsconf"
	"golang.org/x/sys/unix"
)

// ErrServerClosed is returned by Serve and ServeListeners after Shutdown.
var ErrServerClosed = errors.New("node: server closed")

// Handler serves memcached's commands on a connection.
type Handler interface {
	// ConnOpened is called when c is accepted, before any request and
	// before the TLS handshake; it must not block.
	ConnOpened(c *Conn)
	// ServeConn serves c from its first request until WaitForRequest
	// returns false, and returns. It is called on a goroutine of the
	// connection's own, once the TLS handshake, if any, is done, and for
	// many connections at once. Once it has given the connection a
	// LoopServer (ServeOnLoop), WaitForRequest may return false because
	// the connection goes to rest on an event loop: the goroutine then
	// ends, and a new one serves the connection's next requests the loop
	// leaves it with LoopServer.ServeRequests.
	ServeConn(c *Conn)
	// ConnClosed is called when c has closed, after the last return of
	// ServeConn or ServeRequests.
	ConnClosed(c *Conn)
}

// Options is what a Server needs besides the node's settings.
type Options struct {
	// Handler serves each connection. Required.
	Handler Handler
	// TLS is the TLS of TCP listeners; nil without TLS.
	TLS *tlsconf.State
	// Counters receive the byte and connection counts. Required.
	Counters *stats.Counters
	// Clock returns memcached's current_time, the unix second, cheaply: a
	// connection reads it once per request. Required.
	Clock func() int64
	// Verbose reports whether connections opening and closing are
	// logged (-vv, as memcached). If nil, they are not.
	Verbose func() bool
	// Logger receives the server's logs. If nil, defaults to the
	// settings' Logger.
	Logger *slog.Logger
}

// Server serves a node's listeners. Create it with New; its methods are
// safe for concurrent use.
type Server struct {
	cfg      config.Config
	handler  Handler
	tls      *tlsconf.State
	counters *stats.Counters
	clock    func() int64
	verbose  func() bool
	log      *slog.Logger

	currConns atomic.Int64
	// peakConns is the most connections and listeners ever open at once:
	// memcached's connection_structures, the structures it allocated.
	peakConns atomic.Int64
	// maxClients is how many client connections are accepted at once:
	// cfg.MaxConns unless the open-file limit holds fewer (connLimit).
	maxClients   int64
	shuttingDown atomic.Bool
	nextConnID   atomic.Uint64

	mu        sync.Mutex // guards listeners and conns
	listeners map[net.Listener]listenerInfo
	conns     map[*Conn]struct{}
	connsWG   sync.WaitGroup

	loops     []*eventLoop // serve connections between requests; see eventLoopFor
	loopsOnce sync.Once
}

// New returns a server for the node's settings cfg (with their defaults
// applied) and opts.
func New(cfg config.Config, opts Options) *Server {
	s := &Server{
		cfg:       cfg,
		handler:   opts.Handler,
		tls:       opts.TLS,
		counters:  opts.Counters,
		clock:     opts.Clock,
		verbose:   opts.Verbose,
		log:       opts.Logger,
		listeners: make(map[net.Listener]listenerInfo),
		conns:     make(map[*Conn]struct{}),
	}
	if s.verbose == nil {
		s.verbose = func() bool { return false }
	}
	if s.log == nil {
		s.log = cfg.Logger
	}
	n, fileLimit := connLimit(&cfg)
	s.maxClients = int64(n)
	if n < cfg.MaxConns {
		s.log.Warn("the open-file limit holds fewer connections than the connection limit (-c); "+
			"clients past them get \"ERROR Too many open connections\"",
			"file_limit", fileLimit, "conn_limit", cfg.MaxConns, "connections", n)
	}
	return s
}

// Listen opens the listeners the settings name: the unix socket if one is
// set, otherwise TCP on every -l address (all interfaces if none).
func (s *Server) Listen() ([]net.Listener, error) {
	var ls []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	if s.cfg.UnixSocket != "" {
		_ = os.Remove(s.cfg.UnixSocket)
		old := unix.Umask(0o777 &^ int(s.cfg.UnixMask))
		l, err := net.Listen("unix", s.cfg.UnixSocket)
		unix.Umask(old)
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
		if s.tls != nil && slices.Contains(s.tls.NoTLSAddrs(), a) {
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

// ServeListeners serves every listener in ls, each as Serve does, until
// Shutdown, when it returns ErrServerClosed. It closes them all.
func (s *Server) ServeListeners(ls []net.Listener) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		s.log.Info("listening", "addr", l.Addr().String(), "tls", s.ServesTLS(l))
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
// it for an address of the TLS settings' NoTLSAddrs; each connection makes
// its handshake on its own goroutine. The certificates must be loaded.
func (s *Server) Serve(l net.Listener) error {
	useTLS := s.ServesTLS(l)
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
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
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
			s.counters.RejectedConns.Add(1)
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write([]byte("ERROR Too many open connections\r\n"))
			nc.Close()
			continue
		}
		if useTLS {
			nc = tls.Server(nc, s.tls.ServerConfig()) // the handshake waits for c.serve
		}
		c := newConn(s, nc)
		if !s.trackConn(c) {
			nc.Close()
			return ErrServerClosed
		}
		if s.verbose() {
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
	s.listeners[l] = listenerInfo{id: s.nextConnID.Add(1), opened: s.clock()}
	s.counters.TotalConns.Add(1) // memcached counts its listening connections too
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

// CurrConnections is memcached's curr_connections: the open connections,
// counting the listeners as memcached counts its listening connections,
// less one, as memcached prints it.
func (s *Server) CurrConnections() int64 {
	return s.currConns.Load() + int64(s.listenerCount()) - 1
}

func (s *Server) trackConn(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.connsWG.Add(1)
	s.currConns.Add(1)
	s.counters.TotalConns.Add(1)
	s.notePeakLocked()
	return true
}

func (s *Server) untrackConn(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if s.verbose() {
		s.log.Info("connection closed", "conn", c.id, "remote", c.nc.RemoteAddr().String())
	}
	s.currConns.Add(-1)
	s.connsWG.Done()
}

// BeginShutdown stops the server taking connections and requests: it
// closes the listeners, wakes the connections that wait for a request so
// that they close, and gives back the connections the event loops hold. A
// connection in mid-request finishes it first. It reports whether this was
// the first call.
func (s *Server) BeginShutdown() bool {
	s.mu.Lock()
	first := !s.shuttingDown.Swap(true)
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.wakeIfIdle()
	}
	s.mu.Unlock()
	s.stopEventLoops()
	return first
}

// Wait waits, after BeginShutdown, until every connection has closed. If
// ctx is done first, it ends the connections still open, waits for their
// goroutines, and returns ctx's error.
func (s *Server) Wait(ctx context.Context) error {
	finished := make(chan struct{})
	go func() {
		s.connsWG.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.abort()
	}
	s.mu.Unlock()
	<-finished
	return ctx.Err()
}

// Accepting reports whether the server takes connections: it does until
// shutdown.
func (s *Server) Accepting() bool { return !s.shuttingDown.Load() }

// PeakConns returns the most connections and listeners ever open at once:
// memcached's connection_structures.
func (s *Server) PeakConns() int64 { return s.peakConns.Load() }

// ServesTLS reports whether connections accepted on l are TLS: with TLS on,
// those of every TCP listener but the plain ones.
func (s *Server) ServesTLS(l net.Listener) bool {
	if s.tls == nil {
		return false
	}
	if _, ok := l.(plainListener); ok {
		return false
	}
	return l.Addr().Network() == "tcp"
}

// plainListener marks a TCP listener that serves plain connections while
// TLS is on ("notls:").
type plainListener struct{ net.Listener }

// OpenConns returns the client connections open now, listeners not counted.
func (s *Server) OpenConns() int64 { return s.currConns.Load() }

// NewConn returns a connection over nc that s neither serves nor counts:
// for driving a Handler without a listener, over an in-memory connection
// in tests and fuzzing. It reads and writes nc through the net package,
// without an event loop. The caller serves it and closes nc. (Serve's
// connections are these, given their socket and loop by newConn.)
func (s *Server) NewConn(nc net.Conn) *Conn {
	c := &Conn{srv: s, nc: nc, raw: nc, sock: nc, id: s.nextConnID.Add(1)}
	if tc, ok := nc.(*tls.Conn); ok {
		c.raw = tc.NetConn()
	}
	c.In = &c.in
	c.lastCmd.Store(s.clock())
	return c
}

// EachConn calls f for every open client connection, under the server's
// lock: f must not block, and may call only the Conn methods that say any
// goroutine may.
func (s *Server) EachConn(f func(*Conn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		f(c)
	}
}
