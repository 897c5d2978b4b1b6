package ring

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Defaults for Config's zero fields.
const (
	DefaultPollInterval = time.Second
	DefaultTimeout      = time.Second
	DefaultDownFor      = 5 * time.Second
)

// ErrClosed is returned by Refresh on a closed Selector.
var ErrClosed = errors.New("ring: selector closed")

// Dialer dials the nodes a Selector asks for the cluster config. *net.Dialer
// satisfies it, and so does *tls.Dialer, for a cluster that serves TLS (give
// gomemcache the same dialer as Client.DialContext). A Selector calls it
// from one goroutine at a time.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Config configures a Selector. The zero value is the default for each
// field. NewSelector copies it; the caller's value is never modified.
type Config struct {
	// PollInterval is how often the Selector asks the cluster for its
	// config. If zero, defaults to DefaultPollInterval (1 s). If
	// negative, the Selector does not poll and follows the cluster only
	// when Refresh is called.
	PollInterval time.Duration
	// Timeout bounds each attempt to get the config from one node: dial,
	// request and reply. If zero, defaults to DefaultTimeout (1 s).
	Timeout time.Duration
	// Logger receives a warning when a node does not answer and a line
	// when the ring changes. If nil, defaults to slog.Default().
	Logger *slog.Logger
	// Dialer dials the nodes: a *tls.Dialer for a cluster that serves
	// TLS. If nil, defaults to a zero net.Dialer.
	Dialer Dialer
	// DownFor is how long a member marked down (MarkDown) stays off the
	// ring, unless a config without it comes first: long enough for the
	// cluster's gossip to drop a dead node (about 2.3 s with the nodes'
	// defaults). The mark ends at the first Refresh after it. If zero,
	// defaults to DefaultDownFor (5 s).
	DownFor time.Duration
	// SASL, if not nil, is the login the Selector gives each node before
	// it asks for the config, over the binary protocol (SASL PLAIN, then
	// memcluster's ConfigGet, protocol.OpConfigGet): for a cluster whose
	// nodes run with -S, which serve no text command. Such a Selector
	// polls every PollInterval; it cannot watch. PLAIN sends the
	// password: use it over TLS (Dialer).
	SASL *SASLLogin
	// Ring, if not zero, is the mode the Selector builds its rings in,
	// whatever the cluster announces: ModeKetama, say, to place keys as
	// libmemcached's ketama does over servers that announce no mode
	// (ElastiCache). If zero, the Selector follows the mode the node it
	// takes each config from announces (`config get ring`, asked with
	// the config): ModeMemcluster for a node that announces none
	// (memcached, ElastiCache, a memcluster older than ring modes).
	Ring Mode
}

// SASLLogin is a user and password for SASL PLAIN.
type SASLLogin struct {
	User, Password string
}

// NodeAddr is the net.Addr a Selector returns for a member: the same pointer
// for the same member for as long as the member stays in the cluster, so
// gomemcache's GetMulti batches its keys per node.
type NodeAddr struct {
	member Member
	addr   string
}

// Network returns "tcp".
func (a *NodeAddr) Network() string { return "tcp" }

// String returns the address gomemcache dials: Member().Addr().
func (a *NodeAddr) String() string { return a.addr }

// Member returns the member the address belongs to.
func (a *NodeAddr) Member() Member { return a.member }

// state is one snapshot of the cluster as a Selector sees it.
type state struct {
	version uint64
	mode    Mode       // the config's ring mode
	ring    *Ring      // the config's members but those marked down
	addrs   []net.Addr // addrs[i] is ring.Member(i)'s, a *NodeAddr
	all     []Member   // the config's members
}

