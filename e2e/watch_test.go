package e2e

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// The watch streams against memcached's: the same requests must give the
// same log lines, byte for byte once the values that differ from run to run
// are hidden (the time, the line numbers, socket descriptors, client ports).

// watchLine is a log line as memcached writes it: the time in seconds and
// unpadded microseconds, the line number, then the event.
var watchLine = regexp.MustCompile(`^ts=\d{10,}\.\d{1,6} gid=(\d+) (type=[a-z_]+ .*)$`)

// watchNormalizers hide run-dependent values of an event. memcached's line
// for an item it could not allocate prints undefined values in clsid and
// cfd (and its socket in clsid): hidden too.
var watchNormalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`cfd=-?\d+`), "cfd=N"},
	{regexp.MustCompile(`rport=\d+`), "rport=N"},
	{regexp.MustCompile(`(status=(?:too_large|no_memory) .*)clsid=\d+`), "${1}clsid=N"},
}

// readWatchLines reads from a watcher until a line contains marker and no
// line is left incomplete, and returns the events of the lines read,
// normalized, in the order of their line numbers: memcached's logger
// gathers the lines of each worker thread in turn, so lines of different
// connections may come out of order. It checks that every line has
// memcached's form and a number of its own; memcached's notice of lines
// dropped ("skipped=N") is kept as it is.
func readWatchLines(t *testing.T, w *servertest.Conn, marker string) []string {
	t.Helper()
	got := w.Read(servertest.ReadOptions{Max: 20 * time.Second, Done: func(b []byte) bool {
		return bytes.Contains(b, []byte(marker)) && bytes.HasSuffix(b, []byte("\n"))
	}})
	if !bytes.Contains(got, []byte(marker)) || !bytes.HasSuffix(got, []byte("\n")) {
		t.Fatalf("no complete line with %q from the watcher; got %q", marker, servertest.Abbrev(string(got), 2000))
	}
	type event struct {
		gid uint64
		ev  string
	}
	var events []event
	seen := map[uint64]bool{}
	last := uint64(0)
	for _, l := range strings.SplitAfter(strings.TrimSuffix(string(got), "\n"), "\n") {
		l = strings.TrimSuffix(l, "\n")
		if skippedLine.MatchString(l) {
			events = append(events, event{last, l})
			continue
		}
		m := watchLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q is neither ts=… gid=… type=… nor skipped=N", l)
			continue
		}
		gid, _ := strconv.ParseUint(m[1], 10, 64)
		if seen[gid] {
			t.Errorf("gid %d given twice", gid)
		}
		seen[gid], last = true, gid
		ev := m[2]
		for _, n := range watchNormalizers {
			ev = n.re.ReplaceAllString(ev, n.with)
		}
		events = append(events, event{gid, ev})
	}
	slices.SortStableFunc(events, func(a, b event) int { return cmp.Compare(a.gid, b.gid) })
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ev
	}
	return out
}

// skippedLine is memcached's notice that lines were dropped.
var skippedLine = regexp.MustCompile(`^skipped=\d+$`)

// startWatcher opens a connection that watches streams, and checks that the
// server answered OK.
func startWatcher(t *testing.T, srv *servertest.Server, streams string) *servertest.Conn {
	t.Helper()
	w := srv.Raw(t)
	w.SendString("watch " + streams + "\r\n")
	if got, err := w.ReadN(4, 5*time.Second); string(got) != "OK\r\n" {
		t.Fatalf("watch %s: got %q (%v), want OK", streams, got, err)
	}
	return w
}

