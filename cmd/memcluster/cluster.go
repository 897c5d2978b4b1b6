package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/cluster"
	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/ring"
)

// clusterFlagDefs are memcluster's own options, for the cluster. They have
// long forms only, so they can never clash with a memcached letter.
var clusterFlagDefs = []flagDef{
	{0, "gossip-addr", requiredArg, setGossipAddr},
	{0, "no-cluster", noArg, setNoCluster},
	{0, "advertise-addr", requiredArg, setAdvertiseAddr},
	{0, "name", requiredArg, func(p *parser, _, val string) error { p.o.cfg.Cluster.Name = val; return nil }},
	{0, "join", requiredArg, addJoin},
	{0, "rejoin-interval", requiredArg, setClusterDuration(func(c *node.ClusterConfig) *time.Duration { return &c.RejoinInterval })},
	{0, "probe-interval", requiredArg, setClusterDuration(func(c *node.ClusterConfig) *time.Duration { return &c.ProbeInterval })},
	{0, "probe-timeout", requiredArg, setClusterDuration(func(c *node.ClusterConfig) *time.Duration { return &c.ProbeTimeout })},
	{0, "suspicion-mult", requiredArg, setClusterInt(func(c *node.ClusterConfig) *int { return &c.SuspicionMult })},
	{0, "suspicion-max-timeout-mult", requiredArg, setClusterInt(func(c *node.ClusterConfig) *int { return &c.SuspicionMaxTimeoutMult })},
	{0, "gossip-interval", requiredArg, setClusterDuration(func(c *node.ClusterConfig) *time.Duration { return &c.GossipInterval })},
	{0, "push-pull-interval", requiredArg, setClusterDuration(func(c *node.ClusterConfig) *time.Duration { return &c.PushPullInterval })},
	{0, "leave-timeout", requiredArg, setClusterDuration(func(c *node.ClusterConfig) *time.Duration { return &c.LeaveTimeout })},
	{0, "gossip-key-file", requiredArg, setGossipKeyFile},
	{0, "drain", requiredArg, setDrain},
	{0, "ring", requiredArg, setRing},
	{0, "handoff", requiredArg, setHandoff},
	{0, "handoff-push", requiredArg, setHandoffPush},
	{0, "forward", noArg, func(p *parser, _, _ string) error { p.o.cfg.Cluster.Forward = true; return nil }},
	{0, "metrics-addr", requiredArg, func(p *parser, opt, val string) error {
		if _, _, err := net.SplitHostPort(val); err != nil {
			return fmt.Errorf("invalid value %q for %s: want host:port, such as 127.0.0.1:9150 or :9150", val, opt)
		}
		p.o.cfg.MetricsAddr = val
		return nil
	}},
	{0, "peer-auth-file", requiredArg, func(p *parser, opt, val string) error {
		if val == "" {
			return fmt.Errorf("invalid value %q for %s: want a file", val, opt)
		}
		p.o.cfg.Cluster.PeerAuthFile = val
		return nil
	}},
}

// defaultHandoffPush is --handoff-push, in megabytes: a default -m's worth,
// which a drain's five seconds push over a LAN.
const defaultHandoffPush = 64

// setHandoffPush sets --handoff-push: megabytes, 0 for none.
func setHandoffPush(p *parser, opt, val string) error {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 0 || n > 1<<20 {
		return fmt.Errorf("invalid value %q for %s: want megabytes, 0 for none", val, opt)
	}
	p.o.cfg.Cluster.HandoffPush = n << 20
	return nil
}

// setRing sets --ring: the ring mode, memcluster or ketama.
func setRing(p *parser, opt, val string) error {
	m, err := ring.ParseMode(val)
	if err != nil {
		return fmt.Errorf("invalid value %q for %s: want memcluster or ketama", val, opt)
	}
	p.o.cfg.Cluster.Ring = m
	return nil
}

// setHandoff sets --handoff: a duration, 0 for none.
func setHandoff(p *parser, opt, val string) error {
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 {
		return fmt.Errorf("invalid value %q for %s: want a duration such as 1m, or 0 for none", val, opt)
	}
	if d == 0 {
		d = -1 // cluster.Config: negative is off
	}
	p.o.cfg.Cluster.Handoff = d
	return nil
}

