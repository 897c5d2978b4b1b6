package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

// NoAllocs fails t, saying what was measured, unless f allocates nothing:
// testing.AllocsPerRun over runs calls, after one to warm up.
//
// Assert this only where the count is exact: where f runs on the calling
// goroutine alone, no other goroutine of the test allocates meanwhile, and
// nothing f relies on is emptied by the garbage collector (a sync.Pool). A
// path that a server's goroutines share belongs in a benchmark's allocs/op.
func NoAllocs(t testing.TB, what string, runs int, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(runs, f); n != 0 {
		t.Errorf("%s: got %v allocs, want 0", what, n)
	}
}

// ReplayConn is a net.Conn for allocation tests and benchmarks of a request
// path, with no socket: its reads deliver Requests in order, Rounds times
// over (forever if Rounds is negative), then io.EOF. If Pipelined, a read
// delivers as much as fits; otherwise at most one request, as a client
// that waits for each reply sends them. Writes are counted in Written and
// dropped. It is used by one goroutine.
type ReplayConn struct {
	Requests  [][]byte
	Pipelined bool
	Rounds    int
	Written   int
	i, off    int // the next byte to deliver: Requests[i][off]
}

// Rewind starts the requests over, for rounds rounds.
func (c *ReplayConn) Rewind(rounds int) { c.Rounds, c.i, c.off = rounds, 0, 0 }

// Read delivers the next bytes of the requests.
func (c *ReplayConn) Read(p []byte) (int, error) {
	if len(c.Requests) == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && c.Rounds != 0 {
		m := copy(p[n:], c.Requests[c.i][c.off:])
		n += m
		c.off += m
		if c.off < len(c.Requests[c.i]) {
			break
		}
		c.off = 0
		if c.i++; c.i == len(c.Requests) {
			c.i = 0
			if c.Rounds > 0 {
				c.Rounds--
			}
		}
		if !c.Pipelined {
			break
		}
	}
	if n == 0 && c.Rounds == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write counts p and drops it.
func (c *ReplayConn) Write(p []byte) (int, error) { c.Written += len(p); return len(p), nil }

// Close does nothing.
func (c *ReplayConn) Close() error { return nil }

// LocalAddr returns a zero TCP address.
func (c *ReplayConn) LocalAddr() net.Addr { return &net.TCPAddr{} }

// RemoteAddr returns a zero TCP address.
func (c *ReplayConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }

// SetDeadline does nothing: reads and writes never block.
func (c *ReplayConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline does nothing.
func (c *ReplayConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline does nothing.
func (c *ReplayConn) SetWriteDeadline(time.Time) error { return nil }
