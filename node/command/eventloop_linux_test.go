package command

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

// readSyscalls returns how many read system calls this process has made.
func readSyscalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscr in /proc/self/io")
	return 0
}

// blockingClient is a client socket read and written with blocking system
// calls: each reply costs exactly one read.
func blockingClient(t *testing.T, addr string) int {
	t.Helper()
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	sa := &syscall.SockaddrInet4{Port: tcp.Port}
	copy(sa.Addr[:], tcp.IP.To4())
	if err := syscall.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	tv := syscall.Timeval{Sec: 10}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// blockingRound writes req to the blocking client socket fd and reads one
// reply into buf, which it returns. A call the Go runtime's signals
// interrupt before it has done anything is made again.
func blockingRound(t *testing.T, fd int, req, buf []byte) []byte {
	t.Helper()
	for {
		_, err := syscall.Write(fd, req)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			t.Fatal(err)
		}
	}
	for {
		n, err := syscall.Read(fd, buf)
		if err == nil {
			return buf[:n]
		}
		if err != syscall.EINTR {
			t.Fatal(err)
		}
	}
}

// A node reads each request once, as memcached does: the event loop reads
// a connection when epoll reports it readable, rather than trying a read
// that fails before the request has come and a second one after. Between a
// client that waits for each reply and the node, a round costs the client
// one read and the node one.
func TestEventLoopReadsEachRequestOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		set, get   []byte
		setReplies string
	}{
		{"text", []byte("set k 0 0 5\r\nhello\r\n"), []byte("get k\r\n"), "STORED\r\n"},
		{"binary", binReq(protocol.OpSet, 1, 0, binStorageExtras(0, 0), "k", "hello"), binReq(protocol.OpGet, 2, 0, "", "k", ""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := serveForTest(t, Config{})
			fd := blockingClient(t, addr)
			buf := make([]byte, 4096)
			round := func(req []byte) []byte { return blockingRound(t, fd, req, buf) }
			round(tc.set)
			first := append([]byte(nil), round(tc.get)...)
			const rounds = 500
			before := readSyscalls(t)
			for i := range rounds {
				if got := round(tc.get); !bytes.Equal(got, first) {
					t.Fatalf("round %d: got %q, want %q", i, got, first)
				}
			}
			reads := readSyscalls(t) - before
			// One read by the client and one by the node per round,
			// and a little slack for the runtime.
			if max := 2*rounds + rounds/10; reads > max {
				t.Errorf("%d read system calls for %d rounds: more than %d, the client's and the node's one each", reads, rounds, max)
			}
		})
	}
}

// The event loop hands a connection back to its goroutine for whatever it
// must not serve itself, and takes it again afterwards: on one connection,
// requests the loop answers alternate with a value that arrives in pieces,
// stats, replies the client does not read at once, and quit. Every reply
// must come whole and in order.
func TestEventLoopHandsBackWhatItCannotServe(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	getSmall := func() {
		t.Helper()
		send("get small\r\n")
		expect("VALUE small 0 5\r\nhello\r\nEND\r\n")
	}
	send("set small 0 0 5\r\nhello\r\n")
	expect("STORED\r\n")
	getSmall()

	// A value larger than the read buffer, in two pieces.
	big := strings.Repeat("b", 200<<10)
	send(fmt.Sprintf("set big 0 0 %d\r\n%s", len(big), big[:1000]))
	time.Sleep(20 * time.Millisecond)
	send(big[1000:] + "\r\n")
	expect("STORED\r\n")
	getSmall()

	// A request line cut in two.
	send("get sm")
	time.Sleep(20 * time.Millisecond)
	send("all\r\n")
	expect("VALUE small 0 5\r\nhello\r\nEND\r\n")

	// stats, which the goroutine answers, between two gets in one write.
	send("get small\r\nstats\r\nget small\r\n")
	expect("VALUE small 0 5\r\nhello\r\nEND\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "END\r\n" {
			break
		}
		if !strings.HasPrefix(line, "STAT ") {
			t.Fatalf("stats: got %q", line)
		}
	}
	expect("VALUE small 0 5\r\nhello\r\nEND\r\n")

	// Replies the socket cannot take until the client reads.
	send(strings.Repeat("get big\r\n", 100))
	time.Sleep(100 * time.Millisecond)
	for range 100 {
		expect(fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(big), big))
	}
	getSmall()

	send("quit\r\n")
	if b, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after quit: got %q, %v; want the end of the stream", b, err)
	}
}

// The binary protocol's requests the loop does not serve (stat, quit) go
// to the goroutine untouched, and the connection comes back to the loop.
func TestEventLoopBinaryHandsBack(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	write := func(b []byte) {
		t.Helper()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() protocol.BinaryHeader {
		t.Helper()
		var hdr [protocol.BinaryHeaderLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatal(err)
		}
		var h protocol.BinaryHeader
		_ = h.Decode(hdr[:])
		if _, err := r.Discard(int(h.BodyLen)); err != nil {
			t.Fatal(err)
		}
		return h
	}
	write(binReq(protocol.OpSet, 1, 0, binStorageExtras(0, 0), "k", "hello"))
	if h := read(); h.Status != protocol.StatusOK || h.Opaque != 1 {
		t.Fatalf("set: %+v", h)
	}
	write(append(binReq(protocol.OpGet, 2, 0, "", "k", ""), append(binReq(protocol.OpStat, 3, 0, "", "", ""), binReq(protocol.OpGet, 4, 0, "", "k", "")...)...))
	if h := read(); h.Opaque != 2 || h.Status != protocol.StatusOK {
		t.Fatalf("get: %+v", h)
	}
	for {
		h := read()
		if h.Opaque != 3 {
			t.Fatalf("stat: got opaque %d", h.Opaque)
		}
		if h.KeyLen == 0 {
			break
		}
	}
	if h := read(); h.Opaque != 4 || h.Status != protocol.StatusOK {
		t.Fatalf("get after stat: %+v", h)
	}
	// A request whose value arrives later.
	req := binReq(protocol.OpSet, 5, 0, binStorageExtras(0, 0), "k", strings.Repeat("v", 100))
	write(req[:30])
	time.Sleep(20 * time.Millisecond)
	write(req[30:])
	if h := read(); h.Opaque != 5 || h.Status != protocol.StatusOK {
		t.Fatalf("set in pieces: %+v", h)
	}
	write(binReq(protocol.OpQuit, 6, 0, "", "", ""))
	if h := read(); h.Opaque != 6 {
		t.Fatalf("quit: %+v", h)
	}
	if b, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("after quit: got %q, %v; want the end of the stream", b, err)
	}
}

