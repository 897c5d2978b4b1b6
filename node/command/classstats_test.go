package command

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

// slabCounters are the command counters of one class in "stats slabs".
var slabCounters = []string{"get_hits", "cmd_set", "delete_hits", "incr_hits", "decr_hits", "cas_hits", "cas_badval", "touch_hits"}

// TestPerClassCountersEveryProtocol drives items of two classes through
// the text, meta and binary protocols and checks that "stats slabs" counts
// each command in the class memcached counts it in (the item read, or the
// item a storage command would store), and that "stats" totals them.
func TestPerClassCountersEveryProtocol(t *testing.T) {
	_, addr := binStartNode(t, Config{})
	c, r := dialForTest(t, addr)
	big := strings.Repeat("b", 500) // class 9 with a 2-byte key; 1-byte values are class 1

	// Text.
	roundTrip(t, c, r, "set s1 0 0 1\r\nx\r\nset b1 0 0 500\r\n"+big+"\r\n", 2)
	roundTrip(t, c, r, "get s1 b1 nokey\r\n", 5)
	gets := roundTrip(t, c, r, "gets s1\r\n", 3)
	f := strings.Fields(strings.SplitN(gets, "\r\n", 2)[0])
	if len(f) != 5 {
		t.Fatalf("gets: got %q", gets)
	}
	roundTrip(t, c, r, "gat 100 b1\r\n", 3)
	roundTrip(t, c, r, "touch s1 100\r\n", 1)
	roundTrip(t, c, r, "set n1 0 0 2\r\n10\r\nincr n1 5\r\ndecr n1 1\r\n", 3)
	if got := roundTrip(t, c, r, "cas s1 0 0 1 "+f[4]+"\r\ny\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("cas: got %q", got)
	}
	if got := roundTrip(t, c, r, "cas b1 0 0 1 1\r\nz\r\n", 1); got != "EXISTS\r\n" {
		t.Fatalf("cas mismatch: got %q", got)
	}
	roundTrip(t, c, r, "delete b1\r\n", 1)

	// Meta.
	roundTrip(t, c, r, "ms m1 500\r\n"+big+"\r\n", 1)
	roundTrip(t, c, r, "mg m1 v\r\n", 2)
	roundTrip(t, c, r, "mg m1 T30\r\n", 1)
	if got := roundTrip(t, c, r, "ms s1 1 C1\r\nq\r\n", 1); got != "EX\r\n" {
		t.Fatalf("ms with a stale CAS: got %q", got)
	}
	roundTrip(t, c, r, "md m1\r\nma n1\r\nma n1 MD\r\n", 3)

	// Binary.
	b := binDial(t, addr)
	se := binStorageExtras(0, 0)
	for _, p := range [][]byte{
		binReq(protocol.OpSet, 0, 0, se, "bb", big),
		binReq(protocol.OpGet, 0, 0, "", "bb", ""),
		binReq(protocol.OpTouch, 0, 0, binExptimeExtras(100), "bb", ""),
		binReq(protocol.OpGAT, 0, 0, binExptimeExtras(100), "bb", ""),
		binReq(protocol.OpIncrement, 0, 0, binCounterExtras(1, 0, 0), "n1", ""),
		binReq(protocol.OpDecrement, 0, 0, binCounterExtras(1, 0, 0), "n1", ""),
		binReq(protocol.OpSet, 0, 1<<40, se, "bb", "x"), // a CAS mismatch
		binReq(protocol.OpAppend, 0, 0, "", "bb", "x"),
		binReq(protocol.OpDelete, 0, 0, "", "bb", ""),
	} {
		b.run(binStep{send: p})
	}

	slabs, _ := readStats(t, c, r, "stats slabs\r\n")
	want := map[string]string{
		// class 1: get s1, gets s1; set s1, n1, cas s1, cas b1's "z",
		// ms s1, binary set bb's "x", append bb's "x"; incr/decr n1 in
		// each protocol; the cas of s1; ms s1's mismatch; touch s1.
		"1:get_hits": "2", "1:cmd_set": "7", "1:delete_hits": "0", "1:incr_hits": "3", "1:decr_hits": "3",
		"1:cas_hits": "1", "1:cas_badval": "1", "1:touch_hits": "1",
		// class 9: get b1, mg m1, binary get bb; set b1, ms m1, binary
		// set bb; delete b1, md m1, binary delete bb; the mismatches of
		// cas b1 and binary set bb; gat b1, mg T, binary touch and gat.
		"9:get_hits": "3", "9:cmd_set": "3", "9:delete_hits": "3", "9:incr_hits": "0", "9:decr_hits": "0",
		"9:cas_hits": "0", "9:cas_badval": "2", "9:touch_hits": "4",
		"9:chunk_size": "600", "9:chunks_per_page": "1747",
	}
	wantStats(t, "stats slabs", slabs, want)

	// The totals are the classes' sums.
	stats, _ := readStats(t, c, r, "stats\r\n")
	for _, name := range slabCounters {
		var sum uint64
		for k, v := range slabs {
			if strings.HasSuffix(k, ":"+name) {
				n, _ := strconv.ParseUint(v, 10, 64)
				sum += n
			}
		}
		if got := stats[name]; got != strconv.FormatUint(sum, 10) {
			t.Errorf("stats %s = %s, want the classes' sum %d", name, got, sum)
		}
	}
	wantStats(t, "stats", stats, map[string]string{"get_hits": "5", "cmd_set": "10", "touch_hits": "5"})

	// stats items counts hits by queue: all of them in the small queue
	// (HOT) here, as nothing was evicted.
	items, _ := readStats(t, c, r, "stats items\r\n")
	wantStats(t, "stats items", items, map[string]string{
		"items:1:hits_to_hot": "2", "items:1:hits_to_warm": "0", "items:1:hits_to_cold": "0", "items:1:hits_to_temp": "0",
	})
}