// defaultDrain is how long a member serves on after SIGTERM (--drain):
// five of a ring client's polls (ring.DefaultPollInterval), so that every
// client has asked, moved and finished the requests it had begun.
const defaultDrain = 5 * time.Second

// setDrain sets --drain: a duration, 0 for none.
func setDrain(p *parser, opt, val string) error {
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 {
		return fmt.Errorf("invalid value %q for %s: want a duration such as 5s, or 0 for none", val, opt)
	}
	p.o.drain = d
	return nil
}

// defaultGossipAddr is where the daemon gossips when neither --gossip-addr
// nor --no-cluster is given and -l names no host (see gossipAddrFor):
// cluster.DefaultGossipAddr. Its port is the default gossip port whatever
// -l says. Tests point it at an address of their own, so that what the
// daemon does when its default is taken does not depend on who holds port
// 7946; it is a constant string, so that a test may also set it in a built
// binary (go build -ldflags=-X=main.defaultGossipAddr=...).
var defaultGossipAddr = cluster.DefaultGossipAddr

// gossipAddrFor returns the default gossip address of a node listening on
// listenAddrs (the -l addresses, in order, each host or host:port): the
// host of the first, so that a node -l keeps on loopback or on one
// interface gossips there too, with the port of fallback; fallback itself
// when there is no -l or its first host is every interface ("", "*",
// 0.0.0.0, ::). A name stays a name, which the node resolves as it binds.
func gossipAddrFor(listenAddrs []string, fallback string) string {
	if len(listenAddrs) == 0 {
		return fallback
	}
	host := listenAddrs[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if ip, err := netip.ParseAddr(host); host == "" || host == "*" || err == nil && ip.IsUnspecified() {
		return fallback
	}
	_, port, err := net.SplitHostPort(fallback)
	if err != nil {
		port = strconv.Itoa(cluster.DefaultGossipPort)
	}
	return net.JoinHostPort(host, port)
}

// defaultClusterConfig returns the daemon's cluster defaults: gossip on
// defaultGossipAddr, every timing written out.
func defaultClusterConfig() node.ClusterConfig {
	return node.ClusterConfig{
		GossipAddr:              defaultGossipAddr,
		RejoinInterval:          cluster.DefaultRejoinInterval,
		ProbeInterval:           cluster.DefaultProbeInterval,
		ProbeTimeout:            cluster.DefaultProbeTimeout,
		SuspicionMult:           cluster.DefaultSuspicionMult,
		SuspicionMaxTimeoutMult: cluster.DefaultSuspicionMaxTimeoutMult,
		GossipInterval:          cluster.DefaultGossipInterval,
		PushPullInterval:        cluster.DefaultPushPullInterval,
		LeaveTimeout:            cluster.DefaultLeaveTimeout,
		HandoffPush:             defaultHandoffPush << 20,
	}
}

// setGossipAddr sets --gossip-addr: host:port, :port, or "" for no gossip.
func setGossipAddr(p *parser, opt, val string) error {
	p.gossipSet = true
	if val == "" {
		p.o.cfg.Cluster.GossipAddr = ""
		return nil
	}
	if _, err := splitHostPort(opt, val, false); err != nil {
		return err
	}
	p.o.cfg.Cluster.GossipAddr = val
	return nil
}

// setNoCluster sets --no-cluster: a single node, gossiping with no one.
func setNoCluster(p *parser, _, _ string) error {
	p.gossipSet = true
	p.noCluster = true
	p.o.cfg.Cluster.GossipAddr = ""
	return nil
}

// setAdvertiseAddr sets --advertise-addr: host or host:port.
func setAdvertiseAddr(p *parser, opt, val string) error {
	if _, err := splitHostPort(opt, val, true); err != nil {
		return err
	}
	p.o.cfg.Cluster.AdvertiseAddr = val
	return nil
}

// addJoin adds --join seeds: a list separated by ',', each host:port or a
// host, which means port 7946. It may repeat.
func addJoin(p *parser, opt, val string) error {
	for _, s := range strings.Split(val, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		hasPort, err := splitHostPort(opt, s, true)
		if err != nil {
			return err
		}
		if !hasPort {
			s = net.JoinHostPort(strings.Trim(s, "[]"), strconv.Itoa(cluster.DefaultGossipPort))
		}
		p.o.cfg.Cluster.Join = append(p.o.cfg.Cluster.Join, s)
	}
	return nil
}

// setGossipKeyFile sets --gossip-key-file. The node reads the file when it
// starts gossip, and again on SIGHUP.
func setGossipKeyFile(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("invalid value \"\" for %s: want a file", opt)
	}
	p.o.cfg.Cluster.GossipKeyFile = val
	return nil
}

