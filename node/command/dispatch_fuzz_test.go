package command

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

// The dispatch fuzz targets drive a Handler over an in-memory connection:
// whatever a client sends, the handler must not panic, must not hang once
// the client has sent it all and closed its side, and must answer with
// replies that frame whole. Each target runs three servers: without
// authentication, with SASL (-S, binary only) and with ASCII
// authentication (-Y); the input's first byte chooses one.

// fuzzAuth is the modes of authentication a fuzzed server runs in.
type fuzzAuth uint8

const (
	fuzzNoAuth fuzzAuth = iota
	fuzzSASL
	fuzzASCIIAuth
	fuzzAuthModes
)

var (
	fuzzServersOnce sync.Once
	fuzzServers     [fuzzAuthModes]*testServer
	fuzzServersErr  error
)

// fuzzServer returns the shared server of an authentication mode, made on
// first use; they live as long as the test binary.
func fuzzServer(tb testing.TB, mode fuzzAuth) *testServer {
	fuzzServersOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dispatch-fuzz")
		if err != nil {
			fuzzServersErr = err
			return
		}
		pwdb := filepath.Join(dir, "pwdb")
		if err := os.WriteFile(pwdb, []byte("user:secret\n"), 0o600); err != nil {
			fuzzServersErr = err
			return
		}
		quiet := slog.New(slog.DiscardHandler)
		base := Config{Logger: quiet, MemoryLimit: 8 << 20, ItemSizeMax: 64 << 10, LRUCrawlerSleep: -1}
		cfgs := [fuzzAuthModes]Config{base, base, base}
		cfgs[fuzzSASL].SASL, cfgs[fuzzSASL].SASLPasswordFile = true, pwdb
		cfgs[fuzzASCIIAuth].AuthFile = pwdb
		for i, cfg := range cfgs {
			s := newTestServer(cfg)
			if err := s.prepare(); err != nil {
				fuzzServersErr = err
				return
			}
			fuzzServers[i] = s
		}
	})
	if fuzzServersErr != nil {
		tb.Fatal(fuzzServersErr)
	}
	return fuzzServers[mode]
}

// pipeConn is one end of an in-memory connection: reads deliver the
// client's bytes, then the end of the stream; writes are kept.
type pipeConn struct {
	in  bytes.Reader
	out bytes.Buffer
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.in.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.out.Write(b) }
func (p *pipeConn) Close() error                { return nil }
func (p *pipeConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 11211} }
func (p *pipeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (p *pipeConn) SetDeadline(time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// serveInput serves input, as one client sends it and then closes its
// side, on the server of mode, and returns what the server wrote. It fails
// the test if serving takes longer than a few seconds: a hang.
func serveInput(t *testing.T, mode fuzzAuth, input []byte) []byte {
	s := fuzzServer(t, mode)
	pc := &pipeConn{}
	pc.in.Reset(input)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ServeConn(s.net.NewConn(pc))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("serving %q did not end after the client closed", input)
	}
	return pc.out.Bytes()
}

// checkTextReplies reports whether out is a sequence of whole text
// replies: lines ending in "\n" (memcached's replies end in "\r\n", the
// lines of watch and metadump in "\n"), each VALUE or VA line followed by
// its data block and "\r\n".
func checkTextReplies(out []byte) error {
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			return fmt.Errorf("unterminated line %q", out)
		}
		line := out[:i+1]
		out = out[i+1:]
		fields := bytes.Fields(line)
		size := -1
		switch {
		case len(fields) >= 4 && string(fields[0]) == "VALUE":
			size, _ = strconv.Atoi(string(fields[3]))
		case len(fields) >= 2 && string(fields[0]) == "VA":
			size, _ = strconv.Atoi(string(fields[1]))
		}
		if size < 0 {
			continue
		}
		if len(out) < size+2 || out[size] != '\r' || out[size+1] != '\n' {
			return fmt.Errorf("%q announces %d bytes; the block that follows is not %d bytes and \\r\\n: %q", line, size, size, out)
		}
		out = out[size+2:]
	}
	return nil
}