// watchTextRequests are sent one at a time, each followed by mn so that its
// replies are known to be complete when MN arrives. They cover what
// memcached logs for the text and meta commands: lookups by every command
// that makes one, stores of every mode and outcome, keys to encode, slab
// classes, counters created by ma, allocation failures.
func watchTextRequests() []string {
	big := strings.Repeat("b", 5000)
	huge := strings.Repeat("h", 1<<20+1)
	return []string{
		"set foo 5 100 3\r\nbar\r\n",
		"get foo nope\r\n",
		"gets foo\r\n",
		"add foo 0 0 1\r\nx\r\n",
		"add new 0 50 1\r\nx\r\n",
		"replace nope 0 0 1\r\nx\r\n",
		"replace foo 7 0 2\r\nxy\r\n",
		"append foo 0 0 1\r\nz\r\n",
		"prepend foo 0 0 1\r\na\r\n",
		"append nope 0 70 1\r\nz\r\n",
		"cas foo 0 0 1 999\r\nq\r\n",
		"cas nope 0 0 1 999\r\nq\r\n",
		"incr new 5\r\n",
		"set n 0 0 1\r\n9\r\n",
		"incr n 5\r\n",
		"decr n 100\r\n",
		"incr nope 1\r\n",
		"touch n 10\r\n",
		"touch nope 10\r\n",
		"gat 10 n foo nope\r\n",
		"gats 0 n\r\n",
		"delete n\r\n",
		"delete n\r\n",
		"delete foo noreply\r\n",
		"set a%b/c:d~e 0 0 1\r\n1\r\n",
		"get a%b/c:d~e\r\n",
		"set big 0 0 5000\r\n" + big + "\r\n",
		"get big\r\n",
		"set fl 4294967295 0 100\r\n" + strings.Repeat("f", 100) + "\r\n",
		"get fl\r\n",
		"set huge 0 0 " + strconv.Itoa(len(huge)) + "\r\n" + huge + "\r\n",
		"set big 0 0 " + strconv.Itoa(len(huge)) + "\r\n" + huge + "\r\n",
		"get big\r\n",
		"ms m1 2 T30 F5\r\nhi\r\n",
		"mg m1 v\r\n",
		"mg m1 s v t f k\r\n",
		"mg nope v\r\n",
		"mg nope v q\r\n",
		"ms m1 1 MA\r\nx\r\n",
		"ms m1 1 MP\r\ny\r\n",
		"ms m1 1 ME\r\nz\r\n",
		"ms m2 1 ME\r\nz\r\n",
		"ms m1 1 MR\r\nr\r\n",
		"ms m3 1 MR\r\nr\r\n",
		"ms m1 1 C999\r\nr\r\n",
		"ms nope 1 MA\r\nr\r\n",
		"md m1\r\n",
		"md m1 q\r\n",
		"ma m4 N0 J13\r\n",
		"ma m4\r\n",
		"ma m4 MD D2 v\r\n",
		"ma nope\r\n",
		"me m2\r\n",
		"me nope\r\n",
		"ms m5 2 I\r\nhi\r\n",
		"md m2 I\r\n",
		"mg m2 v c\r\n",
		"mg viv N30 v\r\n",
		"mg viv N30 v\r\n",
		"ms m2 " + strconv.Itoa(len(huge)) + " MA\r\n" + huge + "\r\n",
		"mg m2 v\r\n",
	}
}

// Binary requests, for watchBinaryRequests.
const (
	binGet, binSet, binAdd, binReplace, binDelete = 0x00, 0x01, 0x02, 0x03, 0x04
	binIncr, binDecr, binNoop, binGetQ, binGetK   = 0x05, 0x06, 0x0a, 0x09, 0x0c
	binAppend, binPrepend, binTouch, binGAT       = 0x0e, 0x0f, 0x1c, 0x1d
)

// binRequest is a binary-protocol request.
func binRequest(op byte, cas uint64, extras, key, value []byte) []byte {
	h := make([]byte, 24, 24+len(extras)+len(key)+len(value))
	h[0], h[1] = 0x80, op
	binary.BigEndian.PutUint16(h[2:], uint16(len(key)))
	h[4] = byte(len(extras))
	binary.BigEndian.PutUint32(h[8:], uint32(len(extras)+len(key)+len(value)))
	binary.BigEndian.PutUint64(h[16:], cas)
	return append(append(append(h, extras...), key...), value...)
}

// be32 is vs in big-endian order: a Set's flags and exptime, a Touch's
// exptime.
func be32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// counterExtras are an Increment's or Decrement's extras.
func counterExtras(delta, initial uint64, exptime uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, delta)
	b = binary.BigEndian.AppendUint64(b, initial)
	return binary.BigEndian.AppendUint32(b, exptime)
}