// Shutdown takes the idle connections back from the event loops and closes
// them, without waiting for its deadline.
func TestShutdownEndsConnectionsTheLoopsHold(t *testing.T) {
	s, addr, served := startServer(t, Config{})
	var conns []*bufio.Reader
	for i := range 20 {
		c, r := dialForTest(t, addr)
		if got := roundTrip(t, c, r, fmt.Sprintf("set k%d 0 0 1\r\nx\r\n", i), 1); got != "STORED\r\n" {
			t.Fatalf("set: got %q", got)
		}
		conns = append(conns, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(start))
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
	for i, r := range conns {
		if b, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("connection %d after shutdown: got %q, %v; want the end of the stream", i, b, err)
		}
	}
}

// Many clients at once, on as many loops as processors, each with its own
// keys: every reply is its own.
func TestEventLoopManyConnections(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			for i := range 300 {
				key, value := fmt.Sprintf("g%d-%d", g, i%10), fmt.Sprintf("v%d-%d", g, i)
				if _, err := fmt.Fprintf(c, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", key, len(value), value, key); err != nil {
					errs <- err
					return
				}
				want := fmt.Sprintf("STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(value), value)
				got := make([]byte, len(want))
				if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
					errs <- fmt.Errorf("client %d round %d: got %q, %v; want %q", g, i, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Requests allocate nothing, the waits between them included, whether the
// event loop serves the connection or, under an idle timeout, its own
// goroutine: a client that waits for each reply makes the node wait for
// every request.
func TestWaitingForRequestsAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"event loop", Config{}},
		{"goroutine, under an idle timeout", Config{IdleTimeout: time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := serveForTest(t, tc.cfg)
			fd := blockingClient(t, addr)
			buf := make([]byte, 4096)
			set := []byte("set k 0 0 5\r\nhello\r\n")
			get := []byte("get k\r\n")
			round := func(req []byte) { blockingRound(t, fd, req, buf) }
			for range 200 {
				round(set)
				round(get)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const rounds = 2000
			for range rounds {
				round(set)
				round(get)
			}
			runtime.ReadMemStats(&after)
			if n := after.Mallocs - before.Mallocs; n > rounds/100 {
				t.Errorf("%d allocations for %d requests", n, 2*rounds)
			}
		})
	}
}

// Requests that arrive together on many connections are served in one of
// the event loop's batches: every connection read, then every one answered,
// then every one written. In each batch here some connections are handed
// back at each pass: one whose stream ends (read), one that asks for stats
// (answer), one whose request is cut in two (write). Every connection must
// get its replies whole and in order, and go on being served.
func TestEventLoopBatchHandsBackAtEachPass(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	const conns = 25
	type client struct {
		c net.Conn
		r *bufio.Reader
	}
	dial := func() client {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		return client{c, bufio.NewReader(c)}
	}
	send := func(cl client, s string) {
		t.Helper()
		if _, err := io.WriteString(cl.c, s); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(cl client, i int, want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(cl.r, got); err != nil || string(got) != want {
			t.Fatalf("connection %d: got %q, %v; want %q", i, got, err, want)
		}
	}
	skipStats := func(cl client, i int) {
		t.Helper()
		for {
			line, err := cl.r.ReadString('\n')
			if err != nil {
				t.Fatalf("connection %d: stats: %v", i, err)
			}
			if line == "END\r\n" {
				return
			}
			if !strings.HasPrefix(line, "STAT ") {
				t.Fatalf("connection %d: stats: got %q", i, line)
			}
		}
	}
	clients := make([]client, conns)
	for i := range clients {
		clients[i] = dial()
	}
	for round := range 20 {
		value := func(i int) string { return fmt.Sprintf("v%d-%d", round, i) }
		for i, cl := range clients {
			k, v := fmt.Sprintf("k%d", i), value(i)
			switch i % 5 {
			case 0, 4:
				send(cl, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k))
			case 1:
				send(cl, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nstats\r\nget %s\r\n", k, len(v), v, k))
			case 2:
				send(cl, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget k", k, len(v), v))
			case 3:
				send(cl, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", k, len(v), v, k))
				if err := cl.c.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i, cl := range clients {
			if i%5 == 2 {
				send(cl, fmt.Sprintf("%d\r\n", i))
			}
		}
		for i, cl := range clients {
			k, v := fmt.Sprintf("k%d", i), value(i)
			hit := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", k, len(v), v)
			expect(cl, i, "STORED\r\n")
			if i%5 == 1 {
				skipStats(cl, i)
			}
			expect(cl, i, hit)
			if i%5 == 3 {
				if b, err := cl.r.ReadByte(); err != io.EOF {
					t.Fatalf("connection %d after its end: got %q, %v; want the end of the stream", i, b, err)
				}
				clients[i] = dial()
			}
		}
	}
}
