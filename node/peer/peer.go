// Package peer is a node's client to the other nodes of its cluster: pooled
// connections to their memcached listeners, over TLS when the cluster uses
// it, speaking the meta protocol. The hand-off (node/handoff) fetches items
// with it from their previous owners. Come here to change how a node talks
// to another.
package peer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// ErrBadReply is returned when a peer's reply is not what the protocol
// allows.
var ErrBadReply = errors.New("peer: bad reply")

// Client talks to other nodes. Its zero value is not usable; create it with
// New. Its methods are safe for concurrent use.
type Client struct {
	cfg Config

	mu    sync.Mutex // guards pools
	pools map[poolKey]*pool
}

// poolKey names a pool: a peer's address, and what its connections are
// for.
type poolKey struct {
	addr string
	kind connKind
}

// connKind is what a pooled connection is for.
type connKind uint8

const (
	handoffConn   connKind = iota // the hand-off's, in Config.Binary's protocol
	forwardText                   // forwarding text requests, marked a peer's
	forwardBinary                 // forwarding binary requests, marked a peer's
)

// Config configures a Client.
type Config struct {
	// TLS, if not nil, returns the client TLS configuration to dial peers
	// with, for a peer's host name; nil dials in plain text.
	TLS func(host string) (*tls.Config, error)
	// Binary speaks the binary protocol to peers (protocol.OpHandoffGet
	// and OpHandoffAdd), for nodes that speak only it (SASL, -B binary);
	// otherwise the meta protocol.
	Binary bool
	// Auth, if not nil, returns the user and password a new connection
	// authenticates with where the peers ask for it: SASL PLAIN on binary
	// connections if SASL is set, memcached's ASCII authentication (-Y) on
	// text connections if ASCII is set.
	Auth func() (user, password string, err error)
	// SASL and ASCII say which connections authenticate: see Auth.
	SASL, ASCII bool
	// MaxValue is the longest value accepted from a peer: the node's
	// item size limit. If zero, 1 MiB.
	MaxValue int
	// MaxIdle is how many idle connections the hand-off keeps to each
	// peer. If zero, 8.
	MaxIdle int
	// MaxIdleForward is how many idle connections forwarding keeps to
	// each peer, for each protocol. If zero, 64.
	MaxIdleForward int
	// MaxConnsForward is how many connections forwarding has open to each
	// peer at once, for each protocol, lent or idle: a request that finds
	// them all lent waits for one (see Client.Forwarding), so that a burst
	// of clients does not open a connection each to the peer and run it
	// out of its own. If zero, 64.
	MaxConnsForward int
	// DownFor is how long a peer that could not be dialed is not tried
	// again: a departed node's fetches fail at once. If zero, 1 s.
	DownFor time.Duration
	// DialTimeout bounds dialing a peer for forwarding, its TLS handshake
	// and authentication included. If zero, 1 s.
	DialTimeout time.Duration
	// CheckIdle is how long a pooled connection may sit idle before it is
	// checked for a close by its peer when next taken. If zero, 1 s.
	CheckIdle time.Duration
}

// New returns a client configured by cfg.
func New(cfg Config) *Client {
	if cfg.MaxValue <= 0 {
		cfg.MaxValue = 1 << 20
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 8
	}
	if cfg.MaxIdleForward <= 0 {
		cfg.MaxIdleForward = 64
	}
	if cfg.MaxConnsForward <= 0 {
		cfg.MaxConnsForward = 64
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = time.Second
	}
	if cfg.CheckIdle <= 0 {
		cfg.CheckIdle = time.Second
	}
	return &Client{cfg: cfg, pools: make(map[poolKey]*pool)}
}

// pool is the idle connections to one peer.
type pool struct {
	idle      chan *conn
	downUntil time.Time // guarded by Client.mu
	// slots, for a forwarding pool, holds a token per connection lent:
	// at most Config.MaxConnsForward at once. nil for the hand-off's,
	// which bounds its fetches itself.
	slots chan struct{}
}

// conn is one connection to a peer.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
	// idleSince is when the connection went back to its pool.
	idleSince time.Time
}

// takeIdle returns an idle connection of p that is still open, or nil if
// there is none. A connection idle for longer than checkIdle is first
// checked: a peer that restarted at the same address closed it meanwhile,
// and a request on it would fail although the peer is up.
func (c *Client) takeIdle(p *pool) *conn {
	for {
		select {
		case cn := <-p.idle:
			if time.Since(cn.idleSince) < c.cfg.CheckIdle || open(cn) {
				return cn
			}
			cn.nc.Close()
		default:
			return nil
		}
	}
}

// putIdle gives cn back to p, or closes it if p is full.
func putIdle(p *pool, cn *conn) {
	cn.idleSince = time.Now()
	select {
	case p.idle <- cn:
	default:
		cn.nc.Close()
	}
}