// checkBinaryReplies reports whether out is a sequence of whole binary
// response packets.
func checkBinaryReplies(out []byte) error {
	for len(out) > 0 {
		if len(out) < protocol.BinaryHeaderLen {
			return fmt.Errorf("%d bytes left, less than a header", len(out))
		}
		if out[0] != 0x81 {
			return fmt.Errorf("response magic %#x", out[0])
		}
		body := int(binary.BigEndian.Uint32(out[8:12]))
		keyLen, extLen := int(binary.BigEndian.Uint16(out[2:4])), int(out[4])
		if keyLen+extLen > body {
			return fmt.Errorf("key %d and extras %d longer than the body %d", keyLen, extLen, body)
		}
		if len(out) < protocol.BinaryHeaderLen+body {
			return fmt.Errorf("a body of %d bytes, %d left", body, len(out)-protocol.BinaryHeaderLen)
		}
		out = out[protocol.BinaryHeaderLen+body:]
	}
	return nil
}

// fuzzDispatch is the body of the dispatch fuzz targets: the first byte of
// data picks the server, the rest is what the client sends.
func fuzzDispatch(t *testing.T, data []byte) {
	if len(data) == 0 {
		return
	}
	mode, input := fuzzAuth(data[0]%byte(fuzzAuthModes)), data[1:]
	out := serveInput(t, mode, input)
	binaryProto := mode == fuzzSASL || mode == fuzzNoAuth && len(input) > 0 && input[0] == 0x80
	check := checkTextReplies
	if binaryProto {
		check = checkBinaryReplies
	}
	if err := check(out); err != nil {
		t.Fatalf("replies to %q do not frame: %v\nreplies: %q", input, err, out)
	}
}

// fuzzSeeds adds each seed under every authentication mode.
func fuzzSeeds(f *testing.F, seeds ...[]byte) {
	for _, s := range seeds {
		for m := range fuzzAuthModes {
			f.Add(append([]byte{byte(m)}, s...))
		}
	}
}

func FuzzDispatchText(f *testing.F) {
	fuzzSeeds(f,
		[]byte("set a 0 0 1\r\nx\r\nget a b\r\ngets a\r\n"),
		[]byte("add b 5 100 3 noreply\r\nabc\r\nappend b 0 0 1\r\nd\r\nincr b 1\r\ndecr n 2\r\ntouch b 10\r\n"),
		[]byte("cas a 0 0 1 1\r\ny\r\ndelete a\r\nflush_all 0\r\nversion\r\nverbosity 1\r\nstats\r\nstats settings\r\nstats items\r\n"),
		[]byte("gat 10 a b\r\ngats 0 a\r\nstats detail on\r\nstats detail dump\r\nlru_crawler metadump all\r\nconfig get cluster\r\n"),
		[]byte("user secret\r\nset a 0 0 1\r\nx\r\nget a\r\nquit\r\n"),
		[]byte("set a 0 0 5\r\nabc\r\nget "+string(bytes.Repeat([]byte("k"), 300))+"\r\n"),
		[]byte("watch fetchers\r\n"),
		[]byte("slabs automove 1\r\nlru tune 10 20 0.5 2\r\ncache_memlimit 100\r\nstats cachedump 1 1\r\n"),
		[]byte("peer\r\nset a 0 0 1\r\nx\r\nget a\r\npeer x\r\nconfig get ring\r\n"),
	)
	f.Fuzz(fuzzDispatch)
}

