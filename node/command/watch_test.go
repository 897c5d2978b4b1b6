package command

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/node/stats"
	"github.com/memcluster/memcluster/protocol"
)

func TestParseStreams(t *testing.T) {
	for _, tt := range []struct {
		args string
		want logStream
		ok   bool
	}{
		{"", logFetchers, true},
		{"fetchers", logFetchers, true},
		{"fetchers mutations", logFetchers | logMutations, true},
		{"evictions connevents", logEvictions | logConnEvents, true},
		{"fetchers fetchers", logFetchers, true},
		{"rawcmds sysevents proxyreqs proxyevents proxyuser", logRawCmds | logSysEvents | logProxyReqs | logProxyEvents | logProxyUser, true},
		{"bogus", 0, false},
		{"fetchers bogus", 0, false},
		{"FETCHERS", 0, false},
		{"noreply", 0, false},
	} {
		var args [][]byte
		for _, f := range strings.Fields(tt.args) {
			args = append(args, []byte(f))
		}
		got, ok := parseStreams(args)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseStreams(%q): got %b %v, want %b %v", tt.args, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAppendURIKey(t *testing.T) {
	for _, tt := range []struct{ key, want string }{
		{"foo", "foo"},
		{"Az09-._~", "Az09-._~"},
		{"a%b", "a%25b"},
		{"a/b", "a%2Fb"},
		{"key:0", "key%3A0"},
		{"\x00 \xff\x7f", "%00%20%FF%7F"},
		{"", ""},
	} {
		if got := string(appendURIKey(nil, []byte(tt.key))); got != tt.want {
			t.Errorf("appendURIKey(%q): got %q, want %q", tt.key, got, tt.want)
		}
	}
}

// TestWatcherBuffer: a watcher's buffer takes lines while they fit, drops
// and counts the others, and announces the drops before the next line it
// takes, as memcached's "skipped=N"; it never grows past its size.
func TestWatcherBuffer(t *testing.T) {
	var c stats.Counters
	h := &watchHub{}
	w, ok := h.add(logFetchers, 40, &c)
	if !ok {
		t.Fatal("add failed")
	}
	if got := string(w.take(make([]byte, 0, 40))); got != watchOK {
		t.Fatalf("first lines: got %q, want %q", got, watchOK)
	}
	line := []byte("0123456789abcdefghi\n") // 20 bytes
	w.offer(line, &c)
	w.offer(line, &c)
	w.offer(line, &c) // no room
	w.offer(line, &c) // no room
	if sent, skipped := c.LogWatcherSent.Load(), c.LogWatcherSkipped.Load(); sent != 2 || skipped != 2 {
		t.Fatalf("sent %d, skipped %d: want 2 and 2", sent, skipped)
	}
	spare := make([]byte, 0, 40)
	out := w.take(spare)
	if want := strings.Repeat(string(line), 2); string(out) != want {
		t.Fatalf("took %q, want %q", out, want)
	}
	if cap(out) != 40 {
		t.Errorf("buffer capacity: got %d, want 40 (it must never grow)", cap(out))
	}
	w.offer(line, &c)
	if got, want := string(w.take(out)), "skipped=2\n"+string(line); got != want {
		t.Errorf("after drops: got %q, want %q", got, want)
	}
	// A line that fits only without the notice waits for room for both.
	w.offer(line, &c)
	w.offer(line, &c)
	w.offer([]byte("x\n"), &c) // dropped: 40 bytes used
	w.take(make([]byte, 0, 40))
	w.offer(bytes.Repeat([]byte("y"), 35), &c) // 35 + "skipped=1\n" > 40: dropped too
	w.offer([]byte("z\n"), &c)
	if got, want := string(w.take(make([]byte, 0, 40))), "skipped=2\nz\n"; got != want {
		t.Errorf("after more drops: got %q, want %q", got, want)
	}
	if sent, skipped := c.LogWatcherSent.Load(), c.LogWatcherSkipped.Load(); sent != 6 || skipped != 4 {
		t.Errorf("sent %d, skipped %d: want 6 and 4", sent, skipped)
	}
}

// TestWatcherOfferAllocatesNothing: handing a line to a watcher copies it
// into the buffer made when the watch began.
func TestWatcherOfferAllocatesNothing(t *testing.T) {
	var c stats.Counters
	h := &watchHub{}
	w, _ := h.add(logFetchers, 1<<10, &c)
	line := []byte("ts=1 gid=1 type=item_get key=k status=found clsid=1 cfd=5 size=1\n")
	spare := make([]byte, 0, 1<<10)
	testutil.NoAllocs(t, "offer and take", 100, func() {
		for range 20 {
			w.offer(line, &c) // some dropped, most kept
		}
		spare = w.take(spare)
	})
}

// TestWatchHubLimit: at most maxWatchers watch at once; the streams the
// request path checks are the union of theirs, 0 once none is left.
func TestWatchHubLimit(t *testing.T) {
	var c stats.Counters
	h := &watchHub{}
	var ws []*watcher
	for i := range maxWatchers {
		st := logFetchers
		if i == 3 {
			st = logEvictions
		}
		w, ok := h.add(st, 64, &c)
		if !ok {
			t.Fatalf("watcher %d refused", i)
		}
		ws = append(ws, w)
	}
	if _, ok := h.add(logFetchers, 64, &c); ok {
		t.Errorf("watcher %d accepted, want the limit at %d", maxWatchers+1, maxWatchers)
	}
	if got := logStream(h.streams.Load()); got != logFetchers|logEvictions {
		t.Errorf("streams: got %b, want %b", got, logFetchers|logEvictions)
	}
	if got := c.LogWatchers.Load(); got != maxWatchers {
		t.Errorf("log_watchers: got %d, want %d", got, maxWatchers)
	}
	h.remove(ws[3], &c)
	if got := logStream(h.streams.Load()); got != logFetchers {
		t.Errorf("streams after the evictions watcher left: got %b, want %b", got, logFetchers)
	}
	for _, w := range ws {
		if w != ws[3] {
			h.remove(w, &c)
		}
	}
	if got, n := h.streams.Load(), c.LogWatchers.Load(); got != 0 || n != 0 {
		t.Errorf("with no watcher: streams %b, log_watchers %d; want 0 and 0", got, n)
	}
}

// watchNode starts a node for a watch test.
func watchNode(t *testing.T, cfg Config) (*testServer, string) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return serveForTest(t, cfg)
}

