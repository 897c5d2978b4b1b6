package ring

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/memcluster/memcluster/internal/testutil"
)

// fakeNode is a tiny memcached on 127.0.0.1:0 that answers `config get
// cluster` with whatever config the test sets, records the keys of every
// get and gets, and misses them all.
type fakeNode struct {
	t      *testing.T
	ln     net.Listener
	member Member

	mu      sync.Mutex // guards the fields below
	version uint64
	members []Member
	silent  bool          // read requests, answer nothing
	ring    string        // the mode `config get ring` announces; "": ERROR
	watch   bool          // answer `config watch cluster`
	changed chan struct{} // closed, and replaced, by set
	configs int           // config get cluster requests answered
	rings   int           // config get ring requests answered
	watches int           // config watch cluster requests answered
	dials   int           // connections accepted
	gets    [][]string    // the keys of each get or gets request
	conns   []net.Conn
	closed  bool
}

func startFake(t *testing.T) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	n := &fakeNode{t: t, ln: ln, member: Member{Host: "localhost", IP: "127.0.0.1", Port: port}, changed: make(chan struct{})}
	go n.serve()
	t.Cleanup(n.stop)
	return n
}

func (n *fakeNode) addr() string { return n.ln.Addr().String() }

// set makes the node answer version and members.
func (n *fakeNode) set(version uint64, members ...*fakeNode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.version = version
	n.members = n.members[:0]
	for _, m := range members {
		n.members = append(n.members, m.member)
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

// setRing makes the node announce mode ("" for none: ERROR) and, if watch,
// answer `config watch cluster` as memcluster does.
func (n *fakeNode) setRing(mode string, watch bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ring, n.watch = mode, watch
}

// ringCounts returns how many `config get ring` and `config watch
// cluster` requests the node answered.
func (n *fakeNode) ringCounts() (rings, watches int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rings, n.watches
}

func (n *fakeNode) setSilent() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.silent = true
}

// stop closes the listener and every connection: the node is down.
func (n *fakeNode) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	n.ln.Close()
	for _, c := range n.conns {
		c.Close()
	}
}

func (n *fakeNode) counts() (configs, dials int, gets [][]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.configs, n.dials, slices.Clone(n.gets)
}

func (n *fakeNode) serve() {
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Close()
			return
		}
		n.dials++
		n.conns = append(n.conns, c)
		n.mu.Unlock()
		go n.handle(c)
	}
}

func (n *fakeNode) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		n.mu.Lock()
		var reply []byte
		switch {
		case n.silent:
		case len(f) == 3 && f[0] == "config" && f[1] == "get" && f[2] == "cluster":
			n.configs++
			reply = FormatClusterConfig(n.version, n.members)
		case len(f) == 3 && f[0] == "config" && f[1] == "get" && f[2] == "ring" && n.ring != "":
			n.rings++
			reply = fmt.Appendf(nil, "CONFIG ring 0 %d\r\n%s\r\nEND\r\n", len(n.ring), n.ring)
		case len(f) == 4 && f[0] == "config" && f[1] == "watch" && f[2] == "cluster" && n.watch:
			after, _ := strconv.ParseUint(f[3], 10, 64)
			for n.version <= after && !n.closed {
				ch := n.changed
				n.mu.Unlock()
				select {
				case <-ch:
				case <-time.After(100 * time.Millisecond): // to see closed
				}
				n.mu.Lock()
			}
			n.watches++
			reply = FormatClusterConfig(n.version, n.members)
		case len(f) > 1 && (f[0] == "get" || f[0] == "gets"):
			n.gets = append(n.gets, f[1:])
			reply = []byte("END\r\n")
		default:
			reply = []byte("ERROR\r\n")
		}
		n.mu.Unlock()
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

// deadAddr returns an address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

var quiet = slog.New(slog.DiscardHandler)

