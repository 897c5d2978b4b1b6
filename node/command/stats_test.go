package command

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
)

// readStats sends req and reads the STAT block that answers it, up to END.
func readStats(t *testing.T, c net.Conn, r *bufio.Reader, req string) (map[string]string, []string) {
	t.Helper()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var names []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the reply to %q: %v", req, err)
		}
		if line == "END\r\n" {
			return m, names
		}
		name, value, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "STAT "), "\r\n"), " ")
		if !strings.HasPrefix(line, "STAT ") || !strings.HasSuffix(line, "\r\n") || !ok {
			t.Fatalf("reply to %q: got line %q, want STAT <name> <value> or END", req, line)
		}
		if _, dup := m[name]; dup {
			t.Errorf("reply to %q: %s printed twice", req, name)
		}
		m[name] = value
		names = append(names, name)
	}
}

// wantStats checks the values of the named stats.
func wantStats(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: %s missing, want %s", what, name, w)
		} else if g != w {
			t.Errorf("%s: %s = %s, want %s", what, name, g, w)
		}
	}
}

func TestStatsReset(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	roundTrip(t, c, r, "stats detail on\r\n", 1)
	roundTrip(t, c, r, "set a:1 0 0 1\r\n1\r\nset b 0 0 1\r\nx\r\n", 2)
	roundTrip(t, c, r, "get a:1 b c\r\n", 5)
	roundTrip(t, c, r, "incr a:1 1\r\ndecr a:1 1\r\nincr c 1\r\n", 3)
	roundTrip(t, c, r, "touch b 10\r\ndelete c\r\n", 2)
	roundTrip(t, c, r, "cas b 0 0 1 1\r\ny\r\n", 1)

	before, _ := readStats(t, c, r, "stats\r\n")
	wantStats(t, "before reset", before, map[string]string{
		"cmd_get": "3", "get_hits": "2", "get_misses": "1", "cmd_set": "3",
		"incr_hits": "1", "incr_misses": "1", "decr_hits": "1", "touch_hits": "1",
		"delete_misses": "1", "cas_badval": "1", "curr_items": "2", "total_items": "2",
	})

	if got := roundTrip(t, c, r, "stats reset\r\n", 1); got != "RESET\r\n" {
		t.Fatalf("stats reset: got %q, want RESET", got)
	}
	after, _ := readStats(t, c, r, "stats\r\n")
	zero := map[string]string{}
	for _, name := range []string{"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits", "get_misses",
		"get_expired", "get_flushed", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
		"decr_hits", "decr_misses", "cas_hits", "cas_misses", "cas_badval", "touch_hits", "touch_misses",
		"total_items", "evictions", "reclaimed", "expired_unfetched", "evicted_unfetched",
		"total_connections", "rejected_connections", "store_too_large", "store_no_memory"} {
		zero[name] = "0"
	}
	wantStats(t, "after reset", after, zero)
	// Gauges are kept; the request just read was counted.
	wantStats(t, "after reset", after, map[string]string{
		"curr_items": "2", "bytes": before["bytes"], "bytes_read": fmt.Sprint(len("stats\r\n")),
		"limit_maxbytes": before["limit_maxbytes"],
	})
	if got := roundTrip(t, c, r, "stats detail dump\r\n", 1); got != "END\r\n" {
		t.Errorf("stats detail dump after reset: got %q, want END (prefixes forgotten)", got)
	}
	settings, _ := readStats(t, c, r, "stats settings\r\n")
	wantStats(t, "settings after reset", settings, map[string]string{"detail_enabled": "yes"})
	items, _ := readStats(t, c, r, "stats items\r\n")
	wantStats(t, "items after reset", items, map[string]string{"items:1:number": "2"})

	// Counting goes on from zero.
	roundTrip(t, c, r, "set d 0 0 1\r\nx\r\n", 1)
	again, _ := readStats(t, c, r, "stats\r\n")
	wantStats(t, "after one more set", again, map[string]string{"cmd_set": "1", "total_items": "1", "curr_items": "3"})
}