// startWatch opens a connection and makes it watch streams ("" for the
// default), waiting for its OK and until the server counts it.
func startWatch(t *testing.T, s *testServer, addr, streams string) (net.Conn, *bufio.Reader) {
	t.Helper()
	before := s.counters.LogWatchers.Load()
	c, r := dialForTest(t, addr)
	cmd := "watch"
	if streams != "" {
		cmd += " " + streams
	}
	if got := roundTrip(t, c, r, cmd+"\r\n", 1); got != "OK\r\n" {
		t.Fatalf("%s: got %q, want OK", cmd, got)
	}
	testutil.WaitFor(t, 5*time.Second, "s.counters.LogWatchers.Load() == before+1", func() bool { return s.counters.LogWatchers.Load() == before+1 })
	return c, r
}

// readLogLines reads n lines from a watcher.
func readLogLines(t *testing.T, r *bufio.Reader, n int) []string {
	t.Helper()
	var lines []string
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading watch line %d: %v (so far %q)", len(lines)+1, err, lines)
		}
		lines = append(lines, line)
	}
	return lines
}

// logPrefix is the start of every log line: the time, seconds and
// unpadded microseconds, and the line number.
var logPrefix = regexp.MustCompile(`^ts=\d{10,}\.\d{1,6} gid=(\d+) `)

