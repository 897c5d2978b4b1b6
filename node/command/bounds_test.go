package command

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

// memStats returns the process's memory statistics after a collection.
func memStats() runtime.MemStats {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// allocatedSince returns the bytes allocated since before was read.
func allocatedSince(before runtime.MemStats) uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc - before.TotalAlloc
}

// readReply reads n bytes of reply from r into nothing, with a fixed buffer,
// and returns the first line it read.
func readReply(t *testing.T, r *bufio.Reader, n int64) string {
	t.Helper()
	first, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	rest := n - int64(len(first))
	if got, err := io.CopyBuffer(io.Discard, io.LimitReader(r, rest), make([]byte, 64<<10)); err != nil || got != rest {
		t.Fatalf("read %d of the reply's %d bytes: %v", got+int64(len(first)), n, err)
	}
	return first
}

// A get line of 805 bytes naming one 512 KiB item 400 times asks for a
// 200 MiB reply. The node streams it: what it allocates is about one value
// and a flush's worth of reply, not the reply, and a client that does not
// read holds no more than that.
func TestMultiGetOfLargeItemStreams(t *testing.T) {
	_, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
	c, r := dialForTest(t, addr)
	const size = 512 << 10
	value := strings.Repeat("v", size)
	if got := roundTrip(t, c, r, fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, value), 1); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	line := "get" + strings.Repeat(" k", 400) + "\r\n"
	if len(line) != 805 {
		t.Fatalf("the get line is %d bytes", len(line))
	}
	header := fmt.Sprintf("VALUE k 0 %d\r\n", size)
	replySize := int64(400*(len(header)+size+2) + len("END\r\n"))

	before := memStats()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a client slow to read
	if grown := allocatedSince(before); grown > 4<<20 {
		t.Errorf("the node allocated %d bytes for a reply its client is not reading, want under 4 MiB", grown)
	}
	if first := readReply(t, r, replySize); first != header {
		t.Fatalf("the reply began %q, want %q", first, header)
	}
	if grown := allocatedSince(before); grown > 6<<20 {
		t.Errorf("a 200 MiB reply allocated %d bytes, want under 6 MiB", grown)
	}
	if got := roundTrip(t, c, r, "version\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("after the reply: %q", got)
	}
}

// Ten clients that send the same request and do not read cost the node
// their own bounded buffers each, not their replies.
func TestMultiGetSlowReadersBounded(t *testing.T) {
	_, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
	c, r := dialForTest(t, addr)
	const size = 512 << 10
	if got := roundTrip(t, c, r, fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, strings.Repeat("v", size)), 1); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	line := "get" + strings.Repeat(" k", 400) + "\r\n"
	before := memStats()
	var slow []net.Conn
	for range 10 {
		sc, _ := dialForTest(t, addr)
		if _, err := io.WriteString(sc, line); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, sc)
	}
	time.Sleep(500 * time.Millisecond)
	after := memStats()
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 24<<20 {
		t.Errorf("ten stalled 200 MiB replies hold %d bytes of heap, want under 24 MiB", grown)
	}
	// The other clients are served meanwhile.
	if got := roundTrip(t, c, r, "get k\r\n", 1); got != fmt.Sprintf("VALUE k 0 %d\r\n", size) {
		t.Errorf("a get beside the stalled clients: %q", got)
	}
	for _, sc := range slow {
		sc.Close()
	}
}

// A get line of 4 MiB is read a batch of keys at a time: the node's
// allocations stay small, and every key is answered in order, the ones the
// read buffer's edges cut included.
func TestLongGetLineStreams(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	for i := range 100 {
		if got := roundTrip(t, c, r, fmt.Sprintf("set hit%03d 0 0 3\r\n%03d\r\n", i, i), 1); got != "STORED\r\n" {
			t.Fatalf("set: %q", got)
		}
	}
	var line strings.Builder
	line.WriteString("get")
	var want strings.Builder
	for i := 0; line.Len() < 4<<20; i++ {
		if i%5000 == 0 {
			k := fmt.Sprintf("hit%03d", (i/5000)%100)
			fmt.Fprintf(&line, " %s", k)
			fmt.Fprintf(&want, "VALUE %s 0 3\r\n%s\r\n", k, k[3:])
			continue
		}
		fmt.Fprintf(&line, " miss%06d", i)
	}
	line.WriteString("\r\n")
	want.WriteString("END\r\n")
	req := []byte(line.String())

	before := memStats()
	go func() { _, _ = c.Write(req) }()
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("reading the reply: %v (so far %q)", err, got)
	}
	if string(got) != want.String() {
		t.Errorf("the reply to a 4 MiB get line differs: got %d bytes, want %d", len(got), want.Len())
	}
	if grown := allocatedSince(before); grown > 2<<20 {
		t.Errorf("a 4 MiB get line allocated %d bytes, want under 2 MiB", grown)
	}
	if got := roundTrip(t, c, r, "version\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("after the long line: %q", got)
	}
}

