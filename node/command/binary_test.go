package command

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// ---- helpers

// binStartNode serves a node for cfg, its logs discarded, until the test
// ends.
func binStartNode(t testing.TB, cfg Config) (*testServer, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return serveForTest(t, cfg)
}

// anyCAS in an expected reply stands for "any non-zero CAS".
const binAnyCAS = ^uint64(0)

// syncOpaque marks the Noop a step sends after its request to learn that
// every reply to it has arrived.
const binSyncOpaque = 0x5eed5eed

func binReq(op protocol.BinaryOpcode, opaque uint32, cas uint64, extras, key, value string) []byte {
	return protocol.AppendBinaryRequest(nil, op, opaque, cas, []byte(extras), []byte(key), []byte(value))
}

func binResp(op protocol.BinaryOpcode, status protocol.BinaryStatus, opaque uint32, cas uint64, extras, key, value string) []byte {
	return protocol.AppendBinaryResponse(nil, op, status, opaque, cas, []byte(extras), []byte(key), []byte(value))
}

func binErr(op protocol.BinaryOpcode, status protocol.BinaryStatus, opaque uint32) []byte {
	return protocol.AppendBinaryError(nil, op, status, opaque)
}

func binOK(op protocol.BinaryOpcode, opaque uint32, cas uint64) []byte {
	return binResp(op, protocol.StatusOK, opaque, cas, "", "", "")
}

func binHit(op protocol.BinaryOpcode, opaque uint32, flags uint32, key, value string) []byte {
	return protocol.AppendBinaryGetResponse(nil, op, opaque, binAnyCAS, flags, []byte(key), []byte(value))
}

func binCounter(op protocol.BinaryOpcode, opaque uint32, v uint64) []byte {
	return protocol.AppendBinaryCounterResponse(nil, op, opaque, binAnyCAS, v)
}

func binStorageExtras(flags, exptime uint32) string {
	return string(protocol.AppendBinaryStorageExtras(nil, flags, exptime))
}

func binCounterExtras(delta, initial uint64, exptime uint32) string {
	return string(protocol.AppendBinaryCounterExtras(nil, delta, initial, exptime))
}

func binExptimeExtras(exptime uint32) string {
	return string(protocol.AppendBinaryExptimeExtras(nil, exptime))
}

// binSet is a SetQ: silent unless it fails.
func binSet(key, value string) []byte {
	return binReq(protocol.OpSetQ, 0, 0, binStorageExtras(0, 0), key, value)
}

func binCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// How a step learns that the replies to its request are complete.
type binEnding int

const (
	binEndSync   binEnding = iota // a Noop follows the request; its reply ends the step
	binEndClosed                  // the server closes the connection
	binEndQuiet                   // nothing more arrives for a while
)

// step is one write to the server and the replies it draws.
type binStep struct {
	send []byte
	// sendCAS, if set, builds the request from the last non-zero CAS
	// the connection has seen in a reply.
	sendCAS func(cas uint64) []byte
	// want are the replies, packet by packet; a CAS of anyCAS matches any
	// non-zero CAS.
	want [][]byte
	end  binEnding
}

// client drives steps over one connection and keeps what it saw.
type binClient struct {
	t       *testing.T
	nc      net.Conn
	r       *bufio.Reader
	lastCAS uint64
}

func binDial(t *testing.T, addr string) *binClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &binClient{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<16)}
}

// readPacket reads one reply packet whole, or returns the read error.
func (c *binClient) readPacket(timeout time.Duration) ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	hdr := make([]byte, protocol.BinaryHeaderLen)
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[8:])
	p := make([]byte, protocol.BinaryHeaderLen+int(n))
	copy(p, hdr)
	if _, err := io.ReadFull(c.r, p[protocol.BinaryHeaderLen:]); err != nil {
		return nil, err
	}
	return p, nil
}

// run sends the step and returns the replies it drew and whether the server
// closed the connection. A step that ends in silence waits for as many
// replies as it wants before it waits for the silence.
func (c *binClient) run(st binStep) (got [][]byte, closed bool) {
	c.t.Helper()
	msg := st.send
	if st.sendCAS != nil {
		msg = st.sendCAS(c.lastCAS)
	}
	if st.end == binEndSync {
		msg = binCat(msg, binReq(protocol.OpNoop, binSyncOpaque, 0, "", "", ""))
	}
	if _, err := c.nc.Write(msg); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	for {
		timeout := 5 * time.Second
		if st.end == binEndQuiet && len(got) >= len(st.want) {
			// The replies the step expects have come (or it expects
			// none): wait a while for any more.
			timeout = 300 * time.Millisecond
		}
		p, err := c.readPacket(timeout)
		if err != nil {
			var ne net.Error
			switch {
			case st.end == binEndQuiet && errors.As(err, &ne) && ne.Timeout():
				return got, false
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || binIsReset(err):
				return got, true
			}
			c.t.Fatalf("reading a reply: %v (so far %s)", err, binDump(got))
		}
		if cas := binary.BigEndian.Uint64(p[16:]); cas != 0 {
			c.lastCAS = cas
		}
		if st.end == binEndSync && p[1] == byte(protocol.OpNoop) && binary.BigEndian.Uint32(p[12:]) == binSyncOpaque {
			return got, false
		}
		got = append(got, p)
	}
}

// abbrev shortens a long value for a test log.
func binAbbrev(b []byte) []byte {
	if len(b) <= 64 {
		return b
	}
	return append(append(b[:32:32], fmt.Sprintf("…(%d bytes)…", len(b)-48)...), b[len(b)-16:]...)
}

func binIsReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// check runs the step and compares the replies with st.want.
func (c *binClient) check(i int, st binStep) {
	c.t.Helper()
	got, closed := c.run(st)
	if closed != (st.end == binEndClosed) {
		c.t.Errorf("step %d: connection closed = %v, want %v (replies %s)", i, closed, !closed, binDump(got))
	}
	if !binMatch(got, st.want) {
		c.t.Errorf("step %d:\n got %s\nwant %s", i, binDump(got), binDump(st.want))
	}
}

// matchPackets compares replies byte for byte, except that a wanted CAS of
// anyCAS matches any non-zero CAS.
func binMatch(got, want [][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		w := want[i]
		if len(w) >= protocol.BinaryHeaderLen && binary.BigEndian.Uint64(w[16:]) == binAnyCAS && len(got[i]) >= protocol.BinaryHeaderLen {
			if binary.BigEndian.Uint64(got[i][16:]) == 0 {
				return false
			}
			w = append([]byte(nil), w...)
			copy(w[16:24], got[i][16:24])
		}
		if !bytes.Equal(got[i], w) {
			return false
		}
	}
	return true
}