// Selector is a gomemcache ServerSelector that places keys on the ring of a
// memcluster cluster (or any server answering `config get cluster` in
// ElastiCache's Auto Discovery format) and follows the cluster as it changes:
// it keeps memcluster's `config watch cluster` open on one member and takes
// each new config the moment that member has it, and polls `config get
// cluster` on the nodes it knows (its seeds and the members of the last
// config it took) where no member answers the watch. It asks the node that
// answered last, and moves on to the next known node when that one is down
// or behind. MarkDown takes a node that cannot be reached off the ring for
// a while; Client does so at a request's first failure.
//
// It builds its ring in the mode the cluster announces (`config get ring`,
// asked with each config; see Config.Ring), so that it places keys as the
// nodes do in either mode.
//
// It takes a config only if its version is higher than the one it holds, so
// a node that lags the cluster never turns it back. The version must
// therefore only rise for the life of a Selector: after restarting every
// node of a cluster at once, start new Selectors.
//
// All methods are safe for concurrent use. PickServer and Each read an
// atomic snapshot: they never block and PickServer does not allocate.
type Selector struct {
	cfg   Config
	seeds []string
	log   *slog.Logger

	cur atomic.Pointer[state] // nil until the first config

	// stateMu is held while cur is replaced: by a new config or a mark.
	stateMu sync.Mutex
	down    map[Member]time.Time // members marked down, until when; guarded by stateMu

	life      context.Context // canceled by Close
	stop      context.CancelFunc
	done      chan struct{} // closed when the poller returns; nil if none
	closeOnce sync.Once

	// sem is held by the one Refresh at work, and by Close for good. Its
	// holder owns the fields below.
	sem      chan struct{}
	conn     net.Conn // kept open to connAddr between polls, or nil
	connAddr string
	br       *bufio.Reader // reads conn
	next     string        // the node to ask first
}

var _ memcache.ServerSelector = (*Selector)(nil)

// NewSelector returns a Selector that finds the cluster from seeds, the
// host:port addresses of some of its nodes, and starts polling it unless
// cfg.PollInterval is negative. It does not wait for the first config:
// until one arrives PickServer returns memcache.ErrNoServers; call Refresh to
// wait. Call Close to stop the polling.
func NewSelector(seeds []string, cfg Config) (*Selector, error) {
	if len(seeds) == 0 {
		return nil, errors.New("ring: no seed addresses")
	}
	for _, a := range seeds {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("ring: seed %q: %w", a, err)
		}
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = DefaultDownFor
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{}
	}
	if !cfg.Ring.valid() {
		return nil, fmt.Errorf("ring: unknown ring mode %d", cfg.Ring)
	}
	s := &Selector{
		cfg:   cfg,
		seeds: append([]string(nil), seeds...),
		log:   cfg.Logger,
		sem:   make(chan struct{}, 1),
	}
	s.life, s.stop = context.WithCancel(context.Background())
	if cfg.PollInterval > 0 {
		s.done = make(chan struct{})
		go s.poll()
	}
	return s, nil
}

// poll refreshes at once and then, until Close, follows the cluster: it
// waits for each change of its config on one node with memcluster's
// "config watch cluster", and takes it as soon as that node has it; where
// no node of the ring answers that (memcached, ElastiCache) or the watch
// fails, it refreshes every PollInterval.
func (s *Selector) poll() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	w := watcher{s: s, unsupported: map[string]bool{}, broke: map[string]time.Time{}}
	defer w.close()
	for {
		if err := s.Refresh(s.life); err != nil && s.life.Err() == nil {
			s.log.Warn("ring: cannot get the cluster config", "err", err)
		}
		for w.next() {
		}
		select {
		case <-s.life.Done():
			return
		case <-t.C:
		}
	}
}

// watchWait bounds a watch: above the longest a node waits before it
// answers a watch with the config it has (20 s).
const watchWait = 25 * time.Second

// watcher is the poller's watch of one node, over a connection of its own.
type watcher struct {
	s           *Selector
	conn        net.Conn
	addr        string
	br          *bufio.Reader
	unsupported map[string]bool      // nodes that answered the watch with an error
	broke       map[string]time.Time // nodes whose watch failed, and when
}

// watchRetry is how long a node whose watch failed is not watched again.
const watchRetry = 5 * time.Second

