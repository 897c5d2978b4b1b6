package command

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/node/store"
)

func TestLRUCrawlerSettings(t *testing.T) {
	s, addr := serveForTest(t, Config{LRUCrawlerToCrawl: 9})
	c, r := dialForTest(t, addr)
	want := crawlerState{Enabled: true, Sleep: config.DefaultLRUCrawlerSleep, ToCrawl: 9, DumpEnabled: true}
	if got := s.crawlerState(); got != want {
		t.Fatalf("at start: %+v, want %+v", got, want)
	}
	for _, step := range []struct {
		req, reply string
		change     func(*crawlerState)
	}{
		{"lru_crawler sleep 5\r\n", "OK\r\n", func(st *crawlerState) { st.Sleep = 5 }},
		{"lru_crawler sleep 1000000\r\n", "OK\r\n", func(st *crawlerState) { st.Sleep = 1000000 }},
		{"lru_crawler sleep 1000001\r\n", "CLIENT_ERROR sleep must be one second or less\r\n", nil},
		{"lru_crawler sleep -1\r\n", "CLIENT_ERROR bad command line format\r\n", nil},
		{"lru_crawler sleep 0\r\n", "OK\r\n", func(st *crawlerState) { st.Sleep = 0 }},
		{"lru_crawler tocrawl 4294967295\r\n", "OK\r\n", func(st *crawlerState) { st.ToCrawl = 4294967295 }},
		{"lru_crawler tocrawl 1x\r\n", "CLIENT_ERROR bad command line format\r\n", nil},
		{"lru_crawler tocrawl 0\r\n", "OK\r\n", func(st *crawlerState) { st.ToCrawl = 0 }},
		{"lru_crawler enable\r\n", "ERROR failed to start lru crawler thread\r\n", nil},
		{"lru_crawler disable\r\n", "OK\r\n", func(st *crawlerState) { st.Enabled = false }},
		{"lru_crawler disable\r\n", "OK\r\n", nil},
		{"lru_crawler crawl all\r\n", "CLIENT_ERROR lru crawler disabled\r\n", nil},
		{"lru_crawler metadump all\r\n", "CLIENT_ERROR lru crawler disabled\r\n", nil},
		{"lru_crawler metadump nonsense\r\n", "CLIENT_ERROR lru crawler disabled\r\n", nil},
		{"lru_crawler enable\r\n", "OK\r\n", func(st *crawlerState) { st.Enabled = true }},
		{"lru_crawler crawl all\r\n", "OK\r\n", nil},
	} {
		if got := roundTrip(t, c, r, step.req, 1); got != step.reply {
			t.Fatalf("%q: got %q, want %q", step.req, got, step.reply)
		}
		if step.change != nil {
			step.change(&want)
		}
		testutil.WaitFor(t, 5*time.Second, "!s.crawlerState().Running", func() bool { return !s.crawlerState().Running })
		got := s.crawlerState()
		got.Starts = 0
		if got != want {
			t.Fatalf("after %q: %+v, want %+v", step.req, got, want)
		}
	}
	if got := s.crawlerState().Starts; got != 1 {
		t.Errorf("lru_crawler_starts: %d, want 1", got)
	}
}

func TestLRUCrawlerDisabledAtStart(t *testing.T) {
	s, addr := serveForTest(t, Config{NoLRUCrawler: true, DisableDumping: true, LRUCrawlerSleep: -1})
	want := crawlerState{Sleep: 0}
	if got := s.crawlerState(); got != want {
		t.Fatalf("at start: %+v, want %+v", got, want)
	}
	c, r := dialForTest(t, addr)
	for _, step := range [][2]string{
		{"lru_crawler metadump all\r\n", "CLIENT_ERROR lru crawler disabled\r\n"},
		{"stats cachedump 1 0\r\n", "CLIENT_ERROR stats cachedump not allowed\r\n"},
		{"stats cachedump\r\n", "CLIENT_ERROR stats cachedump not allowed\r\n"},
		{"lru_crawler enable\r\n", "OK\r\n"},
		{"lru_crawler metadump all\r\n", "ERROR metadump not allowed\r\n"},
		{"lru_crawler metadump bad\r\n", "ERROR metadump not allowed\r\n"},
	} {
		if got := roundTrip(t, c, r, step[0], 1); got != step[1] {
			t.Fatalf("%q: got %q, want %q", step[0], got, step[1])
		}
	}
}