func binDump(ps [][]byte) string {
	if len(ps) == 0 {
		return "(none)"
	}
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\n   ")
		if len(p) < protocol.BinaryHeaderLen {
			b.WriteString(hex.EncodeToString(p))
			continue
		}
		var h protocol.BinaryHeader
		_ = h.Decode(p)
		body := p[protocol.BinaryHeaderLen:]
		el, kl := int(h.ExtrasLen), int(h.KeyLen)
		if el+kl > len(body) {
			b.WriteString(hex.EncodeToString(p))
			continue
		}
		fmt.Fprintf(&b, "%02x %v status=%v opaque=%#x cas=%#x extras=%x key=%q value=%q",
			h.Magic, h.Opcode, h.Status, h.Opaque, h.CAS, body[:el], body[el:el+kl], binAbbrev(body[el+kl:]))
	}
	return b.String()
}

// ---- table tests

type binaryCase struct {
	name  string
	cfg   Config
	steps []binStep
}

func TestBinaryProtocol(t *testing.T) {
	const (
		op1 = 0x01020304
		op2 = 0xa0b0c0d0
	)
	se := binStorageExtras
	big := strings.Repeat("x", 1988) // the largest value of key "k" under -I 2048
	cases := []binaryCase{
		{name: "get family", steps: []binStep{
			{send: binReq(protocol.OpSet, op1, 0, se(0xdeadbeef, 0), "k", "value"), want: [][]byte{binOK(protocol.OpSet, op1, binAnyCAS)}},
			{send: binReq(protocol.OpGet, op2, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGet, op2, 0xdeadbeef, "", "value")}},
			{send: binReq(protocol.OpGetQ, op2, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGetQ, op2, 0xdeadbeef, "", "value")}},
			{send: binReq(protocol.OpGetK, op2, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGetK, op2, 0xdeadbeef, "k", "value")}},
			{send: binReq(protocol.OpGetKQ, op2, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGetKQ, op2, 0xdeadbeef, "k", "value")}},
			{send: binReq(protocol.OpGet, op1, 0, "", "nokey", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpGetQ, op1, 0, "", "nokey", "")},
			{send: binReq(protocol.OpGetK, op1, 0, "", "nokey", ""), want: [][]byte{binResp(protocol.OpGetK, protocol.StatusKeyNotFound, op1, 0, "", "nokey", "")}},
			{send: binReq(protocol.OpGetKQ, op1, 0, "", "nokey", "")},
			// A GetKQ pipeline ended by a Noop: hits only.
			{send: binCat(binReq(protocol.OpGetKQ, 1, 0, "", "a", ""), binReq(protocol.OpGetKQ, 2, 0, "", "k", ""), binReq(protocol.OpGetKQ, 3, 0, "", "b", "")),
				want: [][]byte{binHit(protocol.OpGetKQ, 2, 0xdeadbeef, "k", "value")}},
		}},
		{name: "set add replace", steps: []binStep{
			{send: binReq(protocol.OpAdd, op1, 0, se(1, 0), "k", "a"), want: [][]byte{binOK(protocol.OpAdd, op1, binAnyCAS)}},
			{send: binReq(protocol.OpAdd, op1, 0, se(1, 0), "k", "b"), want: [][]byte{binErr(protocol.OpAdd, protocol.StatusKeyExists, op1)}},
			{send: binReq(protocol.OpAddQ, op1, 0, se(1, 0), "k", "b"), want: [][]byte{binErr(protocol.OpAddQ, protocol.StatusKeyExists, op1)}},
			{send: binReq(protocol.OpReplace, op1, 0, se(2, 0), "k", "c"), want: [][]byte{binOK(protocol.OpReplace, op1, binAnyCAS)}},
			{send: binReq(protocol.OpReplace, op1, 0, se(2, 0), "nokey", "c"), want: [][]byte{binErr(protocol.OpReplace, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpReplaceQ, op1, 0, se(2, 0), "nokey", "c"), want: [][]byte{binErr(protocol.OpReplaceQ, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpReplaceQ, op1, 0, se(3, 0), "k", "d")},
			{send: binReq(protocol.OpSetQ, op1, 0, se(4, 0), "k2", "")},
			{send: binReq(protocol.OpAddQ, op1, 0, se(0, 0), "k3", "e")},
			{send: binCat(binReq(protocol.OpGet, 1, 0, "", "k", ""), binReq(protocol.OpGet, 2, 0, "", "k2", ""), binReq(protocol.OpGet, 3, 0, "", "k3", "")),
				want: [][]byte{binHit(protocol.OpGet, 1, 3, "", "d"), binHit(protocol.OpGet, 2, 4, "", ""), binHit(protocol.OpGet, 3, 0, "", "e")}},
		}},
		{name: "cas", steps: []binStep{
			{send: binReq(protocol.OpSet, 0, 0, se(0, 0), "k", "v1"), want: [][]byte{binOK(protocol.OpSet, 0, binAnyCAS)}},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpSet, op1, cas+1000, se(0, 0), "k", "x") },
				want: [][]byte{binErr(protocol.OpSet, protocol.StatusKeyExists, op1)}},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpSet, op1, cas, se(0, 0), "k", "v2") },
				want: [][]byte{binOK(protocol.OpSet, op1, binAnyCAS)}},
			{send: binReq(protocol.OpSet, op1, 12345, se(0, 0), "nokey", "x"), want: [][]byte{binErr(protocol.OpSet, protocol.StatusKeyNotFound, op1)}},
			// Add with a CAS runs as a cas.
			{send: binReq(protocol.OpAdd, op1, 12345, se(0, 0), "nokey", "x"), want: [][]byte{binErr(protocol.OpAdd, protocol.StatusKeyNotFound, op1)}},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpAdd, op1, cas+1000, se(0, 0), "k", "x") },
				want: [][]byte{binErr(protocol.OpAdd, protocol.StatusKeyExists, op1)}},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpReplaceQ, op1, cas, se(0, 0), "k", "v3") }},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpAppend, op1, cas+1000, "", "k", "!") },
				want: [][]byte{binErr(protocol.OpAppend, protocol.StatusKeyExists, op1)}},
			{send: binReq(protocol.OpGet, 7, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGet, 7, 0, "", "v3")}},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpDelete, op1, cas+1000, "", "k", "") },
				want: [][]byte{binErr(protocol.OpDelete, protocol.StatusKeyExists, op1)}},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpDelete, op1, cas, "", "k", "") },
				want: [][]byte{binOK(protocol.OpDelete, op1, 0)}},
		}},
		{name: "append prepend", steps: []binStep{
			{send: binReq(protocol.OpAppend, op1, 0, "", "k", "x"), want: [][]byte{binErr(protocol.OpAppend, protocol.StatusNotStored, op1)}},
			{send: binReq(protocol.OpPrependQ, op1, 0, "", "k", "x"), want: [][]byte{binErr(protocol.OpPrependQ, protocol.StatusNotStored, op1)}},
			{send: binReq(protocol.OpSetQ, 0, 0, se(9, 0), "k", "mid")},
			{send: binReq(protocol.OpAppend, op1, 0, "", "k", "-end"), want: [][]byte{binOK(protocol.OpAppend, op1, binAnyCAS)}},
			{send: binReq(protocol.OpPrepend, op1, 0, "", "k", "start-"), want: [][]byte{binOK(protocol.OpPrepend, op1, binAnyCAS)}},
			{send: binReq(protocol.OpAppendQ, op1, 0, "", "k", "!")},
			{send: binReq(protocol.OpPrependQ, op1, 0, "", "k", "")},
			{send: binReq(protocol.OpGet, op2, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGet, op2, 9, "", "start-mid-end!")}},
		}},
		{name: "delete", steps: []binStep{
			{send: binSet("k", "v")},
			{send: binReq(protocol.OpDelete, op1, 0, "", "k", ""), want: [][]byte{binOK(protocol.OpDelete, op1, 0)}},
			{send: binReq(protocol.OpDelete, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpDelete, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpDeleteQ, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpDeleteQ, protocol.StatusKeyNotFound, op1)}},
			{send: binSet("k", "v")},
			{send: binReq(protocol.OpDeleteQ, op1, 0, "", "k", "")},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}},
		}},
		{name: "incr decr", steps: []binStep{
			{send: binReq(protocol.OpIncrement, op1, 0, binCounterExtras(5, 10, 0), "c", ""), want: [][]byte{binCounter(protocol.OpIncrement, op1, 10)}},
			{send: binReq(protocol.OpIncrement, op1, 0, binCounterExtras(5, 10, 0), "c", ""), want: [][]byte{binCounter(protocol.OpIncrement, op1, 15)}},
			{send: binReq(protocol.OpDecrement, op1, 0, binCounterExtras(100, 10, 0), "c", ""), want: [][]byte{binCounter(protocol.OpDecrement, op1, 0)}},
			{send: binReq(protocol.OpGet, op1, 0, "", "c", ""), want: [][]byte{binHit(protocol.OpGet, op1, 0, "", "0 ")}},
			{send: binReq(protocol.OpIncrementQ, op1, 0, binCounterExtras(7, 0, 0), "c", "")},
			{send: binReq(protocol.OpDecrementQ, op1, 0, binCounterExtras(2, 0, 0), "c", "")},
			{send: binReq(protocol.OpIncrement, op1, 0, binCounterExtras(0, 0, 0), "c", ""), want: [][]byte{binCounter(protocol.OpIncrement, op1, 5)}},
			{send: binReq(protocol.OpDecrement, op1, 0, binCounterExtras(1, 1, counterNoCreate), "nokey", ""), want: [][]byte{binErr(protocol.OpDecrement, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpIncrementQ, op1, 0, binCounterExtras(1, 1, counterNoCreate), "nokey", ""), want: [][]byte{binErr(protocol.OpIncrementQ, protocol.StatusKeyNotFound, op1)}},
			{send: binSet("max", "18446744073709551615")},
			{send: binReq(protocol.OpIncrement, op1, 0, binCounterExtras(1, 0, 0), "max", ""), want: [][]byte{binCounter(protocol.OpIncrement, op1, 0)}},
			{send: binSet("text", "abc")},
			{send: binReq(protocol.OpIncrement, op1, 0, binCounterExtras(1, 0, 0), "text", ""), want: [][]byte{binErr(protocol.OpIncrement, protocol.StatusNonNumeric, op1)}},
			{send: binSet("long", "184467440737095516150")},
			{send: binReq(protocol.OpDecrementQ, op1, 0, binCounterExtras(1, 0, 0), "long", ""), want: [][]byte{binErr(protocol.OpDecrementQ, protocol.StatusNonNumeric, op1)}},
			{sendCAS: func(cas uint64) []byte {
				return binReq(protocol.OpIncrement, op1, cas+1000, binCounterExtras(1, 0, 0), "c", "")
			},
				want: [][]byte{binErr(protocol.OpIncrement, protocol.StatusKeyExists, op1)}},
		}},
		{name: "touch and gat", steps: []binStep{
			{send: binReq(protocol.OpSetQ, 0, 0, se(42, 0), "k", "v")},
			{send: binReq(protocol.OpTouch, op1, 0, binExptimeExtras(100), "k", ""), want: [][]byte{binHit(protocol.OpTouch, op1, 42, "", "")}},
			{send: binReq(protocol.OpTouch, op1, 0, binExptimeExtras(100), "nokey", ""), want: [][]byte{binErr(protocol.OpTouch, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpGAT, op1, 0, binExptimeExtras(100), "k", ""), want: [][]byte{binHit(protocol.OpGAT, op1, 42, "", "v")}},
			{send: binReq(protocol.OpGATQ, op1, 0, binExptimeExtras(100), "k", ""), want: [][]byte{binHit(protocol.OpGATQ, op1, 42, "", "v")}},
			{send: binReq(protocol.OpGATK, op1, 0, binExptimeExtras(100), "k", ""), want: [][]byte{binHit(protocol.OpGATK, op1, 42, "k", "v")}},
			{send: binReq(protocol.OpGATKQ, op1, 0, binExptimeExtras(100), "k", ""), want: [][]byte{binHit(protocol.OpGATKQ, op1, 42, "k", "v")}},
			{send: binReq(protocol.OpGAT, op1, 0, binExptimeExtras(100), "nokey", ""), want: [][]byte{binErr(protocol.OpGAT, protocol.StatusKeyNotFound, op1)}},
			{send: binReq(protocol.OpGATQ, op1, 0, binExptimeExtras(100), "nokey", "")},
			{send: binReq(protocol.OpGATK, op1, 0, binExptimeExtras(100), "nokey", ""), want: [][]byte{binResp(protocol.OpGATK, protocol.StatusKeyNotFound, op1, 0, "", "nokey", "")}},
			{send: binReq(protocol.OpGATKQ, op1, 0, binExptimeExtras(100), "nokey", "")},
			// A touch into the past expires the item.
			{send: binReq(protocol.OpTouch, op1, 0, binExptimeExtras(1000000000), "k", ""), want: [][]byte{binHit(protocol.OpTouch, op1, 42, "", "")}},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}},
		}},
		{name: "flush", steps: []binStep{
			{send: binSet("k", "v")},
			{send: binReq(protocol.OpFlush, op1, 0, "", "", ""), want: [][]byte{binOK(protocol.OpFlush, op1, 0)}},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}},
			{send: binSet("k", "v")},
			{send: binReq(protocol.OpFlushQ, op1, 0, binExptimeExtras(0), "", "")},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}},
			{send: binSet("k", "v")},
			{send: binReq(protocol.OpFlush, op1, 0, binExptimeExtras(100), "", ""), want: [][]byte{binOK(protocol.OpFlush, op1, 0)}},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGet, op1, 0, "", "v")}},
		}},
		{name: "flush disabled", cfg: Config{DisableFlushAll: true}, steps: []binStep{
			{send: binSet("k", "v")},
			{send: binReq(protocol.OpFlush, op1, 0, "", "", ""), want: [][]byte{binErr(protocol.OpFlush, protocol.StatusAuthError, op1)}},
			{send: binReq(protocol.OpFlushQ, op1, 0, "", "", ""), want: [][]byte{binErr(protocol.OpFlushQ, protocol.StatusAuthError, op1)}},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGet, op1, 0, "", "v")}},
		}},
		{name: "noop version", steps: []binStep{
			{send: binReq(protocol.OpNoop, op1, 0, "", "", ""), want: [][]byte{binOK(protocol.OpNoop, op1, 0)}},
			{send: binReq(protocol.OpVersion, op2, 0, "", "", ""), want: [][]byte{binResp(protocol.OpVersion, protocol.StatusOK, op2, 0, "", "", Version)}},
		}},
		{name: "quit", steps: []binStep{
			{send: binSet("k", "v")},
			{send: binCat(binReq(protocol.OpGetQ, op1, 0, "", "k", ""), binReq(protocol.OpQuit, op2, 0, "", "", ""), binReq(protocol.OpNoop, 3, 0, "", "", "")),
				want: [][]byte{binHit(protocol.OpGetQ, op1, 0, "", "v"), binOK(protocol.OpQuit, op2, 0)}, end: binEndClosed},
		}},
		{name: "quitq", steps: []binStep{
			{send: binSet("k", "v")},
			{send: binCat(binReq(protocol.OpGetQ, op1, 0, "", "k", ""), binReq(protocol.OpQuitQ, op2, 0, "", "", ""), binReq(protocol.OpNoop, 3, 0, "", "", "")),
				want: [][]byte{binHit(protocol.OpGetQ, op1, 0, "", "v")}, end: binEndClosed},
		}},
		{name: "unknown opcodes", steps: []binStep{
			{send: binReq(0x50, op1, 0, "", "", ""), want: [][]byte{binErr(0x50, protocol.StatusUnknownCommand, op1)}},
			{send: binReq(0x1f, op1, 0, "", "", ""), want: [][]byte{binErr(0x1f, protocol.StatusUnknownCommand, op1)}},
			// SASL without -S.
			{send: binReq(protocol.OpSASLListMechs, op1, 0, "", "", ""), want: [][]byte{binErr(protocol.OpSASLListMechs, protocol.StatusUnknownCommand, op1)}},
			{send: binReq(protocol.OpSASLAuth, op1, 0, "", "PLAIN", "\x00u\x00p"), want: [][]byte{binErr(protocol.OpSASLAuth, protocol.StatusUnknownCommand, op1)}},
			{send: binReq(protocol.OpSASLStep, op1, 0, "", "PLAIN", ""), want: [][]byte{binErr(protocol.OpSASLStep, protocol.StatusUnknownCommand, op1)}},
			{send: binReq(protocol.OpSASLAuth, op1, 0, "", "PLAIN", strings.Repeat("d", 2<<20)), want: [][]byte{binErr(protocol.OpSASLAuth, protocol.StatusUnknownCommand, op1)}},
			// Verbosity with its 4 bytes of extras swallows 4 bytes
			// more: the reply waits for them.
			{send: binReq(protocol.OpVerbosity, op1, 0, binExptimeExtras(1), "", ""), end: binEndQuiet},
			{send: binReq(protocol.OpNoop, op2, 0, "", "", ""), want: [][]byte{binErr(protocol.OpVerbosity, protocol.StatusUnknownCommand, op1)}, end: binEndQuiet},
			// The rest of that Noop and 4 bytes of this one start with
			// 0x00: a bad magic.
			{send: binReq(protocol.OpNoop, op2, 0, "", "", ""), end: binEndClosed},
		}},
		{name: "bad magic", steps: []binStep{
			// (A first byte other than 0x80 would pick the text protocol.)
			{send: binCat(binReq(protocol.OpNoop, op1, 0, "", "", ""), binOK(protocol.OpNoop, 0, 0)),
				want: [][]byte{binOK(protocol.OpNoop, op1, 0)}, end: binEndClosed},
		}},
		{name: "bad magic loses pending replies", steps: []binStep{
			{send: binCat(binSet("k", "v"), binReq(protocol.OpGetQ, 0, 0, "", "k", ""), binOK(protocol.OpNoop, 0, 0)), end: binEndClosed},
		}},
		{name: "bad magic after an error", steps: []binStep{
			{send: binCat(binReq(protocol.OpGet, op1, 0, "", "nokey", ""), binOK(protocol.OpNoop, 0, 0)),
				want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}, end: binEndClosed},
		}},
		{name: "key too long", steps: []binStep{
			{send: binSet("k", "v")},
			{send: binCat(binReq(protocol.OpGetQ, 1, 0, "", "k", ""), binReq(protocol.OpGet, op1, 0, "", strings.Repeat("k", 251), "")),
				want: [][]byte{binHit(protocol.OpGetQ, 1, 0, "", "v"), binErr(protocol.OpGet, protocol.StatusInvalidArgs, op1)}, end: binEndClosed},
		}},
		{name: "invalid lengths", steps: []binStep{
			{send: binReq(protocol.OpGet, op1, 0, "xxxx", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusInvalidArgs, op1)}, end: binEndClosed},
		}},
		{name: "key and extras longer than body", steps: []binStep{
			{send: func() []byte {
				p := binReq(protocol.OpGet, op1, 0, "", "kkkkk", "")
				binary.BigEndian.PutUint32(p[8:], 3)
				return p
			}(), want: [][]byte{binErr(protocol.OpGet, protocol.StatusUnknownCommand, op1)}, end: binEndClosed},
		}},
		{name: "too large", cfg: Config{ItemSizeMax: 2048}, steps: []binStep{
			{send: binReq(protocol.OpSet, op1, 0, se(0, 0), "k", big), want: [][]byte{binOK(protocol.OpSet, op1, binAnyCAS)}},
			{send: binReq(protocol.OpSet, op1, 0, se(0, 0), "k", big+"x"), want: [][]byte{binErr(protocol.OpSet, protocol.StatusTooLarge, op1)}},
			// The failed set dropped the old value.
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, op1)}},
			// Flags cost 4 bytes.
			{send: binReq(protocol.OpSet, op1, 0, se(1, 0), "k", big[4:]), want: [][]byte{binOK(protocol.OpSet, op1, binAnyCAS)}},
			{send: binReq(protocol.OpSetQ, op1, 0, se(1, 0), "k", big[3:]), want: [][]byte{binErr(protocol.OpSetQ, protocol.StatusTooLarge, op1)}},
			{send: binSet("k", "v")},
			// Add and Replace that are too large keep the old value.
			{send: binReq(protocol.OpAddQ, op1, 0, se(0, 0), "k", big+"x"), want: [][]byte{binErr(protocol.OpAddQ, protocol.StatusTooLarge, op1)}},
			{send: binReq(protocol.OpReplace, op1, 0, se(0, 0), "k", big+"x"), want: [][]byte{binErr(protocol.OpReplace, protocol.StatusTooLarge, op1)}},
			{send: binReq(protocol.OpAppend, op1, 0, "", "k", big+"x"), want: [][]byte{binErr(protocol.OpAppend, protocol.StatusTooLarge, op1)}},
			// A joined value too large is not stored.
			{send: binReq(protocol.OpAppend, op1, 0, "", "k", big), want: [][]byte{binErr(protocol.OpAppend, protocol.StatusNotStored, op1)}},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGet, op1, 0, "", "v")}},
		}},
		{name: "no cas", cfg: Config{NoCAS: true}, steps: []binStep{
			{send: binReq(protocol.OpSet, op1, 0, se(0, 0), "k", "v"), want: [][]byte{binOK(protocol.OpSet, op1, 0)}},
			{send: binReq(protocol.OpSet, op1, 5, se(0, 0), "k", "w"), want: [][]byte{binOK(protocol.OpSet, op1, 0)}},
			{send: binReq(protocol.OpAdd, op1, 5, se(0, 0), "k", "w"), want: [][]byte{binErr(protocol.OpAdd, protocol.StatusKeyExists, op1)}},
			{send: binReq(protocol.OpAdd, op1, 5, se(0, 0), "k2", "w"), want: [][]byte{binOK(protocol.OpAdd, op1, 0)}},
			{send: binReq(protocol.OpAppend, op1, 5, "", "k", "!"), want: [][]byte{binOK(protocol.OpAppend, op1, 0)}},
			{send: binReq(protocol.OpGet, op1, 0, "", "k", ""), want: [][]byte{protocol.AppendBinaryGetResponse(nil, protocol.OpGet, op1, 0, 0, nil, []byte("w!"))}},
			{send: binReq(protocol.OpDelete, op1, 5, "", "k", ""), want: [][]byte{binErr(protocol.OpDelete, protocol.StatusKeyExists, op1)}},
			{send: binReq(protocol.OpIncrement, op1, 0, binCounterExtras(1, 7, 0), "c", ""), want: [][]byte{protocol.AppendBinaryCounterResponse(nil, protocol.OpIncrement, op1, 0, 7)}},
		}},
		// With -S every request but Version and SASL's is refused until
		// the connection authenticates; with no credentials file, no one
		// does. No Noop may follow a request: it would be refused too.
		{name: "sasl", cfg: Config{SASL: true}, steps: []binStep{
			{send: binReq(protocol.OpVersion, op1, 0, "", "", ""), want: [][]byte{binResp(protocol.OpVersion, protocol.StatusOK, op1, 0, "", "", Version)}, end: binEndQuiet},
			{send: binReq(protocol.OpSASLListMechs, op1, 0, "", "", ""), want: [][]byte{binResp(protocol.OpSASLListMechs, protocol.StatusOK, op1, 0, "", "", "SCRAM-SHA-256 CRAM-MD5 PLAIN")}, end: binEndQuiet},
			{send: binReq(protocol.OpSASLAuth, op1, 0, "", "PLAIN", "\x00u\x00p"), want: [][]byte{binErr(protocol.OpSASLAuth, protocol.StatusAuthError, op1)}, end: binEndQuiet},
			{send: binReq(protocol.OpSASLAuth, op1, 0, "", strings.Repeat("M", 33), "x"), want: [][]byte{binErr(protocol.OpSASLAuth, protocol.StatusInvalidArgs, op1)}, end: binEndQuiet},
			{send: binReq(protocol.OpGet, op2, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusAuthError, op2)}, end: binEndClosed},
		}},
		{name: "sasl refuses text", cfg: Config{SASL: true}, steps: []binStep{
			{send: []byte("version\r\nversion\r\nversion\r\n"), end: binEndClosed},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := binStartNode(t, tc.cfg)
			c := binDial(t, addr)
			for i, st := range tc.steps {
				c.check(i, st)
			}
		})
	}
}

