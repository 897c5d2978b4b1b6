package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// Listing keys: "stats cachedump", "lru_crawler" and its metadump, and
// memcdump, which lists keys with cachedump.

// noLRUMaintainer makes memcached file new items straight into the LRU its
// cachedump lists (its COLD one) rather than moving them there a moment
// later, so that a cachedump right after a set lists it.
var noLRUMaintainer = []string{"-o", "no_lru_maintainer"}

// dumpCases are the comparison cases of the key-listing commands.
func dumpCases() []compareCase {
	return []compareCase{
		// Items of classes 1 (a, d, e), 4 (b) and 15 (c); d expires.
		{name: "stats_cachedump", flags: noLRUMaintainer, steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s(value("set", "b", 5, 100, "")),
			s(value("set", "c", 0, 2000, "")),
			s("set d 0 100 1\r\nx\r\n"),
			s("set e 0 0 1\r\nx\r\n"),
			g("stats cachedump 0 0\r\n", "END\r\n"),
			s("stats cachedump 1 0\r\n"),
			g("stats cachedump 2 0\r\n", "END\r\n"),
			g("stats cachedump 4 0\r\n", "ITEM b [100 b; 0 s]\r\nEND\r\n"),
			s("stats cachedump 15 0\r\n"),
			s("stats cachedump 63 0\r\n"),
			s("stats cachedump 4 1\r\n"),
			s("stats cachedump 1 3\r\n"),
			s("stats cachedump 1 9\r\n"),
			s("get a\r\n"),
			s("stats cachedump 1 0\r\n"),
			s("delete e\r\n"),
			s("stats cachedump 1 0\r\n"),
			s("stats cachedump 4294967297 0\r\n"),
			s("stats cachedump +1 0\r\n"),
			s("stats cachedump 1 0 extra words\r\n"),
			s("stats cachedump 01 00\r\n"),
			s("version\r\nstats cachedump 4 0\r\nversion\r\n"),
		}},
		{name: "stats_cachedump_errors", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("stats cachedump\r\n", "CLIENT_ERROR bad command line\r\n"),
			s("stats cachedump 1\r\n"),
			g("stats cachedump x 0\r\n", "CLIENT_ERROR bad command line format\r\n"),
			s("stats cachedump 1 x\r\n"),
			s("stats cachedump -1 0\r\n"),
			s("stats cachedump 1 -1\r\n"),
			s("stats cachedump 1x 0\r\n"),
			s("stats cachedump 18446744073709551616 0\r\n"),
			g("stats cachedump 64 0\r\n", "CLIENT_ERROR Illegal slab id\r\n"),
			s("stats cachedump 4294967295 0\r\n"),
			s("stats cachedump 9223372036854775808 0\r\n"),
			s("STATS cachedump 1 0\r\n"),
		}},
		{name: "dump_disabled", flags: []string{"-X"}, steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("stats cachedump 1 0\r\n", "CLIENT_ERROR stats cachedump not allowed\r\n"),
			s("stats cachedump\r\n"),
			g("lru_crawler metadump all\r\n", "ERROR metadump not allowed\r\n"),
			s("lru_crawler metadump nonsense\r\n"),
			s("lru_crawler crawl all\r\n"),
		}},
		{name: "lru_crawler_metadump", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("set a:b/c~%_.-!\x01\xff 3 0 2\r\nxy\r\n"),
			s(value("set", "big", 7, 2000, "")),
			s("set t 0 100 1\r\nx\r\n"),
			s("get a\r\n"),
			s("lru_crawler metadump all\r\n"),
			s("lru_crawler metadump hash\r\n"),
			s("lru_crawler metadump 1\r\n"),
			s("lru_crawler metadump 1,15\r\n"),
			s("lru_crawler metadump 15\r\n"),
			g("lru_crawler metadump 2,3\r\n", "END\r\n"),
			s("lru_crawler metadump ,1,,\r\n"),
			s("lru_crawler metadump 63\r\n"),
			s("lru_crawler metadump +1\r\n"),
			s("lru_crawler metadump 4294967297\r\n"),
			g("lru_crawler metadump 0\r\n", "BADCLASS invalid class id\r\n"),
			s("lru_crawler metadump 64\r\n"),
			s("lru_crawler metadump 1,64\r\n"),
			s("lru_crawler metadump 1,x\r\n"),
			s("lru_crawler metadump all,1\r\n"),
			s("lru_crawler metadump ALL\r\n"),
			s("lru_crawler metadump -0\r\n"),
			s("lru_crawler metadump -1\r\n"),
			s("delete a\r\n"),
			s("lru_crawler metadump all\r\n"),
			// Expired and flushed items are not listed.
			s("set gone 0 -1 1\r\nx\r\n"),
			s("lru_crawler metadump all\r\n"),
			s("flush_all\r\n"),
			g("lru_crawler metadump all\r\n", "END\r\n"),
			s("set n 0 0 1\r\nx\r\n"),
			s("lru_crawler metadump all\r\n"),
		}},
		{name: "lru_crawler_metadump_no_cas", flags: []string{"-C"}, steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("set b 1 0 45\r\n" + strings.Repeat("y", 45) + "\r\n"),
			s("lru_crawler metadump all\r\n"),
		}},
		// memcached hands the connection to its crawler thread for a
		// metadump, which it can do only with no reply owed. (After a
		// metadump, memcached leaves the rest of the read unanswered
		// until more arrives; memcluster answers it: see
		// TestMetadumpThenPipelined in node.)
		{name: "lru_crawler_metadump_pipelined", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("version\r\nlru_crawler metadump all\r\nversion\r\n"),
			s("get a\r\nlru_crawler metadump all\r\n"),
			s("set b 0 0 1\r\nx\r\nlru_crawler metadump all\r\n"),
			s("lru_crawler metadump bad\r\nlru_crawler metadump all\r\n"),
			s("lru_crawler crawl all\r\nlru_crawler metadump all\r\n"),
			s("lru_crawler metadump all\r\n"),
			s("stats cachedump 1 0\r\nlru_crawler metadump all\r\n"),
		}},
		// What is owed is written before more is read: a metadump or
		// watch whose line arrives in a later read than a request's
		// follows nothing owed.
		{name: "metadump_and_watch_after_a_read", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("version\r\nlru_crawler meta", "VERSION 1.6.18\r\n"),
			s("dump all\r\n"),
			g("version\r\nwatch\r\n", "VERSION 1.6.18\r\nERROR cannot pipeline other commands before watch\r\n"),
			g("version\r\nwat", "VERSION 1.6.18\r\n"),
			g("ch\r\n", "OK\r\n"),
		}},
		// memcached leaves its crawler unusable after this one: last.
		{name: "lru_crawler_metadump_no_classes", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("lru_crawler metadump ,\r\n", "NOTSTARTED no items to crawl\r\n"),
		}},
		{name: "lru_crawler_crawl", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("set b 0 1 1\r\nx\r\n"),
			g("lru_crawler crawl all\r\n", "OK\r\n"),
			// A crawl runs in the background: the next is BUSY until
			// it is done.
			until("lru_crawler crawl 1\r\n", "OK\r\n", 5*time.Second),
			until("lru_crawler crawl 1,2,63\r\n", "OK\r\n", 5*time.Second),
			until("lru_crawler crawl ,2,\r\n", "OK\r\n", 5*time.Second),
			g("lru_crawler crawl 0\r\n", "BADCLASS invalid class id\r\n"),
			s("lru_crawler crawl 64\r\n"),
			s("lru_crawler crawl 1,0\r\n"),
			s("lru_crawler crawl x\r\n"),
			s("lru_crawler crawl ALL\r\n"),
			g("lru_crawler crawl hash\r\n", "ERROR an unknown error happened\r\n"),
			s("get a\r\n"),
			g("lru_crawler crawl ,\r\n", "NOTSTARTED no items to crawl\r\n"),
		}},
		{name: "lru_crawler_settings", steps: []step{
			g("lru_crawler sleep 10\r\n", "OK\r\n"),
			s("lru_crawler sleep 1000000\r\n"),
			g("lru_crawler sleep 1000001\r\n", "CLIENT_ERROR sleep must be one second or less\r\n"),
			s("lru_crawler sleep x\r\n"),
			s("lru_crawler sleep -1\r\n"),
			s("lru_crawler sleep 4294967296\r\n"),
			s("lru_crawler sleep 0\r\n"),
			s("lru_crawler tocrawl 5\r\n"),
			s("lru_crawler tocrawl -1\r\n"),
			s("lru_crawler tocrawl 1x\r\n"),
			s("lru_crawler tocrawl 4294967296\r\n"),
			g("lru_crawler enable\r\n", "ERROR failed to start lru crawler thread\r\n"),
			g("lru_crawler disable\r\n", "OK\r\n"),
			s("lru_crawler disable\r\n"),
			g("lru_crawler crawl all\r\n", "CLIENT_ERROR lru crawler disabled\r\n"),
			s("lru_crawler crawl 0\r\n"),
			s("lru_crawler metadump all\r\n"),
			s("lru_crawler metadump 0\r\n"),
			s("lru_crawler tocrawl 3\r\n"),
			s("lru_crawler sleep 3\r\n"),
			g("lru_crawler enable\r\n", "OK\r\n"),
			s("lru_crawler metadump all\r\n"),
			g("lru_crawler crawl all\r\n", "OK\r\n"),
		}},
		{name: "lru_crawler_settings_flags", flags: []string{"-o", "no_lru_crawler,lru_crawler_sleep=0,lru_crawler_tocrawl=2"}, steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("lru_crawler metadump all\r\n", "CLIENT_ERROR lru crawler disabled\r\n"),
			g("lru_crawler enable\r\n", "OK\r\n"),
			s("lru_crawler metadump all\r\n"),
		}},
		{name: "lru_crawler_errors", steps: []step{
			g("lru_crawler\r\n", "ERROR\r\n"),
			s("lru_crawler foo\r\n"),
			s("lru_crawler foo bar\r\n"),
			s("lru_crawler crawl\r\n"),
			s("lru_crawler metadump\r\n"),
			s("lru_crawler metadump all extra\r\n"),
			s("lru_crawler crawl all extra\r\n"),
			s("lru_crawler crawl all noreply\r\n"),
			g("lru_crawler mgdump all\r\n", "ERROR\r\n"),
			s("lru_crawler mgdump hash\r\n"),
			s("lru_crawler ENABLE\r\n"),
			s("lru_crawler Crawl all\r\n"),
			s("lru_crawler enable extra\r\n"),
			s("lru_crawler disable extra\r\n"),
			s("lru_crawler sleep\r\n"),
			s("lru_crawler sleep 1 2\r\n"),
			s("lru_crawler tocrawl\r\n"),
			s("lru_crawler " + strings.Repeat("x ", 30) + "\r\n"),
			s("version\r\n"),
		}},
	}
}