// TestReclaimedAfterFlush stores items in two classes, flushes them and
// stores again: the flushed items are reclaimed, and reclaimed counts
// them, in total and in their classes, as memcached's does.
func TestReclaimedAfterFlush(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	big := strings.Repeat("b", 500)
	for i := range 5 {
		roundTrip(t, c, r, fmt.Sprintf("set s%d 0 0 1\r\nx\r\nset b%d 0 0 500\r\n%s\r\n", i, i, big), 2)
	}
	roundTrip(t, c, r, "flush_all\r\n", 1)
	roundTrip(t, c, r, "set after 0 0 1\r\nx\r\n", 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		stats, _ := readStats(t, c, r, "stats\r\n")
		if stats["reclaimed"] == "10" {
			wantStats(t, "stats", stats, map[string]string{"curr_items": "1", "expired_unfetched": "10"})
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reclaimed: got %s within 10s, want 10 (stats %v)", stats["reclaimed"], stats)
		}
		time.Sleep(10 * time.Millisecond)
	}
	items, _ := readStats(t, c, r, "stats items\r\n")
	wantStats(t, "stats items", items, map[string]string{"items:1:reclaimed": "5", "items:1:number": "1"})
	if _, ok := items["items:9:number"]; ok {
		t.Errorf("stats items: class 9 still listed after its items were reclaimed")
	}
}

// TestEvictedPerClass fills a small cache with items of two classes until
// both evict, and checks that stats items counts each class's evictions,
// with the details memcached gives, and that they sum to evictions.
func TestEvictedPerClass(t *testing.T) {
	_, addr := serveForTest(t, Config{MemoryLimit: 2 << 20})
	c, r := dialForTest(t, addr)
	small := strings.Repeat("a", 100)
	big := strings.Repeat("b", 2000)
	var batch bytes.Buffer
	for i := range 4000 {
		fmt.Fprintf(&batch, "set a%d 0 100 100 noreply\r\n%s\r\n", i, small)
		if i%4 == 0 {
			fmt.Fprintf(&batch, "set b%d 0 0 2000 noreply\r\n%s\r\n", i, big)
		}
	}
	roundTrip(t, c, r, batch.String()+"version\r\n", 1)
	items, _ := readStats(t, c, r, "stats items\r\n")
	stats, _ := readStats(t, c, r, "stats\r\n")
	var sum uint64
	evicting := map[string]bool{}
	for k, v := range items {
		if strings.HasSuffix(k, ":evicted") {
			n, _ := strconv.ParseUint(v, 10, 64)
			sum += n
			if n > 0 {
				evicting[strings.TrimSuffix(k, ":evicted")] = true
			}
		}
	}
	if len(evicting) < 2 {
		t.Fatalf("classes evicting: got %v, want two (stats items %v)", evicting, items)
	}
	if got := stats["evictions"]; got != strconv.FormatUint(sum, 10) {
		t.Errorf("evictions = %s, want the classes' sum %d", got, sum)
	}
	for class := range evicting {
		ev, _ := strconv.ParseUint(items[class+":evicted"], 10, 64)
		unfetched, _ := strconv.ParseUint(items[class+":evicted_unfetched"], 10, 64)
		if unfetched != ev {
			t.Errorf("%s: evicted %d, evicted_unfetched %d; want all unfetched (none was read)", class, ev, unfetched)
		}
		nonzero := items[class+":evicted_nonzero"]
		if class == "items:4" && nonzero != items[class+":evicted"] { // the small items (class 4) have a TTL
			t.Errorf("%s: evicted_nonzero %s, want %s", class, nonzero, items[class+":evicted"])
		}
		if class != "items:4" && nonzero != "0" {
			t.Errorf("%s: evicted_nonzero %s, want 0", class, nonzero)
		}
		if items[class+":direct_reclaims"] == "0" {
			t.Errorf("%s: direct_reclaims 0, want the pages its writes emptied", class)
		}
	}
}