// checkLines checks that lines are log lines numbered in increasing order
// and, with their prefixes removed and every "cfd=N" made "cfd=C", are want.
func checkLines(t *testing.T, lines []string, want []string, cfd int) {
	t.Helper()
	last := uint64(0)
	var got []string
	for _, l := range lines {
		m := logPrefix.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q lacks the ts=… gid=… prefix", l)
			continue
		}
		gid, _ := strconv.ParseUint(m[1], 10, 64)
		if gid <= last {
			t.Errorf("gid %d after %d", gid, last)
		}
		last = gid
		l = strings.TrimPrefix(l, m[0])
		l = strings.ReplaceAll(l, " cfd="+strconv.Itoa(cfd)+" ", " cfd=C ")
		l = strings.ReplaceAll(l, " cfd="+strconv.Itoa(cfd)+"\n", " cfd=C\n")
		got = append(got, l)
	}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
}

// serverFD returns the descriptor the server gave to the connection whose
// client end is c, as watch lines name it, from "stats conns"-like state.
func serverFD(t *testing.T, s *testServer, c net.Conn) int {
	t.Helper()
	local := c.LocalAddr().String()
	var fd int
	testutil.WaitFor(t, 5*time.Second, "the server's end of the connection", func() bool {
		found := false
		s.net.EachConn(func(sc *netserve.Conn) {
			if sc.RemoteAddr().String() == local {
				fd, found = sc.FD(), true
			}
		})
		return found
	})
	return fd
}

// TestWatchShowsRequests: a watcher of fetchers and mutations sees, in
// memcached's format, what another connection does through each protocol.
func TestWatchShowsRequests(t *testing.T) {
	s, addr := watchNode(t, Config{})
	_, wr := startWatch(t, s, addr, "fetchers mutations")
	c, r := dialForTest(t, addr)
	fd := serverFD(t, s, c)

	roundTrip(t, c, r, "set foo 5 100 3\r\nbar\r\n", 1)
	roundTrip(t, c, r, "get foo nope\r\n", 3)
	roundTrip(t, c, r, "append foo 0 0 2\r\nxy\r\n", 1)
	roundTrip(t, c, r, "incr foo 1\r\n", 1)
	roundTrip(t, c, r, "delete foo\r\n", 1)
	roundTrip(t, c, r, "set a%b 0 0 1\r\n1\r\n", 1)
	roundTrip(t, c, r, "ms m 2 T0 MA\r\nhi\r\n", 1)
	roundTrip(t, c, r, "ma ctr N0 J13\r\n", 1)
	roundTrip(t, c, r, "mg ctr v\r\n", 2)
	checkLines(t, readLogLines(t, wr, 14), []string{
		"type=item_get key=foo status=not_found clsid=0 cfd=C size=0\n",
		"type=item_store key=foo status=stored cmd=set ttl=100 clsid=1 cfd=C size=3\n",
		"type=item_get key=foo status=found clsid=1 cfd=C size=3\n",
		"type=item_get key=nope status=not_found clsid=0 cfd=C size=0\n",
		"type=item_get key=foo status=found clsid=1 cfd=C size=3\n",
		"type=item_store key=foo status=stored cmd=append ttl=100 clsid=1 cfd=C size=5\n",
		"type=item_get key=foo status=found clsid=1 cfd=C size=5\n",
		"type=item_get key=foo status=found clsid=1 cfd=C size=5\n",
		"type=item_get key=a%25b status=not_found clsid=0 cfd=C size=0\n",
		"type=item_store key=a%25b status=stored cmd=set ttl=0 clsid=1 cfd=C size=1\n",
		"type=item_get key=m status=not_found clsid=0 cfd=C size=0\n",
		"type=item_store key=m status=not_stored cmd=append ttl=0 clsid=1 cfd=C size=2\n",
		"type=item_get key=ctr status=not_found clsid=0 cfd=C size=0\n",
		"type=item_get key=ctr status=not_found clsid=0 cfd=C size=0\n",
	}, fd)
	checkLines(t, readLogLines(t, wr, 2), []string{
		"type=item_store key=ctr status=stored cmd=add ttl=0 clsid=1 cfd=C size=2\n",
		"type=item_get key=ctr status=found clsid=1 cfd=C size=2\n",
	}, fd)

	// The binary protocol.
	bc := binDial(t, addr)
	bfd := serverFD(t, s, bc.nc)
	bc.check(0, binStep{send: binCat(
		binReq(protocol.OpSet, 1, 0, binStorageExtras(0, 0), "bk", "hello"),
		binReq(protocol.OpGetK, 2, 0, "", "bk", ""),
		binReq(protocol.OpAdd, 3, 0, binStorageExtras(0, 0), "bk", "x"),
	), want: [][]byte{
		binOK(protocol.OpSet, 1, binAnyCAS),
		binHit(protocol.OpGetK, 2, 0, "bk", "hello"),
		binErr(protocol.OpAdd, protocol.StatusKeyExists, 3),
	}})
	checkLines(t, readLogLines(t, wr, 5), []string{
		"type=item_get key=bk status=not_found clsid=0 cfd=C size=0\n",
		"type=item_store key=bk status=stored cmd=set ttl=0 clsid=1 cfd=C size=5\n",
		"type=item_get key=bk status=found clsid=1 cfd=C size=5\n",
		"type=item_get key=bk status=found clsid=1 cfd=C size=5\n",
		"type=item_store key=bk status=not_stored cmd=add ttl=0 clsid=1 cfd=C size=1\n",
	}, bfd)
	if n := s.counters.LogWatcherSent.Load(); n != 21 {
		t.Errorf("log_watcher_sent: got %d, want 21", n)
	}
}