// storeItems stores n items over c, key(i) with a value of size(i) bytes
// of 'v', pipelined, and fails unless each is STORED.
func storeItems(t *testing.T, nc net.Conn, n int, key func(int) string, size func(int) int) {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Minute))
	defer nc.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(nc, 64<<10)
		for i := range n {
			v := strings.Repeat("v", size(i))
			fmt.Fprintf(w, "set %s %d 0 %d\r\n%s\r\n", key(i), i%7, len(v), v)
		}
		errc <- w.Flush()
	}()
	r := bufio.NewReader(nc)
	for i := range n {
		line, err := r.ReadString('\n')
		if err != nil || line != "STORED\r\n" {
			t.Fatalf("set %d of %d: %q, %v", i+1, n, line, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// runMemcdump runs memcdump against srv and returns the keys it lists.
func runMemcdump(t *testing.T, srv *servertest.Server) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, memcdumpPath, "--servers=127.0.0.1:"+strconv.Itoa(srv.Port))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("memcdump: %v: %s", err, stderr.String())
	}
	return strings.Fields(string(out))
}

const memcdumpPath = "/usr/bin/memcdump"

// checkKeys fails unless got lists each key of want once, and no other.
func checkKeys(t *testing.T, got []string, want map[string]bool) {
	t.Helper()
	seen := make(map[string]bool, len(got))
	for _, k := range got {
		if seen[k] {
			t.Errorf("key %q listed twice", k)
		}
		if !want[k] {
			t.Errorf("key %q listed, never stored", k)
		}
		seen[k] = true
	}
	missing := 0
	for k := range want {
		if !seen[k] {
			if missing < 10 {
				t.Errorf("key %q stored, not listed", k)
			}
			missing++
		}
	}
	if missing > 0 || len(got) != len(want) {
		t.Errorf("%d keys listed, %d stored, %d of them missing", len(got), len(want), missing)
	}
}

