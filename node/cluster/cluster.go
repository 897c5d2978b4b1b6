// Package cluster is a node's membership: memberlist gossip with the other
// nodes, the member metadata each publishes (its memcached address and
// epoch), the cluster version, rejoining the seeds, the gossip keys and
// their rotation, and the view of the cluster that "config get cluster" and
// a key's owner are answered from. It is the only package that imports
// memberlist. Come here for anything about which nodes are in the cluster.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/memcluster/memcluster/ring"
)

// ErrStarted is returned by Start when it has already been called.
var ErrStarted = errors.New("node: cluster already started")

// View is a node's view of the cluster at one moment: the live
// members, in the order the ring sorts them, and the cluster version.
type View struct {
	// Version rises on every change of membership a node sees, and once
	// membership is stable it is the same on every node.
	Version uint64
	// Members are the live members (suspected ones included), sorted by
	// Name, which is each member's host|ip|port entry, as the ring and
	// every client name them.
	Members []ring.Member
	// Mode is the mode of the cluster's ring (Config.Ring):
	// ModeMemcluster in the zero View.
	Mode ring.Mode
}

// view is an immutable snapshot of the cluster with everything a request
// needs ready: the ring and the "config get cluster" reply.
type view struct {
	version uint64
	ring    *ring.Ring
	config  []byte // the whole reply to "config get cluster"
	key     string // the member set it was built from, for refresh
	// names are the memberlist names of its members, and since when it
	// is the node's view: set by refresh.
	names []string
	since time.Time
	// byEntry names its members by their host|ip|port entries, for
	// "config get members"; nil where the names are not known.
	byEntry map[string]string
	// self is this node's index in ring, -1 if it is not a member (a
	// draining node's view): set by setView.
	self int
}

// newView returns the view of members at version, its ring in the
// cluster's mode (Config.Ring).
func (c *Cluster) newView(version uint64, members []ring.Member) (*view, error) {
	r, err := ring.NewMode(members, c.cfg.Ring)
	if err != nil {
		return nil, err
	}
	return &view{version: version, ring: r, config: ring.FormatClusterConfig(version, r.Members()), self: -1}, nil
}

// Cluster is a node's membership: its published memcached address and, when
// gossip is on, memberlist, the members it reports, and the cluster version.
//
// The cluster version is a Lamport-style epoch. Every node publishes its own
// epoch in its memberlist metadata. When a node sees the set of members
// change, it sets its epoch to one more than the highest epoch it has ever
// seen and republishes it; a change of another member's epoch alone is not a
// change of membership. A node's version is the highest epoch among the
// members it sees. It therefore rises with every change (a member that
// leaves takes its epoch with it, but the change makes the survivors go
// beyond it), never falls, and is a function of the member set and their
// metadata, which memberlist makes the same on every node once membership is
// stable.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	port int // the node's memcached port, for a view without a listener's

	started atomic.Bool
	// cur is the current view. It is nil until StartCluster, and stays nil
	// for a single node listening on every interface: the view then
	// depends on the address a client reached the node at.
	cur atomic.Pointer[view]
	// viewChanged is closed, and replaced, when cur is: what WatchConfig
	// waits on. Guarded by viewMu.
	viewMu      sync.Mutex
	viewChanged chan struct{}
	// onView is OnViewChange's function, called under viewMu.
	onView func(self ring.Member, old, cur *ring.Ring)
	// singleCache is the last view made for a single node from a
	// connection's address.
	singleCache atomic.Pointer[view]

	// Set by StartCluster, then read-only.
	self    ring.Member // this node's memcached address, Name empty
	name    string      // this node's memberlist name
	ml      *memberlist.Memberlist
	seeds   []string // cfg.Join
	epoch   atomic.Uint64
	change  chan struct{} // a membership event happened; capacity 1
	publish chan struct{} // the epoch changed; capacity 1
	stop    chan struct{} // closed when the node leaves
	wg      sync.WaitGroup
	left    sync.Once

	keyMu sync.Mutex // guards keyring; held by ReloadKeys throughout
	// keyring is memberlist's when the gossip is encrypted, nil until
	// then. ReloadKeys changes it in place while memberlist reads it.
	keyring *memberlist.Keyring

	pubMu   sync.Mutex // guards leaving; held while publishing
	leaving bool       // Leave has begun: publish no more
	// leavingMeta makes the metadata say that the node is leaving (see
	// metaLeaving): set by Leave, which publishes it before it goes.
	leavingMeta atomic.Bool
	// draining is set by Drain: the view is the one the others move to,
	// and refresh no longer replaces it.
	draining atomic.Bool
	// joined is set once every seed has been found a member, or at once
	// without seeds (see Joined).
	joined atomic.Bool

	mu sync.Mutex // guards members, gossipAddrs, gossipAddr, seen, lastKey and restarted
	// members are the other live members, by memberlist name.
	members map[string]remoteMember
	// gossipAddrs are the gossip addresses of every live member, this
	// node included, as ip:port.
	gossipAddrs map[string]bool
	gossipAddr  string // this node's
	seen        uint64 // the highest epoch ever seen
	lastKey     string // the member set the epoch was last bumped for
	// restarted is set when a member's epoch fell: it restarted at the
	// same address. That is a change too, or the version could fall.
	restarted bool
	// quorum names the members of the node's stable view (see refresh),
	// less those that have left since, as against failed or been cut
	// off: a node that sees no more than half of it is in a minority (see
	// snapshotLocked). gone are the members that left, until they return.
	quorum   map[string]bool
	gone     map[string]bool
	minority bool // the last snapshot was in a minority
	// news are the members that joined, left or failed since refresh
	// last looked, for it to log with the view they lead to.
	news []memberNews
	// Owned by the goroutine that calls refresh.
	stable *view // the last view that was the node's for settle or more

	// hadPeers is set once another member has been seen: from then on
	// "stats" lists gossip_dropped (see GossipDropped).
	hadPeers atomic.Bool
	// gossipDropped counts the gossip messages memberlist dropped as
	// undecodable or not encrypted with a key of ours (see memberlistLog).
	gossipDropped atomic.Uint64
}