// A key too long deep in a long get line refuses the request, as memcached
// does, with the error alone (none of the reply had yet been written); the
// connection goes on.
func TestLongGetLineBadKey(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	if got := roundTrip(t, c, r, "set a 0 0 1\r\n1\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	line := "get a" + strings.Repeat(" b", 20000) + " " + strings.Repeat("k", 251) + " a\r\n"
	if got := roundTrip(t, c, r, line+"version\r\n", 1); got != "CLIENT_ERROR bad command line format\r\n" {
		t.Fatalf("got %q", got)
	}
	if got, _ := r.ReadString('\n'); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("after the error: %q", got)
	}
}

// A connection idle after a large set and get rests at a small size: no
// goroutine, no buffer of its request or reply. Measured over many
// connections, client's side included.
func TestIdleConnectionAfterLargeRequestRestsSmall(t *testing.T) {
	_, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
	const conns, size = 500, 900 << 10
	set := []byte(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, strings.Repeat("v", size)))
	header := fmt.Sprintf("VALUE k 0 %d\r\n", size)
	before := memStats()
	goroutines := runtime.NumGoroutine()
	var clients []net.Conn
	for range conns {
		c, r := dialForTest(t, addr)
		if _, err := c.Write(set); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
			t.Fatalf("set: %q %v", line, err)
		}
		if _, err := io.WriteString(c, "get k\r\n"); err != nil {
			t.Fatal(err)
		}
		if first := readReply(t, r, int64(len(header)+size+2+len("END\r\n"))); first != header {
			t.Fatalf("get: %q", first)
		}
		clients = append(clients, c)
	}
	time.Sleep(200 * time.Millisecond) // for the last to come to rest
	after := memStats()
	perConn := (int64(after.HeapInuse) - int64(before.HeapInuse)) / conns
	t.Logf("heap per idle connection, both ends: %d bytes; goroutines %d -> %d", perConn, goroutines, runtime.NumGoroutine())
	if perConn > 3<<10 {
		t.Errorf("an idle connection after a %d-byte set and get holds %d bytes of heap with its client's, want under 3 KiB", size, perConn)
	}
	if grown := runtime.NumGoroutine() - goroutines; grown > conns/10 {
		t.Errorf("%d idle connections hold %d goroutines", conns, grown)
	}
	for _, c := range clients {
		c.Close()
	}
}

// A meta pipeline and a run of binary GetKQ asking for one 512 KiB item 400
// times stream as a text get does: a client that does not read costs the
// node about a value and a flush's worth, and the whole reply arrives.
func TestPipelinedGetsOfLargeItemStream(t *testing.T) {
	const size = 512 << 10
	value := strings.Repeat("v", size)
	for _, tc := range []struct {
		name         string
		set, request []byte
		setReply     int
		replySize    int64
	}{
		{"meta", []byte(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, value)), []byte(strings.Repeat("mg k v\r\n", 400) + "mn\r\n"),
			len("STORED\r\n"), int64(400*(len(fmt.Sprintf("VA %d\r\n", size))+size+2) + len("MN\r\n"))},
		{"binary GetKQ", binReq(protocol.OpSet, 0, 0, "\x00\x00\x00\x00\x00\x00\x00\x00", "k", value), append(bytes.Repeat(binReq(protocol.OpGetKQ, 0, 0, "", "k", ""), 400), binReq(protocol.OpNoop, 0, 0, "", "", "")...),
			24, int64(400*(24+4+1+size) + 24)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
			c, r := dialForTest(t, addr)
			if _, err := c.Write(tc.set); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Peek(1); err != nil || r.Buffered() != tc.setReply {
				t.Fatalf("the set's reply: %d bytes, %v", r.Buffered(), err)
			}
			_, _ = r.Discard(tc.setReply)
			before := memStats()
			if _, err := c.Write(tc.request); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // a client slow to read
			if grown := allocatedSince(before); grown > 4<<20 {
				t.Errorf("the node allocated %d bytes for a reply its client is not reading, want under 4 MiB", grown)
			}
			got, err := io.CopyBuffer(io.Discard, io.LimitReader(r, tc.replySize), make([]byte, 64<<10))
			if err != nil || got != tc.replySize {
				t.Fatalf("read %d of the reply's %d bytes: %v", got, tc.replySize, err)
			}
			if grown := allocatedSince(before); grown > 6<<20 {
				t.Errorf("a 200 MiB reply allocated %d bytes, want under 6 MiB", grown)
			}
		})
	}
}

