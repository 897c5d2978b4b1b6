package peer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// ForwardConn is a connection to a peer lent for forwarding clients'
// requests to it: marked as a peer's (protocol.CmdPeer, OpPeer), so the
// peer serves what it receives from its own store and never forwards it on,
// and authenticated as the cluster where the peers ask for it. The borrower
// writes requests with W, reads the replies from R, and gives it back with
// Release. It is not safe for concurrent use.
type ForwardConn struct {
	c  *Client
	p  *pool
	cn *conn
	// W buffers the requests to the peer; R reads its replies.
	W *bufio.Writer
	R *bufio.Reader
}

// Forwarding lends a connection to m for forwarding requests in the binary
// protocol or the text protocol (classic and meta): an idle one of its pool,
// or one dialed, set up and marked within ctx and Config.DialTimeout. At most
// Config.MaxConnsForward are lent at once; beyond that it waits for one to
// come back, until ctx ends or Config.DialTimeout passes (ErrBusy). A peer
// that could not be dialed lately is not dialed again for Config.DownFor:
// the error comes at once.
func (c *Client) Forwarding(ctx context.Context, m ring.Member, binary bool) (*ForwardConn, error) {
	kind := forwardText
	if binary {
		kind = forwardBinary
	}
	addr := m.Addr()
	p, err := c.pool(addr, kind)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	if err := c.acquire(ctx, p); err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	if cn := c.takeIdle(p); cn != nil {
		return &ForwardConn{c: c, p: p, cn: cn, W: cn.w, R: cn.r}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	cn, err := c.get(ctx, p, m, addr, binary)
	if err == nil {
		if err = markPeer(ctx, cn, binary); err != nil {
			cn.nc.Close()
			err = fmt.Errorf("peer %s: %w", addr, err)
		}
	}
	if err != nil {
		<-p.slots
		return nil, err
	}
	if cn.w.Size() < forwardWriteBuffer {
		cn.w = bufio.NewWriterSize(cn.nc, forwardWriteBuffer)
	}
	return &ForwardConn{c: c, p: p, cn: cn, W: cn.w, R: cn.r}, nil
}

// ErrBusy is returned, wrapped, by Forwarding when every connection it may
// open to a peer stayed lent for Config.DialTimeout.
var ErrBusy = errors.New("peer: every forwarding connection is busy")

// acquire takes one of p's slots, waiting until ctx ends or
// Config.DialTimeout passes if all are taken.
func (c *Client) acquire(ctx context.Context, p *pool) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(c.cfg.DialTimeout)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrBusy
	}
}

// forwardWriteBuffer is the write buffer of a forwarding connection: a
// pipeline of small requests goes in one write.
const forwardWriteBuffer = 4096

// markPeer sends "peer" (OpPeer in binary) on a new connection and checks
// that the peer took it.
func markPeer(ctx context.Context, cn *conn, binary bool) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := cn.nc.SetDeadline(dl); err != nil {
			return err
		}
		defer cn.nc.SetDeadline(time.Time{})
	}
	if binary {
		status, err := exchangeBinary(cn, protocol.AppendBinaryRequest(nil, protocol.OpPeer, 0, 0, nil, nil, nil))
		if err == nil && status != protocol.StatusOK {
			err = fmt.Errorf("%w: peer: status %#x", ErrBadReply, uint16(status))
		}
		return err
	}
	cn.w.WriteString("peer\r\n")
	if err := cn.w.Flush(); err != nil {
		return err
	}
	line, err := cn.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.Equal(line, protocol.ReplyOK) {
		return fmt.Errorf("%w: peer: %q", ErrBadReply, bytes.TrimSpace(line))
	}
	return nil
}

// SetDeadline sets the deadline of the connection's reads and writes.
func (f *ForwardConn) SetDeadline(t time.Time) error { return f.cn.nc.SetDeadline(t) }

// Release gives the connection back: to its pool if ok, the exchanges on
// it complete; otherwise, or if the pool is full, it is closed. Its
// deadline stays as it was: the next borrower sets its own. The
// ForwardConn must not be used after.
func (f *ForwardConn) Release(ok bool) {
	if ok {
		putIdle(f.p, f.cn)
	} else {
		f.cn.nc.Close()
	}
	<-f.p.slots
}