// memberNews is a change of membership, as the log tells it.
type memberNews struct {
	what   string // "joined", "left" or "failed"
	name   string // memberlist name
	member ring.Member
	gossip string // gossip address, ip:port
}

// remoteMember is what a member publishes in its metadata.
type remoteMember struct {
	member  ring.Member
	epoch   uint64
	leaving bool   // it said it is leaving: its departure is no failure
	gossip  string // its gossip address, ip:port
}

// New returns the membership of a node configured by cfg, whose memcached
// port is port; it gossips once Start is called. log receives its lines.
func New(cfg Config, port int, log *slog.Logger) *Cluster {
	c := &Cluster{cfg: cfg.WithDefaults(), port: port, log: log.With("component", "cluster")}
	// Epochs start from the clock, so that the version after a restart of
	// the whole cluster is still above every version clients saw before:
	// clients take a new view only for a higher version.
	c.seen = uint64(time.Now().Unix())
	return c
}

// View returns the node's current view of the cluster. It is the
// zero View until Start, and for a single node listening on
// every interface, whose entry depends on the address a client reached.
func (c *Cluster) View() View {
	v := c.cur.Load()
	if v == nil {
		return View{}
	}
	return View{Version: v.version, Members: v.ring.Members(), Mode: v.ring.Mode()}
}