// TestBinaryOutOfMemory: under -M a full store refuses a set with memcached's
// text, and the key's old value is gone.
func TestBinaryOutOfMemory(t *testing.T) {
	_, addr := binStartNode(t, Config{MemoryLimit: 2 << 20, NoEvictions: true})
	c := binDial(t, addr)
	value := strings.Repeat("v", 100<<10)
	oom := protocol.AppendBinaryErrorMessage(nil, protocol.OpSet, protocol.StatusOutOfMemory, 9, "Out of memory allocating item")
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("100 sets of 100 KiB fit in 2 MiB")
		}
		got, _ := c.run(binStep{send: binReq(protocol.OpSet, 9, 0, binStorageExtras(0, 0), fmt.Sprint("k", i), value)})
		if len(got) != 1 {
			t.Fatalf("set %d: replies %s", i, binDump(got))
		}
		if got[0][7] == byte(protocol.StatusOK) {
			continue
		}
		if !bytes.Equal(got[0], oom) {
			t.Fatalf("set %d:\n got %s\nwant %s", i, binDump(got), binDump([][]byte{oom}))
		}
		break
	}
	// A larger value for a present key: refused, and the old value
	// dropped.
	c.check(0, binStep{send: binReq(protocol.OpSetQ, 9, 0, binStorageExtras(0, 0), "k1", value+value),
		want: [][]byte{protocol.AppendBinaryErrorMessage(nil, protocol.OpSetQ, protocol.StatusOutOfMemory, 9, "Out of memory allocating item")}})
	c.check(1, binStep{send: binReq(protocol.OpGet, 9, 0, "", "k1", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, 9)}})
}