func TestStatsDetail(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	for _, tc := range []struct{ req, want string }{
		{"stats detail\r\n", "CLIENT_ERROR usage: stats detail on|off|dump\r\n"},
		{"stats detail bogus\r\n", "CLIENT_ERROR usage: stats detail on|off|dump\r\n"},
		{"stats detail dump\r\n", "END\r\n"},
		// Off: nothing is recorded.
		{"set a:0 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"stats detail dump\r\n", "END\r\n"},
		{"stats detail on extra\r\n", "OK\r\n"},
		{"set a:1 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"set nodelim 0 0 1\r\nx\r\n", "STORED\r\n"},
		{"get a:1 a:2 nodelim c:d:e\r\n", "VALUE a:1 0 1\r\nx\r\nVALUE nodelim 0 1\r\nx\r\nEND\r\n"},
		{"gat 10 q:1\r\n", "END\r\n"},
		{"delete a:1\r\ndelete a:9\r\n", "DELETED\r\nNOT_FOUND\r\n"},
		{"add a:3 0 0 1\r\nx\r\nadd a:3 0 0 1\r\nx\r\n", "STORED\r\nNOT_STORED\r\n"},
		{"cas t:9 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"},
		{"set :e 0 0 1\r\nx\r\nget :e\r\n", "STORED\r\nVALUE :e 0 1\r\nx\r\nEND\r\n"},
		{"incr x:1 1\r\ntouch a:3 10\r\n", "NOT_FOUND\r\nTOUCHED\r\n"}, // not counted
		{fmt.Sprintf("set big:1 0 0 %d\r\n%s\r\n", 2<<20, strings.Repeat("z", 2<<20)), "SERVER_ERROR object too large for cache\r\n"},
		// memcached's order: by murmur3(prefix) % 256, newest first.
		{"stats detail dump\r\n", "PREFIX  get 1 hit 1 set 1 del 0\r\n" +
			"PREFIX t get 0 hit 0 set 1 del 0\r\n" +
			"PREFIX c get 1 hit 0 set 0 del 0\r\n" +
			"PREFIX a get 2 hit 1 set 3 del 2\r\n" +
			"PREFIX big get 0 hit 0 set 1 del 0\r\n" +
			"PREFIX q get 1 hit 0 set 0 del 0\r\n" +
			"END\r\n"},
		{"stats detail off\r\n", "OK\r\n"},
		{"get a:3\r\n", "VALUE a:3 0 1\r\nx\r\nEND\r\n"},
		{"stats detail dump extra\r\n", "PREFIX  get 1 hit 1 set 1 del 0\r\n" +
			"PREFIX t get 0 hit 0 set 1 del 0\r\n" +
			"PREFIX c get 1 hit 0 set 0 del 0\r\n" +
			"PREFIX a get 2 hit 1 set 3 del 2\r\n" +
			"PREFIX big get 0 hit 0 set 1 del 0\r\n" +
			"PREFIX q get 1 hit 0 set 0 del 0\r\n" +
			"END\r\n"},
	} {
		if got := roundTrip(t, c, r, tc.req, strings.Count(tc.want, "\n")); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.req, got, tc.want)
		}
	}
}