// Start publishes the node under the memcached address of the first TCP
// listener in ls and, when its Config turns gossip on, starts
// memberlist and joins the seeds in the background. The node's ListenAndServe calls it
// between Listen and serving; a program that calls Listen and Serve itself
// calls it in between too. Without it, "config get cluster" lists the node
// alone at the address each client reached it at.
//
// If gossip cannot start (its address is in use, say), Start returns
// the error and leaves the node a single node that lists itself; the caller
// decides whether to go on. Calling it a second time returns
// ErrStarted. ctx bounds the name lookups of the start; the seeds are
// joined later.
func (c *Cluster) Start(ctx context.Context, ls []net.Listener) error {
	if c.started.Swap(true) {
		return ErrStarted
	}
	if !c.cfg.Enabled() {
		c.joined.Store(true) // nothing to join
	}
	if _, err := ring.NewMode(nil, c.cfg.Ring); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	var tcp *net.TCPAddr
	for _, l := range ls {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			tcp = a
			break
		}
	}
	advHost, advIP, advPort, err := c.advertise(ctx)
	if err != nil {
		return err
	}
	if tcp == nil {
		if c.cfg.Enabled() {
			return errors.New("node: a cluster needs a TCP listener to publish")
		}
		return nil
	}
	self := ring.Member{Port: tcp.Port}
	switch {
	case advIP.IsValid():
		self.Host, self.IP = advHost, advIP.String()
	case !tcp.IP.IsUnspecified():
		self.IP = tcp.IP.String()
		self.Host = self.IP
	}
	if !c.cfg.Enabled() {
		if self.IP != "" {
			// A fixed address: one view for every client.
			v, err := c.newView(1, []ring.Member{self})
			if err != nil {
				return fmt.Errorf("node: publishing %s: %w", self.Entry(), err)
			}
			c.setView(v)
		}
		return nil
	}

	c.name = c.cfg.Name
	if c.name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.name = net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	}
	mc, err := c.memberlistConfig(ctx, advIP, advPort)
	if err != nil {
		return err
	}
	if self.IP == "" {
		// Listening on every interface: publish the IP memberlist
		// advertises, which the other members reach.
		ip, err := gossipIP(mc)
		if err != nil {
			return err
		}
		self.IP, self.Host = ip, ip
	}
	if err := self.Validate(); err != nil {
		return fmt.Errorf("node: publishing %s: %w", self.Entry(), err)
	}
	c.self = self
	c.members = make(map[string]remoteMember)
	c.gossipAddrs = make(map[string]bool)
	c.quorum = map[string]bool{c.name: true}
	c.gone = make(map[string]bool)
	c.change = make(chan struct{}, 1)
	c.publish = make(chan struct{}, 1)
	c.stop = make(chan struct{})
	c.seeds = c.cfg.Join
	ml, err := memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("node: starting gossip on %s: %w", c.cfg.GossipAddr, err)
	}
	c.ml = ml
	c.keyMu.Lock()
	c.keyring = mc.Keyring
	c.keyMu.Unlock()
	c.refresh()
	c.mu.Lock()
	gossipAddr := c.gossipAddr
	c.mu.Unlock()
	c.log.Info("gossip started", "name", c.name, "gossip_addr", gossipAddr, "memcached", c.self.Entry(), "seeds", c.seeds,
		"encrypted", mc.Keyring != nil)
	if c.cfg.Transport == nil && mc.Keyring == nil && !isLoopback(mc.BindAddr) {
		c.log.Warn(unencryptedGossipWarning, "gossip_addr", c.cfg.GossipAddr, "bind_ip", mc.BindAddr)
	}
	c.wg.Add(3)
	go c.loop()
	go c.publishLoop()
	go c.rejoinLoop()
	return nil
}

// unencryptedGossipWarning is logged at start by a node whose gossip is in
// the clear on an address other hosts can reach: whoever reaches it can
// join the cluster, be listed in "config get cluster" and be sent keys.
const unencryptedGossipWarning = "gossip is not encrypted and listens on a non-loopback address: " +
	"anyone who can reach it can join the cluster. Give every node the same key: " +
	"head -c 32 /dev/urandom | base64 > gossip.key, then --gossip-key-file=gossip.key " +
	"(or keep gossip on this host: --gossip-addr=127.0.0.1:7946)"

// isLoopback reports whether ip, as memberlist's BindAddr holds it, is a
// loopback address.
func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Unmap().IsLoopback()
}

// advertise parses cfg.AdvertiseAddr, resolving a host name. It returns a
// zero IP when none is set.
func (c *Cluster) advertise(ctx context.Context) (host string, ip netip.Addr, port int, err error) {
	a := c.cfg.AdvertiseAddr
	if a == "" {
		return "", netip.Addr{}, 0, nil
	}
	host = a
	if h, p, err := net.SplitHostPort(a); err == nil {
		host = h
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return "", netip.Addr{}, 0, fmt.Errorf("node: advertise address %q: bad port", a)
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return "", netip.Addr{}, 0, fmt.Errorf("node: advertise address %q: no host", a)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.String(), ip.Unmap(), port, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", netip.Addr{}, 0, fmt.Errorf("node: advertise address %q: %w", a, err)
	}
	// Prefer IPv4, as memberlist does for its own choice.
	slices.SortStableFunc(ips, func(x, y netip.Addr) int {
		switch {
		case x.Unmap().Is4() && !y.Unmap().Is4():
			return -1
		case !x.Unmap().Is4() && y.Unmap().Is4():
			return 1
		}
		return 0
	})
	return host, ips[0].Unmap(), port, nil
}

// Leave tells the cluster this node is going and stops gossip: peers drop
// it at once instead of waiting to detect a failure. It waits at most
// LeaveTimeout, or until ctx is done, for the leave message to go out.
func (c *Cluster) Leave(ctx context.Context) {
	if c.ml == nil {
		return
	}
	c.left.Do(func() {
		timeout := c.cfg.LeaveTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(d))
		}
		// First say so, so that the others count the departure as a
		// leave and not a failure (see snapshotLocked).
		c.leavingMeta.Store(true)
		c.pubMu.Lock()
		if timeout > 0 {
			if err := c.ml.UpdateNode(min(timeout, c.cfg.GossipInterval)); err != nil {
				c.log.Debug("publishing the leave", "err", err)
			}
		}
		// No alive message may follow the leave: it would bring the
		// node back to life in its peers' eyes.
		c.leaving = true
		c.pubMu.Unlock()
		close(c.stop)
		if timeout > 0 {
			if err := c.ml.Leave(timeout); err != nil {
				// Every peer may be leaving too; otherwise they
				// will detect the failure instead.
				c.log.Warn("the leave message may not have gone out", "err", err)
			} else {
				c.log.Info("left the cluster")
			}
		}
		if err := c.ml.Shutdown(); err != nil {
			c.log.Warn("stopping gossip", "err", err)
		}
		// A join under way may take its TCP timeout to give up.
		done := make(chan struct{})
		go func() {
			c.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
	})
}

