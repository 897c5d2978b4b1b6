package command

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/protocol"
)

// startServer runs a server for cfg on a loopback port, for a test that
// shuts it down itself. It returns the server, its address, and what Serve
// returns once it has.
func startServer(t testing.TB, cfg Config) (*testServer, string, <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	return s, l.Addr().String(), served
}

// serveForTest runs a server for cfg on a loopback port and shuts it down
// when the test ends. It returns the server and its address.
func serveForTest(t testing.TB, cfg Config) (*testServer, string) {
	t.Helper()
	s, addr, served := startServer(t, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, addr
}

// dialForTest connects to addr with a deadline on every exchange.
func dialForTest(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// roundTrip sends req and reads n reply lines.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, req string, n int) string {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading reply line %d to %q: %v (so far %q)", i, req, err, b.String())
		}
		b.WriteString(line)
	}
	return b.String()
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	var req strings.Builder
	for i := 0; i < 100; i++ {
		req.WriteString("set k 0 0 1\r\nx\r\nget k\r\n")
	}
	got := roundTrip(t, c, r, req.String(), 400)
	want := strings.Repeat("STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n", 100)
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConnectionLimit(t *testing.T) {
	s, addr := serveForTest(t, Config{MaxConns: 2})
	c1, r1 := dialForTest(t, addr)
	c2, r2 := dialForTest(t, addr)
	for _, cr := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c1, r1}, {c2, r2}} {
		if got := roundTrip(t, cr.c, cr.r, "version\r\n", 1); got != "VERSION "+Version+"\r\n" {
			t.Fatalf("got %q, want the version", got)
		}
	}
	c3, r3 := dialForTest(t, addr)
	line, err := r3.ReadString('\n')
	if err != nil || line != "ERROR Too many open connections\r\n" {
		t.Fatalf("third connection: got %q, %v; want the too-many error", line, err)
	}
	if _, err := r3.ReadByte(); err != io.EOF {
		t.Errorf("third connection: got %v after the error, want EOF", err)
	}
	_ = c3
	// The first two carry on.
	if got := roundTrip(t, c1, r1, "version\r\n", 1); got != "VERSION "+Version+"\r\n" {
		t.Errorf("first connection after refusal: got %q", got)
	}
	if got := s.counters.RejectedConns.Load(); got != 1 {
		t.Errorf("rejected_connections: got %d, want 1", got)
	}
}

func TestIdleTimeoutClosesIdleConnections(t *testing.T) {
	s, addr := serveForTest(t, Config{IdleTimeout: 200 * time.Millisecond})
	c, r := dialForTest(t, addr)
	if got := roundTrip(t, c, r, "version\r\n", 1); !strings.HasPrefix(got, "VERSION") {
		t.Fatalf("got %q", got)
	}
	// The client's deadline is 10 s: an EOF before it, counted as an
	// idle kick, is the idle timeout's close.
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: got %v, want EOF", err)
	}
	testutil.WaitFor(t, 5*time.Second, "s.counters.IdleKicks.Load() == 1", func() bool { return s.counters.IdleKicks.Load() == 1 })
}

