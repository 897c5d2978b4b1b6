package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Network is an in-memory network for memberlist, for tests and
// simulations of a cluster in one process: every Transport it makes
// reaches every other one that is open and not cut off from it. Unlike
// memberlist's MockNetwork it is safe for concurrent use, never blocks a
// sender on a busy or closed receiver (a packet that cannot be delivered at
// once is dropped, as UDP drops it), and can be partitioned and healed.
//
// The zero value is ready to use.
type Network struct {
	mu       sync.Mutex            // guards the fields below
	byAddr   map[string]*Transport // open transports by address
	lastPort int
	// group maps an address to its side of a partition; two addresses
	// reach each other when both are absent or both hold the same number.
	group map[string]int
}

// ErrUnreachable is returned by Dial for an address that is closed, unknown
// or on the other side of a partition.
var ErrUnreachable = errors.New("cluster: address unreachable")

// NewTransport returns a transport with an address of its own,
// "127.0.0.1:<n>", wired to the other transports of the network.
func (n *Network) NewTransport() *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr == nil {
		n.byAddr = make(map[string]*Transport)
	}
	n.lastPort++
	t := &Transport{
		net:      n,
		addr:     memAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(n.lastPort))),
		packetCh: make(chan *memberlist.Packet, 1024),
		streamCh: make(chan net.Conn, 64),
		done:     make(chan struct{}),
	}
	n.byAddr[string(t.addr)] = t
	return t
}

// Partition splits the network: transports whose addresses are in the same
// group reach each other and no others. Addresses in no group are cut off
// from every grouped one but reach each other. A later Partition replaces
// this one.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[string]int)
	for i, g := range groups {
		for _, a := range g {
			n.group[a] = i + 1
		}
	}
}

// Heal ends a partition: every open transport reaches every other again.
func (n *Network) Heal() {
	n.mu.Lock()
	n.group = nil
	n.mu.Unlock()
}

// route returns the open transport at addr if from reaches it, or nil.
func (n *Network) route(from, to string) *Transport {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.byAddr[to]
	if t == nil || n.group[from] != n.group[to] {
		return nil
	}
	return t
}

func (n *Network) remove(t *Transport) {
	n.mu.Lock()
	if n.byAddr[string(t.addr)] == t {
		delete(n.byAddr, string(t.addr))
	}
	n.mu.Unlock()
}

// Transport is one member's end of a Network; it satisfies
// memberlist.Transport. Its methods are safe for concurrent use.
type Transport struct {
	net      *Network
	addr     memAddr
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{} // closed by Shutdown
	once     sync.Once
	sent     atomic.Int64 // bytes sent, in packets and on streams
}

// BytesSent returns the bytes the transport has sent so far, in packets
// (those lost included) and on streams: its gossip traffic.
func (t *Transport) BytesSent() int64 { return t.sent.Load() }

// countingConn is a stream's end that counts what its owner writes.
type countingConn struct {
	net.Conn
	sent *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}

var _ memberlist.Transport = (*Transport)(nil)

// Addr returns the transport's address, "127.0.0.1:<n>": what other
// members join.
func (t *Transport) Addr() string { return string(t.addr) }

// FinalAdvertiseAddr returns the transport's own address, whatever is asked.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	host, port, err := net.SplitHostPort(string(t.addr))
	if err != nil {
		return nil, 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, 0, err
	}
	return net.ParseIP(host), p, nil
}

// WriteTo delivers a copy of b to addr if it is reachable and has room,
// and otherwise drops it, as a datagram would be.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	now := time.Now()
	select {
	case <-t.done:
		return now, fmt.Errorf("clustertest: transport %s is shut down", t.addr)
	default:
	}
	t.sent.Add(int64(len(b)))
	dest := t.net.route(string(t.addr), addr)
	if dest == nil {
		return now, nil
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr, Timestamp: now}
	select {
	case dest.packetCh <- p:
	default: // the receiver is busy or gone: the packet is lost
	}
	return now, nil
}

// PacketCh returns the packets sent to this transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream to addr: one end of a net.Pipe whose other end
// the receiver gets from StreamCh.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	dest := t.net.route(string(t.addr), addr)
	if dest == nil {
		return nil, fmt.Errorf("dial %s: %w", addr, ErrUnreachable)
	}
	local, remote := net.Pipe()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case dest.streamCh <- countingConn{remote, &dest.sent}:
		return countingConn{local, &t.sent}, nil
	case <-dest.done:
	case <-t.done:
	case <-timer.C:
	}
	local.Close()
	remote.Close()
	return nil, fmt.Errorf("dial %s: %w", addr, ErrUnreachable)
}

// StreamCh returns the streams other transports open to this one.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown takes the transport off the network: it can no longer be
// reached, and what was sent to it is dropped.
func (t *Transport) Shutdown() error {
	t.once.Do(func() {
		t.net.remove(t)
		close(t.done)
	})
	return nil
}

// memAddr is an address on a Network.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