// Drain leaves the cluster, as Leave does, for a node that goes on serving
// for a while (its drain) so that clients can move its keys away before it
// closes. From the start of the drain the node answers with the view the
// other members move to once they see it go: the others, without this node,
// one version above the view it had, which is the version they compute (see
// Cluster). A ring client that asks this node therefore moves at once, and
// one that asks another node moves as soon as that node has seen the leave.
// Drain reports whether there were other members to move to: if not, it
// only leaves, and there is nothing to drain for.
func (c *Cluster) Drain(ctx context.Context) bool {
	if c.ml == nil {
		return false
	}
	cur := c.cur.Load()
	var rest []ring.Member
	if cur != nil {
		for _, m := range cur.ring.Members() {
			if m.Entry() != c.self.Entry() {
				rest = append(rest, m)
			}
		}
	}
	if len(rest) == 0 {
		c.Leave(ctx)
		return false
	}
	v, err := c.newView(cur.version+1, rest)
	if err != nil { // cannot happen: these members made a ring before
		c.Leave(ctx)
		return false
	}
	v.byEntry = cur.byEntry
	c.draining.Store(true)
	c.setView(v)
	c.log.Info("draining: left the cluster's view", "version", v.version, "members", v.ring.Len())
	c.Leave(ctx)
	// A refresh that began before draining was set may have stored its
	// view since; Leave has waited for it to end.
	c.setView(v)
	return true
}

// Joined reports whether the node has joined its cluster: it has no seeds,
// every seed it was given (each address a name resolves to) has been a
// member at once, or its view has held another member: a seed address
// that lingers in DNS after its node died does not keep a node that found
// the others out of service. A node without gossip has nothing to join:
// true once Start has published it. Once true, it stays so.
func (c *Cluster) Joined() bool { return c.joined.Load() }

// Draining reports whether the node is draining (see Drain).
func (c *Cluster) Draining() bool { return c.draining.Load() }

// currentView returns the view to answer a client that reached the node at
// local.
func (c *Cluster) currentView(local net.Addr) *view {
	if v := c.cur.Load(); v != nil {
		return v
	}
	// A single node without a fixed address: list it at the address the
	// client reached.
	self := ring.Member{Host: "localhost", IP: "127.0.0.1", Port: defaultMemcachedPort}
	if a, ok := local.(*net.TCPAddr); ok {
		ip := a.IP.String()
		self = ring.Member{Host: ip, IP: ip, Port: a.Port}
	} else if c.port > 0 {
		self.Port = c.port
	}
	if v := c.singleCache.Load(); v != nil && v.ring.Len() == 1 && v.ring.Member(0).Entry() == self.Entry() {
		return v
	}
	v, err := c.newView(1, []ring.Member{self})
	if err != nil {
		v, _ = c.newView(1, nil)
	}
	c.singleCache.Store(v)
	return v
}

// publishLoop republishes the node's metadata, with its current epoch,
// whenever refresh asks, until the node leaves. memberlist's UpdateNode must
// not run concurrently with itself, hence one goroutine.
func (c *Cluster) publishLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.publish:
		}
		c.pubMu.Lock()
		if !c.leaving {
			// The new epoch goes out with the next gossip. UpdateNode
			// waits for that, but no longer than this.
			if err := c.ml.UpdateNode(c.cfg.GossipInterval); err != nil {
				c.log.Debug("publishing the epoch", "err", err)
			}
		}
		c.pubMu.Unlock()
	}
}

// notify wakes the loop after a membership event.
func (c *Cluster) notify() {
	select {
	case c.change <- struct{}{}:
	default:
	}
}

// loop rebuilds the view after membership events until the node leaves.
func (c *Cluster) loop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.change:
			c.refresh()
		}
	}
}