// watchBinaryRequests are the binary protocol's commands, sent one at a
// time, each followed by a Noop. (memcached 1.6.18 crashes logging a Set
// too large for it while a watcher watches mutations: none is sent.)
func watchBinaryRequests() [][]byte {
	k := func(s string) []byte { return []byte(s) }
	return [][]byte{
		binRequest(binSet, 0, be32(0, 0), k("b1"), k("hello")),
		binRequest(binGet, 0, nil, k("b1"), nil),
		binRequest(binGetK, 0, nil, k("b1"), nil),
		binRequest(binGet, 0, nil, k("nope"), nil),
		binRequest(binGetQ, 0, nil, k("nope"), nil),
		binRequest(binAdd, 0, be32(0, 0), k("b1"), k("x")),
		binRequest(binReplace, 0, be32(3, 100), k("nope"), k("x")),
		binRequest(binAppend, 0, nil, k("b1"), k("z")),
		binRequest(binPrepend, 0, nil, k("b1"), k("a")),
		binRequest(binIncr, 0, counterExtras(1, 5, 0), k("n2"), nil),
		binRequest(binIncr, 0, counterExtras(1, 5, 0), k("n2"), nil),
		binRequest(binDecr, 0, counterExtras(1, 5, 0xffffffff), k("n2"), nil),
		binRequest(binIncr, 0, counterExtras(1, 5, 0xffffffff), k("nope"), nil),
		binRequest(binTouch, 0, be32(10), k("b1"), nil),
		binRequest(binGAT, 0, be32(10), k("b1"), nil),
		binRequest(binDelete, 0, nil, k("b1"), nil),
		binRequest(binDelete, 0, nil, k("b1"), nil),
		binRequest(binSet, 12345, be32(0, 0), k("b1"), k("v")),
		binRequest(binSet, 0, be32(1, 0), k("b:2"), bytes.Repeat(k("v"), 2000)),
	}
}

// readUntilNoop reads binary replies until a Noop's.
func readUntilNoop(t *testing.T, c *servertest.Conn) {
	t.Helper()
	for {
		h, err := c.ReadN(24, 10*time.Second)
		if err != nil {
			t.Fatalf("reading a binary reply: %v (got %q)", err, h)
		}
		if n := int(binary.BigEndian.Uint32(h[8:])); n > 0 {
			if b, err := c.ReadN(n, 10*time.Second); err != nil {
				t.Fatalf("reading a binary reply's body: %v (got %q)", err, b)
			}
		}
		if h[1] == binNoop {
			return
		}
	}
}

// watchTranscript runs the requests against srv with a watcher of fetchers
// and mutations and returns the events the watcher saw.
func watchTranscript(t *testing.T, srv *servertest.Server) []string {
	w := startWatcher(t, srv, "fetchers mutations")
	c := srv.Raw(t)
	for _, req := range watchTextRequests() {
		c.SendString(req + "mn\r\n")
		if got, err := c.ReadUntil("MN\r\n", 10*time.Second); err != nil {
			t.Fatalf("%q: %v (got %q)", servertest.Abbrev(req, 80), err, got)
		}
	}
	b := srv.Raw(t)
	for _, req := range watchBinaryRequests() {
		b.Send(append(req, binRequest(binNoop, 0, nil, nil, nil)...))
		readUntilNoop(t, b)
	}
	c.RoundTrip(t, "get __end__\r\n", "END\r\n")
	return readWatchLines(t, w, "key=__end__ ")
}

// TestWatchMatchesMemcached: a watcher of fetchers and mutations sees the
// same lines from both servers for the same requests, by the text, meta and
// binary protocols.
func TestWatchMatchesMemcached(t *testing.T) {
	t.Parallel()
	var ref []string
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			got := watchTranscript(t, servertest.Start(t, name))
			if os.Getenv("E2E_DUMP") != "" {
				t.Logf("%s:\n%s", name, strings.Join(got, "\n"))
			}
			if name == "memcached" {
				// Golden lines, so that the comparison cannot pass by
				// both servers logging nothing alike.
				for _, want := range []string{
					"type=item_get key=foo status=not_found clsid=0 cfd=N size=0",
					"type=item_store key=foo status=stored cmd=set ttl=100 clsid=1 cfd=N size=3",
					"type=item_store key=foo status=stored cmd=append ttl=0 clsid=1 cfd=N size=3",
					"type=item_get key=a%25b%2Fc%3Ad~e status=found clsid=1 cfd=N size=1",
					"type=item_store key=huge status=too_large cmd=set ttl=0 clsid=N cfd=N size=0",
					"type=item_store key=m2 status=too_large cmd=append ttl=0 clsid=N cfd=N size=0",
					"type=item_store key=b1 status=not_found cmd=cas ttl=0 clsid=1 cfd=N size=1",
				} {
					if !slices.Contains(got, want) {
						t.Errorf("memcached did not log %q", want)
					}
				}
				ref = got
				return
			}
			if ref == nil {
				t.Fatal("no memcached transcript to compare with")
			}
			if got := alignTicks(got, ref); strings.Join(got, "\n") != strings.Join(ref, "\n") {
				t.Errorf("watch lines differ from memcached's:\n%s", diffLines(ref, got, "  "))
			}
		})
	}
}