// TestLRUCrawlerCrawl: with the crawler off, expired items stay until
// something finds them; "lru_crawler crawl" of a class removes that
// class's.
func TestLRUCrawlerCrawl(t *testing.T) {
	s, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	roundTrip(t, c, r, "lru_crawler disable\r\n", 1)
	for i := range 50 {
		roundTrip(t, c, r, fmt.Sprintf("set small%d 0 1 1\r\nx\r\nset large%d 0 1 500\r\n%s\r\n", i, i, strings.Repeat("y", 500)), 2)
	}
	small := s.store.ClassStats()[0].ID
	// A second past the items' deadline, whichever of its clocks the
	// store checks them against has passed it too.
	deadline := s.deadline(1) + 1
	testutil.WaitFor(t, 5*time.Second, "s.store.Now() >= deadline", func() bool { return s.store.Now() >= deadline })
	items := func() string { st, _ := readStats(t, c, r, "stats\r\n"); return st["curr_items"] }
	if got := items(); got != "100" {
		t.Fatalf("crawler off, items expired: curr_items %s, want 100", got)
	}
	// Crawl class "small" alone, the background reclaimer still paused.
	roundTrip(t, c, r, "lru_crawler enable\r\n", 1)
	s.store.PauseReclaimer(true)
	if got := roundTrip(t, c, r, fmt.Sprintf("lru_crawler crawl %d\r\n", small), 1); got != "OK\r\n" {
		t.Fatalf("lru_crawler crawl %d: %q", small, got)
	}
	testutil.WaitFor(t, 5*time.Second, "!s.crawlerState().Running", func() bool { return !s.crawlerState().Running })
	for _, cs := range s.store.ClassStats() {
		switch {
		case cs.ID == small && (cs.Items != 0 || cs.CrawlerReclaimed != 50 || cs.CrawlerChecked != 50 || cs.Reclaimed != 0):
			t.Errorf("class %d, crawled: %+v, want 0 items, 50 crawler reclaimed of 50 checked", cs.ID, cs)
		case cs.ID != small && cs.Items != 50:
			t.Errorf("class %d, not crawled: %+v, want 50 items", cs.ID, cs)
		}
	}
	if got := roundTrip(t, c, r, "lru_crawler crawl all\r\n", 1); got != "OK\r\n" {
		t.Fatalf("lru_crawler crawl all: %q", got)
	}
	testutil.WaitFor(t, 5*time.Second, "!s.crawlerState().Running", func() bool { return !s.crawlerState().Running })
	if got := items(); got != "0" {
		t.Errorf("after crawl all: curr_items %s, want 0", got)
	}
}

func TestCachedumpCap(t *testing.T) {
	s, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
	// 10,000 items of one class with 250-byte keys: their lines come to
	// more than the 2 MiB a cachedump may answer.
	for i := range 10000 {
		key := fmt.Sprintf("%0250d", i)
		if st, _ := s.store.Set(store.ModeSet, []byte(key), []byte("v"), 0, 0, 0); st != store.OK {
			t.Fatalf("Set: %v", st)
		}
	}
	cs := s.store.ClassStats()
	if len(cs) != 1 || cs[0].Items != 10000 {
		t.Fatalf("classes: %+v, want one of 10000 items", cs)
	}
	c, r := dialForTest(t, addr)
	read := func(req string) (lines []string, size int) {
		t.Helper()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: %v", req, err)
			}
			size += len(line)
			if line == "END\r\n" {
				return lines, size
			}
			lines = append(lines, line)
		}
	}
	lines, size := read(fmt.Sprintf("stats cachedump %d 0\r\n", cs[0].ID))
	line := len(lines[0])
	if size+1 > cachedumpMax || size+1+line <= cachedumpMax {
		t.Errorf("cachedump: %d bytes in %d lines of %d, want as many as fit in %d with END and a NUL", size, len(lines), line, cachedumpMax)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if !strings.HasPrefix(l, "ITEM ") || !strings.HasSuffix(l, " [1 b; 0 s]\r\n") || seen[l] {
			t.Fatalf("cachedump line %q", l)
		}
		seen[l] = true
	}
	if lines, _ = read(fmt.Sprintf("stats cachedump %d 7\r\n", cs[0].ID)); len(lines) != 7 {
		t.Errorf("cachedump with limit 7: %d lines", len(lines))
	}
	if lines, _ = read(fmt.Sprintf("stats cachedump %d 0\r\n", cs[0].ID+1)); len(lines) != 0 {
		t.Errorf("cachedump of an empty class: %d lines", len(lines))
	}
}