func TestStatsItemsAndSlabs(t *testing.T) {
	srv, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	if items, _ := readStats(t, c, r, "stats items\r\n"); len(items) != 0 {
		t.Errorf("stats items of an empty cache: got %v, want nothing", items)
	}
	slabs, _ := readStats(t, c, r, "stats slabs\r\n")
	wantStats(t, "empty slabs", slabs, map[string]string{"active_slabs": "0", "total_malloced": "0"})
	if len(slabs) != 2 {
		t.Errorf("stats slabs of an empty cache: got %v, want only the totals", slabs)
	}

	// memcached's sizes: 48-byte header, key and NUL, value and "\r\n",
	// 8 bytes of CAS unique, 4 of non-zero flags.
	roundTrip(t, c, r, "set a 0 0 1\r\nx\r\n", 1)                                                       // 61: class 1
	roundTrip(t, c, r, "set b 0 0 36\r\n"+strings.Repeat("y", 36)+"\r\n", 1)                            // 96: class 1
	roundTrip(t, c, r, "set c 1 0 33\r\n"+strings.Repeat("y", 33)+"\r\n", 1)                            // 97: class 2
	roundTrip(t, c, r, "set d 0 0 1000\r\n"+strings.Repeat("y", 1000)+"\r\n", 1)                        // 1060: class 12
	roundTrip(t, c, r, fmt.Sprintf("set e 0 0 %d\r\n%s\r\n", 600<<10, strings.Repeat("y", 600<<10)), 1) // class 39
	items, names := readStats(t, c, r, "stats items\r\n")
	wantStats(t, "items", items, map[string]string{
		"items:1:number": "2", "items:1:mem_requested": "157",
		"items:2:number": "1", "items:2:mem_requested": "97",
		"items:12:number": "1", "items:12:mem_requested": "1060",
		"items:39:number": "1", "items:39:mem_requested": fmt.Sprint(48 + 2 + 600<<10 + 2 + 8),
		"items:1:evicted": "0", "items:1:reclaimed": "0",
		"items:1:expired_unfetched": "0", "items:1:evicted_unfetched": "0",
	})
	if len(items) != 4*28 {
		t.Errorf("stats items: got %d stats %v, want memcached's 28 for each of 4 classes", len(items), names)
	}
	if names[0] != "items:1:number" || names[28] != "items:2:number" || names[56] != "items:12:number" {
		t.Errorf("stats items: got order %v, want classes ascending, number first", names)
	}

	slabs, _ = readStats(t, c, r, "stats slabs\r\n")
	wantStats(t, "slabs", slabs, map[string]string{
		"1:chunk_size": "96", "1:used_chunks": "2",
		"2:chunk_size": "120", "2:used_chunks": "1",
		"12:chunk_size": "1184", "12:used_chunks": "1",
		"39:chunk_size": "524288", "39:used_chunks": "1",
		"active_slabs": "4",
	})
	// total_malloced is the memory held for items: the pages and the
	// values too large for a page, at least the bytes of the items.
	st := srv.store.Stats()
	if want := fmt.Sprint(st.PageBytes + st.ExternBytes); slabs["total_malloced"] != want || st.PageBytes+st.ExternBytes < st.Bytes {
		t.Errorf("total_malloced %s, want %s (pages %d, large values %d), at least bytes %d",
			slabs["total_malloced"], want, st.PageBytes, st.ExternBytes, st.Bytes)
	}

	// A class emptied by deletes leaves stats items, and stays in stats
	// slabs, as in memcached, whose class keeps its page.
	roundTrip(t, c, r, "delete d\r\n", 1)
	items, _ = readStats(t, c, r, "stats items\r\n")
	if _, ok := items["items:12:number"]; ok {
		t.Errorf("stats items after the class's only item is deleted: still lists class 12")
	}
	slabs, _ = readStats(t, c, r, "stats slabs\r\n")
	wantStats(t, "slabs after the delete", slabs, map[string]string{"12:used_chunks": "0", "12:delete_hits": "1", "active_slabs": "4"})
}

func TestStatsNoCASClasses(t *testing.T) {
	_, addr := serveForTest(t, Config{NoCAS: true})
	c, r := dialForTest(t, addr)
	roundTrip(t, c, r, "set b 0 0 44\r\n"+strings.Repeat("y", 44)+"\r\n", 1) // 96 without CAS: class 1
	roundTrip(t, c, r, "set c 0 0 45\r\n"+strings.Repeat("y", 45)+"\r\n", 1) // 97: class 2
	items, _ := readStats(t, c, r, "stats items\r\n")
	wantStats(t, "items with -C", items, map[string]string{
		"items:1:number": "1", "items:1:mem_requested": "96",
		"items:2:number": "1", "items:2:mem_requested": "97",
	})
}

func TestPrefixDelimiterTurnsDetailOn(t *testing.T) {
	_, addr := serveForTest(t, Config{PrefixDelimiter: '-'})
	c, r := dialForTest(t, addr)
	roundTrip(t, c, r, "set user-1 0 0 1\r\nx\r\nget user-1 user:2\r\n", 4)
	got := roundTrip(t, c, r, "stats detail dump\r\n", 2)
	if want := "PREFIX user get 1 hit 1 set 1 del 0\r\nEND\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