// next waits for the config after the one the Selector holds on a node of
// its ring, installs it, and reports whether to watch again at once: false
// when no node of the ring can be watched now. A watch that fails moves on
// to another node.
func (w *watcher) next() bool {
	s := w.s
	if s.cfg.SASL != nil {
		return false // a binary connection cannot watch: poll
	}
	version, r := s.Current()
	if w.conn == nil || !slices.ContainsFunc(r.Members(), func(m Member) bool { return m.Addr() == w.addr }) {
		if !w.connect(r) {
			return false
		}
	}
	nc := w.conn
	nc.SetDeadline(time.Now().Add(watchWait))
	defer context.AfterFunc(s.life, func() { nc.SetDeadline(time.Unix(1, 0)) })()
	req := fmt.Appendf(nil, "config watch cluster %d\r\n", version)
	if s.cfg.Ring == 0 {
		req = append(req, askRing...) // answered once the watch is
	}
	_, err := nc.Write(req)
	var got uint64
	var members []Member
	var mode Mode
	if err == nil {
		got, members, err = ParseClusterConfig(w.br)
	}
	if err == nil {
		mode, err = s.readModeLocked(w.br)
	}
	if err != nil {
		if s.life.Err() != nil {
			return false
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, new(net.Error)) {
			w.broke[w.addr] = time.Now()
		} else {
			w.unsupported[w.addr] = true // it answered, but not a config
		}
		w.close()
		return true // another node, if any
	}
	select {
	case s.sem <- struct{}{}:
	case <-s.life.Done():
		return false
	}
	err = s.installLocked(got, members, mode)
	<-s.sem
	return err == nil
}

// connect opens the watch's connection to a node of r that can be
// watched, and reports whether there was one.
func (w *watcher) connect(r *Ring) bool {
	s := w.s
	w.close()
	for _, m := range r.Members() {
		addr := m.Addr()
		if w.unsupported[addr] || time.Since(w.broke[addr]) < watchRetry {
			continue
		}
		ctx, cancel := context.WithTimeout(s.life, s.cfg.Timeout)
		nc, err := s.cfg.Dialer.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			if s.life.Err() != nil {
				return false
			}
			w.broke[addr] = time.Now()
			continue
		}
		w.conn, w.addr, w.br = nc, addr, bufio.NewReaderSize(nc, 4096)
		return true
	}
	return false
}

// close closes the watch's connection.
func (w *watcher) close() {
	if w.conn != nil {
		w.conn.Close()
	}
	w.conn, w.br, w.addr = nil, nil, ""
}

// PickServer returns the address of the node that owns key on the current
// ring, or memcache.ErrNoServers if the ring is empty. It returns the same
// net.Addr value for a node every time.
func (s *Selector) PickServer(key string) (net.Addr, error) {
	st := s.cur.Load()
	if st == nil || len(st.addrs) == 0 {
		return nil, memcache.ErrNoServers
	}
	return st.addrs[st.ring.OwnerIndexString(key)], nil
}