// TestConnYields checks -R: a connection served that many pipelined
// requests in a row lets the others run, counting conn_yields, and its
// requests are still all answered in order; one whose batches are shorter
// never yields.
func TestConnYields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		perEvt int
		yields bool
	}{
		{"batch longer than -R", 5, true},
		{"batch shorter than -R", 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := serveForTest(t, Config{MaxReqsPerEvent: tc.perEvt})
			c, r := dialForTest(t, addr)
			var req strings.Builder
			for range 100 {
				req.WriteString("set k 0 0 1\r\nx\r\nget k\r\n")
			}
			got := roundTrip(t, c, r, req.String(), 400)
			if want := strings.Repeat("STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n", 100); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			// The binary protocol yields alike.
			c2, r2 := dialForTest(t, addr)
			var bin []byte
			for range 100 {
				bin = protocol.AppendBinaryRequest(bin, protocol.OpNoop, 0, 0, nil, nil, nil)
			}
			if _, err := c2.Write(bin); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r2, make([]byte, 100*protocol.BinaryHeaderLen)); err != nil {
				t.Fatalf("reading 100 Noop replies: %v", err)
			}
			if n := s.counters.ConnYields.Load(); (n > 0) != tc.yields {
				t.Errorf("conn_yields = %d after 200 pipelined requests, 100 binary, with -R %d", n, tc.perEvt)
			}
			// A pipeline longer than the read buffer, yielding on the
			// loop, then part-read and finished by the goroutine, while
			// another connection is served between its turns.
			other, otherR := dialForTest(t, addr)
			done := make(chan string, 1)
			go func() {
				var b strings.Builder
				for range 50 {
					if _, err := io.WriteString(other, "get k\r\n"); err != nil {
						break
					}
					line, _ := otherR.ReadString('\n')
					b.WriteString(line)
					line, _ = otherR.ReadString('\n')
					b.WriteString(line)
					line, _ = otherR.ReadString('\n')
					b.WriteString(line)
				}
				done <- b.String()
			}()
			if got := roundTrip(t, c, r, strings.Repeat("get k\r\n", 3000), 9000); got != strings.Repeat("VALUE k 0 1\r\nx\r\nEND\r\n", 3000) {
				t.Fatalf("3000 pipelined gets: replies differ (%d bytes)", len(got))
			}
			if got := <-done; got != strings.Repeat("VALUE k 0 1\r\nx\r\nEND\r\n", 50) {
				t.Fatalf("the other connection: got %q", got)
			}
		})
	}
}

// TestListenBacklog checks that -b is the listen backlog of the TCP and
// unix listeners, as ss shows it (the Send-Q of a listening socket).
func TestListenBacklog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mc.sock")
	for _, cfg := range []Config{
		{ListenAddrs: []string{"127.0.0.1:0"}, Backlog: 37},
		{UnixSocket: sock, Backlog: 41},
	} {
		s := newTestServer(cfg)
		ls, err := s.Listen()
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		addr := ls[0].Addr().String()
		args := []string{"-lnH", "-t", "sport", "=", ":" + addr[strings.LastIndexByte(addr, ':')+1:]}
		if cfg.UnixSocket != "" {
			args = []string{"-lnH", "-x", "src", sock}
		}
		out, err := exec.Command("ss", args...).Output()
		ls[0].Close()
		s.Shutdown(context.Background())
		if err != nil {
			t.Fatalf("ss %v: %v (ss is in Debian's iproute2)", args, err)
		}
		f := strings.Fields(string(out))
		want := strconv.Itoa(cfg.Backlog)
		if cfg.UnixSocket != "" {
			// Netid State Recv-Q Send-Q Local …, with -x.
			if len(f) < 4 || f[3] != want {
				t.Errorf("unix listener: ss says %q, want the backlog (Send-Q) %s", out, want)
			}
		} else if len(f) < 3 || f[2] != want {
			t.Errorf("TCP listener %s: ss says %q, want the backlog (Send-Q) %s", addr, out, want)
		}
	}
}

func TestShutdownFinishesInFlightRequests(t *testing.T) {
	s, addr, served := startServer(t, Config{})
	c, r := dialForTest(t, addr)
	idle, idleR := dialForTest(t, addr)
	if got := roundTrip(t, idle, idleR, "version\r\n", 1); !strings.HasPrefix(got, "VERSION") {
		t.Fatalf("got %q", got)
	}
	// Begin a set whose data has not arrived yet.
	if _, err := io.WriteString(c, "set k 0 0 5\r\nhel"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "!connIdle(s, c.LocalAddr().String())", func() bool { return !connIdle(s, c.LocalAddr().String()) })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// The idle connection is closed at once.
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection during shutdown: got %v, want EOF", err)
	}
	// The one in mid-request gets its answer, then is closed.
	if _, err := io.WriteString(c, "lo\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil || line != "STORED\r\n" {
		t.Fatalf("in-flight set: got %q, %v; want STORED", line, err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: got %v, want ErrServerClosed", err)
	}
}

