package stats

import (
	"fmt"
	"sync"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
)

func TestDetailRecord(t *testing.T) {
	d := Detail{delim: ':'}
	d.RecordGet([]byte("a:1"), true)
	if got := string(d.AppendDump(nil)); got != "END\r\n" {
		t.Fatalf("recorded while off: dump %q", got)
	}
	d.SetEnabled(true)
	d.RecordGet([]byte("ab:1"), true)
	d.RecordGet([]byte("a\x00b:1"), true) // a C string ends at the NUL: no delimiter
	d.RecordSet([]byte("ab:"))
	d.RecordDelete([]byte(":"))
	d.RecordGet([]byte("nodelimiter"), false)
	want := "PREFIX  get 0 hit 0 set 0 del 1\r\nPREFIX ab get 1 hit 1 set 1 del 0\r\nEND\r\n"
	if got := string(d.AppendDump(nil)); got != want {
		t.Errorf("dump:\n got %q\nwant %q", got, want)
	}
	d.clear()
	if got := string(d.AppendDump(nil)); got != "END\r\n" || !d.Enabled() {
		t.Errorf("after clear: dump %q, enabled %v; want END, still enabled", got, d.Enabled())
	}
}

func TestDetailRecordDoesNotAllocate(t *testing.T) {
	var d Detail
	key := []byte("prefix:key")
	testutil.NoAllocs(t, "RecordGet while off", 100, func() { d.RecordGet(key, true) })
	d.SetEnabled(true)
	d.RecordGet(key, true)
	testutil.NoAllocs(t, "RecordGet of a known prefix", 100, func() { d.RecordGet(key, true) })
}

func TestDetailConcurrent(t *testing.T) {
	var d Detail
	d.SetEnabled(true)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				key := []byte(fmt.Sprintf("p%d:%d", i%10, g))
				switch i % 4 {
				case 0:
					d.RecordGet(key, i%3 == 0)
				case 1:
					d.RecordSet(key)
				case 2:
					d.RecordDelete(key)
				default:
					d.AppendDump(nil)
					if g == 0 && i%100 == 3 {
						d.clear()
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestMurmur3(t *testing.T) {
	// MurmurHash3_x86_32 with seed 0, as memcached's hash.
	for in, want := range map[string]uint32{
		"":      0,
		"a":     0x3c2569b2,
		"abc":   0xb3dd93fa,
		"abcd":  0x43ed676a,
		"hello": 0x248bfa47,
		"The quick brown fox jumps over the lazy dog": 0x2e4ff723,
	} {
		if got := murmur3([]byte(in)); got != want {
			t.Errorf("murmur3(%q) = %#x, want %#x", in, got, want)
		}
	}
}