// refresh rebuilds the view from the members and, if the set of members
// changed, bumps and republishes this node's epoch. One goroutine calls it
// at a time: start, then loop.
func (c *Cluster) refresh() {
	now := time.Now()
	cur := c.cur.Load()
	c.mu.Lock()
	if cur != nil && cur.names != nil && now.Sub(cur.since) >= c.settle() && c.stable != cur {
		// The view has held long enough to judge majorities by.
		c.stable = cur
		c.quorum = make(map[string]bool, len(cur.names))
		for _, name := range cur.names {
			if !c.gone[name] {
				c.quorum[name] = true
			}
		}
	}
	members, version, key, bumped, minority := c.snapshotLocked()
	news := c.news
	c.news = nil
	if len(news) > 0 {
		// Told with the view the node serves once this refresh is done.
		defer c.logNews(news)
	}
	names := make([]string, 0, len(c.members)+1)
	names = append(names, c.name)
	byEntry := make(map[string]string, len(c.members)+1)
	byEntry[c.self.Entry()] = c.name
	for name, m := range c.members {
		names = append(names, name)
		byEntry[m.member.Entry()] = name
	}
	c.mu.Unlock()
	if minority {
		// Answer with the last view that held, below the majority's
		// version (see snapshotLocked).
		if c.stable != nil && cur != c.stable && !c.draining.Load() {
			c.log.Info("cluster view: back to the last stable one", "version", c.stable.version, "members", c.stable.ring.Len())
			c.setView(c.stable)
		}
		return
	}
	if bumped {
		select {
		case c.publish <- struct{}{}:
		default: // a publication is pending and will carry the new epoch
		}
	}
	if old := c.cur.Load(); old != nil && old.version == version && old.key == key {
		return
	}
	v, err := c.newView(version, members)
	if err != nil {
		// Two members publishing one address: keep one of each.
		c.log.Warn("members publish conflicting addresses", "err", err)
		slices.SortFunc(members, func(a, b ring.Member) int { return strings.Compare(a.Entry(), b.Entry()) })
		members = slices.CompactFunc(members, func(a, b ring.Member) bool { return a.Entry() == b.Entry() })
		if v, err = c.newView(version, members); err != nil {
			c.log.Error("cannot build the ring", "err", err)
			return
		}
	}
	v.key, v.names, v.since, v.byEntry = key, names, now, byEntry
	if c.draining.Load() {
		return // the drain's view stays (see Drain)
	}
	c.log.Info("cluster view", "version", v.version, "members", v.ring.Len())
	c.setView(v)
}

// logNews logs each change of membership in news, by name and address,
// with the version and size of the view the node now serves: joins and
// graceful leaves at info, failures at warning.
func (c *Cluster) logNews(news []memberNews) {
	var version uint64
	members := 0
	if v := c.cur.Load(); v != nil {
		version, members = v.version, v.ring.Len()
	}
	for _, n := range news {
		level := slog.LevelInfo
		if n.what == "failed" {
			level = slog.LevelWarn
		}
		c.log.Log(context.Background(), level, "member "+n.what, "name", n.name, "addr", n.member.Addr(),
			"entry", n.member.Entry(), "gossip_addr", n.gossip, "version", version, "members", members)
	}
}

// settle is how long a view must hold before the node judges majorities by
// it: longer than memberlist takes to declare the members on the far side
// of a partition dead one after the other (two suspicion timeouts), so that
// the first of those failures, which alone looks like a lost minority, does
// not become the measure.
func (c *Cluster) settle() time.Duration {
	return 2 * time.Duration(c.cfg.SuspicionMult) * c.cfg.ProbeInterval
}

// snapshotLocked returns the live members, this node first, the version,
// and the member set as a string; it bumps this node's epoch, and reports
// so, if that set is not the one it was last bumped for. It reports
// minority, and bumps nothing, if the node sees no majority of the members
// of its stable view. c.mu must be held.
func (c *Cluster) snapshotLocked() (members []ring.Member, version uint64, key string, bumped, minority bool) {
	members = make([]ring.Member, 0, len(c.members)+1)
	members = append(members, c.self)
	maxEpoch := uint64(0)
	for _, m := range c.members {
		members = append(members, m.member)
		maxEpoch = max(maxEpoch, m.epoch)
	}
	c.seen = max(c.seen, maxEpoch)
	entries := make([]string, len(members))
	for i, m := range members {
		entries[i] = m.Entry()
	}
	slices.Sort(entries)
	key = strings.Join(entries, " ")
	// A node that sees no more than half of the members of its stable
	// view (see refresh) is cut off from the rest, or they failed: it
	// cannot tell which. It goes back to answering with that view, at its
	// version, and takes no new epoch, while the majority moves on to a
	// higher version: ring clients, which take the highest version,
	// follow the majority, and one that asks this node first is not sent
	// every key to it. Once it sees a majority again, that is a change of
	// membership like any other.
	seen := 1 // this node
	for name := range c.members {
		if c.quorum[name] {
			seen++
		}
	}
	if minority := 2*seen <= len(c.quorum); minority {
		if !c.minority {
			c.log.Warn("this node sees no majority of the cluster; its view will not take a new version",
				"members_seen", len(members), "last_majority", len(c.quorum))
		}
		c.minority = true
		return members, max(c.epoch.Load(), maxEpoch), key, false, true
	}
	if c.minority {
		c.log.Info("this node sees a majority of the cluster again", "members", len(members))
		c.minority = false
	}
	if key != c.lastKey || c.restarted {
		c.lastKey, c.restarted = key, false
		c.seen++
		c.epoch.Store(c.seen)
		bumped = true
	}
	return members, max(c.epoch.Load(), maxEpoch), key, bumped, false
}

