package servertest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// ErrClosed is returned by Conn's reads when the server closed the
// connection (end of file or reset) before the awaited bytes arrived.
var ErrClosed = errors.New("servertest: connection closed by server")

// ErrTimeout is returned by Conn's reads when the awaited bytes did not
// arrive in time.
var ErrTimeout = errors.New("servertest: timed out")

// Conn is a raw client connection for byte-level tests: it sends bytes as
// given and reads replies with deadlines, keeping bytes that arrive beyond
// what one read asked for for the next. A Conn is used by one goroutine.
type Conn struct {
	nc     net.Conn
	buf    []byte     // received and not yet returned
	closed bool       // the server closed the connection (EOF or reset)
	rerr   error      // the read error that closed it
	wdone  chan error // result of the last Send's write
	rbuf   []byte     // scratch for reads
}

// Raw opens a raw connection to the server, closed when the test ends.
func (s *Server) Raw(t testing.TB) *Conn {
	t.Helper()
	return DialRaw(t, s.Network, s.Addr)
}

// DialRaw opens a raw connection, closed when the test ends.
func DialRaw(t testing.TB, network, addr string) *Conn {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("servertest: dialing %s %s: %v", network, addr, err)
	}
	c := &Conn{nc: nc, rbuf: make([]byte, 64<<10)}
	t.Cleanup(func() { c.Close() })
	return c
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseWrite half-closes a TCP or unix connection: the server sees end of
// file while replies can still be read.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Send writes b, in order after earlier Sends, without waiting: a large
// request is written while its reply is read, so neither side blocks on a
// full socket buffer. WaitSent reports the outcome.
func (c *Conn) Send(b []byte) {
	prev := c.wdone
	done := make(chan error, 1)
	c.wdone = done
	b = bytes.Clone(b)
	go func() {
		if prev != nil {
			if err := <-prev; err != nil {
				done <- err
				return
			}
		}
		c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := c.nc.Write(b)
		done <- err
	}()
}

// SendString is Send of a string.
func (c *Conn) SendString(s string) { c.Send([]byte(s)) }

// WaitSent waits until everything sent has been written and returns the
// first write error (a server that closed the connection makes writes
// fail with a broken pipe or reset).
func (c *Conn) WaitSent() error {
	if c.wdone == nil {
		return nil
	}
	err := <-c.wdone
	c.wdone = nil
	return err
}

// Closed reports whether a read has seen the server close the connection.
func (c *Conn) Closed() bool { return c.closed }

// CloseErr returns the read error that showed the connection closed, or nil.
func (c *Conn) CloseErr() error { return c.rerr }

// fill reads once, waiting until deadline. It reports whether bytes arrived.
func (c *Conn) fill(deadline time.Time) bool {
	if c.closed {
		return false
	}
	c.nc.SetReadDeadline(deadline)
	n, err := c.nc.Read(c.rbuf)
	c.buf = append(c.buf, c.rbuf[:n]...)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return n > 0
		}
		c.closed, c.rerr = true, err
	}
	return n > 0
}

// ReadOptions say when Read stops. Zero durations take the defaults noted.
type ReadOptions struct {
	// First is how long to wait for the first byte. If zero, 5s.
	First time.Duration
	// Idle ends the read when no byte has arrived for this long after the
	// first. If zero, the read ends only by Done, Max or the server
	// closing the connection.
	Idle time.Duration
	// Max bounds the whole read. If zero, 30s.
	Max time.Duration
	// Done, if set, ends the read as soon as it returns true for the
	// bytes read so far.
	Done func(got []byte) bool
}

// Read reads until opts say to stop or the server closes the connection and
// returns all bytes received, including any left over from earlier reads.
func (c *Conn) Read(opts ReadOptions) []byte {
	if opts.First == 0 {
		opts.First = 5 * time.Second
	}
	if opts.Max == 0 {
		opts.Max = 30 * time.Second
	}
	start := time.Now()
	end := start.Add(opts.Max)
	last := time.Time{} // when the last byte arrived in this read
	if len(c.buf) > 0 {
		last = start
	}
	for {
		if opts.Done != nil && opts.Done(c.buf) {
			break
		}
		if c.closed {
			break
		}
		var deadline time.Time
		if last.IsZero() {
			deadline = start.Add(opts.First)
		} else if opts.Idle > 0 {
			deadline = last.Add(opts.Idle)
		} else {
			deadline = end
		}
		if deadline.After(end) {
			deadline = end
		}
		if !time.Now().Before(deadline) {
			break
		}
		if c.fill(deadline) {
			last = time.Now()
		}
	}
	got := c.buf
	c.buf = nil
	return got
}

// ReadN reads exactly n bytes, keeping any beyond them for the next read.
func (c *Conn) ReadN(n int, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for len(c.buf) < n {
		if c.closed {
			return c.take(len(c.buf)), ErrClosed
		}
		if !time.Now().Before(deadline) {
			return c.take(len(c.buf)), ErrTimeout
		}
		c.fill(deadline)
	}
	return c.take(n), nil
}

// ReadUntil reads up to and including the first occurrence of term,
// keeping any bytes after it for the next read. On failure it returns the
// bytes received and ErrClosed or ErrTimeout.
func (c *Conn) ReadUntil(term string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		if i := bytes.Index(c.buf, []byte(term)); i >= 0 {
			return c.take(i + len(term)), nil
		}
		if c.closed {
			return c.take(len(c.buf)), ErrClosed
		}
		if !time.Now().Before(deadline) {
			return c.take(len(c.buf)), ErrTimeout
		}
		c.fill(deadline)
	}
}

// ReadLine reads one line ending in "\r\n".
func (c *Conn) ReadLine(timeout time.Duration) (string, error) {
	b, err := c.ReadUntil("\r\n", timeout)
	return string(b), err
}

// WaitClosed reads until the server closes the connection or timeout
// passes. It returns the bytes that arrived meanwhile and whether the
// connection was closed.
func (c *Conn) WaitClosed(timeout time.Duration) ([]byte, bool) {
	deadline := time.Now().Add(timeout)
	for !c.closed && time.Now().Before(deadline) {
		c.fill(deadline)
	}
	return c.take(len(c.buf)), c.closed
}

func (c *Conn) take(n int) []byte {
	got := bytes.Clone(c.buf[:n])
	c.buf = c.buf[n:]
	if len(c.buf) == 0 {
		c.buf = nil
	}
	return got
}

// RoundTrip sends req and reads exactly len(want) bytes, failing the test
// unless they are want. It returns the bytes read.
func (c *Conn) RoundTrip(t testing.TB, req, want string) string {
	t.Helper()
	c.SendString(req)
	got, err := c.ReadN(len(want), 5*time.Second)
	if string(got) != want {
		t.Fatalf("request %q:\n got %q (%v)\nwant %q", Abbrev(req, 200), got, err, want)
	}
	return string(got)
}

// Abbrev shortens s to about n bytes for messages, saying how much it left out.
func Abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)…%s", s[:n*3/4], len(s)-n, s[len(s)-n/4:])
}