var _ handoff.Fetcher = (*Client)(nil)

// errDown is returned for a peer that recently could not be dialed.
var errDown = errors.New("peer: down")

// Fetch gets key's item from m with mg, carrying handoff.Opaque: its value,
// flags and remaining TTL. found is false on a miss.
func (c *Client) Fetch(ctx context.Context, m ring.Member, key []byte) (handoff.Item, bool, error) {
	addr := m.Addr()
	p, err := c.pool(addr, handoffConn)
	if err != nil {
		return handoff.Item{}, false, err
	}
	cn, err := c.get(ctx, p, m, addr, c.cfg.Binary)
	if err != nil {
		return handoff.Item{}, false, err
	}
	it, found, err := c.fetch(ctx, cn, key)
	if err != nil {
		cn.nc.Close()
		return handoff.Item{}, false, fmt.Errorf("peer %s: %w", addr, err)
	}
	putIdle(p, cn)
	return it, found, nil
}

var _ handoff.Pusher = (*Client)(nil)

// Push sends items to m, pipelined, each as an ms in add mode (ME) that
// carries handoff.Opaque, and returns how many m stored.
func (c *Client) Push(ctx context.Context, m ring.Member, items []handoff.PushItem) (int, error) {
	addr := m.Addr()
	p, err := c.pool(addr, handoffConn)
	if err != nil {
		return 0, err
	}
	cn, err := c.get(ctx, p, m, addr, c.cfg.Binary)
	if err != nil {
		return 0, err
	}
	stored, err := c.push(ctx, cn, items)
	if err != nil {
		cn.nc.Close()
		return stored, fmt.Errorf("peer %s: %w", addr, err)
	}
	putIdle(p, cn)
	return stored, nil
}

// push writes every item's ms, or HandoffAdd, on cn, then reads their
// replies.
func (c *Client) push(ctx context.Context, cn *conn, items []handoff.PushItem) (int, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := cn.nc.SetDeadline(dl); err != nil {
			return 0, err
		}
	} else if err := cn.nc.SetDeadline(time.Time{}); err != nil {
		return 0, err
	}
	// Canceling ctx interrupts the exchange.
	defer context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })()
	if c.cfg.Binary {
		return c.pushBinary(cn, items)
	}
	w := cn.w
	var num []byte
	for _, it := range items {
		w.WriteString("ms ")
		enc := base64.NewEncoder(base64.StdEncoding, w)
		enc.Write(it.Key)
		enc.Close()
		w.WriteByte(' ')
		w.Write(strconv.AppendInt(num[:0], int64(len(it.Value)), 10))
		w.WriteString(" b ME F")
		w.Write(strconv.AppendUint(num[:0], uint64(it.Flags), 10))
		if it.TTL > 0 {
			w.WriteString(" T")
			w.Write(strconv.AppendInt(num[:0], exptime(it.TTL), 10))
		}
		w.WriteString(" O" + handoff.Opaque + "\r\n")
		w.Write(it.Value)
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	stored := 0
	for range items {
		line, err := cn.r.ReadSlice('\n')
		if err != nil {
			return stored, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("HD")):
			stored++
		case bytes.HasPrefix(line, []byte("NS")):
		case bytes.HasPrefix(line, []byte("SERVER_ERROR")):
			// Too large or out of memory on that node: the others
			// may still fit.
		default:
			return stored, fmt.Errorf("%w: %q", ErrBadReply, line)
		}
	}
	return stored, nil
}

// pushBinary writes every item's HandoffAdd on cn, then reads their
// replies.
func (c *Client) pushBinary(cn *conn, items []handoff.PushItem) (int, error) {
	var req, extras []byte
	for _, it := range items {
		extras = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(extras[:0], it.Flags), uint32(exptime(it.TTL)))
		req = protocol.AppendBinaryRequest(req[:0], protocol.OpHandoffAdd, 0, 0, extras, it.Key, it.Value)
		cn.w.Write(req)
	}
	if err := cn.w.Flush(); err != nil {
		return 0, err
	}
	stored := 0
	for range items {
		status, _, _, err := readBinary(cn.r, 1<<10)
		if err != nil {
			return stored, err
		}
		switch status {
		case protocol.StatusOK:
			stored++
		case protocol.StatusNotStored, protocol.StatusTooLarge, protocol.StatusOutOfMemory:
		default:
			return stored, fmt.Errorf("%w: status %#x", ErrBadReply, uint16(status))
		}
	}
	return stored, nil
}