// newSelector returns a Selector that polls only when told, closed at the
// end of the test.
func newSelector(t *testing.T, cfg Config, seeds ...string) *Selector {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = -1
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	s, err := NewSelector(seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func refresh(t *testing.T, s *Selector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

// ports returns the ports of the ring's members, in ring order.
func ports(r *Ring) []int {
	var ps []int
	for _, m := range r.Members() {
		ps = append(ps, m.Port)
	}
	return ps
}

func wantCurrent(t *testing.T, s *Selector, version uint64, nodes ...*fakeNode) {
	t.Helper()
	v, r := s.Current()
	var want []int
	for _, n := range nodes {
		want = append(want, n.member.Port)
	}
	slices.Sort(want)
	got := ports(r)
	slices.Sort(got)
	if v != version || !slices.Equal(got, want) {
		t.Errorf("Current() = version %d, ports %v; want %d, %v", v, got, version, want)
	}
}

func TestSelectorNoServers(t *testing.T) {
	a := startFake(t)
	s := newSelector(t, Config{}, a.addr())
	if _, err := s.PickServer("k"); err != memcache.ErrNoServers {
		t.Errorf("before any config: PickServer error %v, want ErrNoServers", err)
	}
	calls := 0
	if err := s.Each(func(net.Addr) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("before any config: Each made %d calls, returned %v", calls, err)
	}
	if v, r := s.Current(); v != 0 || r.Len() != 0 {
		t.Errorf("before any config: Current() = %d, %d members", v, r.Len())
	}

	a.set(1) // a cluster of nobody
	refresh(t, s)
	wantCurrent(t, s, 1)
	if _, err := s.PickServer("k"); err != memcache.ErrNoServers {
		t.Errorf("empty ring: PickServer error %v, want ErrNoServers", err)
	}
	c := memcache.NewFromSelector(s)
	if _, err := c.Get("k"); err != memcache.ErrNoServers {
		t.Errorf("gomemcache Get on an empty ring: %v, want ErrNoServers", err)
	}
}

func TestSelectorVersionOnlyRises(t *testing.T) {
	a, b := startFake(t), startFake(t)
	s := newSelector(t, Config{}, a.addr())
	for _, step := range []struct {
		serve   uint64
		members []*fakeNode
		want    uint64
		wantIn  []*fakeNode
	}{
		{5, []*fakeNode{a, b}, 5, []*fakeNode{a, b}},
		{3, []*fakeNode{a}, 5, []*fakeNode{a, b}}, // lower: ignored
		{5, []*fakeNode{a}, 5, []*fakeNode{a, b}}, // the same: ignored
		{6, []*fakeNode{a}, 6, []*fakeNode{a}},
		{7, []*fakeNode{b, a}, 7, []*fakeNode{a, b}},
	} {
		a.set(step.serve, step.members...)
		b.set(step.serve, step.members...)
		refresh(t, s)
		wantCurrent(t, s, step.want, step.wantIn...)
	}
}

// TestSelectorBehindNode checks that a node that answers with an older
// version than the Selector holds makes it ask another node next time.
func TestSelectorBehindNode(t *testing.T) {
	a, b := startFake(t), startFake(t)
	a.set(5, a, b)
	b.set(5, a, b)
	s := newSelector(t, Config{}, a.addr(), b.addr())
	refresh(t, s)
	wantCurrent(t, s, 5, a, b)
	a.set(4, a) // a falls behind, b moves on
	b.set(6, b)
	refresh(t, s) // asks a, which is behind
	wantCurrent(t, s, 5, a, b)
	refresh(t, s) // asks b
	wantCurrent(t, s, 6, b)
}

func TestSelectorFailover(t *testing.T) {
	t.Run("second seed", func(t *testing.T) {
		b := startFake(t)
		b.set(3, b)
		s := newSelector(t, Config{}, deadAddr(t), b.addr())
		refresh(t, s)
		wantCurrent(t, s, 3, b)
	})
	t.Run("silent seed", func(t *testing.T) {
		// Refresh gives up on a silent node after its Timeout: one
		// with 100 ms reaches b while one with an hour, which reached
		// the silent node first, still waits on it.
		a, b := startFake(t), startFake(t)
		a.setSilent()
		b.set(3, b)
		patient := newSelector(t, Config{Timeout: time.Hour}, a.addr(), b.addr())
		stuck := make(chan error, 1)
		go func() { stuck <- patient.Refresh(context.Background()) }()
		testutil.WaitFor(t, 10*time.Second, "the patient selector's request", func() bool { _, d, _ := a.counts(); return d == 1 })
		s := newSelector(t, Config{Timeout: 100 * time.Millisecond}, a.addr(), b.addr())
		refresh(t, s)
		wantCurrent(t, s, 3, b)
		select {
		case err := <-stuck:
			t.Errorf("a Refresh with an hour's Timeout went past the silent node as soon as one with 100ms: %v", err)
		default:
		}
	})
	t.Run("all down", func(t *testing.T) {
		s := newSelector(t, Config{}, deadAddr(t), deadAddr(t))
		err := s.Refresh(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no node answered") {
			t.Errorf("Refresh with every node down: %v", err)
		}
	})
	t.Run("polling moves on when a node dies", func(t *testing.T) {
		a, b, c := startFake(t), startFake(t), startFake(t)
		for _, n := range []*fakeNode{a, b, c} {
			n.set(1, a, b, c)
		}
		// Only a is a seed: the Selector finds b and c from the config.
		s := newSelector(t, Config{PollInterval: 10 * time.Millisecond}, a.addr())
		testutil.WaitFor(t, 10*time.Second, "the first config", func() bool { v, _ := s.Current(); return v == 1 })
		a.stop()
		b.set(2, b, c)
		c.set(2, b, c)
		testutil.WaitFor(t, 10*time.Second, "version 2 from b or c", func() bool { v, _ := s.Current(); return v == 2 })
		wantCurrent(t, s, 2, b, c)
		// And it keeps one connection to the node it polls. (These nodes
		// answer "config watch cluster" with ERROR: the poller tries it
		// once on each, over a connection of its own, and then polls.)
		polls := func() int {
			bc, _, _ := b.counts()
			cc, _, _ := c.counts()
			return bc + cc
		}
		dials := func() int {
			_, bd, _ := b.counts()
			_, cd, _ := c.counts()
			return bd + cd
		}
		testutil.WaitFor(t, 10*time.Second, "three polls of b or c", func() bool { return polls() >= 3 })
		before, at := dials(), polls()
		testutil.WaitFor(t, 10*time.Second, "ten more polls of b or c", func() bool { return polls() >= at+10 })
		if after := dials(); after != before {
			t.Errorf("b and c saw %d new connections over ten polls; want the one kept open", after-before)
		}
	})
	t.Run("reconnects to a node that closed the connection", func(t *testing.T) {
		a := startFake(t)
		a.set(1, a)
		s := newSelector(t, Config{}, a.addr())
		refresh(t, s)
		a.mu.Lock()
		for _, c := range a.conns {
			c.Close() // an idle timeout
		}
		a.mu.Unlock()
		a.set(2, a)
		refresh(t, s)
		wantCurrent(t, s, 2, a)
	})
}

// TestSelectorAddrIdentity checks that a node's net.Addr is the same value
// on every call and across configs that keep the node.
func TestSelectorAddrIdentity(t *testing.T) {
	a, b, c := startFake(t), startFake(t), startFake(t)
	a.set(1, a, b)
	s := newSelector(t, Config{}, a.addr())
	refresh(t, s)
	first := map[string]net.Addr{}
	for i := range 200 {
		k := "key" + strconv.Itoa(i)
		x, err := s.PickServer(k)
		if err != nil {
			t.Fatal(err)
		}
		if y, _ := s.PickServer(k); x != y {
			t.Fatalf("PickServer(%q) returned %p then %p", k, x, y)
		}
		first[k] = x
	}
	var each []net.Addr
	s.Each(func(a net.Addr) error { each = append(each, a); return nil })
	for k, x := range first {
		if !slices.Contains(each, x) {
			t.Fatalf("PickServer(%q) = %v (%p), not among Each's %v", k, x, x, each)
		}
	}

	a.set(2, a, b, c)
	refresh(t, s)
	stayed := 0
	for k, x := range first {
		y, _ := s.PickServer(k)
		if y.String() == x.String() {
			stayed++
			if y != x {
				t.Fatalf("after c joined, PickServer(%q) = %p, was %p for the same node %v", k, y, x, x)
			}
		} else if y.(*NodeAddr).Member().Port != c.member.Port {
			t.Fatalf("after c joined, key %q moved from %v to %v", k, x, y)
		}
	}
	if stayed == 0 || stayed == len(first) {
		t.Errorf("%d of %d keys stayed after a third node joined", stayed, len(first))
	}
	na := first["key0"].(*NodeAddr)
	if m := na.Member(); m.Name != m.Entry() || na.Network() != "tcp" || na.String() != m.Addr() {
		t.Errorf("NodeAddr %v: network %q, member %v", na, na.Network(), m)
	}
}

// TestSelectorGetMulti checks that gomemcache's GetMulti through a Selector
// sends one request to each node, with the keys the ring gives it.
func TestSelectorGetMulti(t *testing.T) {
	nodes := []*fakeNode{startFake(t), startFake(t), startFake(t)}
	for _, n := range nodes {
		n.set(1, nodes...)
	}
	s := newSelector(t, Config{}, nodes[0].addr())
	refresh(t, s)
	_, r := s.Current()

	var keys []string
	want := map[int][]string{}
	for i := range 300 {
		k := "user:" + strconv.Itoa(i)
		keys = append(keys, k)
		p := r.OwnerString(k).Port
		want[p] = append(want[p], k)
	}
	c := memcache.NewFromSelector(s)
	items, err := c.GetMulti(keys)
	if err != nil || len(items) != 0 {
		t.Fatalf("GetMulti: %d items, %v", len(items), err)
	}
	for _, n := range nodes {
		_, _, gets := n.counts()
		if len(gets) != 1 {
			t.Errorf("node %d got %d get requests, want 1", n.member.Port, len(gets))
			continue
		}
		got := slices.Sorted(slices.Values(gets[0]))
		w := slices.Sorted(slices.Values(want[n.member.Port]))
		if !slices.Equal(got, w) {
			t.Errorf("node %d got keys %v, want %v", n.member.Port, got, w)
		}
	}
	if len(want) != 3 {
		t.Errorf("300 keys landed on %d nodes, want 3", len(want))
	}
}

func TestSelectorClose(t *testing.T) {
	a := startFake(t)
	a.set(1, a)
	s, err := NewSelector([]string{a.addr()}, Config{PollInterval: 5 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the first config", func() bool { v, _ := s.Current(); return v == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Refresh(context.Background()); err != ErrClosed {
		t.Errorf("Refresh after Close: %v, want ErrClosed", err)
	}
	if _, err := s.PickServer("k"); err != nil {
		t.Errorf("PickServer after Close: %v", err)
	}
	select {
	case <-s.done:
	default:
		t.Error("the poller still runs after Close")
	}
	if s.conn != nil {
		t.Error("the connection is still open after Close")
	}
}

// TestSelectorCloseInterrupts checks that Close does not wait out a
// Refresh stuck on a silent node.
func TestSelectorCloseInterrupts(t *testing.T) {
	a := startFake(t)
	a.setSilent()
	s := newSelector(t, Config{Timeout: time.Hour}, a.addr())
	errc := make(chan error, 1)
	go func() { errc <- s.Refresh(context.Background()) }()
	testutil.WaitFor(t, 10*time.Second, "the request", func() bool { _, d, _ := a.counts(); return d == 1 })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	// Waiting out the Refresh would take its Timeout, an hour: a minute
	// is a failsafe, far short of it.
	select {
	case err := <-errc:
		if err != ErrClosed {
			t.Errorf("Refresh interrupted by Close: %v, want ErrClosed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Refresh still waits on the silent node a minute after Close")
	}
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close has not returned after a minute")
	}
}

func TestSelectorRefreshContext(t *testing.T) {
	a := startFake(t)
	a.setSilent()
	s := newSelector(t, Config{Timeout: time.Minute}, a.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Refresh past its context: %v, want DeadlineExceeded", err)
	}
}

func TestNewSelectorErrors(t *testing.T) {
	for name, seeds := range map[string][]string{
		"no seeds": nil,
		"no port":  {"localhost"},
	} {
		if s, err := NewSelector(seeds, Config{}); err == nil {
			s.Close()
			t.Errorf("%s: NewSelector(%q) succeeded", name, seeds)
		}
	}
}

func BenchmarkPickServer(b *testing.B) {
	ms := families[1].members(100)
	s, err := NewSelector([]string{"127.0.0.1:1"}, Config{PollInterval: -1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.sem <- struct{}{}
	if err := s.installLocked(1, ms, ModeMemcluster); err != nil {
		b.Fatal(err)
	}
	<-s.sem
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i*7919) + ":profile"
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.PickServer(keys[i&(len(keys)-1)]); err != nil {
			b.Fatal(err)
		}
	}
}

// pickedPorts returns the port PickServer gives each of keys.
func pickedPorts(t *testing.T, s *Selector, keys []string) []int {
	t.Helper()
	var out []int
	for _, k := range keys {
		a, err := s.PickServer(k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a.(*NodeAddr).Member().Port)
	}
	return out
}

// ownerPorts returns the port of each key's owner on a ring of nodes in
// mode.
func ownerPorts(t *testing.T, mode Mode, keys []string, nodes ...*fakeNode) []int {
	t.Helper()
	var ms []Member
	for _, n := range nodes {
		m := n.member
		m.Name = m.Entry() // as the config names it
		ms = append(ms, m)
	}
	r, err := NewMode(ms, mode)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, k := range keys {
		out = append(out, r.OwnerString(k).Port)
	}
	return out
}

// TestSelectorFollowsRingMode checks that a Selector builds its ring in
// the mode the node it asks announces: ketama from a node announcing it
// (and keys placed as a ketama ring of the config's members places them),
// memcluster's from one that answers `config get ring` with ERROR, as
// memcached and ElastiCache do; that Config.Ring overrides the
// announcement, and is then not asked for; and that a mode the Selector
// does not know fails the refresh and keeps the ring it has.
func TestSelectorFollowsRingMode(t *testing.T) {
	a, b, c := startFake(t), startFake(t), startFake(t)
	var keys []string
	for i := range 300 {
		keys = append(keys, "key:"+strconv.Itoa(i))
	}
	ketama, memcluster := ownerPorts(t, ModeKetama, keys, a, b, c), ownerPorts(t, ModeMemcluster, keys, a, b, c)
	if slices.Equal(ketama, memcluster) {
		t.Fatal("the two modes place 300 keys alike: the test cannot tell them apart")
	}
	for _, n := range []*fakeNode{a, b, c} {
		n.set(7, a, b, c)
	}
	checkMode := func(t *testing.T, s *Selector, mode Mode, want []int) {
		t.Helper()
		if _, r := s.Current(); r.Mode() != mode {
			t.Errorf("ring mode %v, want %v", r.Mode(), mode)
		}
		if got := pickedPorts(t, s, keys); !slices.Equal(got, want) {
			t.Errorf("PickServer does not place keys as a %v ring", mode)
		}
	}

	a.setRing("ketama", false)
	s := newSelector(t, Config{}, a.addr())
	refresh(t, s)
	checkMode(t, s, ModeKetama, ketama)
	s0 := s
	if rings, _ := a.ringCounts(); rings != 1 {
		t.Errorf("%d config get ring requests, want 1", rings)
	}
	// A marked node comes off a ring in the same mode.
	addr, _ := s.PickServer(keys[0])
	if !s.MarkDown(addr) {
		t.Fatal("MarkDown: no change")
	}
	if _, r := s.Current(); r.Mode() != ModeKetama || r.Len() != 2 {
		t.Errorf("after MarkDown: mode %v, %d members; want ketama, 2", r.Mode(), r.Len())
	}

	t.Run("ERROR means memcluster", func(t *testing.T) {
		s := newSelector(t, Config{}, b.addr())
		refresh(t, s)
		checkMode(t, s, ModeMemcluster, memcluster)
	})
	t.Run("Config.Ring forces the mode", func(t *testing.T) {
		s := newSelector(t, Config{Ring: ModeKetama}, c.addr())
		refresh(t, s)
		checkMode(t, s, ModeKetama, ketama)
		if rings, _ := c.ringCounts(); rings != 0 {
			t.Errorf("%d config get ring requests, want none", rings)
		}
	})
	t.Run("unknown mode", func(t *testing.T) {
		d := startFake(t)
		d.set(8, d)
		d.setRing("rendezvous", false)
		s := newSelector(t, Config{}, d.addr())
		err := s.Refresh(context.Background())
		if err == nil || !strings.Contains(err.Error(), `unknown ring mode "rendezvous"`) {
			t.Errorf("Refresh: %v, want an unknown ring mode", err)
		}
		if v, r := s.Current(); v != 0 || r.Len() != 0 {
			t.Errorf("after a refused config: version %d, %d members; want none", v, r.Len())
		}
		// The Selector holding a's ketama ring keeps it when a node
		// announces a mode it does not know; it takes the config from a
		// node that announces none.
		a.setRing("rendezvous", false)
		for _, n := range []*fakeNode{a, b, c} {
			n.set(8, a, b)
		}
		refresh(t, s0)
		if v, r := s0.Current(); v != 8 || r.Mode() != ModeMemcluster {
			t.Errorf("version %d, mode %v; want 8 from b or c, memcluster", v, r.Mode())
		}
	})
}

// TestSelectorWatchFollowsRingMode checks that the ring mode comes with
// each config a watch brings: a node that changes its config and its mode
// moves a watching Selector to both.
func TestSelectorWatchFollowsRingMode(t *testing.T) {
	a, b := startFake(t), startFake(t)
	a.setRing("ketama", true)
	a.set(1, a, b)
	s := newSelector(t, Config{PollInterval: time.Hour}, a.addr())
	var keys []string
	for i := range 300 {
		keys = append(keys, "key:"+strconv.Itoa(i))
	}
	testutil.WaitFor(t, 5*time.Second, "the first config, in ketama", func() bool {
		v, r := s.Current()
		return v == 1 && r.Mode() == ModeKetama
	})
	// The poller is now watching a: the next config comes by the watch.
	testutil.WaitFor(t, 5*time.Second, "a watch", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.configs == 1 // asked once; the watch is waiting
	})
	a.setRing("memcluster", true)
	a.set(2, a, b)
	testutil.WaitFor(t, 5*time.Second, "version 2, in memcluster's mode", func() bool {
		v, r := s.Current()
		return v == 2 && r.Mode() == ModeMemcluster
	})
	if got, want := pickedPorts(t, s, keys), ownerPorts(t, ModeMemcluster, keys, a, b); !slices.Equal(got, want) {
		t.Error("PickServer does not place keys as a memcluster ring")
	}
	configs, _, _ := a.counts()
	if _, watches := a.ringCounts(); watches < 1 || configs != 1 {
		t.Errorf("%d watches answered, %d config gets; want the change by a watch", watches, configs)
	}
}