// splitHostPort checks an address given to opt: host:port (the host may be
// empty, or an IPv6 address in brackets) or, if portOptional, a host alone.
// It reports whether a port was given.
func splitHostPort(opt, val string, portOptional bool) (bool, error) {
	host, port, err := net.SplitHostPort(val)
	if err != nil {
		if !portOptional || val == "" || strings.Contains(strings.Trim(val, "[]"), "]") {
			return false, fmt.Errorf("invalid address %q for %s: want host:port", val, opt)
		}
		if strings.Count(val, ":") == 1 {
			return false, fmt.Errorf("invalid address %q for %s: want host or host:port", val, opt)
		}
		return false, nil
	}
	if portOptional && host == "" {
		return false, fmt.Errorf("invalid address %q for %s: no host", val, opt)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, fmt.Errorf("invalid address %q for %s: bad port", val, opt)
	}
	return true, nil
}

// setClusterDuration returns the setter of a positive duration option
// ("400ms", "2s").
func setClusterDuration(field func(*node.ClusterConfig) *time.Duration) func(p *parser, opt, val string) error {
	return func(p *parser, opt, val string) error {
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return fmt.Errorf("invalid value %q for %s: want a positive duration such as 500ms or 2s", val, opt)
		}
		*field(&p.o.cfg.Cluster) = d
		return nil
	}
}

// setClusterInt returns the setter of a positive integer option.
func setClusterInt(field func(*node.ClusterConfig) *int) func(p *parser, opt, val string) error {
	return func(p *parser, opt, val string) error {
		n, err := atoi(opt, val)
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("invalid value %q for %s: must be at least 1", val, opt)
		}
		*field(&p.o.cfg.Cluster) = n
		return nil
	}
}

// finishCluster checks the cluster options against each other and against
// the listeners. Without TCP there is no address to publish: gossip is then
// off unless asked for, which is an error.
func (p *parser) finishCluster(tcpOff bool) error {
	c := &p.o.cfg.Cluster
	if p.noCluster {
		c.GossipAddr = ""
	}
	if !p.gossipSet {
		// Gossip is reachable from wherever -l lets clients in, and no
		// further: the first -l host, when it names one.
		c.GossipAddr = gossipAddrFor(p.o.cfg.ListenAddrs, defaultGossipAddr)
	}
	if c.GossipAddr == "" && len(c.Join) > 0 {
		return errors.New("--join needs gossip: drop --no-cluster or give --gossip-addr")
	}
	if c.GossipAddr == "" && c.GossipKeyFile != "" {
		return errors.New("--gossip-key-file needs gossip: drop --no-cluster or give --gossip-addr")
	}
	if tcpOff {
		if p.gossipSet && c.GossipAddr != "" || len(c.Join) > 0 || c.GossipKeyFile != "" {
			return errors.New("a cluster needs a TCP port to publish: --gossip-addr, --join and --gossip-key-file cannot go with -s or -p 0")
		}
		c.GossipAddr = ""
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("--probe-timeout (%v) must be shorter than --probe-interval (%v)", c.ProbeTimeout, c.ProbeInterval)
	}
	// Encrypted gossip asks for a cluster: a node that cannot have its
	// gossip address, or its keys, must not run alone unencrypted.
	p.o.gossipChosen = p.gossipSet || len(c.Join) > 0 || c.GossipKeyFile != ""
	return nil
}