// Retain closes the idle connections to every peer that is a member of
// none of rings (nil ones are skipped): a departed node's sockets are not
// kept. A later request to such a peer dials anew.
func (c *Client) Retain(rings ...*ring.Ring) {
	keep := map[string]bool{}
	for _, r := range rings {
		if r == nil {
			continue
		}
		for _, m := range r.Members() {
			keep[m.Addr()] = true
		}
	}
	c.mu.Lock()
	var drop []*pool
	for k, p := range c.pools {
		if !keep[k.addr] {
			drop = append(drop, p)
			delete(c.pools, k)
		}
	}
	c.mu.Unlock()
	for _, p := range drop {
		p.closeIdle()
	}
}

// Close closes every idle connection; connections in use are closed when
// their request ends, as the pools are gone.
func (c *Client) Close() {
	c.mu.Lock()
	pools := c.pools
	c.pools = map[poolKey]*pool{}
	c.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
}

// closeIdle closes p's idle connections.
func (p *pool) closeIdle() {
	for {
		select {
		case cn := <-p.idle:
			cn.nc.Close()
		default:
			return
		}
	}
}

// pool returns addr's pool of kind's connections, or errDown.
func (c *Client) pool(addr string, kind connKind) (*pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := poolKey{addr, kind}
	p := c.pools[k]
	if p == nil {
		idle := c.cfg.MaxIdle
		if kind != handoffConn {
			idle = c.cfg.MaxIdleForward
		}
		p = &pool{idle: make(chan *conn, idle)}
		if kind != handoffConn {
			p.slots = make(chan struct{}, c.cfg.MaxConnsForward)
		}
		c.pools[k] = p
	}
	if time.Now().Before(p.downUntil) {
		return nil, errDown
	}
	return p, nil
}

// get returns an idle connection to addr, or dials one that speaks binary
// or text.
func (c *Client) get(ctx context.Context, p *pool, m ring.Member, addr string, binary bool) (*conn, error) {
	if cn := c.takeIdle(p); cn != nil {
		return cn, nil
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err == nil && c.cfg.TLS != nil {
		var tc *tls.Config
		if tc, err = c.cfg.TLS(m.Host); err == nil {
			t := tls.Client(nc, tc)
			if err = t.HandshakeContext(ctx); err == nil {
				nc = t
			} else {
				nc.Close()
			}
		} else {
			nc.Close()
		}
	}
	if err != nil {
		c.mu.Lock()
		p.downUntil = time.Now().Add(c.cfg.DownFor)
		c.mu.Unlock()
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	cn := &conn{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriterSize(nc, 512)}
	if c.cfg.Auth != nil && ((binary && c.cfg.SASL) || (!binary && c.cfg.ASCII)) {
		if err := c.authenticate(ctx, cn, binary); err != nil {
			nc.Close()
			return nil, fmt.Errorf("peer %s: authenticating: %w", addr, err)
		}
	}
	return cn, nil
}

// ErrAuth is returned when a peer refuses the node's credentials.
var ErrAuth = errors.New("peer: authentication refused")

// authenticate authenticates cn, a binary or text connection, with
// Config.Auth's credentials.
func (c *Client) authenticate(ctx context.Context, cn *conn, binary bool) error {
	user, password, err := c.cfg.Auth()
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := cn.nc.SetDeadline(dl); err != nil {
			return err
		}
	}
	defer context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })()
	if !binary {
		// memcached's ASCII authentication: a set whose data is the
		// user and the password.
		fmt.Fprintf(cn.w, "set auth 0 0 %d\r\n%s %s\r\n", len(user)+1+len(password), user, password)
		if err := cn.w.Flush(); err != nil {
			return err
		}
		line, err := cn.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !bytes.Equal(line, []byte("STORED\r\n")) {
			return fmt.Errorf("%w: %q", ErrAuth, bytes.TrimSpace(line))
		}
		return nil
	}
	cred := make([]byte, 0, 2+len(user)+len(password))
	cred = append(append(append(append(cred, 0), user...), 0), password...)
	status, err := exchangeBinary(cn, protocol.AppendBinaryRequest(nil, protocol.OpSASLAuth, 0, 0, nil, []byte("PLAIN"), cred))
	if err == nil && status != protocol.StatusOK {
		err = fmt.Errorf("%w: status %#x", ErrAuth, uint16(status))
	}
	return err
}

// exchangeBinary sends req, one binary request, on cn and returns the status
// of its response, whose body is read and dropped.
func exchangeBinary(cn *conn, req []byte) (protocol.BinaryStatus, error) {
	cn.w.Write(req)
	if err := cn.w.Flush(); err != nil {
		return 0, err
	}
	status, _, _, err := readBinary(cn.r, 1<<10)
	return status, err
}

// readBinary reads one binary response: its status, extras and value,
// refusing a body longer than maxBody.
func readBinary(r *bufio.Reader, maxBody int) (protocol.BinaryStatus, []byte, []byte, error) {
	h, extras, _, value, err := protocol.ReadBinaryResponse(r, maxBody)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return h.Status, extras, value, nil
}