// TestMemcdump runs memcdump (libmemcached-tools), which lists keys with
// "stats cachedump", against both servers holding the same few items of
// several classes, then against memcluster holding 100,000.
func TestMemcdump(t *testing.T) {
	if _, err := os.Stat(memcdumpPath); err != nil {
		t.Fatalf("memcdump is not installed (%v); install it with `apt-get install libmemcached-tools`", err)
	}
	t.Parallel()
	key := func(i int) string { return "memcdump:key:" + strconv.Itoa(i) }
	// From 0 to 899 bytes: items of a dozen classes.
	size := func(i int) int { return i * 37 % 900 }
	keys := func(n int) map[string]bool {
		m := make(map[string]bool, n)
		for i := range n {
			m[key(i)] = true
		}
		return m
	}
	var lists [][]string
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name, noLRUMaintainer...)
			storeItems(t, srv.Raw(t).NetConn(), 3000, key, size)
			got := runMemcdump(t, srv)
			checkKeys(t, got, keys(3000))
			lists = append(lists, slices.Sorted(slices.Values(got)))
		})
	}
	if len(lists) == 2 && !slices.Equal(lists[0], lists[1]) {
		t.Errorf("memcached and memcluster list different keys")
	}
	if !enabled("memcluster") {
		return
	}
	t.Run("memcluster_100000", func(t *testing.T) {
		const n = 100000
		srv := servertest.StartMemcluster(t, "-m", "256")
		storeItems(t, srv.Raw(t).NetConn(), n, key, size)
		c := srv.Raw(t)
		c.SendString("stats items\r\n")
		stats, err := c.ReadUntil("END\r\n", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if classes := strings.Count(string(stats), ":number "); classes < 8 {
			t.Fatalf("the items fill %d classes, want several:\n%s", classes, stats)
		}
		checkKeys(t, runMemcdump(t, srv), keys(n))
	})
}