// TestDumpDoesNotStallOthers: while a metadump of a large store streams to
// a client that does not read it, another connection is served: its gets
// are answered, and its crawler commands get BUSY. Once the first client
// reads, it gets every item, once.
func TestDumpDoesNotStallOthers(t *testing.T) {
	s, addr := serveForTest(t, Config{MemoryLimit: 256 << 20})
	const n = 300000 // about 25 MB of metadump: more than socket buffers hold
	for i := range n {
		key := fmt.Sprintf("dump:stall:key:%08d", i)
		if st, _ := s.store.Set(store.ModeSet, []byte(key), []byte("v"), 0, 0, 0); st != store.OK {
			t.Fatalf("Set: %v", st)
		}
	}
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "lru_crawler metadump all\r\n"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "s.crawlerState().Running", func() bool { return s.crawlerState().Running })

	c, r := dialForTest(t, addr)
	for i := 0; i < 200; i++ {
		key := fmt.Sprintf("dump:stall:key:%08d", i*(n/200))
		got := roundTrip(t, c, r, "get "+key+"\r\n", 3)
		// The dump waits on a client that never reads: a get
		// answered while it still runs did not wait for it.
		if !s.crawlerState().Running {
			t.Fatalf("get %d: the metadump ended; it should be stalled on its client", i)
		}
		if got != "VALUE "+key+" 0 1\r\nv\r\nEND\r\n" {
			t.Fatalf("get %s: %q", key, got)
		}
		if i%50 == 0 {
			if got := roundTrip(t, c, r, "lru_crawler metadump all\r\n", 1); got != "BUSY currently processing crawler request\r\n" {
				t.Errorf("a second metadump: %q, want BUSY", got)
			}
			if got := roundTrip(t, c, r, "lru_crawler crawl all\r\n", 1); got != "BUSY currently processing crawler request\r\n" {
				t.Errorf("a crawl: %q, want BUSY", got)
			}
		}
	}
	// A cachedump is no crawler job: it runs beside the metadump.
	if got := roundTrip(t, c, r, "stats cachedump 1 2\r\n", 3); !strings.HasSuffix(got, "END\r\n") {
		t.Errorf("cachedump during the metadump: %q", got)
	}
	if !s.crawlerState().Running {
		t.Fatal("the metadump ended before its client read it")
	}

	// Now read it all.
	_ = slow.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(slow, 64<<10)
	seen := make(map[string]bool, n)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the metadump after %d lines: %v", len(seen), err)
		}
		if line == "END\r\n" {
			break
		}
		key, _, ok := strings.Cut(strings.TrimPrefix(line, "key="), " ")
		if !strings.HasPrefix(line, "key=dump%3Astall%3Akey%3A") || !ok || seen[key] {
			t.Fatalf("metadump line %q", line)
		}
		seen[key] = true
	}
	if len(seen) != n {
		t.Errorf("metadump listed %d keys, want %d", len(seen), n)
	}
	testutil.WaitFor(t, 5*time.Second, "!s.crawlerState().Running", func() bool { return !s.crawlerState().Running })
}

// TestMetadumpThenPipelined: requests that follow a metadump in the same
// read are answered after its END (memcached leaves them until more
// arrives), and another metadump among them is refused as memcached
// refuses it; the next read may dump again.
func TestMetadumpThenPipelined(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	roundTrip(t, c, r, "set a 0 0 1\r\nx\r\n", 1)
	got := roundTrip(t, c, r, "lru_crawler metadump all\r\nversion\r\nlru_crawler metadump all\r\n", 4)
	key, rest, _ := strings.Cut(got, " exp=-1 la=")
	if key != "key=a" || !strings.HasSuffix(rest, " cas=1 fetch=no cls=1 size=61\nEND\r\nVERSION "+Version+"\r\n"+
		"ERROR cannot pipeline other commands before metadump\r\n") {
		t.Fatalf("metadump, version, metadump: %q", got)
	}
	if got := roundTrip(t, c, r, "lru_crawler metadump all\r\n", 2); !strings.HasPrefix(got, "key=a ") || !strings.HasSuffix(got, "\nEND\r\n") {
		t.Fatalf("metadump in a read of its own: %q", got)
	}
}
