package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// saslNode is a binary-protocol connection to one node, logged in with
// SASL PLAIN: what mcctl uses for get, set, delete and stats on a cluster
// whose nodes run with -S, which serve no text command (gomemcache speaks
// neither the binary protocol nor SASL).
type saslNode struct {
	nc net.Conn
	br *bufio.Reader
}

// errLogin is returned when a node refuses the -sasl-user login.
var errLogin = errors.New("SASL login refused")

// dialSASL dials addr with d, logs in as login, and sets the connection's
// deadline from ctx and timeout.
func dialSASL(ctx context.Context, d dialer, addr string, login *ring.SASLLogin, timeout time.Duration) (*saslNode, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	nc.SetDeadline(dl)
	n := &saslNode{nc: nc, br: bufio.NewReader(nc)}
	cred := append(append(append([]byte{0}, login.User...), 0), login.Password...)
	status, _, _, err := n.do(protocol.OpSASLAuth, nil, []byte("PLAIN"), cred)
	if err == nil && status != protocol.StatusOK {
		err = fmt.Errorf("%w: %s", errLogin, status)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return n, nil
}

// do sends one request and reads one reply: its status, extras and value.
func (n *saslNode) do(op protocol.BinaryOpcode, extras, key, value []byte) (protocol.BinaryStatus, []byte, []byte, error) {
	if _, err := n.nc.Write(protocol.AppendBinaryRequest(nil, op, 0, 0, extras, key, value)); err != nil {
		return 0, nil, nil, err
	}
	limit := maxReply
	if op == protocol.OpGet {
		limit = maxValueReply
	}
	status, ext, _, val, err := n.read(limit)
	return status, ext, val, err
}

// The longest reply body read: a get's, a value of memcached's largest
// item (-I 1024m); any other's.
const (
	maxValueReply = 1<<30 + 1<<10
	maxReply      = 64 << 10
)

// read reads one reply.
func (n *saslNode) read(maxBody int) (status protocol.BinaryStatus, extras, key, value []byte, err error) {
	h, extras, key, value, err := protocol.ReadBinaryResponse(n.br, maxBody)
	return h.Status, extras, key, value, err
}

// saslKeyOp runs one key's command on its owner over SASL.
func (c *cluster) saslKeyOp(ctx context.Context, key string, op func(*saslNode) error) error {
	addr := c.ring.OwnerString(key).Addr()
	n, err := dialSASL(ctx, c.dial, addr, c.sasl, c.timeout)
	if err != nil {
		return fmt.Errorf("node %s: %w", addr, err)
	}
	defer n.nc.Close()
	err = op(n)
	if err != nil && !errors.Is(err, errNotFound) {
		return fmt.Errorf("node %s: %w", addr, err)
	}
	return err
}

// replyErr is the outcome of cmd's reply: err if the exchange failed,
// errNotFound for a missing key, an error for any other status but OK.
func replyErr(cmd string, status protocol.BinaryStatus, err error) error {
	switch {
	case err != nil:
		return err
	case status == protocol.StatusKeyNotFound:
		return errNotFound
	case status != protocol.StatusOK:
		return fmt.Errorf("%s: %s", cmd, status)
	}
	return nil
}

// saslGet is get over SASL.
func (c *cluster) saslGet(ctx context.Context, w io.Writer, key string) error {
	return c.saslKeyOp(ctx, key, func(n *saslNode) error {
		status, _, value, err := n.do(protocol.OpGet, nil, []byte(key), nil)
		if err = replyErr("get", status, err); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", value)
		return err
	})
}

// saslSet is set over SASL.
func (c *cluster) saslSet(ctx context.Context, key, value string, ttl int32) error {
	return c.saslKeyOp(ctx, key, func(n *saslNode) error {
		extras := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 0), uint32(ttl))
		status, _, _, err := n.do(protocol.OpSet, extras, []byte(key), []byte(value))
		return replyErr("set", status, err)
	})
}

// saslDelete is delete over SASL.
func (c *cluster) saslDelete(ctx context.Context, key string) error {
	return c.saslKeyOp(ctx, key, func(n *saslNode) error {
		status, _, _, err := n.do(protocol.OpDelete, nil, []byte(key), nil)
		return replyErr("delete", status, err)
	})
}

// fetchStatsSASL is fetchStats over SASL: a binary Stat, whose replies
// end with one of no key.
func fetchStatsSASL(ctx context.Context, addr string, timeout time.Duration, d dialer, login *ring.SASLLogin) (map[string]string, error) {
	n, err := dialSASL(ctx, d, addr, login, timeout)
	if err != nil {
		return nil, err
	}
	defer n.nc.Close()
	if _, err := n.nc.Write(protocol.AppendBinaryRequest(nil, protocol.OpStat, 0, 0, nil, nil, nil)); err != nil {
		return nil, err
	}
	stats := map[string]string{}
	for range maxStatsLines {
		status, _, key, value, err := n.read(maxReply)
		if err != nil {
			return nil, err
		}
		if status != protocol.StatusOK {
			return nil, fmt.Errorf("stats: %s", status)
		}
		if len(key) == 0 {
			return stats, nil
		}
		stats[string(key)] = string(value)
	}
	return nil, fmt.Errorf("stats: more than %d lines", maxStatsLines)
}