// Each calls f with the address of every node on the current ring, in ring
// order, and stops at and returns the first error f returns.
func (s *Selector) Each(f func(net.Addr) error) error {
	st := s.cur.Load()
	if st == nil {
		return nil
	}
	for _, a := range st.addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// emptyRing is the ring Current returns before the first config.
var emptyRing = &Ring{}

// Current returns the version and the ring of the config the Selector holds:
// 0 and an empty ring before the first.
func (s *Selector) Current() (version uint64, r *Ring) {
	st := s.cur.Load()
	if st == nil {
		return 0, emptyRing
	}
	return st.version, st.ring
}

// Refresh asks the cluster for its config now, trying each known node in
// turn until one answers, and takes the config if its version is higher
// than the one the Selector holds. It returns nil once a node has answered,
// whether or not the ring changed; an error wrapping every node's error if
// none did; ctx's error if ctx ends first; and ErrClosed after Close. One
// Refresh runs at a time: a concurrent call waits for the one at work.
func (s *Selector) Refresh(ctx context.Context) error {
	if s.life.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.life, cancel)()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return s.ctxErr(ctx)
	}
	defer func() { <-s.sem }()

	nodes := s.candidatesLocked()
	var errs []error
	for i, addr := range nodes {
		version, members, mode, err := s.fetchLocked(ctx, addr)
		if err != nil && ended(ctx) {
			return s.ctxErr(ctx)
		}
		if err == nil {
			err = s.installLocked(version, members, mode)
		}
		if err != nil {
			s.log.Warn("ring: node did not answer config get cluster", "node", addr, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		s.next = addr
		if v, _ := s.Current(); version < v {
			// Behind the cluster: ask another node next time.
			s.log.Info("ring: node is behind the cluster", "node", addr, "version", version, "have", v)
			s.next = nodes[(i+1)%len(nodes)]
		}
		return nil
	}
	return fmt.Errorf("ring: no node answered config get cluster: %w", errors.Join(errs...))
}

// ended reports whether ctx has ended or its deadline has passed: a
// connection's deadline, set from ctx's, can fire just before ctx's timer.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// ctxErr is the error for a ctx that ended: ErrClosed if Close ended it.
func (s *Selector) ctxErr(ctx context.Context) error {
	if s.life.Err() != nil {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// candidatesLocked lists the nodes to ask, each once: the one to ask first,
// then the current members in ring order, then the seeds.
func (s *Selector) candidatesLocked() []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	add(s.next)
	if st := s.cur.Load(); st != nil {
		for _, a := range st.addrs {
			add(a.String())
		}
	}
	for _, a := range s.seeds {
		add(a)
	}
	return out
}

// fetchLocked gets the config and its ring mode from the node at addr,
// over the connection kept from the last poll if it is to addr and still
// works, else over a new one, which it keeps if the exchange succeeds.
func (s *Selector) fetchLocked(ctx context.Context, addr string) (uint64, []Member, Mode, error) {
	if s.conn != nil && s.connAddr == addr {
		version, members, mode, err := s.exchangeLocked(ctx)
		if err == nil {
			return version, members, mode, nil
		}
		// The node may have closed an idle connection: try a new one.
		s.closeConnLocked()
		if ctx.Err() != nil {
			return 0, nil, 0, err
		}
	}
	s.closeConnLocked()
	actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	nc, err := s.cfg.Dialer.DialContext(actx, "tcp", addr)
	if err != nil {
		return 0, nil, 0, err
	}
	s.conn, s.connAddr, s.br = nc, addr, bufio.NewReaderSize(nc, 4096)
	if s.cfg.SASL != nil {
		if err := s.loginLocked(); err != nil {
			s.closeConnLocked()
			return 0, nil, 0, err
		}
	}
	version, members, mode, err := s.exchangeLocked(actx)
	if err != nil {
		s.closeConnLocked()
	}
	return version, members, mode, err
}

// askRing is the request for the cluster's ring mode, which a Selector
// that follows the cluster's mode (Config.Ring zero) pipelines after each
// request for the config: about 40 bytes more each way a poll.
const askRing = "config get ring\r\n"

// exchangeLocked sends `config get cluster` (and `config get ring`, unless
// Config.Ring is set) on s.conn and reads the replies, within Timeout and
// ctx.
func (s *Selector) exchangeLocked(ctx context.Context) (uint64, []Member, Mode, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	nc := s.conn
	dl, _ := ctx.Deadline()
	if err := nc.SetDeadline(dl); err != nil {
		return 0, nil, 0, err
	}
	// Cancellation interrupts the exchange by moving the deadline.
	defer context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })()
	if s.cfg.SASL != nil {
		return s.binaryConfigLocked()
	}
	req := "config get cluster\r\n"
	if s.cfg.Ring == 0 {
		req += askRing
	}
	if _, err := io.WriteString(nc, req); err != nil {
		return 0, nil, 0, err
	}
	version, members, err := ParseClusterConfig(s.br)
	if err != nil {
		return 0, nil, 0, err
	}
	mode, err := s.readModeLocked(s.br)
	return version, members, mode, err
}

// readModeLocked returns the ring mode to build the config's ring in: the
// one Config.Ring forces, if set (nothing is read then); else the one
// the reply to `config get ring` on br announces, and ModeMemcluster if it
// announces none (ERROR, END, a CLIENT_ERROR or SERVER_ERROR). A mode the
// Selector does not know is an error: it cannot place keys as the nodes
// do. Its caller holds br.
func (s *Selector) readModeLocked(br *bufio.Reader) (Mode, error) {
	if s.cfg.Ring != 0 {
		return s.cfg.Ring, nil
	}
	mode, err := ParseRingConfig(br)
	if errors.Is(err, ErrNoRingConfig) || errors.As(err, new(*ServerError)) {
		return ModeMemcluster, nil
	}
	return mode, err
}

func (s *Selector) closeConnLocked() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.connAddr, s.br = nil, "", nil
	}
}