func FuzzDispatchMeta(f *testing.F) {
	fuzzSeeds(f,
		[]byte("ms a 2 T0 F5\r\nhi\r\nmg a v f t c k s O123 q\r\nmg missing v q\r\nmn\r\n"),
		[]byte("ma ctr N0 J13 D2 v\r\nma ctr MD q\r\nmd a q\r\nmd a I T30\r\nmg a\r\nme a\r\n"),
		[]byte("ms Zm9v 3 b MA\r\nbar\r\nmg Zm9v b v k\r\nms big S100 I\r\n"),
		[]byte("user secret\r\nmg a v\r\nmn\r\n"),
		[]byte("mg a E99 N30 R10 v\r\nms a 1 C1 E5 MS\r\nx\r\n"),
	)
	f.Fuzz(fuzzDispatch)
}

func FuzzDispatchBinary(f *testing.F) {
	header := func(op byte, key, extras, value string, opaque uint32) []byte {
		b := make([]byte, protocol.BinaryHeaderLen, protocol.BinaryHeaderLen+len(extras)+len(key)+len(value))
		b[0], b[1] = 0x80, op
		binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
		b[4] = byte(len(extras))
		binary.BigEndian.PutUint32(b[8:], uint32(len(extras)+len(key)+len(value)))
		binary.BigEndian.PutUint32(b[12:], opaque)
		return append(append(append(b, extras...), key...), value...)
	}
	setExtras := string([]byte{0, 0, 0, 7, 0, 0, 0, 0})
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	fuzzSeeds(f,
		cat(header(0x01, "a", setExtras, "value", 1), header(0x00, "a", "", "", 2), header(0x0c, "a", "", "", 3), header(0x0a, "", "", "", 4)),
		cat(header(0x05, "ctr", string(make([]byte, 20)), "", 5), header(0x04, "a", "", "", 6), header(0x10, "", "", "", 7), header(0x0b, "", "", "", 8)),
		cat(header(0x20, "", "", "", 9), header(0x21, "PLAIN", "", "\x00user\x00secret", 10), header(0x00, "a", "", "", 11)),
		cat(header(0x1d, "a", "\x00\x00\x00\x0a", "", 12), header(0x0e, "a", "", "tail", 13), header(0x08, "", "", "", 14), header(0x07, "", "", "", 15)),
		header(0x01, "a", setExtras, string(make([]byte, 100)), 16)[:40],
		cat(header(0xe1, "a", setExtras, "pushed", 17), header(0xe0, "a", "", "", 18), header(0xe0, "b", "", "", 19)),
		cat(header(0xe3, "", "", "", 20), header(0x00, "a", "", "", 21), header(0xe3, "k", "", "", 22), header(0xe2, "ring", "", "", 23)),
	)
	f.Fuzz(fuzzDispatch)
}

// TestDispatchFuzzHarnessFindsBadFraming checks the framing checks the
// fuzz targets rely on: they refuse replies that do not frame.
func TestDispatchFuzzHarnessFindsBadFraming(t *testing.T) {
	for _, bad := range []string{"END", "VALUE a 0 5\r\nabc\r\n", "VA 3\r\nab\r\n"} {
		if checkTextReplies([]byte(bad)) == nil {
			t.Errorf("checkTextReplies(%q) = nil, want an error", bad)
		}
	}
	for _, good := range []string{"", "END\r\n", "VALUE a 0 3\r\nabc\r\nEND\r\n", "VA 2 f1\r\nhi\r\nMN\r\n", "ts=1 gid=1 type=item_get\n"} {
		if err := checkTextReplies([]byte(good)); err != nil {
			t.Errorf("checkTextReplies(%q) = %v, want nil", good, err)
		}
	}
	if checkBinaryReplies([]byte{0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5}) == nil {
		t.Error("checkBinaryReplies accepted a short packet")
	}
	out := serveInput(t, fuzzNoAuth, []byte("set fz 0 0 2\r\nhi\r\nget fz\r\n"))
	if want := "STORED\r\nVALUE fz 0 2\r\nhi\r\nEND\r\n"; string(out) != want {
		t.Errorf("served %q, want %q", out, want)
	}
}
