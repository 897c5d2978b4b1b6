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
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/memcluster/memcluster/node/handoff"
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
	pools map[string]*pool
}

// Config configures a Client.
type Config struct {
	// TLS, if not nil, returns the client TLS configuration to dial peers
	// with, for a peer's host name; nil dials in plain text.
	TLS func(host string) (*tls.Config, error)
	// MaxValue is the longest value accepted from a peer: the node's
	// item size limit. If zero, 1 MiB.
	MaxValue int
	// MaxIdle is how many idle connections are kept to each peer. If
	// zero, 8.
	MaxIdle int
	// DownFor is how long a peer that could not be dialed is not tried
	// again: a departed node's fetches fail at once. If zero, 1 s.
	DownFor time.Duration
}

// New returns a client configured by cfg.
func New(cfg Config) *Client {
	if cfg.MaxValue <= 0 {
		cfg.MaxValue = 1 << 20
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 8
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = time.Second
	}
	return &Client{cfg: cfg, pools: make(map[string]*pool)}
}

// pool is the idle connections to one peer.
type pool struct {
	idle      chan *conn
	downUntil time.Time // guarded by Client.mu
}

// conn is one connection to a peer.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

var _ handoff.Fetcher = (*Client)(nil)

// errDown is returned for a peer that recently could not be dialed.
var errDown = errors.New("peer: down")

// Fetch gets key's item from m with mg, carrying handoff.Opaque: its value,
// flags and remaining TTL. found is false on a miss.
func (c *Client) Fetch(ctx context.Context, m ring.Member, key []byte) (handoff.Item, bool, error) {
	addr := m.Addr()
	p, err := c.pool(addr)
	if err != nil {
		return handoff.Item{}, false, err
	}
	cn, err := c.get(ctx, p, m, addr)
	if err != nil {
		return handoff.Item{}, false, err
	}
	it, found, err := c.fetch(ctx, cn, key)
	if err != nil {
		cn.nc.Close()
		return handoff.Item{}, false, fmt.Errorf("peer %s: %w", addr, err)
	}
	select {
	case p.idle <- cn:
	default:
		cn.nc.Close()
	}
	return it, found, nil
}

var _ handoff.Pusher = (*Client)(nil)

// Push sends items to m, pipelined, each as an ms in add mode (ME) that
// carries handoff.Opaque, and returns how many m stored.
func (c *Client) Push(ctx context.Context, m ring.Member, items []handoff.PushItem) (int, error) {
	addr := m.Addr()
	p, err := c.pool(addr)
	if err != nil {
		return 0, err
	}
	cn, err := c.get(ctx, p, m, addr)
	if err != nil {
		return 0, err
	}
	stored, err := c.push(ctx, cn, items)
	if err != nil {
		cn.nc.Close()
		return stored, fmt.Errorf("peer %s: %w", addr, err)
	}
	select {
	case p.idle <- cn:
	default:
		cn.nc.Close()
	}
	return stored, nil
}

// push writes every item's ms on cn, then reads their replies.
func (c *Client) push(ctx context.Context, cn *conn, items []handoff.PushItem) (int, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := cn.nc.SetDeadline(dl); err != nil {
			return 0, err
		}
	} else if err := cn.nc.SetDeadline(time.Time{}); err != nil {
		return 0, err
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
			w.Write(strconv.AppendInt(num[:0], it.TTL, 10))
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

// pool returns addr's pool, or errDown.
func (c *Client) pool(addr string) (*pool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[addr]
	if p == nil {
		p = &pool{idle: make(chan *conn, c.cfg.MaxIdle)}
		c.pools[addr] = p
	}
	if time.Now().Before(p.downUntil) {
		return nil, errDown
	}
	return p, nil
}

// get returns an idle connection to addr, or dials one.
func (c *Client) get(ctx context.Context, p *pool, m ring.Member, addr string) (*conn, error) {
	select {
	case cn := <-p.idle:
		return cn, nil
	default:
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
	return &conn{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriterSize(nc, 512)}, nil
}

// fetch sends one mg on cn and reads its reply.
func (c *Client) fetch(ctx context.Context, cn *conn, key []byte) (handoff.Item, bool, error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := cn.nc.SetDeadline(dl); err != nil {
			return handoff.Item{}, false, err
		}
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