// A large value goes from the socket into its item and from the item to
// the socket, as memcached's does, without a copy in between: a get of a
// 512 KiB item, after which the connection rests, allocates a small part
// of it (the value is written from the store's buffer, not gathered into
// the reply), and a set of one allocates the value's buffer, which the
// store keeps, and what it grew through while its bytes arrived.
func TestLargeValuesNotCopied(t *testing.T) {
	_, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
	c, r := dialForTest(t, addr)
	const size, rounds = 512 << 10, 20
	set := []byte(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", size, strings.Repeat("v", size)))
	header := fmt.Sprintf("VALUE k 0 %d\r\n", size)

	before := memStats()
	for range rounds {
		if _, err := c.Write(set); err != nil {
			t.Fatal(err)
		}
		if got, err := r.ReadString('\n'); got != "STORED\r\n" {
			t.Fatalf("set: %q, %v", got, err)
		}
	}
	perSet := allocatedSince(before) / rounds
	// Growing as the bytes arrive takes up to twice the value. It was
	// four times: the store's copy, and a last step of the growth two
	// bytes short of the data's "\r\n", then one more.
	if perSet > 9*size/4 {
		t.Errorf("a set of a %d-byte value allocated %d bytes, want under 2.25 times the value", size, perSet)
	}

	value := []byte(strings.Repeat("v", size))
	for _, tc := range []struct {
		name       string
		get, reply []byte
	}{
		{"get", []byte("get k\r\n"), slices.Concat([]byte(header), value, []byte("\r\nEND\r\n"))},
		{"mg", []byte("mg k v\r\n"), slices.Concat(fmt.Appendf(nil, "VA %d\r\n", size), value, []byte("\r\n"))},
		{"binary GetK", protocol.AppendBinaryRequest(nil, protocol.OpGetK, 7, 0, nil, []byte("k"), nil),
			protocol.AppendBinaryGetResponse(nil, protocol.OpGetK, 7, 0, 0, []byte("k"), value)},
	} {
		c, r := dialForTest(t, addr)
		got := make([]byte, len(tc.reply))
		if _, err := c.Write(tc.get); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("%s: reading the reply: %v", tc.name, err)
		}
		if tc.name == "binary GetK" {
			binary.BigEndian.PutUint64(got[16:24], 0) // the CAS
		}
		if !bytes.Equal(got, tc.reply) {
			t.Fatalf("%s: the reply differs from the expected; it begins %.40q", tc.name, got)
		}
		buf := make([]byte, 64<<10)
		replySize := int64(len(tc.reply))
		before := memStats()
		for range rounds {
			if _, err := c.Write(tc.get); err != nil {
				t.Fatal(err)
			}
			if got, err := io.CopyBuffer(io.Discard, io.LimitReader(r, replySize), buf); err != nil || got != replySize {
				t.Fatalf("%s: read %d of the reply's %d bytes: %v", tc.name, got, replySize, err)
			}
		}
		// It was twice the value: a copy out of the store, and the
		// reply buffer's growth to hold it.
		if perGet := allocatedSince(before) / rounds; perGet > size/16 {
			t.Errorf("%s of a %d-byte value allocated %d bytes, want under a sixteenth of the value", tc.name, size, perGet)
		}
	}
}