// rejoinLoop joins the seeds at once and then, until the node leaves,
// those that are not live members: every RejoinInterval, and more often
// (from firstRejoinDelay, doubling) while a join has just failed, so that
// nodes started together find each other within moments. Seeds that stay
// unresolvable or unreachable are warned about, with back-off (see
// seedWarnings).
func (c *Cluster) rejoinLoop() {
	defer c.wg.Done()
	if len(c.seeds) == 0 {
		c.joined.Store(true)
		return
	}
	delay := firstRejoinDelay
	warn := seedWarnings{grace: c.cfg.RejoinInterval}
	for {
		res := c.rejoin()
		if res.joined {
			c.joined.Store(true)
			delay = c.cfg.RejoinInterval
		} else {
			delay = min(2*delay, c.cfg.RejoinInterval)
		}
		switch {
		case res.ok:
			if warn.succeeded() {
				c.log.Info("seeds reached", "seeds", c.seeds)
			}
		case res.stopped:
			// The node is leaving: not the seeds' fault.
		default:
			if ok, attempts := warn.failed(time.Now()); ok {
				c.log.Warn("cannot join the seeds; retrying", "seeds", c.seeds,
					"unresolved", res.unresolved, "unreachable", res.unreachable, "err", res.err,
					"failed_attempts", attempts, "next_warning_in", warn.gap.String())
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// firstRejoinDelay is the first pause after a failed join.
const firstRejoinDelay = 100 * time.Millisecond

// The spacing of the warnings about seeds that cannot be joined: the
// first once the seeds have failed for longer than a grace period (nodes
// started together miss each other for a moment), the next after
// firstSeedWarnGap, then twice as long each time, up to maxSeedWarnGap.
const (
	firstSeedWarnGap = 10 * time.Second
	maxSeedWarnGap   = 5 * time.Minute
)

// seedWarnings decides when a run of failed joins is warned about. The
// zero value with a grace is ready; one goroutine uses it.
type seedWarnings struct {
	grace    time.Duration // how long failures last before the first warning
	since    time.Time     // the first failure of the run; zero if none
	next     time.Time     // no warning before then
	gap      time.Duration // the wait after the last warning
	attempts int           // failed attempts since the last warning
	warned   bool          // a warning was given in this run
}

// failed records a failed attempt at now and reports whether to warn,
// with the number of failed attempts the warning covers.
func (w *seedWarnings) failed(now time.Time) (warn bool, attempts int) {
	w.attempts++
	if w.since.IsZero() {
		w.since = now
		w.next = now.Add(w.grace)
	}
	if now.Before(w.next) {
		return false, 0
	}
	if w.gap == 0 {
		w.gap = firstSeedWarnGap
	} else {
		w.gap = min(2*w.gap, maxSeedWarnGap)
	}
	w.next = now.Add(w.gap)
	w.warned = true
	attempts, w.attempts = w.attempts, 0
	return true, attempts
}

// succeeded ends a run of failures and reports whether it had been
// warned about.
func (w *seedWarnings) succeeded() bool {
	warned := w.warned
	*w = seedWarnings{grace: w.grace}
	return warned
}

// rejoinResult is the outcome of one rejoin.
type rejoinResult struct {
	// joined: every address the seeds resolved to (one at least) is a
	// live member. ok: that, and every seed resolved.
	joined, ok  bool
	stopped     bool     // the node left meanwhile
	unresolved  []string // seeds whose names did not resolve
	unreachable []string // seed addresses the join did not reach
	err         error    // the join's or a lookup's error
}

// rejoin joins the seeds that are not live members.
func (c *Cluster) rejoin() rejoinResult {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RejoinInterval)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	stopped := func() bool {
		select {
		case <-c.stop:
			return true
		default:
			return false
		}
	}
	addrs, unresolved, lookupErr := resolveSeeds(ctx, c.seeds)
	res := rejoinResult{unresolved: unresolved, err: lookupErr}
	c.mu.Lock()
	missing := addrs[:0]
	for _, a := range addrs {
		if !c.gossipAddrs[a] {
			missing = append(missing, a)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		res.joined = len(addrs) > 0
		res.ok = res.joined && len(unresolved) == 0
		res.stopped = stopped()
		return res
	}
	if ctx.Err() != nil {
		res.stopped = stopped()
		return res
	}
	n, err := c.ml.Join(missing)
	if err != nil || n < len(missing) {
		c.log.Debug("joining seeds", "seeds", missing, "joined", n, "err", err)
		c.mu.Lock()
		for _, a := range missing {
			if !c.gossipAddrs[a] {
				res.unreachable = append(res.unreachable, a)
			}
		}
		c.mu.Unlock()
		res.err = errors.Join(res.err, err)
		res.stopped = stopped()
		return res
	}
	c.log.Debug("joined seeds", "seeds", missing, "joined", n)
	res.joined = true
	res.ok = len(unresolved) == 0
	return res
}

// resolveSeeds turns host:port seeds into ip:port addresses, every address
// of each name (a headless service names all its pods). It returns the
// seeds that do not resolve, and the lookups' errors, apart.
func resolveSeeds(ctx context.Context, seeds []string) (addrs, unresolved []string, err error) {
	var errs []error
	for _, s := range seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			host, port = s, strconv.Itoa(DefaultGossipPort)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), port))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			unresolved = append(unresolved, s)
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), port))
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), unresolved, errors.Join(errs...)
}