// readStats sends a Stat request for group and reads its packets up to and
// including the terminator, or the one error reply.
func binReadStats(t *testing.T, c *binClient, group string) [][]byte {
	t.Helper()
	if _, err := c.nc.Write(binReq(protocol.OpStat, 77, 0, "", group, "")); err != nil {
		t.Fatal(err)
	}
	var ps [][]byte
	for {
		p, err := c.readPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("stats %q: %v", group, err)
		}
		ps = append(ps, p)
		if p[1] != byte(protocol.OpStat) || binary.BigEndian.Uint32(p[12:]) != 77 {
			t.Fatalf("stats %q: unexpected packet %s", group, binDump([][]byte{p}))
		}
		if p[7] != 0 || binary.BigEndian.Uint32(p[8:]) == 0 {
			return ps
		}
	}
}

func binStatMap(ps [][]byte) map[string]string {
	m := map[string]string{}
	for _, p := range ps {
		kl := int(binary.BigEndian.Uint16(p[2:]))
		m[string(p[24:24+kl])] = string(p[24+kl:])
	}
	return m
}

func TestBinaryStat(t *testing.T) {
	s, addr := binStartNode(t, Config{})
	c := binDial(t, addr)
	end := protocol.AppendBinaryStatEnd(nil, 77)
	notFound := binErr(protocol.OpStat, protocol.StatusKeyNotFound, 77)

	// General stats: every packet opcode Stat, CAS 0, in text "stats"
	// order, then the terminator.
	ps := binReadStats(t, c, "")
	if !bytes.Equal(ps[len(ps)-1], end) {
		t.Errorf("last packet %s, want the terminator", binDump(ps[len(ps)-1:]))
	}
	want := s.Stats()
	if len(ps)-1 != len(want) {
		t.Errorf("got %d stats, want %d", len(ps)-1, len(want))
	}
	for i, p := range ps[:min(len(ps)-1, len(want))] {
		kl := int(binary.BigEndian.Uint16(p[2:]))
		if name := string(p[24 : 24+kl]); name != want[i].Name {
			t.Errorf("stat %d is %q, want %q", i, name, want[i].Name)
		}
		if p[4] != 0 || binary.BigEndian.Uint64(p[16:]) != 0 {
			t.Errorf("stat packet %s has extras or a CAS", binDump([][]byte{p}))
		}
	}

	for _, group := range []string{"settings", "settingsxyz"} {
		ps := binReadStats(t, c, group)
		if m := binStatMap(ps); m["item_size_max"] != "1048576" || !bytes.Equal(ps[len(ps)-1], end) {
			t.Errorf("stats %s: %s", group, binDump(ps))
		}
	}
	for _, group := range []string{"items", "slabs", "sizes"} {
		ps := binReadStats(t, c, group)
		if !bytes.Equal(ps[len(ps)-1], end) {
			t.Errorf("stats %s does not end with the terminator: %s", group, binDump(ps))
		}
	}
	if ps := binReadStats(t, c, "sizes"); !bytes.Equal(ps[0], protocol.AppendBinaryStat(nil, 77, "sizes_status", "disabled")) {
		t.Errorf("stats sizes: %s", binDump(ps))
	}
	for _, group := range []string{"conns", "bogus", "detail", "detailx", "res", "itemsx", "sizes_enable"} {
		if ps := binReadStats(t, c, group); !binMatch(ps, [][]byte{notFound}) {
			t.Errorf("stats %q: got %s, want Not found", group, binDump(ps))
		}
	}
	for _, group := range []string{"reset", "resetxyz", "detail on", "detail off", "detail onxyz"} {
		if ps := binReadStats(t, c, group); !binMatch(ps, [][]byte{end}) {
			t.Errorf("stats %q: got %s, want the terminator alone", group, binDump(ps))
		}
	}

	// detail: prefixes counted while on, dumped as one packet.
	binReadStats(t, c, "detail on")
	c.check(0, binStep{send: binCat(binSet("p:a", "v"), binReq(protocol.OpGet, 0, 0, "", "p:a", ""), binReq(protocol.OpGetQ, 0, 0, "", "p:b", ""), binReq(protocol.OpDeleteQ, 0, 0, "", "p:a", "")),
		want: [][]byte{binHit(protocol.OpGet, 0, 0, "", "v")}})
	dump := binReadStats(t, c, "detail dump")
	wantDump := [][]byte{protocol.AppendBinaryStat(nil, 77, "detailed", "PREFIX p get 2 hit 1 set 1 del 1\r\nEND\r\n"), end}
	if !binMatch(dump, wantDump) {
		t.Errorf("detail dump:\n got %s\nwant %s", binDump(dump), binDump(wantDump))
	}
	binReadStats(t, c, "detail off")
	if m := binStatMap(binReadStats(t, c, "settings")); m["detail_enabled"] != "no" {
		t.Errorf("detail_enabled = %q after detail off", m["detail_enabled"])
	}
	binReadStats(t, c, "reset")
	if m := binStatMap(binReadStats(t, c, "")); m["cmd_get"] != "0" || m["cmd_set"] != "0" {
		t.Errorf("after reset: cmd_get %s cmd_set %s", m["cmd_get"], m["cmd_set"])
	}
}