// fetch sends one mg, or HandoffGet, on cn and reads its reply.
func (c *Client) fetch(ctx context.Context, cn *conn, key []byte) (handoff.Item, bool, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := cn.nc.SetDeadline(dl); err != nil {
			return handoff.Item{}, false, err
		}
	}
	// Canceling ctx interrupts the exchange.
	defer context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })()
	if c.cfg.Binary {
		return c.fetchBinary(cn, key)
	}
	// The key goes base64-encoded (b): a binary-protocol key may hold
	// spaces or newlines.
	w := cn.w
	w.WriteString("mg ")
	enc := base64.NewEncoder(base64.StdEncoding, w)
	enc.Write(key)
	enc.Close()
	w.WriteString(" b v f t O" + handoff.Opaque + "\r\n")
	if err := w.Flush(); err != nil {
		return handoff.Item{}, false, err
	}
	line, err := cn.r.ReadSlice('\n')
	if err != nil {
		return handoff.Item{}, false, err
	}
	it, n, found, err := parseHead(line)
	if err != nil || !found {
		return it, found, err
	}
	if n > c.cfg.MaxValue {
		return handoff.Item{}, false, fmt.Errorf("%w: value of %d bytes", ErrBadReply, n)
	}
	it.Value = make([]byte, n+2)
	if _, err := io.ReadFull(cn.r, it.Value); err != nil {
		return handoff.Item{}, false, err
	}
	if !bytes.HasSuffix(it.Value, []byte("\r\n")) {
		return handoff.Item{}, false, fmt.Errorf("%w: value not ended by CRLF", ErrBadReply)
	}
	it.Value = it.Value[:n]
	return it, true, nil
}

// fetchBinary sends a HandoffGet on cn and reads its reply.
func (c *Client) fetchBinary(cn *conn, key []byte) (handoff.Item, bool, error) {
	cn.w.Write(protocol.AppendBinaryRequest(nil, protocol.OpHandoffGet, 0, 0, nil, key, nil))
	if err := cn.w.Flush(); err != nil {
		return handoff.Item{}, false, err
	}
	status, extras, value, err := readBinary(cn.r, c.cfg.MaxValue+8)
	switch {
	case err != nil:
		return handoff.Item{}, false, err
	case status == protocol.StatusKeyNotFound:
		return handoff.Item{}, false, nil
	case status != protocol.StatusOK || len(extras) != 8:
		return handoff.Item{}, false, fmt.Errorf("%w: status %#x, %d bytes of extras", ErrBadReply, uint16(status), len(extras))
	}
	return handoff.Item{
		Value: value,
		Flags: binary.BigEndian.Uint32(extras),
		TTL:   int64(binary.BigEndian.Uint32(extras[4:])),
	}, true, nil
}

// parseHead parses the first line of an mg reply: "EN" (a miss), or "VA
// <len> f<flags> t<ttl> O<opaque>". It returns the item's flags and TTL
// and the value's length.
func parseHead(line []byte) (it handoff.Item, n int, found bool, err error) {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	fields := bytes.Fields(line)
	if len(fields) == 0 {
		return it, 0, false, fmt.Errorf("%w: empty line", ErrBadReply)
	}
	switch string(fields[0]) {
	case "EN":
		return it, 0, false, nil
	case "VA":
	default:
		return it, 0, false, fmt.Errorf("%w: %q", ErrBadReply, line)
	}
	if len(fields) < 2 {
		return it, 0, false, fmt.Errorf("%w: %q", ErrBadReply, line)
	}
	n, err = strconv.Atoi(string(fields[1]))
	if err != nil || n < 0 {
		return it, 0, false, fmt.Errorf("%w: %q", ErrBadReply, line)
	}
	for _, f := range fields[2:] {
		switch f[0] {
		case 'f':
			v, err := strconv.ParseUint(string(f[1:]), 10, 32)
			if err != nil {
				return it, 0, false, fmt.Errorf("%w: %q", ErrBadReply, line)
			}
			it.Flags = uint32(v)
		case 't':
			v, err := strconv.ParseInt(string(f[1:]), 10, 64)
			if err != nil {
				return it, 0, false, fmt.Errorf("%w: %q", ErrBadReply, line)
			}
			switch {
			case v > 0:
				it.TTL = v
			case v == 0:
				it.TTL = 1 // expires within the second
			}
		}
	}
	return it, n, true, nil
}

// maxRelativeExptime is memcached's: an exptime above 30 days is a unix
// time.
const maxRelativeExptime = 30 * 24 * 3600

// exptime returns the exptime that gives an item ttl seconds more: ttl
// itself up to 30 days, else the unix time ttl from now.
func exptime(ttl int64) int64 {
	if ttl > maxRelativeExptime {
		return min(time.Now().Unix()+ttl, 1<<32-1)
	}
	return ttl
}