// setMember records a member from memberlist's event.
func (c *Cluster) setMember(n *memberlist.Node) {
	addr := net.JoinHostPort(netipString(n.Addr), strconv.Itoa(int(n.Port)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.members[n.Name]; ok {
		delete(c.gossipAddrs, old.gossip)
	}
	if n.Name == c.name && c.gossipAddr != "" {
		delete(c.gossipAddrs, c.gossipAddr)
	}
	if n.Name == c.name {
		c.gossipAddr = addr
		c.gossipAddrs[addr] = true
		return
	}
	nm, err := decodeMeta(n.Meta)
	if err != nil {
		c.log.Debug("ignoring a member with bad metadata", "member", n.Name, "err", err)
		delete(c.members, n.Name)
		return
	}
	old, known := c.members[n.Name]
	if known && nm.epoch < old.epoch {
		c.restarted = true
	}
	if !known {
		c.news = append(c.news, memberNews{what: "joined", name: n.Name, member: nm.member, gossip: addr})
		c.hadPeers.Store(true)
	}
	c.members[n.Name] = remoteMember{member: nm.member, epoch: nm.epoch, leaving: nm.leaving, gossip: addr}
	delete(c.gone, n.Name)
	c.gossipAddrs[addr] = true
}

// removeMember forgets a member that left or died. memberlist tells the
// two apart by the node's state: StateLeft after its leave message,
// StateDead once it is declared failed; a member that said it was leaving
// (its metadata) left, even if its leave message was lost.
func (c *Cluster) removeMember(n *memberlist.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.members[n.Name]; ok {
		what := "failed"
		if n.State == memberlist.StateLeft || old.leaving {
			what = "left"
		}
		c.news = append(c.news, memberNews{what: what, name: n.Name, member: old.member, gossip: old.gossip})
		delete(c.gossipAddrs, old.gossip)
		delete(c.members, n.Name)
		if old.leaving {
			delete(c.quorum, n.Name)
			c.gone[n.Name] = true
		}
	}
}

// netipString renders an IP as netip does (no IPv4-in-IPv6 form).
func netipString(ip net.IP) string {
	if a, ok := netip.AddrFromSlice(ip); ok {
		return a.Unmap().String()
	}
	return ip.String()
}

// defaultMemcachedPort is memcached's port, listed for a node that serves
// no TCP listener.
const defaultMemcachedPort = 11211

// setView makes v the node's view and wakes those waiting for a change.
func (c *Cluster) setView(v *view) {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	old := c.cur.Load()
	if v.ring.Len() > 1 {
		c.joined.Store(true) // see Joined
	}
	if old != v { // v is not served yet: it may still be written
		v.self = -1
		for i := range v.ring.Len() {
			if m := v.ring.Member(i); m.Host == c.self.Host && m.IP == c.self.IP && m.Port == c.self.Port {
				v.self = i
			}
		}
	}
	if c.onView != nil && old != v {
		var oldRing *ring.Ring
		if old != nil {
			oldRing = old.ring
		}
		c.onView(c.self, oldRing, v.ring)
	}
	c.cur.Store(v)
	if c.viewChanged != nil {
		close(c.viewChanged)
		c.viewChanged = nil
	}
}

// OnViewChange makes fn be called each time the node's view changes, with
// this node's member (Name empty) and the old and the new views' rings
// (the old nil for the first), which are immutable. It must be called before Start. fn is called
// by one goroutine at a time, before the new view is served; it must not
// block nor call the Cluster.
func (c *Cluster) OnViewChange(fn func(self ring.Member, old, cur *ring.Ring)) {
	c.onView = fn
}

// WatchConfig returns the reply to "config get cluster" for a client that
// reached the node at local if its version is above after; otherwise no
// reply, and a channel closed when the view next changes, to call again
// then.
func (c *Cluster) WatchConfig(local net.Addr, after uint64) ([]byte, <-chan struct{}) {
	c.viewMu.Lock()
	defer c.viewMu.Unlock()
	if v := c.currentView(local); v.version > after {
		return v.config, nil
	}
	if c.viewChanged == nil {
		c.viewChanged = make(chan struct{})
	}
	return nil, c.viewChanged
}

// ConfigReply returns the reply to "config get cluster" for a client that
// reached the node at local, in ElastiCache's Auto Discovery format. The
// caller must not modify it.
func (c *Cluster) ConfigReply(local net.Addr) []byte { return c.currentView(local).config }

// Placement returns the node's current view's version and ring, and this
// node's index in it (-1 if it is not a member: draining); 0, nil, -1
// before Start.
func (c *Cluster) Placement() (version uint64, r *ring.Ring, self int) {
	v := c.cur.Load()
	if v == nil {
		return 0, nil, -1
	}
	return v.version, v.ring, v.self
}

// MembersReply returns the reply to memcluster's "config get members" for a
// client that reached the node at local: the view's version and members as
// "config get cluster" has them, each with its name in the cluster (its
// memberlist name), one a line, in the same framing:
//
//	CONFIG members 0 <bytes>\r\n<version>\n<host>|<ip>|<port> <name>\n...\r\nEND\r\n
//
// where <bytes> counts the block between the header and its closing \r\n.
// A member whose name is not known (a node that does not gossip) is named
// by its entry. Control characters in a name are written as '?'.
func (c *Cluster) MembersReply(local net.Addr) []byte {
	v := c.currentView(local)
	var body []byte
	body = strconv.AppendUint(body, v.version, 10)
	body = append(body, '\n')
	for _, m := range v.ring.Members() {
		entry := m.Entry()
		name, ok := v.byEntry[entry]
		if !ok || name == "" {
			name = entry
		}
		body = append(body, entry...)
		body = append(body, ' ')
		for i := 0; i < len(name); i++ {
			b := name[i]
			if b < ' ' || b == 0x7f {
				b = '?'
			}
			body = append(body, b)
		}
		body = append(body, '\n')
	}
	out := make([]byte, 0, len(body)+40)
	out = append(out, "CONFIG members 0 "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	out = append(out, body...)
	return append(out, "\r\nEND\r\n"...)
}

// Route returns the member that owns key in the node's view, and whether
// that is another node: false for a node without a cluster or a key of its
// own. A draining node, no longer in its view, routes every key to
// another. It does not allocate.
func (c *Cluster) Route(key []byte) (owner ring.Member, remote bool) {
	v := c.cur.Load()
	if v == nil {
		return ring.Member{}, false
	}
	i := v.ring.OwnerIndex(key)
	if i < 0 || i == v.self {
		return ring.Member{}, false
	}
	return v.ring.Member(i), true
}

// RingMode returns the mode of the cluster's ring (Config.Ring), which
// "config get ring" announces: ModeMemcluster by default.
func (c *Cluster) RingMode() ring.Mode {
	if c.cfg.Ring == 0 {
		return ring.ModeMemcluster
	}
	return c.cfg.Ring
}

// Owner returns the member the ring of the view for a client that reached
// the node at local gives key to.
func (c *Cluster) Owner(local net.Addr, key []byte) ring.Member {
	return c.currentView(local).ring.Owner(key)
}

// Name returns the node's name in the cluster (its memberlist name), or ""
// before Start and for a node that does not gossip.
func (c *Cluster) Name() string { return c.name }

// GossipDropped returns how many gossip messages the node has dropped as
// undecodable or not encrypted with one of its keys, and whether "stats"
// should list the count: once the node has had another member or dropped
// a message, so that a single node's stats stay memcached's.
func (c *Cluster) GossipDropped() (n uint64, show bool) {
	n = c.gossipDropped.Load()
	return n, n > 0 || c.hadPeers.Load()
}