// TestWatchStreams: a watcher gets the streams it asked for and no other.
func TestWatchStreams(t *testing.T) {
	s, addr := watchNode(t, Config{MemoryLimit: 1 << 20})
	_, fetchers := startWatch(t, s, addr, "")
	_, evictions := startWatch(t, s, addr, "evictions")
	_, conns := startWatch(t, s, addr, "connevents")

	c, r := dialForTest(t, addr)
	fd := serverFD(t, s, c)
	port := c.LocalAddr().(*net.TCPAddr).Port
	checkLines(t, readLogLines(t, conns, 1), []string{
		fmt.Sprintf("type=conn_new rip=127.0.0.1 rport=%d transport=tcp cfd=C\n", port),
	}, fd)
	roundTrip(t, c, r, "get k\r\n", 1)
	checkLines(t, readLogLines(t, fetchers, 1), []string{"type=item_get key=k status=not_found clsid=0 cfd=C size=0\n"}, fd)

	// Fill the store until it evicts: the first eviction is a key set
	// earlier, never read.
	value := strings.Repeat("v", 1000)
	line := make(chan string, 1)
	go func() {
		l, _ := evictions.ReadString('\n')
		line <- l
	}()
	var got string
	for i := 0; got == ""; i++ {
		if i == 5000 {
			t.Fatal("no eviction line after 5000 sets of 1000 bytes into 1 MiB")
		}
		roundTrip(t, c, r, fmt.Sprintf("set key:%d 0 0 1000\r\n%s\r\n", i, value), 1)
		select {
		case got = <-line:
		default:
		}
	}
	m := regexp.MustCompile(`^ts=\d+\.\d+ gid=\d+ type=eviction key=key%3A(\d+) fetch=no ttl=-1 la=\d+ clsid=12 size=1000\n$`).FindStringSubmatch(got)
	if m == nil {
		t.Errorf("eviction line %q, want memcached's format for a key:N never read, 1000 bytes (class 12)", got)
	}

	roundTrip(t, c, r, "quit\r\n", 0)
	checkLines(t, readLogLines(t, conns, 1), []string{
		fmt.Sprintf("type=conn_close rip=127.0.0.1 rport=%d transport=tcp reason=normal cfd=C\n", port),
	}, fd)
	// The connection-events watcher saw no item, the others no connection.
	for name, wr := range map[string]*bufio.Reader{"fetchers": fetchers, "connevents": conns} {
		if wr.Buffered() > 0 {
			peek, _ := wr.Peek(wr.Buffered())
			t.Errorf("%s watcher got more lines: %q", name, peek)
		}
	}
}