// installLocked takes the config, whose ring is in mode, if its version is
// higher than the one held (or if none is held); with the one held, it
// puts back the members whose mark (MarkDown) has ended.
func (s *Selector) installLocked(version uint64, members []Member, mode Mode) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	old := s.cur.Load()
	if old != nil && version <= old.version {
		if !s.unmarkEndedLocked(time.Now()) {
			return nil
		}
		version, members, mode = old.version, old.all, old.mode
	}
	st, err := s.buildLocked(version, members, mode, old)
	if err != nil {
		return err
	}
	s.cur.Store(st)
	if old == nil || version != old.version {
		s.log.Info("ring: cluster config changed", "version", version, "members", st.ring.Len(), "ring", mode.String())
	}
	return nil
}

// unmarkEndedLocked removes the marks that end by now, and reports whether
// there were any. s.stateMu must be held.
func (s *Selector) unmarkEndedLocked(now time.Time) bool {
	ended := false
	for m, until := range s.down {
		if !now.Before(until) {
			delete(s.down, m)
			ended = true
		}
	}
	return ended
}

// buildLocked returns the state of a config: the ring in mode of its
// members but those marked down (unless that is all of them), each with
// the NodeAddr it had in old, if any. A config without a marked member
// ends its mark. s.stateMu must be held.
func (s *Selector) buildLocked(version uint64, members []Member, mode Mode, old *state) (*state, error) {
	on := members
	if len(s.down) > 0 {
		on = nil
		listed := map[Member]bool{}
		for _, m := range members {
			listed[m] = true
			if _, down := s.down[m]; !down {
				on = append(on, m)
			}
		}
		for m := range s.down {
			if !listed[m] {
				delete(s.down, m) // gone from the cluster: nothing to mark
			}
		}
		if len(on) == 0 {
			on = members // a ring with no node would fail every request
		}
	}
	r, err := NewMode(on, mode)
	if err != nil {
		return nil, err
	}
	kept := map[Member]net.Addr{}
	if old != nil {
		for i, a := range old.addrs {
			kept[old.ring.Member(i)] = a
		}
	}
	st := &state{version: version, mode: r.Mode(), ring: r, addrs: make([]net.Addr, r.Len()), all: slices.Clone(members)}
	for i := range st.addrs {
		m := r.Member(i)
		if a, ok := kept[m]; ok {
			st.addrs[i] = a
		} else {
			st.addrs[i] = &NodeAddr{member: m, addr: m.Addr()}
		}
	}
	return st, nil
}

// MarkDown takes the node at addr (an address PickServer returned) off the
// ring for Config.DownFor, or until a config without it comes first: its
// keys go to the nodes that own them without it. A client calls it when it
// cannot reach the node, so that the requests that follow go elsewhere at
// once instead of failing until the cluster's gossip has dropped the node
// and the next poll has brought the new config. It reports whether the
// ring changed: false if the node is not on it, or is the last.
//
// A node marked down that was only slow comes back when the mark ends;
// values set elsewhere meanwhile for its keys are not on it, and a value it
// held may have been changed elsewhere: a mark trades those stale reads for
// failed requests, as any client that ejects failing servers does.
func (s *Selector) MarkDown(addr net.Addr) bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	old := s.cur.Load()
	if old == nil || len(old.addrs) < 2 {
		return false
	}
	i := slices.IndexFunc(old.addrs, func(a net.Addr) bool { return a.String() == addr.String() })
	if i < 0 {
		return false
	}
	m := old.ring.Member(i)
	if s.down == nil {
		s.down = map[Member]time.Time{}
	}
	s.down[m] = time.Now().Add(s.cfg.DownFor)
	st, err := s.buildLocked(old.version, old.all, old.mode, old)
	if err != nil {
		delete(s.down, m)
		return false
	}
	s.cur.Store(st)
	s.log.Warn("ring: node marked down", "node", m.Addr(), "for", s.cfg.DownFor)
	return true
}

// Close stops the polling, interrupts any Refresh at work and closes the
// Selector's connection. PickServer and Each keep answering from the last
// ring. Close is safe to call more than once; it returns nil.
func (s *Selector) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		if s.done != nil {
			<-s.done
		}
		s.sem <- struct{}{} // held for good: no Refresh runs again
		s.closeConnLocked()
	})
	return nil
}
