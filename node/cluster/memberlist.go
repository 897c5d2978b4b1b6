package cluster

// What memberlist is told and tells: its configuration for this node, the
// metadata each member publishes, the delegate and event handlers it calls,
// and its log lines.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"github.com/memcluster/memcluster/ring"
)

// gossipIP returns the IP memberlist will advertise with mc, chosen as
// memberlist chooses it.
func gossipIP(mc *memberlist.Config) (string, error) {
	if mc.AdvertiseAddr != "" {
		return mc.AdvertiseAddr, nil
	}
	if mc.Transport != nil {
		ip, _, err := mc.Transport.FinalAdvertiseAddr("", 0)
		if err != nil {
			return "", fmt.Errorf("node: gossip transport's address: %w", err)
		}
		return netipString(ip), nil
	}
	if ip, err := netip.ParseAddr(mc.BindAddr); err == nil && !ip.IsUnspecified() {
		return ip.Unmap().String(), nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil {
		return "", fmt.Errorf("node: finding a private IP to advertise: %w", err)
	}
	if ip == "" {
		return "", errors.New("node: no private IP to advertise: set the advertise address")
	}
	return ip, nil
}

// bindIP returns the IP memberlist binds to for host, the host of the
// gossip address: "0.0.0.0" for every interface (host "", or an
// unspecified IP such as "::", whose memberlist would advertise "::"),
// the IP itself, or the address a name resolves to, IPv4 preferred as
// net.Listen prefers it. memberlist takes the IP as a string and binds every
// interface when it cannot parse it, so a name or a scoped IPv6 address
// ("fe80::1%eth0") must never reach it: a name is resolved here and a
// scoped address is an error.
func bindIP(ctx context.Context, host string) (string, error) {
	if host == "" {
		return "0.0.0.0", nil
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", host, err)
		}
		if len(ips) == 0 {
			return "", fmt.Errorf("resolving %s: no address", host)
		}
		ip = ips[0]
		for _, a := range ips {
			if a.Unmap().Is4() {
				ip = a
				break
			}
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Zone() != "":
		return "", fmt.Errorf("memberlist cannot bind the scoped address %s", ip)
	case ip.IsUnspecified():
		return "0.0.0.0", nil
	}
	return ip.String(), nil
}

// memberlistConfig returns memberlist's configuration for this node. ctx
// bounds the lookup of a gossip host given as a name.
func (c *Cluster) memberlistConfig(ctx context.Context, advIP netip.Addr, advPort int) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.name
	if c.cfg.Transport != nil {
		mc.Transport = c.cfg.Transport
	} else {
		host, port, err := net.SplitHostPort(c.cfg.GossipAddr)
		if err != nil {
			return nil, fmt.Errorf("node: gossip address %q: %w", c.cfg.GossipAddr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("node: gossip address %q: bad port", c.cfg.GossipAddr)
		}
		ip, err := bindIP(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("node: gossip address %q: %w", c.cfg.GossipAddr, err)
		}
		mc.BindAddr, mc.BindPort, mc.AdvertisePort = ip, p, p
	}
	if advIP.IsValid() {
		mc.AdvertiseAddr = advIP.String()
		if advPort != 0 {
			mc.AdvertisePort = advPort
		}
	}
	mc.ProbeInterval = c.cfg.ProbeInterval
	mc.ProbeTimeout = c.cfg.ProbeTimeout
	mc.SuspicionMult = c.cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.cfg.SuspicionMaxTimeoutMult
	mc.GossipInterval = c.cfg.GossipInterval
	mc.PushPullInterval = c.cfg.PushPullInterval
	mc.GossipToTheDeadTime = 2 * c.cfg.PushPullInterval
	mc.TCPTimeout = 3 * time.Second
	// A member restarted under its name with a new address takes the
	// name back as soon as the old one is known to be dead.
	mc.DeadNodeReclaimTime = time.Millisecond
	if c.cfg.GossipKeyFile != "" {
		keys, err := readGossipKeys(c.cfg.GossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("node: gossip key file %s: %w", c.cfg.GossipKeyFile, err)
		}
		// Drop whatever is not encrypted with one of the keys, and
		// send nothing in the clear.
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.Delegate = delegate{c}
	mc.Events = events{c}
	mc.Logger = log.New(&memberlistLog{log: c.log, dropped: &c.gossipDropped, every: dropWarnEvery}, "", 0)
	return mc, nil
}

// Metadata: what a node publishes to the others. Compact, versioned, and
// bounded well within memberlist's MetaMaxSize (512 bytes): 1 format byte,
// the epoch and port as uvarints, then the host and the IP, each a length
// byte and the text. The format byte also says whether the node is
// leaving: it publishes metaLeaving just before it leaves, so that the
// others can tell its departure from a failure or a partition.
const (
	metaFormat  = 1
	metaLeaving = 2 // metaFormat's layout, from a node about to leave
)

// nodeMeta is what a node's metadata says.
type nodeMeta struct {
	member  ring.Member
	epoch   uint64
	leaving bool
}

func encodeMeta(nm nodeMeta) []byte {
	m := nm.member
	b := make([]byte, 0, 2*binary.MaxVarintLen64+2+len(m.Host)+len(m.IP))
	if nm.leaving {
		b = append(b, metaLeaving)
	} else {
		b = append(b, metaFormat)
	}
	b = binary.AppendUvarint(b, nm.epoch)
	b = binary.AppendUvarint(b, uint64(m.Port))
	b = append(b, byte(len(m.Host)))
	b = append(b, m.Host...)
	b = append(b, byte(len(m.IP)))
	b = append(b, m.IP...)
	return b
}

var errBadMeta = errors.New("bad metadata")

// decodeMeta reads what encodeMeta wrote. It does not keep b.
func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) == 0 || b[0] != metaFormat && b[0] != metaLeaving {
		return nodeMeta{}, errBadMeta
	}
	leaving := b[0] == metaLeaving
	b = b[1:]
	epoch, n := binary.Uvarint(b)
	if n <= 0 {
		return nodeMeta{}, errBadMeta
	}
	b = b[n:]
	port, n := binary.Uvarint(b)
	if n <= 0 || port > 65535 {
		return nodeMeta{}, errBadMeta
	}
	b = b[n:]
	var fields [2]string
	for i := range fields {
		if len(b) == 0 || int(b[0]) > len(b)-1 {
			return nodeMeta{}, errBadMeta
		}
		n := 1 + int(b[0])
		fields[i] = string(b[1:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return nodeMeta{}, errBadMeta
	}
	m := ring.Member{Host: fields[0], IP: fields[1], Port: int(port)}
	if err := m.Validate(); err != nil {
		return nodeMeta{}, fmt.Errorf("%w: %w", errBadMeta, err)
	}
	return nodeMeta{member: m, epoch: epoch, leaving: leaving}, nil
}

// delegate publishes the node's metadata. memberlist calls it concurrently.
type delegate struct{ c *Cluster }

func (d delegate) NodeMeta(limit int) []byte {
	b := encodeMeta(nodeMeta{member: d.c.self, epoch: d.c.epoch.Load(), leaving: d.c.leavingMeta.Load()})
	if len(b) > limit {
		return nil
	}
	return b
}
func (delegate) NotifyMsg([]byte)                {}
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (delegate) LocalState(bool) []byte          { return nil }
func (delegate) MergeRemoteState([]byte, bool)   {}

// events follows membership. memberlist calls it from one goroutine at a
// time, with its own locks held: it records the change and wakes the loop.
type events struct{ c *Cluster }

func (e events) NotifyJoin(n *memberlist.Node)   { e.c.setMember(n); e.c.notify() }
func (e events) NotifyUpdate(n *memberlist.Node) { e.c.setMember(n); e.c.notify() }
func (e events) NotifyLeave(n *memberlist.Node)  { e.c.removeMember(n); e.c.notify() }

// memberlistLog routes memberlist's log lines ("[LEVEL] memberlist: text")
// into slog. Those that say a message was dropped because it could not be
// decoded or decrypted (see droppedGossip) are counted, and warned about
// at most once per dropWarnEvery, with the number of drops the warning
// covers: junk or a wrong key on the gossip port is news, a flood of it
// is one line. memberlist's other warnings and errors (failed probes,
// joins that did not answer) are logged at levelVerbose, the daemon's -v;
// the rest at debug. memberlist writes one line at a time (its
// log.Logger serializes them).
type memberlistLog struct {
	log     *slog.Logger
	dropped *atomic.Uint64 // the count of drops, read by "stats"
	every   time.Duration  // dropWarnEvery, or a test's

	mu         sync.Mutex // guards lastWarn and suppressed
	lastWarn   time.Time
	suppressed uint64 // drops since the last warning, not warned about
}

// dropWarnEvery is how often, at most, dropped gossip is warned about.
const dropWarnEvery = 10 * time.Second

// levelVerbose is the level of the daemon's -v (between info and debug):
// memberlist's own warnings and errors.
const levelVerbose = slog.LevelInfo - 2

// droppedGossip are the words, in lower case, of memberlist's lines about
// a message it dropped as undecodable, unauthenticated or not encrypted
// with one of the node's keys.
var droppedGossip = []string{
	"failed to decode",
	"decrypt",       // "Decrypt packet failed: no installed keys could decrypt the message"
	"not encrypted", // "encryption is configured but remote state is not encrypted"
	"encryption is not configured",
	"not supported",   // "msg type (%d) not supported"
	"invalid msgtype", // a stream's
	"missing message type",
	"invalid checksum",
	"failed to decompress",
	"unacceptable label",
	"double packet label",
	"double stream label",
}

func (w *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	switch level {
	case "ERR", "ERROR", "WARN":
		if isDroppedGossip(line) {
			w.drop(line)
			return len(p), nil
		}
		w.log.Log(context.Background(), levelVerbose, line, "source", "memberlist", "memberlist_level", level)
	default:
		w.log.Debug(line, "source", "memberlist", "memberlist_level", level)
	}
	return len(p), nil
}

// isDroppedGossip reports whether memberlist's line (without its level)
// says it dropped a message it could not decode or decrypt.
func isDroppedGossip(line string) bool {
	l := strings.ToLower(line)
	for _, w := range droppedGossip {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// drop counts a dropped message and warns, unless it did within every.
func (w *memberlistLog) drop(line string) {
	w.dropped.Add(1)
	w.mu.Lock()
	now := time.Now()
	if !w.lastWarn.IsZero() && now.Sub(w.lastWarn) < w.every {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.lastWarn, w.suppressed = now, 0
	w.mu.Unlock()
	w.log.Warn("gossip message dropped: undecodable, or not encrypted with a key of this node's",
		"reason", line, "suppressed_since_last", suppressed, "next_warning_in", w.every.String(), "dropped_total", w.dropped.Load())
}

var _ io.Writer = (*memberlistLog)(nil)