// ttlField is an item_store line's seconds left.
var ttlField = regexp.MustCompile(`ttl=(\d+)`)

// alignTicks returns got with each line's ttl taken from the line of ref at
// the same place where the two lines are otherwise equal and their ttls a
// second apart. An append, prepend or cas logs the seconds its item has
// left, counted from a clock that ticks once a second: when a tick falls
// between the set and the append on one server and not on the other, the
// two servers log ttl=30 and ttl=29 for the same requests. Every other
// difference stays.
func alignTicks(got, ref []string) []string {
	out := slices.Clone(got)
	for i := range min(len(out), len(ref)) {
		g, r := ttlField.FindStringSubmatchIndex(out[i]), ttlField.FindStringSubmatchIndex(ref[i])
		if g == nil || r == nil || out[i][:g[0]] != ref[i][:r[0]] || out[i][g[1]:] != ref[i][r[1]:] {
			continue
		}
		gv, _ := strconv.Atoi(out[i][g[2]:g[3]])
		rv, _ := strconv.Atoi(ref[i][r[2]:r[3]])
		if gv-rv == 1 || rv-gv == 1 {
			out[i] = ref[i]
		}
	}
	return out
}

// TestWatchConnEvents: conn_new and conn_close lines, with memcached's
// close reasons, are the same from both servers.
func TestWatchConnEvents(t *testing.T) {
	t.Parallel()
	var ref []string
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name)
			w := startWatcher(t, srv, "connevents")
			var got []string
			// Each event is awaited before the next is caused, so that
			// the order is the same.
			await := func(n int) {
				t.Helper()
				for len(got) < n {
					got = append(got, readWatchLines(t, w, "\n")...)
				}
			}
			c := srv.Raw(t)
			await(1)
			c.RoundTrip(t, "version\r\n", "VERSION 1.6.18\r\n")
			c.SendString("quit\r\n")
			c.WaitClosed(5 * time.Second)
			await(2)
			c = srv.Raw(t)
			await(3)
			c.RoundTrip(t, "get k\r\n", "END\r\n")
			c.Close()
			await(4)
			c = srv.Raw(t)
			await(5)
			// A binary Set without its extras: memcached's protocol
			// error, which closes the connection.
			c.Send(binRequest(binSet, 0, nil, []byte("k"), nil))
			c.WaitClosed(5 * time.Second)
			await(6)
			w2 := startWatcher(t, srv, "fetchers")
			await(7)
			w2.Close()
			await(8)
			if name == "memcached" {
				want := []string{
					"type=conn_new rip=127.0.0.1 rport=N transport=tcp cfd=N",
					"type=conn_close rip=127.0.0.1 rport=N transport=tcp reason=normal cfd=N",
					"type=conn_new rip=127.0.0.1 rport=N transport=tcp cfd=N",
					"type=conn_close rip=127.0.0.1 rport=N transport=tcp reason=normal cfd=N",
					"type=conn_new rip=127.0.0.1 rport=N transport=tcp cfd=N",
					"type=conn_close rip=127.0.0.1 rport=N transport=tcp reason=error cfd=N",
					"type=conn_new rip=127.0.0.1 rport=N transport=tcp cfd=N",
					"type=conn_close rip=127.0.0.1 rport=N transport=tcp reason=error cfd=N",
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("memcached's lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				ref = got
				return
			}
			if ref == nil {
				t.Fatal("no memcached transcript to compare with")
			}
			if strings.Join(got, "\n") != strings.Join(ref, "\n") {
				t.Errorf("conn events differ from memcached's:\n%s", diffLines(ref, got, "  "))
			}
		})
	}
}

