package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/memcluster/memcluster/ring"
)

// Config configures a node's membership in a cluster: gossip with
// hashicorp/memberlist, the seeds it joins, and failure detection. The zero
// value is a single node: no gossip, and "config get cluster" lists the node
// alone. Clustering is on when GossipAddr or Transport is set.
type Config struct {
	// GossipAddr is the host:port memberlist binds to, UDP and TCP. An
	// empty host or an unspecified IP ("0.0.0.0", "[::]") is every
	// interface; a name is resolved at Start, to an IPv4 address if it
	// has one. If GossipAddr is empty (and Transport is nil), the node does
	// not gossip. The daemon defaults it to the host of its first -l
	// address with port DefaultGossipPort, or to DefaultGossipAddr when
	// -l names no host. Start logs a warning when the gossip is not
	// encrypted (no GossipKeyFile) and the address is not loopback.
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
	// a file it cannot read or parse; node.Server.Reload re-reads it, to rotate
	// keys. If empty, the gossip is not encrypted.
	GossipKeyFile string

	// Handoff is how long after a change of membership a node that
	// misses a key it has just come to own asks the key's previous owner
	// for it (see node/handoff). If zero, defaults to
	// handoff.DefaultWindow; negative turns the hand-off off.
	Handoff time.Duration

	// HandoffPush is how many bytes of its most recently used items (keys
	// and values) a node leaving with a drain (node.Server.Drain) pushes
	// to their new owners, within the drain, when the hand-off is on. If
	// zero, none.
	HandoffPush int64

	// PeerAuthFile names the file of the credentials a node authenticates
	// to the others with, for the hand-off, when its clients must
	// authenticate (SASL, or ASCII authentication with -Y): one line,
	// user:password, of a user the others' credentials files accept
	// (SASL PLAIN, so keep the cluster on TLS). If empty, such a node has
	// no hand-off and does not forward.
	PeerAuthFile string

	// Forward makes the node forward each request for a key another node
	// owns to that node and relay its reply (see node/command), so that
	// a client with one address sees the whole cache. If false, every
	// key is served here, as memcached does.
	Forward bool

	// Ring is the mode of the cluster's ring, which places keys on the
	// members: ring.ModeKetama to place them as libmemcached's ketama
	// does, so that libmemcached-based and Auto Discovery clients send
	// each key to its owner. Every member must have the same; the node
	// announces it with "config get ring". If zero, defaults to
	// ring.ModeMemcluster.
	Ring ring.Mode

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
func (c Config) Enabled() bool { return c.GossipAddr != "" || c.Transport != nil }

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
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