// clusterUsage is the -h text of the cluster options.
const clusterUsage = `
Cluster options (memcluster's own; long forms only):
    --gossip-addr=<host:port> gossip (memberlist, UDP and TCP) on this address;
                          "" turns clustering off (default: the host of the
                          first -l entry, port %[2]d: -l 127.0.0.1 gossips on
                          127.0.0.1:%[2]d; %[1]s without -l or with a
                          wildcard -l). If the default is taken and no --join
                          is given, the node warns and runs alone. Gossip on
                          a non-loopback address without --gossip-key-file
                          logs a warning at start
    --no-cluster          do not gossip: a single node, as --gossip-addr=""
    --advertise-addr=<host[:port]> the address other nodes and clients reach
                          this node at (containers, NAT); its host is
                          published as the memcached host, its IP as the IP
                          (default: the listen or gossip IP)
    --name=<name>         unique node name (default: <hostname>:<port>)
    --join=<host:port,...> seeds to join, each a gossip address (port
                          defaults to %[2]d); names resolve to all their
                          addresses (a Kubernetes headless service); may repeat.
                          Seeds that are not members are retried for ever
    --rejoin-interval=<d> how often to retry those seeds (default: %[3]v)
    --probe-interval=<d>  failure detection: probe a member this often
                          (default: %[4]v)
    --probe-timeout=<d>   wait this long for a probe's ack (default: %[5]v)
    --suspicion-mult=<n>  a suspected member has n probe intervals to refute
                          (default: %[6]d)
    --suspicion-max-timeout-mult=<n> the longest suspicion, in multiples of
                          the shortest, while others do not confirm (default: %[7]d)
    --gossip-interval=<d> send gossip this often (default: %[8]v)
    --push-pull-interval=<d> full state exchange this often (default: %[9]v)
    --leave-timeout=<d>   on SIGTERM, wait this long for the leave message to
                          go out before shutting down (default: %[10]v)
    --ring=<mode>         key placement, the same on every node: memcluster,
                          or ketama, as libmemcached and Auto Discovery
                          clients place keys (default: memcluster)
    --drain=<d>           on SIGTERM, leave the cluster at once but serve on
                          this long, answering "config get cluster" without
                          this node, so that clients move its keys away
                          before it closes; a second SIGTERM, or "shutdown",
                          ends the drain early. A node with no other members
                          does not drain. 0 for none (default: %[11]v)
    --handoff=<d>         for this long after a change of membership, a key
                          this node has just come to own and misses is
                          fetched from its previous owner, unless written
                          here meanwhile: a scale-out or restart is no miss
                          storm. 0 for none (default: %[12]v)
    --handoff-push=<mb>   on SIGTERM, during the drain, push up to this many
                          megabytes of the most recently used items to their
                          new owners. 0 for none (default: %[13]d)
    --metrics-addr=<host:port> serve Prometheus metrics (/metrics, with
                          memcached_exporter's names) and health checks
                          (/livez, /readyz) over HTTP there (default: none)
    --forward             serve every key: a request for a key another node
                          owns is forwarded to it and its reply relayed, so a
                          client given one address sees the whole cluster.
                          Commands without a key stay local (default: off)
    --peer-auth-file=<file> with SASL (-S) or -Y, the user:password this
                          node authenticates to the others with for the
                          hand-off and forwarding; without it such a node
                          has neither
    --gossip-key-file=<file> encrypt the gossip (AES-GCM) with the keys in
                          <file>: one base64 key a line, 16, 24 or 32 bytes;
                          the first encrypts, all decrypt; '#' comments.
                          Nodes with other keys, or none, cannot join.
                          Re-read on SIGHUP, to rotate keys (default: none)
Durations are Go durations: 400ms, 2s, 1m.
`

// clusterUsageText returns clusterUsage with the defaults filled in.
func clusterUsageText() string {
	return fmt.Sprintf(clusterUsage, cluster.DefaultGossipAddr, cluster.DefaultGossipPort,
		cluster.DefaultRejoinInterval, cluster.DefaultProbeInterval, cluster.DefaultProbeTimeout,
		cluster.DefaultSuspicionMult, cluster.DefaultSuspicionMaxTimeoutMult,
		cluster.DefaultGossipInterval, cluster.DefaultPushPullInterval, cluster.DefaultLeaveTimeout,
		defaultDrain, handoff.DefaultWindow, defaultHandoffPush)
}