// TestWatchReplies: watch's refusals are memcached's.
func TestWatchReplies(t *testing.T) {
	s, addr := watchNode(t, Config{})
	for _, tt := range []struct{ send, want string }{
		{"watch bogus\r\n", "ERROR\r\n"},
		{"watch fetchers Fetchers\r\n", "ERROR\r\n"},
		{"watch noreply\r\nversion\r\n", "VERSION " + Version + "\r\n"},
		{"watch fetchers noreply\r\nversion\r\n", "VERSION " + Version + "\r\n"},
		{"version\r\nwatch\r\n", "VERSION " + Version + "\r\nERROR cannot pipeline other commands before watch\r\n"},
		{"set x 0 0 1 noreply\r\n1\r\nwatch\r\n", "ERROR cannot pipeline other commands before watch\r\n"},
		{"mg nokey v\r\nwatch\r\n", "EN\r\nERROR cannot pipeline other commands before watch\r\n"},
		{"watch bogus\r\nwatch\r\n", "ERROR\r\nERROR cannot pipeline other commands before watch\r\n"},
		// get, gets, gat, gats and mn have memcached write at once.
		{"get nokey\r\nwatch\r\n", "END\r\nOK\r\n"},
		{"mn\r\nwatch\r\n", "MN\r\nOK\r\n"},
	} {
		c, r := dialForTest(t, addr)
		if _, err := io.WriteString(c, tt.send); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(r, int64(len(tt.want))))
		if string(got) != tt.want {
			t.Errorf("%q: got %q (%v), want %q", tt.send, got, err, tt.want)
		}
		c.Close()
	}
	testutil.WaitFor(t, 5*time.Second, "s.counters.LogWatchers.Load() == 0", func() bool { return s.counters.LogWatchers.Load() == 0 })

	// More than 20 watchers.
	for range maxWatchers {
		startWatch(t, s, addr, "")
	}
	c, r := dialForTest(t, addr)
	if got := roundTrip(t, c, r, "watch\r\n", 1); got != "WATCHER_TOO_MANY log watcher limit reached\r\n" {
		t.Errorf("watcher %d: got %q", maxWatchers+1, got)
	}
	if got := roundTrip(t, c, r, "version\r\n", 1); got != "VERSION "+Version+"\r\n" {
		t.Errorf("after WATCHER_TOO_MANY: got %q, want the connection to serve commands", got)
	}

	s2, addr2 := watchNode(t, Config{DisableWatch: true})
	c, r = dialForTest(t, addr2)
	if got := roundTrip(t, c, r, "watch\r\n", 1); got != "CLIENT_ERROR watch commands not allowed\r\n" {
		t.Errorf("with -W: got %q", got)
	}
	if n := s2.counters.LogWatchers.Load(); n != 0 {
		t.Errorf("with -W: %d watchers", n)
	}
}

// TestWatchEnds: a watch ends when its client closes the connection, and
// the watcher is forgotten: the request path checks nothing again.
func TestWatchEnds(t *testing.T) {
	s, addr := watchNode(t, Config{})
	w, wr := startWatch(t, s, addr, "fetchers connevents")
	// What a watcher sends is ignored.
	if _, err := io.WriteString(w, "get k\r\nversion\r\n"); err != nil {
		t.Fatal(err)
	}
	c, r := dialForTest(t, addr)
	roundTrip(t, c, r, "get k\r\n", 1)
	lines := readLogLines(t, wr, 2)
	if !strings.Contains(lines[0], "type=conn_new") || !strings.Contains(lines[1], "type=item_get key=k ") {
		t.Errorf("lines %q, want the other connection's conn_new and get", lines)
	}
	w.Close()
	testutil.WaitFor(t, 5*time.Second, "s.counters.LogWatchers.Load() == 0 && s.watching() == 0", func() bool { return s.counters.LogWatchers.Load() == 0 && s.watching() == 0 })
	testutil.WaitFor(t, 5*time.Second, "s.net.OpenConns() == 1", func() bool { return s.net.OpenConns() == 1 })
}