// TestMetadumpListsEveryKey reads a metadump of 100,000 items from
// memcluster: every key once, in memcached's line format.
func TestMetadumpListsEveryKey(t *testing.T) {
	if !enabled("memcluster") {
		t.Skip("memcluster not in $E2E_BACKENDS")
	}
	t.Parallel()
	const n = 100000
	srv := servertest.StartMemcluster(t, "-m", "256")
	key := func(i int) string { return "meta/dump:" + strconv.Itoa(i) }
	nc := srv.Raw(t).NetConn()
	storeItems(t, nc, n, key, func(i int) int { return i % 300 })
	if _, err := io.WriteString(nc, "lru_crawler metadump all\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReaderSize(nc, 64<<10)
	want := make(map[string]bool, n)
	for i := range n {
		want["meta%2Fdump%3A"+strconv.Itoa(i)] = true // URI-encoded, as memcached writes keys
	}
	var got []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v", len(got), err)
		}
		if line == "END\r\n" {
			break
		}
		f := strings.Fields(line)
		if len(f) != 7 || !strings.HasPrefix(f[0], "key=") || f[1] != "exp=-1" || f[4] != "fetch=no" || !strings.HasSuffix(line, "\n") || strings.HasSuffix(line, "\r\n") {
			t.Fatalf("metadump line %q", line)
		}
		got = append(got, strings.TrimPrefix(f[0], "key="))
	}
	checkKeys(t, got, want)
}
