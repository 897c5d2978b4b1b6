package peer

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/memcluster/memcluster/node/handoff"
)

// replayConn is a net.Conn whose writes are discarded; reads are the
// client's bufio.Reader's business.
type replayConn struct{ net.Conn }

func (replayConn) Write(b []byte) (int, error)      { return len(b), nil }
func (replayConn) SetDeadline(time.Time) error      { return nil }
func (replayConn) Close() error                     { return nil }
func (replayConn) SetReadDeadline(time.Time) error  { return nil }
func (replayConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReplies feeds arbitrary bytes to the client as a peer's replies to a
// fetch and to a push, in both protocols: no panic, no value past the
// limit, no item found in a reply that does not frame one.
func FuzzReplies(f *testing.F) {
	for _, seed := range []string{
		"VA 5 f3 t10 Omchandoff\r\nhello\r\n",
		"VA 2 f1 t-1\r\nhi\r\n",
		"EN\r\n",
		"VA 99999999 f1\r\n",
		"VA -1\r\n",
		"HD Omchandoff\r\nNS Omchandoff\r\nSERVER_ERROR out of memory\r\n",
		"CLIENT_ERROR bad\r\n",
		"\x81\xe0\x00\x00\x08\x00\x00\x00\x00\x00\x00\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x00\x05hello",
		"\x81\xe0\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x81\xe1\x00\x00\x00\x00\x00\x05\xff\xff\xff\xff",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		c := New(Config{Binary: binary, MaxValue: 64})
		cn := func() *conn {
			return &conn{nc: replayConn{}, r: bufio.NewReader(bytes.NewReader(data)), w: bufio.NewWriter(io.Discard)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		it, found, err := c.fetch(ctx, cn(), []byte("key"))
		if err != nil && found {
			t.Fatalf("found with an error: %v", err)
		}
		if found && (len(it.Value) > 64 || it.TTL < 0) {
			t.Fatalf("found a value of %d bytes, TTL %d, past the limits", len(it.Value), it.TTL)
		}
		items := []handoff.PushItem{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2"), TTL: 5}}
		if stored, _ := c.push(ctx, cn(), items); stored < 0 || stored > len(items) {
			t.Fatalf("push stored %d of %d", stored, len(items))
		}
	})
}