func TestShutdownCommand(t *testing.T) {
	for _, tt := range []struct {
		name    string
		enabled bool
		req     string
		want    string
	}{
		{"refused without -A", false, "shutdown\r\n", "ERROR: shutdown not enabled\r\n"},
		{"bad mode", true, "shutdown now\r\n", "CLIENT_ERROR invalid shutdown mode\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := serveForTest(t, Config{EnableShutdown: tt.enabled})
			c, r := dialForTest(t, addr)
			if got := roundTrip(t, c, r, tt.req, 1); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			select {
			case <-s.Done():
				t.Error("server began shutting down")
			default:
			}
		})
	}
	s, addr := serveForTest(t, Config{EnableShutdown: true})
	c, r := dialForTest(t, addr)
	if _, err := io.WriteString(c, "shutdown\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after shutdown: got %v, want EOF", err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Error("Done not closed after the shutdown command")
	}
}

func TestDeadline(t *testing.T) {
	s := newTestServer(Config{})
	defer s.store.Close()
	now := time.Now().Unix()
	for _, tt := range []struct {
		exptime int64
		min     int64
		max     int64
	}{
		{0, 0, 0},
		{-1, 1, 1},
		{10, now + 10, now + 11},
		{maxRelativeExptime, now + maxRelativeExptime, now + maxRelativeExptime + 1},
		{maxRelativeExptime + 1, 1, 1},    // a unix time long past
		{now + 100, now + 100, now + 100}, // a unix time to come
	} {
		if got := s.deadline(tt.exptime); got < tt.min || got > tt.max {
			t.Errorf("deadline(%d) = %d, want %d..%d", tt.exptime, got, tt.min, tt.max)
		}
	}
}

// connIdle reports whether the server's connection from local is waiting
// for a request.
func connIdle(s *testServer, local string) bool {
	id := ""
	for _, st := range s.net.ConnStats() {
		switch {
		case strings.HasSuffix(st.Name, ":addr") && st.Value == "tcp:"+local:
			id = strings.TrimSuffix(st.Name, "addr")
		case id != "" && st.Name == id+"state":
			return st.Value == "conn_waiting"
		}
	}
	return true
}

// TestVerboseLogsConnections checks that -vv logs each connection as it
// opens and closes, and that below -vv nothing is logged of them, as
// memcached (whose -v logs no connection).
func TestVerboseLogsConnections(t *testing.T) {
	for _, verbosity := range []int{0, 1, 2} {
		var logs testutil.LockedBuffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s, addr := serveForTest(t, Config{Verbosity: verbosity, Logger: log})
		c, r := dialForTest(t, addr)
		roundTrip(t, c, r, "version\r\n", 1)
		local := c.LocalAddr().String()
		c.Close()
		want := []string{"connection opened", "connection closed"}
		if verbosity < 2 {
			// Closed connections are untracked after they would be logged.
			testutil.WaitFor(t, 5*time.Second, "s.net.OpenConns() == 0", func() bool { return s.net.OpenConns() == 0 })
			if got := logs.String(); strings.Contains(got, "connection") {
				t.Errorf("at verbosity %d the log holds %q", verbosity, got)
			}
			continue
		}
		testutil.WaitFor(t, 5*time.Second, "strings.Contains(logs.String(), want[1])", func() bool { return strings.Contains(logs.String(), want[1]) })
		for _, w := range want {
			if got := logs.String(); !strings.Contains(got, w) || !strings.Contains(got, local) {
				t.Errorf("with -vv the log %q lacks %q from %s", got, w, local)
			}
		}
	}
}
