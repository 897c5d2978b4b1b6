package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// TestEvictionsPerClass fills two size classes of a small cache at once
// and checks that "stats items" counts evictions in each, in the classes
// memcached counts them in.
func TestEvictionsPerClass(t *testing.T) {
	evicting := func(t *testing.T, name string) []string {
		srv := servertest.Start(t, name, "-m", "8")
		c := srv.Raw(t)
		small, large := strings.Repeat("s", 100), strings.Repeat("l", 2000)
		for i := 0; i < 20000; i += 100 {
			var req strings.Builder
			for j := i; j < i+100; j++ {
				fmt.Fprintf(&req, "set small%d 0 0 %d noreply\r\n%s\r\n", j, len(small), small)
				fmt.Fprintf(&req, "set large%d 0 0 %d noreply\r\n%s\r\n", j, len(large), large)
			}
			c.SendString(req.String())
		}
		c.RoundTrip(t, "mn\r\n", "MN\r\n")
		var classes []string
		for name, v := range statsGroup(t, c, "items") {
			if n, _ := strconv.Atoi(v); strings.HasSuffix(name, ":evicted") && n > 0 {
				classes = append(classes, strings.TrimSuffix(strings.TrimPrefix(name, "items:"), ":evicted"))
			}
		}
		slices.Sort(classes)
		return classes
	}
	want := evicting(t, "memcached")
	if len(want) != 2 {
		t.Fatalf("memcached evicted in classes %v, want two", want)
	}
	if !enabled("memcluster") {
		return
	}
	if got := evicting(t, "memcluster"); !slices.Equal(got, want) {
		t.Errorf("memcluster evicted in classes %v, memcached in %v", got, want)
	}
}

// TestReclaimedAfterFlush checks that an item flush_all invalidated is
// reclaimed, counted under reclaimed and, never read, expired_unfetched, in
// total and in its class, as memcached's LRU maintainer reclaims it; one a
// set replaces at once is not reclaimed but replaced, in both.
func TestReclaimedAfterFlush(t *testing.T) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, name)
			c := srv.Raw(t)
			c.RoundTrip(t, "set r1 0 0 1\r\nx\r\nset r2 0 0 1\r\nx\r\n", "STORED\r\nSTORED\r\n")
			c.RoundTrip(t, "flush_all\r\n", "OK\r\n")
			c.RoundTrip(t, "set r1 0 0 1\r\ny\r\nset r3 0 0 1\r\ny\r\n", "STORED\r\nSTORED\r\n")
			deadline := time.Now().Add(5 * time.Second)
			for {
				st, items := statsGroup(t, c, ""), statsGroup(t, c, "items")
				if st["reclaimed"] == "1" && items["items:1:reclaimed"] == "1" && st["curr_items"] == "2" &&
					st["expired_unfetched"] == "1" && items["items:1:expired_unfetched"] == "1" {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("5 s after the flush: reclaimed %s (class 1: %s), expired_unfetched %s (class 1: %s), curr_items %s; want 1 (1), 1 (1), 2",
						st["reclaimed"], items["items:1:reclaimed"], st["expired_unfetched"], items["items:1:expired_unfetched"], st["curr_items"])
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