// TestBinaryCounters checks the stats the binary commands count against
// what memcached 1.6.18 counts for the same sequence (observed).
func TestBinaryCounters(t *testing.T) {
	s, addr := binStartNode(t, Config{ItemSizeMax: 2048})
	c := binDial(t, addr)
	se := binStorageExtras(0, 0)
	steps := [][]byte{
		binSet("k", "v"),
		binReq(protocol.OpGet, 0, 0, "", "k", ""), binReq(protocol.OpGetQ, 0, 0, "", "nokey", ""), binReq(protocol.OpGetK, 0, 0, "", "nokey", ""),
		binReq(protocol.OpTouch, 0, 0, binExptimeExtras(100), "k", ""), binReq(protocol.OpTouch, 0, 0, binExptimeExtras(100), "nokey", ""),
		binReq(protocol.OpGAT, 0, 0, binExptimeExtras(100), "k", ""), binReq(protocol.OpGATQ, 0, 0, binExptimeExtras(100), "nokey", ""),
		binReq(protocol.OpSet, 0, 1<<40, se, "k", "x"), binReq(protocol.OpSet, 0, 1<<40, se, "nokey", "x"), binReq(protocol.OpAdd, 0, 1<<40, se, "nokey", "x"),
		binReq(protocol.OpAppend, 0, 1<<40, "", "k", "x"),
		binReq(protocol.OpIncrement, 0, 0, binCounterExtras(1, 5, 0), "n", ""), binReq(protocol.OpIncrement, 0, 0, binCounterExtras(1, 5, 0), "n", ""),
		binReq(protocol.OpDecrement, 0, 0, binCounterExtras(1, 5, counterNoCreate), "nokey", ""),
		binReq(protocol.OpDelete, 0, 0, "", "nokey", ""), binReq(protocol.OpDelete, 0, 0, "", "n", ""),
		binReq(protocol.OpSet, 0, 0, se, "big", strings.Repeat("x", 4000)),
		binReq(protocol.OpFlush, 0, 0, "", "", ""),
	}
	for _, p := range steps {
		c.run(binStep{send: p})
	}
	got := map[string]string{}
	for _, st := range s.Stats() {
		got[st.Name] = st.Value
	}
	want := map[string]string{
		"cmd_get": "3", "get_hits": "1", "get_misses": "2",
		"cmd_touch": "4", "touch_hits": "2", "touch_misses": "2",
		"cmd_set": "5", "cas_misses": "2", "cas_hits": "0", "cas_badval": "1",
		"incr_hits": "1", "incr_misses": "0", "decr_hits": "0", "decr_misses": "1",
		"delete_hits": "1", "delete_misses": "1", "cmd_flush": "1",
		"store_too_large": "0", "store_no_memory": "0",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %s, want %s", name, got[name], w)
		}
	}
}

