package command

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestStatsBytesIsTheStoresAccounting checks that "stats bytes" and
// "curr_items" are the store's own accounting of what its items hold: they
// rise with every item by at least its key and value, stay put when an
// item is overwritten with a value of the same size, and return to zero
// when every item is deleted, for values kept in the store's pages and
// those too large for them alike.
func TestStatsBytesIsTheStoresAccounting(t *testing.T) {
	srv, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	stat := func(name string) int64 {
		t.Helper()
		m, _ := readStats(t, c, r, "stats\r\n")
		n, err := strconv.ParseInt(m[name], 10, 64)
		if err != nil {
			t.Fatalf("stats %s: %q: %v", name, m[name], err)
		}
		return n
	}
	check := func(what string) {
		t.Helper()
		st := srv.store.Stats()
		if got := stat("bytes"); got != st.Bytes {
			t.Errorf("%s: stats bytes %d, the store counts %d", what, got, st.Bytes)
		}
		if got := stat("curr_items"); got != st.CurrItems {
			t.Errorf("%s: stats curr_items %d, the store counts %d", what, got, st.CurrItems)
		}
	}
	if got := stat("bytes"); got != 0 {
		t.Fatalf("empty: stats bytes %d, want 0", got)
	}
	sizes := []int{0, 1, 100, 1000, 20_000, 300_000}
	for i, size := range sizes {
		key := fmt.Sprintf("key%d", i)
		before := stat("bytes")
		roundTrip(t, c, r, fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, size, strings.Repeat("x", size)), 1)
		grew := stat("bytes") - before
		if grew < int64(len(key)+size) {
			t.Errorf("set of a %d-byte value: bytes grew by %d, less than its key and value", size, grew)
		}
		check(fmt.Sprintf("after the %d-byte value", size))
		roundTrip(t, c, r, fmt.Sprintf("set %s 1 0 %d\r\n%s\r\n", key, size, strings.Repeat("y", size)), 1)
		if got := stat("bytes") - before; got != grew {
			t.Errorf("overwrite of the %d-byte value: bytes grew by %d in all, want %d", size, got, grew)
		}
	}
	if got := stat("curr_items"); got != int64(len(sizes)) {
		t.Errorf("curr_items: got %d, want %d", got, len(sizes))
	}
	for i := range sizes {
		roundTrip(t, c, r, fmt.Sprintf("delete key%d\r\n", i), 1)
	}
	if b, n := stat("bytes"), stat("curr_items"); b != 0 || n != 0 {
		t.Errorf("after deleting every item: bytes %d curr_items %d, want 0 0", b, n)
	}
	check("after the deletes")
}