// TestWatchEvictions: an item pushed out of a full cache is logged in
// memcached's eviction format. Which items go differs (memcluster evicts by
// S3-FIFO, memcached by LRU), so the lines are checked by their form.
func TestWatchEvictions(t *testing.T) {
	t.Parallel()
	eviction := regexp.MustCompile(`^type=eviction key=key%3A\d+ fetch=(yes|no) ttl=(-1|\d+) la=\d+ clsid=12 size=1000$`)
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name, "-m", "2")
			w := startWatcher(t, srv, "evictions")
			c := srv.Raw(t)
			value := strings.Repeat("v", 1000)
			for i := 0; i < 10000; i++ {
				ttl := 0
				if i%2 == 0 {
					ttl = 3600
				}
				c.SendString(fmt.Sprintf("set key:%d 0 %d 1000\r\n%s\r\n", i, ttl, value))
				if got, err := c.ReadLine(5 * time.Second); got != "STORED\r\n" {
					t.Fatalf("set %d: %q %v", i, got, err)
				}
			}
			lines := readWatchLines(t, w, "type=eviction")
			n := 0
			for _, l := range lines {
				switch {
				case skippedLine.MatchString(l):
					// The watcher read too late for some lines.
				case eviction.MatchString(l):
					n++
				default:
					t.Errorf("eviction line %q, want memcached's form", l)
				}
			}
			t.Logf("%d eviction lines, the first %q", n, lines[0])
		})
	}
}

// residentBytes is the resident memory of process pid.
func residentBytes(t *testing.T, pid string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("reading the server's memory: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", l, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%s/status", pid)
	return 0
}

// TestWatcherThatNeverReads: a watcher whose client reads nothing does not
// hold the other connections back or make the server's memory grow: every
// request is answered, and the lines it cannot take are dropped. 200,000
// sets and gets make 600,000 lines, about 56 MB: a server that kept them
// would grow by as much (40-50 MiB measured for both servers with a buffer
// of 100 MB, -o watcher_logbuf_size=100000).
func TestWatcherThatNeverReads(t *testing.T) {
	t.Parallel()
	const batches, perBatch, maxGrowth = 200, 1000, 16 << 20
	value := strings.Repeat("v", 100)
	var batch strings.Builder
	for i := range perBatch {
		fmt.Fprintf(&batch, "set k%d 0 0 %d\r\n%s\r\nget k%d\r\n", i%100, len(value), value, i%100)
	}
	end := []byte("END\r\n")
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name)
			startWatcher(t, srv, "fetchers mutations") // and never read again
			c := srv.Raw(t)
			pid := statsGroup(t, c, "")["pid"]
			before := residentBytes(t, pid)
			for b := range batches {
				c.SendString(batch.String())
				got := c.Read(servertest.ReadOptions{Max: 30 * time.Second, Done: func(got []byte) bool {
					return bytes.Count(got, end) == perBatch
				}})
				if n := bytes.Count(got, []byte("STORED\r\n")); n != perBatch || bytes.Count(got, end) != perBatch {
					t.Fatalf("batch %d: %d STORED and %d END of %d requests each", b, n, bytes.Count(got, end), perBatch)
				}
			}
			growth := residentBytes(t, pid) - before
			t.Logf("resident memory grew by %d KiB", growth>>10)
			if growth > maxGrowth {
				t.Errorf("resident memory grew by %d MiB, want at most %d MiB", growth>>20, maxGrowth>>20)
			}
			st := statsGroup(t, c, "")
			if v, printed := st["log_watcher_skipped"]; printed || name == "memcached" {
				if n, _ := strconv.ParseUint(v, 10, 64); n == 0 {
					t.Errorf("log_watcher_skipped %q, want lines dropped", v)
				}
			}
		})
	}
}

// TestAlignTicks: only a ttl a second apart on an otherwise equal line is
// taken as the clock's tick.
func TestAlignTicks(t *testing.T) {
	ref := []string{"type=item_store key=m1 status=stored cmd=append ttl=30 clsid=1", "type=item_store key=m1 ttl=30", "type=item_store key=m1 ttl=30", "a"}
	got := []string{"type=item_store key=m1 status=stored cmd=append ttl=29 clsid=1", "type=item_store key=m1 ttl=28", "type=item_store key=m2 ttl=29", "b"}
	want := []string{ref[0], got[1], got[2], got[3]}
	if out := alignTicks(got, ref); !slices.Equal(out, want) {
		t.Errorf("alignTicks = %q, want %q", out, want)
	}
}