// ---- against memcached

// TestBinaryMatchesMemcached sends the same sequences to memcached and to a
// node and compares the replies byte for byte, CAS values numbered in order
// of appearance.
func TestBinaryMatchesMemcached(t *testing.T) {
	se := binStorageExtras(0, 0)
	big := strings.Repeat("x", 1048516)
	sequences := []struct {
		name  string
		args  []string
		cfg   Config
		steps []binStep
	}{
		{name: "storage and retrieval", steps: []binStep{
			{send: binReq(protocol.OpSet, 1, 0, binStorageExtras(7, 0), "k", "value")},
			{send: binCat(binReq(protocol.OpGet, 2, 0, "", "k", ""), binReq(protocol.OpGetK, 3, 0, "", "k", ""), binReq(protocol.OpGetQ, 4, 0, "", "k", ""), binReq(protocol.OpGetKQ, 5, 0, "", "k", ""))},
			{send: binCat(binReq(protocol.OpGet, 2, 0, "", "no", ""), binReq(protocol.OpGetK, 3, 0, "", "no", ""), binReq(protocol.OpGetQ, 4, 0, "", "no", ""), binReq(protocol.OpGetKQ, 5, 0, "", "no", ""))},
			{send: binCat(binReq(protocol.OpAdd, 6, 0, se, "k", "x"), binReq(protocol.OpAddQ, 7, 0, se, "k", "x"), binReq(protocol.OpReplace, 8, 0, se, "no", "x"), binReq(protocol.OpReplaceQ, 9, 0, se, "no", "x"))},
			{send: binCat(binReq(protocol.OpSetQ, 10, 0, se, "a", "1"), binReq(protocol.OpAddQ, 11, 0, se, "b", "2"), binReq(protocol.OpReplaceQ, 12, 0, binStorageExtras(3, 0), "a", "3"))},
			{send: binCat(binReq(protocol.OpAppend, 13, 0, "", "a", "+"), binReq(protocol.OpPrepend, 14, 0, "", "a", "-"), binReq(protocol.OpAppendQ, 15, 0, "", "no", "x"), binReq(protocol.OpPrependQ, 16, 0, "", "b", "p"))},
			{send: binCat(binReq(protocol.OpGet, 17, 0, "", "a", ""), binReq(protocol.OpGet, 18, 0, "", "b", ""))},
			{send: binCat(binReq(protocol.OpDelete, 19, 0, "", "a", ""), binReq(protocol.OpDelete, 20, 0, "", "a", ""), binReq(protocol.OpDeleteQ, 21, 0, "", "a", ""), binReq(protocol.OpDeleteQ, 22, 0, "", "b", ""))},
		}},
		{name: "cas", steps: []binStep{
			{send: binSet("k", "1")},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpSet, 1, cas+1000, se, "k", "x") }},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpSet, 2, cas, se, "k", "2") }},
			{send: binCat(binReq(protocol.OpSet, 3, 999999, se, "no", "x"), binReq(protocol.OpAdd, 4, 999999, se, "no", "x"), binReq(protocol.OpAdd, 5, 999999, se, "k", "x"))},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpAppend, 6, cas+1000, "", "k", "x") }},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpAppendQ, 7, cas, "", "k", "y") }},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpDelete, 8, cas+1000, "", "k", "") }},
			{send: binReq(protocol.OpGet, 9, 0, "", "k", "")},
			{sendCAS: func(cas uint64) []byte { return binReq(protocol.OpDelete, 10, cas, "", "k", "") }},
		}},
		{name: "counters", steps: []binStep{
			{send: binCat(binReq(protocol.OpIncrement, 1, 0, binCounterExtras(5, 10, 0), "c", ""), binReq(protocol.OpIncrement, 2, 0, binCounterExtras(5, 10, 0), "c", ""))},
			{send: binCat(binReq(protocol.OpDecrement, 3, 0, binCounterExtras(100, 0, 0), "c", ""), binReq(protocol.OpGet, 4, 0, "", "c", ""))},
			{send: binCat(binReq(protocol.OpIncrementQ, 5, 0, binCounterExtras(9, 0, 0), "c", ""), binReq(protocol.OpDecrementQ, 6, 0, binCounterExtras(1, 1, counterNoCreate), "no", ""))},
			{send: binCat(binSet("max", "18446744073709551615"), binReq(protocol.OpIncrement, 7, 0, binCounterExtras(2, 0, 0), "max", ""), binReq(protocol.OpGet, 8, 0, "", "max", ""))},
			{send: binCat(binSet("t", "12abc"), binReq(protocol.OpIncrement, 9, 0, binCounterExtras(1, 0, 0), "t", ""))},
			{send: binCat(binSet("l", "184467440737095516150"), binReq(protocol.OpDecrement, 10, 0, binCounterExtras(1, 0, 0), "l", ""))},
			{sendCAS: func(cas uint64) []byte {
				return binReq(protocol.OpIncrement, 11, cas+1000, binCounterExtras(1, 0, 0), "c", "")
			}},
			{send: binReq(protocol.OpDecrement, 12, 0, binCounterExtras(1, 77, 0), "new", "")},
		}},
		{name: "touch gat flush noop version quit", steps: []binStep{
			{send: binReq(protocol.OpSet, 1, 0, binStorageExtras(5, 0), "k", "v")},
			{send: binCat(binReq(protocol.OpTouch, 2, 0, binExptimeExtras(100), "k", ""), binReq(protocol.OpTouch, 3, 0, binExptimeExtras(100), "no", ""))},
			{send: binCat(binReq(protocol.OpGAT, 4, 0, binExptimeExtras(100), "k", ""), binReq(protocol.OpGATK, 5, 0, binExptimeExtras(100), "k", ""),
				binReq(protocol.OpGATQ, 6, 0, binExptimeExtras(100), "k", ""), binReq(protocol.OpGATKQ, 7, 0, binExptimeExtras(100), "k", ""))},
			{send: binCat(binReq(protocol.OpGAT, 4, 0, binExptimeExtras(100), "no", ""), binReq(protocol.OpGATK, 5, 0, binExptimeExtras(100), "no", ""),
				binReq(protocol.OpGATQ, 6, 0, binExptimeExtras(100), "no", ""), binReq(protocol.OpGATKQ, 7, 0, binExptimeExtras(100), "no", ""))},
			{send: binCat(binReq(protocol.OpVersion, 8, 0, "", "", ""), binReq(protocol.OpNoop, 9, 0, "", "", ""))},
			{send: binCat(binReq(protocol.OpFlushQ, 10, 0, "", "", ""), binReq(protocol.OpGet, 11, 0, "", "k", ""), binReq(protocol.OpFlush, 12, 0, binExptimeExtras(0), "", ""))},
			{send: binCat(binSet("q", "v"), binReq(protocol.OpGetQ, 13, 0, "", "q", ""), binReq(protocol.OpQuit, 14, 0, "", "", ""), binReq(protocol.OpNoop, 15, 0, "", "", "")), end: binEndClosed},
		}},
		{name: "quitq", steps: []binStep{
			{send: binCat(binSet("q", "v"), binReq(protocol.OpGetQ, 13, 0, "", "q", ""), binReq(protocol.OpQuitQ, 14, 0, "", "", "")), end: binEndClosed},
		}},
		{name: "unknown and sasl without -S", steps: []binStep{
			{send: binCat(binReq(0x50, 1, 0, "", "", ""), binReq(0x1f, 2, 0, "", "", ""), binReq(protocol.OpSASLListMechs, 3, 0, "", "", ""),
				binReq(protocol.OpSASLAuth, 4, 0, "", "PLAIN", "\x00a\x00b"), binReq(protocol.OpSASLStep, 5, 0, "", "PLAIN", ""))},
			{send: binReq(protocol.OpVerbosity, 6, 0, binExptimeExtras(1), "", ""), end: binEndQuiet},
			{send: binReq(protocol.OpNoop, 7, 0, "", "", ""), end: binEndQuiet},
			{send: binReq(protocol.OpNoop, 8, 0, "", "", ""), end: binEndClosed},
		}},
		{name: "malformed: key too long", steps: []binStep{
			{send: binCat(binSet("k", "v"), binReq(protocol.OpGetQ, 1, 0, "", "k", ""), binReq(protocol.OpStat, 2, 0, "", strings.Repeat("s", 251), "")), end: binEndClosed},
		}},
		{name: "malformed: bad lengths", steps: []binStep{
			{send: binReq(protocol.OpNoop, 1, 0, "abcd", "", ""), end: binEndClosed},
		}},
		{name: "malformed: bad magic after pending replies", steps: []binStep{
			{send: binCat(binSet("k", "v"), binReq(protocol.OpGetQ, 1, 0, "", "k", ""), binOK(protocol.OpNoop, 0, 0)), end: binEndClosed},
		}},
		{name: "malformed: bad magic after an error", steps: []binStep{
			{send: binCat(binReq(protocol.OpGet, 1, 0, "", "no", ""), binOK(protocol.OpNoop, 0, 0)), end: binEndClosed},
		}},
		{name: "item size limit", steps: []binStep{
			{send: binReq(protocol.OpSet, 1, 0, se, "k", big)},
			{send: binReq(protocol.OpSet, 2, 0, se, "k", big+"x")},
			{send: binReq(protocol.OpGet, 3, 0, "", "k", "")},
			{send: binReq(protocol.OpSet, 4, 0, binStorageExtras(1, 0), "k", big[4:])},
			{send: binReq(protocol.OpSetQ, 5, 0, binStorageExtras(1, 0), "k", big[3:])},
			{send: binCat(binSet("a", strings.Repeat("a", 600<<10)), binReq(protocol.OpAppend, 6, 0, "", "a", strings.Repeat("b", 600<<10)))},
			{send: binReq(protocol.OpAppendQ, 7, 0, "", "a", big+"x")},
			{send: binReq(protocol.OpGetK, 8, 0, "", "k", "")},
		}},
		{name: "stat groups", steps: []binStep{
			{send: binCat(binReq(protocol.OpStat, 1, 0, "", "reset", ""), binReq(protocol.OpStat, 2, 0, "", "detail on", ""),
				binReq(protocol.OpStat, 3, 0, "", "sizes", ""), binReq(protocol.OpStat, 4, 0, "", "conns", ""),
				binReq(protocol.OpStat, 5, 0, "", "bogus", ""))},
			{send: binCat(binSet("p:k", "v"), binReq(protocol.OpGet, 6, 0, "", "p:k", ""), binReq(protocol.OpDelete, 7, 0, "", "p:x", ""),
				binReq(protocol.OpStat, 8, 0, "", "detail dump", ""), binReq(protocol.OpStat, 9, 0, "", "detail off", ""))},
		}},
		{name: "flush disabled", args: []string{"-F"}, cfg: Config{DisableFlushAll: true}, steps: []binStep{
			{send: binCat(binReq(protocol.OpFlush, 1, 0, "", "", ""), binReq(protocol.OpFlushQ, 2, 0, binExptimeExtras(0), "", ""))},
		}},
		{name: "no cas", args: []string{"-C"}, cfg: Config{NoCAS: true}, steps: []binStep{
			{send: binCat(binReq(protocol.OpSet, 1, 0, se, "k", "v"), binReq(protocol.OpSet, 2, 5, se, "k", "w"), binReq(protocol.OpSet, 3, 5, se, "no", "w"))},
			{send: binCat(binReq(protocol.OpAdd, 4, 5, se, "k", "w"), binReq(protocol.OpAdd, 5, 5, se, "new", "w"), binReq(protocol.OpReplace, 6, 5, se, "none", "w"))},
			{send: binCat(binReq(protocol.OpAppend, 7, 5, "", "k", "!"), binReq(protocol.OpDelete, 8, 5, "", "k", ""), binReq(protocol.OpGet, 9, 0, "", "k", ""))},
			{send: binCat(binReq(protocol.OpIncrement, 10, 0, binCounterExtras(1, 7, 0), "c", ""), binReq(protocol.OpIncrement, 11, 3, binCounterExtras(1, 7, 0), "c", ""))},
		}},
	}
	for _, seq := range sequences {
		t.Run(seq.name, func(t *testing.T) {
			t.Parallel()
			mc := servertest.StartMemcached(t, seq.args...)
			_, addr := binStartNode(t, seq.cfg)
			transcript := func(addr string) []string {
				c := binDial(t, addr)
				var out []string
				casNames := map[uint64]uint64{}
				for i, st := range seq.steps {
					got, closed := c.run(st)
					for _, p := range got {
						p = append([]byte(nil), p...)
						if cas := binary.BigEndian.Uint64(p[16:]); cas != 0 {
							if casNames[cas] == 0 {
								casNames[cas] = uint64(len(casNames) + 1)
							}
							binary.BigEndian.PutUint64(p[16:], casNames[cas])
						}
						out = append(out, fmt.Sprintf("step %d:%s", i, binDump([][]byte{p})))
					}
					if closed {
						out = append(out, fmt.Sprintf("step %d: closed", i))
						break
					}
				}
				return out
			}
			want := transcript(mc.Addr)
			got := transcript(addr)
			if len(want) == 0 {
				t.Fatal("memcached gave no reply: the sequence tests nothing")
			}
			if testing.Verbose() {
				t.Logf("memcached:\n%s", strings.Join(want, "\n"))
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("replies differ from memcached's\nmemcluster:\n%s\nmemcached:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// ---- allocations

// TestBinaryAllocations: serving gets, touches, misses and noops allocates
// nothing per request in steady state.
func TestBinaryAllocations(t *testing.T) {
	s := newTestServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	for _, k := range []string{"a", "b", "c"} {
		s.store.Set(store.ModeSet, []byte(k), bytes.Repeat([]byte(k), 100), 1, 0, 0)
	}
	var batch []byte
	for range 10 {
		batch = binCat(batch,
			binReq(protocol.OpGetKQ, 1, 0, "", "a", ""), binReq(protocol.OpGetQ, 2, 0, "", "nokey", ""),
			binReq(protocol.OpGet, 3, 0, "", "b", ""), binReq(protocol.OpGetK, 4, 0, "", "c", ""),
			binReq(protocol.OpTouch, 5, 0, binExptimeExtras(0), "a", ""), binReq(protocol.OpGATQ, 6, 0, binExptimeExtras(0), "b", ""),
			binReq(protocol.OpDeleteQ, 7, 0, "", "nokey", ""), binReq(protocol.OpVersion, 8, 0, "", "", ""),
			binReq(protocol.OpNoop, 9, 0, "", "", ""))
	}
	const batches = 100
	input := bytes.Repeat(batch, batches)
	requests := batches * 10 * 9
	fc := &testutil.ReplayConn{Requests: [][]byte{input}, Pipelined: true}
	c := newTestSession(s, fc)
	checkBatchAllocs(t, fc, requests, c.serveBinary)
}

func BenchmarkBinaryGetKQ(b *testing.B) {
	s := newTestServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	s.store.Set(store.ModeSet, []byte("key"), bytes.Repeat([]byte("v"), 100), 0, 0, 0)
	var batch []byte
	for range 100 {
		batch = append(batch, binReq(protocol.OpGetKQ, 0, 0, "", "key", "")...)
	}
	batch = append(batch, binReq(protocol.OpNoop, 0, 0, "", "", "")...)
	fc := &testutil.ReplayConn{Requests: [][]byte{batch}, Pipelined: true}
	c := newTestSession(s, fc)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		fc.Rewind(1)
		c.serveBinary()
	}
}
