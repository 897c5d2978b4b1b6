package command

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCacheMemlimit shrinks a filled cache with cache_memlimit, checks that
// it evicts down to the new bound and that stats and stats settings follow,
// then grows it back.
func TestCacheMemlimit(t *testing.T) {
	_, addr := serveForTest(t, Config{MemoryLimit: 64 << 20})
	c, r := dialForTest(t, addr)
	// 60 MB of sets under -race, beside other packages' tests, can take
	// longer than dialForTest's 10 s: the deadline is there to end a hang.
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	value := strings.Repeat("v", 1000)
	fill := func(prefix string, n int) {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, "set %s%d 0 0 1000 noreply\r\n%s\r\n", prefix, i, value)
		}
		roundTrip(t, c, r, b.String()+"version\r\n", 1)
	}
	fill("k", 30000) // about 30 MB
	before, _ := readStats(t, c, r, "stats\r\n")
	if got := roundTrip(t, c, r, "cache_memlimit 8\r\n", 1); got != "OK\r\n" {
		t.Fatalf("cache_memlimit 8: got %q", got)
	}
	after, _ := readStats(t, c, r, "stats\r\n")
	settings, _ := readStats(t, c, r, "stats settings\r\n")
	wantStats(t, "stats", after, map[string]string{"limit_maxbytes": "8388608"})
	wantStats(t, "stats settings", settings, map[string]string{"maxbytes": "8388608"})
	slabs, _ := readStats(t, c, r, "stats slabs\r\n")
	bytesHeld, _ := strconv.ParseInt(after["bytes"], 10, 64)
	malloced, _ := strconv.ParseInt(slabs["total_malloced"], 10, 64)
	if bytesHeld > 8<<20 || malloced > 8<<20 {
		t.Errorf("after cache_memlimit 8: bytes %d, total_malloced %d, want at most %d", bytesHeld, malloced, 8<<20)
	}
	n0, _ := strconv.Atoi(before["curr_items"])
	n1, _ := strconv.Atoi(after["curr_items"])
	if n1 >= n0/3 || after["evictions"] == before["evictions"] {
		t.Errorf("after cache_memlimit 8: %d items (before %d), evictions %s (before %s); want most evicted",
			n1, n0, after["evictions"], before["evictions"])
	}
	// Growing lets the cache hold more again.
	if got := roundTrip(t, c, r, "cache_memlimit 64 noreply\r\nversion\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("cache_memlimit 64 noreply: got %q, want no reply", got)
	}
	fill("g", 30000)
	grown, _ := readStats(t, c, r, "stats\r\n")
	if n2, _ := strconv.Atoi(grown["curr_items"]); n2 < 2*n1 || grown["limit_maxbytes"] != "67108864" {
		t.Errorf("after cache_memlimit 64: %d items (shrunk: %d), limit %s; want more items, limit 67108864",
			n2, n1, grown["limit_maxbytes"])
	}
}

// TestMemoryCommandsSetSettings checks that slabs automove and lru change
// what stats settings shows, as in memcached.
func TestMemoryCommandsSetSettings(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	settings, _ := readStats(t, c, r, "stats settings\r\n")
	wantStats(t, "defaults", settings, map[string]string{
		"slab_automove": "1", "slab_automove_ratio": "0.80", "lru_segmented": "yes",
		"hot_lru_pct": "20", "warm_lru_pct": "40", "hot_max_factor": "0.20", "warm_max_factor": "2.00",
		"temp_lru": "no", "temporary_ttl": "61",
	})
	for _, req := range []string{"slabs automove 2\r\n", "slabs automove ratio 0.5\r\n", "lru mode flat\r\n",
		"lru tune 10 30 0.5 4.25\r\n", "lru temp_ttl 300\r\n"} {
		if got := roundTrip(t, c, r, req, 1); got != "OK\r\n" {
			t.Fatalf("%q: got %q, want OK", req, got)
		}
	}
	settings, _ = readStats(t, c, r, "stats settings\r\n")
	wantStats(t, "after the commands", settings, map[string]string{
		"slab_automove": "2", "slab_automove_ratio": "0.50", "lru_segmented": "no",
		"hot_lru_pct": "10", "warm_lru_pct": "30", "hot_max_factor": "0.50", "warm_max_factor": "4.25",
		"temp_lru": "yes", "temporary_ttl": "300",
	})
	// With a TEMP LRU, stats items shows its (empty) share, as memcached.
	roundTrip(t, c, r, "set a 0 0 1\r\nx\r\n", 1)
	items, _ := readStats(t, c, r, "stats items\r\n")
	wantStats(t, "stats items", items, map[string]string{"items:1:number_temp": "0", "items:1:number_hot": "1"})
}
