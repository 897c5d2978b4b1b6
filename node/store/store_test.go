package store

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/memcluster/memcluster/internal/testutil"
)

// start is the fake clock's first second.
const start = 1_700_000_000

// clock is a fake Config.Now that tests move by hand.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(start)
	return c
}

func (c *clock) Now() int64      { return c.t.Load() }
func (c *clock) Advance(d int64) { c.t.Add(d) }

// newTestStore returns a store of n shards on a fake clock, without the
// background reclaimer, closed when the test ends.
func newTestStore(t testing.TB, cfg Config, n int) (*Store, *clock) {
	t.Helper()
	c := newClock()
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	s := newStore(cfg, n, 0, false)
	t.Cleanup(s.Close)
	return s, c
}

// newPagedStore returns a store of one shard with pages of minPageSize
// bytes and memory for its first index and pages pages, on a fake clock,
// without the background reclaimer.
func newPagedStore(t testing.TB, cfg Config, pages int) (*Store, *clock) {
	t.Helper()
	c := newClock()
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	cfg.MaxBytes = minSlots*slotSize + int64(ghostLen(minSlots))*2 + int64(pages)*minPageSize
	s := newStore(cfg, 1, minPageSize, false)
	t.Cleanup(s.Close)
	return s, c
}

// pagedKey is the key of item i in a paged store's tests, and pagedValue a
// value that makes its record pagedRecord bytes long: a 1 KiB page holds
// 8 of them.
func pagedKey(i int) []byte { return fmt.Appendf(nil, "k%02d", i) }

const pagedRecord = 128

var pagedValue = bytes.Repeat([]byte("v"), pagedRecord-hdrSize-3)

func set(t testing.TB, s *Store, key, value string) uint64 {
	t.Helper()
	st, cas := s.Set(ModeSet, []byte(key), []byte(value), 0, 0, 0)
	if st != OK {
		t.Fatalf("Set(%q): got %v, want %v", key, st, OK)
	}
	return cas
}

func get(s *Store, key string) (string, Meta, Lookup) {
	v, m, lk := s.Get([]byte(key), nil)
	return string(v), m, lk
}

// checkInvariants verifies the shards' structures and accounting: every
// page is in one queue, the free list or released; every live record is
// indexed where it is and counted in its class; Store.used is the pages,
// tables and external values to the byte. The store must be quiescent.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	var bytes, used int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.with(func() { // unlocked by a defer when a check fails and ends the test
			counted := make([]classCounters, len(sh.classes))
			held := make(map[int32]bool)
			live := 0
			var extern int64
			for q := range sh.queues {
				n, last := 0, int32(-1)
				for p := sh.queues[q].tail; p >= 0; p = sh.meta[p].next {
					if held[p] {
						t.Fatalf("shard %d: page %d listed twice", i, p)
					}
					held[p], n, last = true, n+1, p
					m := sh.meta[p]
					if int(m.queue) != q || sh.pages[p] == nil || int(m.used) > s.pageSize {
						t.Fatalf("shard %d: page %d in queue %d has %+v", i, p, q, m)
					}
					var dead int32
					for off := 0; off < int(m.used); {
						rec := sh.pages[p][off:]
						ln := lenOf(rec)
						loc := uint64(p)<<pageShift | uint64(off)
						off += ln
						if rec[offBits]&bitDead != 0 {
							dead += int32(ln)
							continue
						}
						h := readHdrCAS(rec)
						key := keyOf(rec)
						if _, at, ok := sh.lookupSlot(xxhash.Sum64(key), key); !ok || at != loc {
							t.Fatalf("shard %d: record %q at %x indexed at %x (%v)", i, key, loc, at, ok)
						}
						if h.bits&bitExternal != 0 {
							if v := sh.valueOf(rec, &h); v == nil || len(v) != h.valueLen {
								t.Fatalf("shard %d: record %q: external value of %d bytes, want %d", i, key, len(v), h.valueLen)
							}
							used += int64(h.valueLen)
							extern += int64(h.valueLen)
						}
						size := s.limitSize(h.keyLen, h.valueLen, h.flags)
						c := &counted[s.classOf(size)]
						c.items++
						c.queued[q]++
						c.bytes += charge(h.keyLen, h.valueLen, h.bits)
						c.requested += int64(size)
						bytes += charge(h.keyLen, h.valueLen, h.bits)
						live++
					}
					if dead != m.dead {
						t.Fatalf("shard %d: page %d has %d dead bytes, meta says %d", i, p, dead, m.dead)
					}
				}
				if n != sh.queues[q].pages || last != sh.queues[q].head {
					t.Fatalf("shard %d: queue %d lists %d pages to %d, says %+v", i, q, n, last, sh.queues[q])
				}
			}
			for _, p := range sh.free {
				if held[p] || sh.meta[p].queue != -1 || sh.pages[p] == nil {
					t.Fatalf("shard %d: free page %d also held or marked %+v", i, p, sh.meta[p])
				}
				held[p] = true
			}
			for _, p := range sh.released {
				if held[p] || sh.pages[p] != nil {
					t.Fatalf("shard %d: released page %d still held", i, p)
				}
			}
			if len(held)+len(sh.released) != len(sh.pages) {
				t.Fatalf("shard %d: %d pages held, %d released, of %d", i, len(held), len(sh.released), len(sh.pages))
			}
			slots := 0
			for _, v := range sh.slots {
				if v != 0 {
					slots++
				}
			}
			if slots != live || sh.count != live {
				t.Fatalf("shard %d: %d live records, %d slots used, count %d", i, live, slots, sh.count)
			}
			for j := range counted {
				if c, g := counted[j], sh.classes[j]; c.items != g.items || c.queued != g.queued || c.bytes != g.bytes || c.requested != g.requested {
					t.Fatalf("shard %d class %d: counted %d items (%v by queue) %d bytes %d requested, gauges say %d (%v), %d, %d", i, j,
						c.items, c.queued, c.bytes, c.requested, g.items, g.queued, g.bytes, g.requested)
				}
			}
			if extern != sh.externBytes {
				t.Fatalf("shard %d: external values hold %d bytes, externBytes says %d", i, extern, sh.externBytes)
			}
			used += int64(len(held))*int64(s.pageSize) + sh.indexBytes()
		})
	}
	if got := s.used.Load(); got != used {
		t.Fatalf("used: got %d, want %d (pages, tables and external values)", got, used)
	}
	if got := s.Stats().Bytes; got != bytes {
		t.Fatalf("Stats().Bytes: got %d, want %d", got, bytes)
	}
	if max := s.maxBytes.Load(); used > max {
		t.Fatalf("used %d exceeds MaxBytes %d", used, max)
	}
}

func TestShardCount(t *testing.T) {
	for _, tc := range []struct {
		maxBytes int64
		procs    int
		want     int
	}{
		{1 << 30, 1, 4},
		{1 << 30, 2, 8},
		{1 << 30, 3, 16}, // rounded up to a power of two
		{1 << 30, 16, 64},
		{1 << 30, 1000, 64}, // at most maxShards
		{0, 1, 4},           // the default size
		{0, 64, 64},
		{512 << 10, 8, 2}, // a shard per minShardBytes
		{1, 8, 1},
		{1 << 30, 0, 4}, // no processor count: as one
	} {
		if got := shardCount(tc.maxBytes, tc.procs); got != tc.want {
			t.Errorf("shardCount(%d, %d) = %d, want %d", tc.maxBytes, tc.procs, got, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	if got := s.Stats().LimitMaxBytes; got != DefaultMaxBytes {
		t.Errorf("LimitMaxBytes: got %d, want %d", got, DefaultMaxBytes)
	}
	if s.itemMax != DefaultItemSizeMax {
		t.Errorf("itemMax: got %d, want %d", s.itemMax, DefaultItemSizeMax)
	}
	if want := shardCount(DefaultMaxBytes, runtime.GOMAXPROCS(0)); len(s.shards) != want {
		t.Errorf("shards: got %d, want %d", len(s.shards), want)
	}
	if st, _ := s.Set(ModeSet, []byte("k"), []byte("v"), 0, 0, 0); st != OK {
		t.Errorf("Set: got %v, want %v", st, OK)
	}
	if v, _, lk := get(s, "k"); lk != Hit || v != "v" {
		t.Errorf("Get: got %q %v, want %q %v", v, lk, "v", Hit)
	}
	s.Close() // a second Close is harmless
}

func TestSetModes(t *testing.T) {
	tests := []struct {
		name    string
		present bool // "k" holds "old" with flags 1 before the call
		mode    Mode
		cas     func(old uint64) uint64
		want    Status
		value   string // "k" after the call; "" for a miss
		flags   uint32
	}{
		{"set new", false, ModeSet, nil, OK, "new", 2},
		{"set present", true, ModeSet, nil, OK, "new", 2},
		{"add new", false, ModeAdd, nil, OK, "new", 2},
		{"add present", true, ModeAdd, nil, NotStored, "old", 1},
		{"replace new", false, ModeReplace, nil, NotStored, "", 0},
		{"replace present", true, ModeReplace, nil, OK, "new", 2},
		{"append new", false, ModeAppend, nil, NotStored, "", 0},
		{"append present", true, ModeAppend, nil, OK, "oldnew", 1},
		{"prepend new", false, ModePrepend, nil, NotStored, "", 0},
		{"prepend present", true, ModePrepend, nil, OK, "newold", 1},
		{"cas new", false, ModeCAS, func(uint64) uint64 { return 1 }, NotFound, "", 0},
		{"cas match", true, ModeCAS, func(c uint64) uint64 { return c }, OK, "new", 2},
		{"cas mismatch", true, ModeCAS, func(c uint64) uint64 { return c + 1 }, Exists, "old", 1},
		{"cas zero", true, ModeCAS, func(uint64) uint64 { return 0 }, Exists, "old", 1},
		{"set cas match", true, ModeSet, func(c uint64) uint64 { return c }, OK, "new", 2},
		{"set cas mismatch", true, ModeSet, func(c uint64) uint64 { return c + 1 }, Exists, "old", 1},
		{"set cas missing", false, ModeSet, func(uint64) uint64 { return 7 }, NotFound, "", 0},
		{"replace cas match", true, ModeReplace, func(c uint64) uint64 { return c }, OK, "new", 2},
		{"replace cas mismatch", true, ModeReplace, func(c uint64) uint64 { return c + 1 }, Exists, "old", 1},
		{"replace cas missing", false, ModeReplace, func(uint64) uint64 { return 7 }, NotFound, "", 0},
		{"append cas match", true, ModeAppend, func(c uint64) uint64 { return c }, OK, "oldnew", 1},
		{"append cas mismatch", true, ModeAppend, func(c uint64) uint64 { return c + 1 }, Exists, "old", 1},
		{"append cas missing", false, ModeAppend, func(uint64) uint64 { return 7 }, NotStored, "", 0},
		{"prepend cas mismatch", true, ModePrepend, func(c uint64) uint64 { return c + 1 }, Exists, "old", 1},
		{"add cas ignored new", false, ModeAdd, func(uint64) uint64 { return 7 }, OK, "new", 2},
		{"add cas ignored present", true, ModeAdd, func(c uint64) uint64 { return c }, NotStored, "old", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{}, 4)
			var old uint64
			if tt.present {
				_, old = s.Set(ModeSet, []byte("k"), []byte("old"), 1, 0, 0)
			}
			var cas uint64
			if tt.cas != nil {
				cas = tt.cas(old)
			}
			st, newCAS := s.Set(tt.mode, []byte("k"), []byte("new"), 2, 0, cas)
			if st != tt.want {
				t.Fatalf("status: got %v, want %v", st, tt.want)
			}
			v, m, lk := get(s, "k")
			if tt.value == "" {
				if lk != Miss {
					t.Fatalf("Get: got %q %v, want %v", v, lk, Miss)
				}
				return
			}
			if lk != Hit || v != tt.value || m.Flags != tt.flags {
				t.Fatalf("Get: got %q flags %d %v, want %q flags %d %v", v, m.Flags, lk, tt.value, tt.flags, Hit)
			}
			if st == OK {
				if newCAS == 0 || newCAS <= old || m.CAS != newCAS {
					t.Fatalf("CAS: got %d (Get says %d), want a new unique > %d", newCAS, m.CAS, old)
				}
			} else if newCAS != 0 || m.CAS != old {
				t.Fatalf("CAS after failure: got %d (Get says %d), want 0 (%d)", newCAS, m.CAS, old)
			}
			checkInvariants(t, s)
		})
	}
}

func TestCASUniques(t *testing.T) {
	s, c := newTestStore(t, Config{}, 4)
	k := []byte("k")
	last := set(t, s, "k", "1")
	step := func(name string, mutates bool) {
		t.Helper()
		_, m, lk := s.Get(k, nil)
		if lk != Hit {
			t.Fatalf("%s: Get got %v, want %v", name, lk, Hit)
		}
		if mutates && m.CAS <= last {
			t.Fatalf("%s: CAS got %d, want > %d", name, m.CAS, last)
		}
		if !mutates && m.CAS != last {
			t.Fatalf("%s: CAS got %d, want %d (unchanged)", name, m.CAS, last)
		}
		last = m.CAS
	}
	s.Touch(k, start+100)
	step("touch", false)
	s.GetAndTouch(k, start+200, nil)
	step("gat", false)
	s.Get(k, nil)
	step("get", false)
	s.Arith(k, true, 1, 0, false, 0, 0)
	step("incr in place", true)
	s.Arith(k, true, 100, 0, false, 0, 0)
	step("incr longer", true)
	s.Set(ModeAppend, k, []byte("0"), 0, 0, 0)
	step("append", true)
	s.Set(ModePrepend, k, []byte("1"), 0, 0, 0)
	step("prepend", true)
	s.Set(ModeReplace, k, []byte("2"), 0, 0, 0)
	step("replace", true)
	s.Set(ModeCAS, k, []byte("3"), 0, 0, last)
	step("cas", true)
	c.Advance(1)
	// A set of another key takes the next unique: one counter for all.
	if _, cas := s.Set(ModeSet, []byte("other"), []byte("x"), 0, 0, 0); cas != last+1 {
		t.Errorf("next unique: got %d, want %d", cas, last+1)
	}
}

func TestNoCAS(t *testing.T) {
	s, _ := newTestStore(t, Config{NoCAS: true}, 4)
	k := []byte("k")
	if st, cas := s.Set(ModeSet, k, []byte("1"), 0, 0, 0); st != OK || cas != 0 {
		t.Fatalf("Set: got %v %d, want %v 0", st, cas, OK)
	}
	if _, m, _ := s.Get(k, nil); m.CAS != 0 {
		t.Errorf("Meta.CAS: got %d, want 0", m.CAS)
	}
	tests := []struct {
		name string
		do   func() Status
		want Status
	}{
		{"cas 0", func() Status { st, _ := s.Set(ModeCAS, k, []byte("2"), 0, 0, 0); return st }, Exists},
		{"cas 5", func() Status { st, _ := s.Set(ModeCAS, k, []byte("2"), 0, 0, 5); return st }, Exists},
		{"cas missing", func() Status { st, _ := s.Set(ModeCAS, []byte("nope"), []byte("2"), 0, 0, 5); return st }, NotFound},
		{"set with cas ignores it", func() Status { st, _ := s.Set(ModeSet, k, []byte("3"), 0, 0, 5); return st }, OK},
		{"append with cas ignores it", func() Status { st, _ := s.Set(ModeAppend, k, []byte("4"), 0, 0, 5); return st }, OK},
		{"incr with cas", func() Status { _, _, st := s.Arith(k, true, 1, 0, false, 0, 5); return st }, Exists},
		{"incr", func() Status { _, _, st := s.Arith(k, true, 1, 0, false, 0, 0); return st }, OK},
		{"delete with cas", func() Status { return s.Delete(k, 5) }, Exists},
		{"delete", func() Status { return s.Delete(k, 0) }, OK},
	}
	for _, tt := range tests {
		if got := tt.do(); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAppendKeepsMeta(t *testing.T) {
	for _, mode := range []Mode{ModeAppend, ModePrepend} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			s, c := newTestStore(t, Config{}, 4)
			k := []byte("k")
			s.Set(ModeSet, k, []byte("ab"), 9, start+100, 0)
			s.Get(k, nil)
			if st, _ := s.Set(mode, k, []byte("cd"), 5, start+1, 0); st != OK {
				t.Fatalf("status: got %v, want %v", st, OK)
			}
			v, m, lk := s.Get(k, nil)
			want := "abcd"
			if mode == ModePrepend {
				want = "cdab"
			}
			if lk != Hit || string(v) != want || m.Flags != 9 || m.Deadline != start+100 {
				t.Fatalf("got %q flags %d deadline %d %v, want %q flags 9 deadline %d", v, m.Flags, m.Deadline, lk, want, start+100)
			}
			c.Advance(50)
			if _, _, lk := s.Get(k, nil); lk != Hit {
				t.Fatalf("at +50: got %v, want %v", lk, Hit)
			}
			c.Advance(50)
			if _, _, lk := s.Get(k, nil); lk != MissExpired {
				t.Fatalf("at +100: got %v, want %v", lk, MissExpired)
			}
			checkInvariants(t, s)
		})
	}
}

func TestTooLarge(t *testing.T) {
	const max = 2048
	s, _ := newTestStore(t, Config{ItemSizeMax: max}, 4)
	key := []byte("k")
	fits := max - ItemSize(1, 0) - 8 // the CAS unique
	tests := []struct {
		name  string
		mode  Mode
		vlen  int
		want  Status
		after string // "old", "new" or "" (missing)
	}{
		{"set exactly the limit", ModeSet, fits, OK, "new"},
		{"set one over", ModeSet, fits + 1, TooLarge, ""}, // memcached drops the old item
		{"replace one over", ModeReplace, fits + 1, TooLarge, "old"},
		{"add one over", ModeAdd, fits + 1, TooLarge, "old"},
		{"cas one over", ModeCAS, fits + 1, TooLarge, "old"},
		{"append to the limit", ModeAppend, fits - 3, OK, "new"},
		{"append one over", ModeAppend, fits - 2, NotStored, "old"},
		{"prepend one over", ModePrepend, fits - 2, NotStored, "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set(t, s, "k", "old")
			var cas uint64
			if tt.mode == ModeCAS {
				cas = 1
			}
			st, _ := s.Set(tt.mode, key, bytes.Repeat([]byte("x"), tt.vlen), 0, 0, cas)
			if st != tt.want {
				t.Fatalf("status: got %v, want %v", st, tt.want)
			}
			v, _, lk := get(s, "k")
			switch tt.after {
			case "":
				if lk != Miss {
					t.Fatalf("after: got %v, want %v", lk, Miss)
				}
			case "old":
				if v != "old" {
					t.Fatalf("after: got %q, want %q", v, "old")
				}
			default:
				if lk != Hit || v == "old" {
					t.Fatalf("after: got %.10q %v, want the new value", v, lk)
				}
			}
			checkInvariants(t, s)
		})
	}
}

func TestDelete(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 4)
	k := []byte("k")
	cas := set(t, s, "k", "v")
	if got := s.Delete(k, cas+1); got != Exists {
		t.Errorf("mismatched cas: got %v, want %v", got, Exists)
	}
	if got := s.Delete(k, cas); got != OK {
		t.Errorf("matching cas: got %v, want %v", got, OK)
	}
	if got := s.Delete(k, 0); got != NotFound {
		t.Errorf("again: got %v, want %v", got, NotFound)
	}
	set(t, s, "k", "v")
	if got := s.Delete(k, 0); got != OK {
		t.Errorf("no cas: got %v, want %v", got, OK)
	}
	if _, _, lk := s.Get(k, nil); lk != Miss {
		t.Errorf("Get after delete: got %v, want %v", lk, Miss)
	}
	checkInvariants(t, s)
}

// pad pads s with spaces to n bytes, as memcached's in-place incr does.
func pad(s string, n int) string {
	return s + strings.Repeat(" ", n-len(s))
}

func TestArith(t *testing.T) {
	tests := []struct {
		value string
		incr  bool
		delta uint64
		want  uint64
		after string // the value after; "" means unchanged
		st    Status
	}{
		{"100", false, 1, 99, "99 ", OK},
		{"99 ", true, 1, 100, "100", OK},
		{"9", true, 1, 10, "10", OK},
		{"10", false, 100, 0, "0 ", OK},
		{"0", false, 5, 0, "0", OK},
		{"5", false, 5, 0, "0", OK},
		{"18446744073709551615", true, 1, 0, pad("0", 20), OK},
		{"18446744073709551615", true, 2, 1, pad("1", 20), OK},
		{"100", true, math.MaxUint64, 99, "99 ", OK},
		{" 5", true, 1, 6, "6 ", OK},
		{"5 ", true, 1, 6, "6 ", OK},
		{"5  x", true, 1, 6, "6   ", OK},
		{"\t5", true, 1, 6, "6 ", OK},
		{"5\n", true, 1, 6, "6 ", OK},
		{"\r\n5", true, 1, 6, "6  ", OK},
		{"+5", true, 1, 6, "6 ", OK},
		{"-0", true, 1, 1, "1 ", OK},
		{"-18446744073709551615", true, 1, 2, pad("2", 21), OK},
		{"5\x00x", true, 1, 6, "6  ", OK},
		{"000000000000000000005", true, 1, 6, pad("6", 21), OK},
		{"00000000000000000000001", true, 1, 2, pad("2", 23), OK},
		{"5x", true, 1, 0, "", NonNumeric},
		{"-5", true, 1, 0, "", NonNumeric},
		{"-18446744073709551616", true, 1, 0, "", NonNumeric},
		{"18446744073709551616", true, 1, 0, "", NonNumeric},
		{"- 5", true, 1, 0, "", NonNumeric},
		{"+-5", true, 1, 0, "", NonNumeric},
		{"0x10", true, 1, 0, "", NonNumeric},
		{"", true, 1, 0, "", NonNumeric},
		{" ", true, 1, 0, "", NonNumeric},
		{"abc", false, 1, 0, "", NonNumeric},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q incr=%v %d", tt.value, tt.incr, tt.delta), func(t *testing.T) {
			s, _ := newTestStore(t, Config{}, 4)
			k := []byte("k")
			_, old := s.Set(ModeSet, k, []byte(tt.value), 3, start+1000, 0)
			v, cas, st := s.Arith(k, tt.incr, tt.delta, 0, false, 0, 0)
			if st != tt.st || v != tt.want {
				t.Fatalf("got %d %v, want %d %v", v, st, tt.want, tt.st)
			}
			after := tt.after
			if after == "" {
				after = tt.value
			}
			got, m, _ := get(s, "k")
			if got != after {
				t.Fatalf("value after: got %q, want %q", got, after)
			}
			if m.Flags != 3 || m.Deadline != start+1000 {
				t.Fatalf("meta after: got flags %d deadline %d, want 3 %d", m.Flags, m.Deadline, start+1000)
			}
			if st == OK && (cas <= old || m.CAS != cas) {
				t.Fatalf("CAS: got %d (Get says %d), want a new unique > %d", cas, m.CAS, old)
			}
			if st != OK && m.CAS != old {
				t.Fatalf("CAS after failure: got %d, want %d", m.CAS, old)
			}
			checkInvariants(t, s)
		})
	}
}

func TestArithMissingAndCAS(t *testing.T) {
	s, c := newTestStore(t, Config{}, 4)
	k := []byte("n")
	if _, _, st := s.Arith(k, true, 1, 0, false, 0, 0); st != NotFound {
		t.Fatalf("missing: got %v, want %v", st, NotFound)
	}
	v, cas, st := s.Arith(k, false, 1, 42, true, start+10, 99)
	if st != OK || v != 42 || cas == 0 {
		t.Fatalf("create: got %d %d %v, want 42, a unique, %v", v, cas, st, OK)
	}
	got, m, _ := get(s, "n")
	if got != "42" || m.Deadline != start+10 || m.Flags != 0 || m.CAS != cas {
		t.Fatalf("created: got %q %+v, want %q deadline %d CAS %d", got, m, "42", start+10, cas)
	}
	if _, _, st := s.Arith(k, true, 1, 0, false, 0, cas+1); st != Exists {
		t.Fatalf("cas mismatch: got %v, want %v", st, Exists)
	}
	if v, _, st := s.Arith(k, true, 1, 0, false, 0, cas); st != OK || v != 43 {
		t.Fatalf("cas match: got %d %v, want 43 %v", v, st, OK)
	}
	if v, _, st := s.Arith(k, true, 1, 7, true, 0, 0); st != OK || v != 44 {
		t.Fatalf("create on present: got %d %v, want 44 %v", v, st, OK)
	}
	c.Advance(10)
	if v, _, st := s.Arith(k, true, 1, 7, true, 0, 0); st != OK || v != 7 {
		t.Fatalf("create on expired: got %d %v, want 7 %v", v, st, OK)
	}
	checkInvariants(t, s)
}

func TestArithChunkedIsNonNumeric(t *testing.T) {
	// memcached refuses to count on a chunked item: ItemSize > 512 KiB.
	s, _ := newTestStore(t, Config{}, 4)
	fits := slabChunkMax - ItemSize(1, 0)
	for _, tt := range []struct {
		vlen int
		want Status
	}{{fits, OK}, {fits + 1, NonNumeric}} {
		v := append([]byte("5"), bytes.Repeat([]byte(" "), tt.vlen-1)...)
		s.Set(ModeSet, []byte("k"), v, 0, 0, 0)
		if _, _, st := s.Arith([]byte("k"), true, 1, 0, false, 0, 0); st != tt.want {
			t.Errorf("ItemSize %d: got %v, want %v", ItemSize(1, tt.vlen), st, tt.want)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"-9223372036854775808", 0, false},
		{"-9223372036854775809", 9223372036854775807, true},
		{"\v\f7\r", 7, true},
		{"7\x00", 7, true},
		{"7.5", 0, false},
		{"+", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseNumber([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseNumber(%q): got %d %v, want %d %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestExpiry(t *testing.T) {
	s, c := newTestStore(t, Config{}, 4)
	s.Set(ModeSet, []byte("forever"), []byte("v"), 0, 0, 0)
	s.Set(ModeSet, []byte("ten"), []byte("v"), 0, start+10, 0)
	s.Set(ModeSet, []byte("past"), []byte("v"), 0, 1, 0)
	s.Set(ModeSet, []byte("touched"), []byte("v"), 0, start+10, 0)
	s.Set(ModeSet, []byte("gat"), []byte("v"), 0, start+10, 0)

	if _, _, lk := get(s, "past"); lk != MissExpired {
		t.Errorf("deadline 1: got %v, want %v", lk, MissExpired)
	}
	if got := s.Touch([]byte("touched"), start+20); got != OK {
		t.Errorf("Touch: got %v, want %v", got, OK)
	}
	if _, m, lk := s.GetAndTouch([]byte("gat"), start+20, nil); lk != Hit || m.Deadline != start+20 {
		t.Errorf("GetAndTouch: got %v deadline %d, want %v %d", lk, m.Deadline, Hit, start+20)
	}
	c.Advance(9)
	for _, k := range []string{"forever", "ten", "touched", "gat"} {
		if _, _, lk := get(s, k); lk != Hit {
			t.Errorf("%s at +9: got %v, want %v", k, lk, Hit)
		}
	}
	c.Advance(1)
	if _, _, lk := get(s, "ten"); lk != MissExpired {
		t.Errorf("ten at +10: got %v, want %v", lk, MissExpired)
	}
	if _, _, lk := get(s, "ten"); lk != Miss {
		t.Errorf("ten again: got %v, want %v (removed)", lk, Miss)
	}
	if got := s.Touch([]byte("ten"), 0); got != NotFound {
		t.Errorf("Touch expired: got %v, want %v", got, NotFound)
	}
	c.Advance(10)
	for _, k := range []string{"touched", "gat"} {
		if _, _, lk := get(s, k); lk != MissExpired {
			t.Errorf("%s at +20: got %v, want %v", k, lk, MissExpired)
		}
	}
	if _, _, lk := get(s, "forever"); lk != Hit {
		t.Errorf("forever: got %v, want %v", lk, Hit)
	}
	if st, _ := s.Set(ModeAdd, []byte("ten"), []byte("w"), 0, 0, 0); st != OK {
		t.Errorf("add over expired: got %v, want %v", st, OK)
	}
	checkInvariants(t, s)
}

// TestOwnClock checks the store's own clock, memcached's current_time: it
// counts whole seconds from Epoch, so its second turns at Epoch's phase and
// not the wall clock's, and the coarse clock items are checked against is
// never ahead of Now, from which deadlines are reckoned.
func TestOwnClock(t *testing.T) {
	// An epoch 2.6 s ago, at 0.9 of its wall second: the clock reads the
	// epoch's second plus 2, though the wall clock's second is 3 or 4 on.
	epoch := time.Now().Add(-2600 * time.Millisecond)
	epoch = epoch.Truncate(time.Second).Add(900 * time.Millisecond)
	s := New(Config{Epoch: epoch})
	defer s.Close()
	want := epoch.Unix() + int64(time.Since(epoch)/time.Second)
	if got := s.Now(); got != want && got != want+1 {
		t.Errorf("Now() = epoch%+d, want epoch%+d", got-epoch.Unix(), want-epoch.Unix())
	}
	// An item whose deadline is a second from Now lives until the
	// clock's next tick, whichever phase of the second it was stored at.
	for range 20 {
		now := s.Now()
		if coarse := s.CoarseNow(); coarse > now {
			t.Fatalf("CoarseNow() = %d ahead of Now() = %d", coarse, now)
		}
		s.Set(ModeSet, []byte("k"), []byte("v"), 0, now+1, 0)
		if _, _, lk := get(s, "k"); lk != Hit && s.Now() == now {
			t.Fatalf("an item with deadline Now()+1: got %v before the clock moved", lk)
		}
		time.Sleep(37 * time.Millisecond)
	}
}

func TestFlush(t *testing.T) {
	t.Run("now", func(t *testing.T) {
		s, _ := newTestStore(t, Config{}, 4)
		set(t, s, "a", "1")
		set(t, s, "b", "2")
		s.Flush(start)
		set(t, s, "c", "3") // the same second: untouched
		if _, _, lk := get(s, "a"); lk != MissFlushed {
			t.Errorf("a: got %v, want %v", lk, MissFlushed)
		}
		if st, _ := s.Set(ModeReplace, []byte("b"), []byte("x"), 0, 0, 0); st != NotStored {
			t.Errorf("replace b: got %v, want %v", st, NotStored)
		}
		if _, _, lk := get(s, "c"); lk != Hit {
			t.Errorf("c: got %v, want %v", lk, Hit)
		}
		checkInvariants(t, s)
	})
	t.Run("delayed", func(t *testing.T) {
		s, c := newTestStore(t, Config{}, 4)
		set(t, s, "a", "1")
		s.Flush(start + 10)
		c.Advance(5)
		set(t, s, "b", "2")
		if _, _, lk := get(s, "a"); lk != Hit {
			t.Errorf("a before: got %v, want %v", lk, Hit)
		}
		c.Advance(5)
		set(t, s, "c", "3") // stored at the second of the flush: untouched
		for k, want := range map[string]Lookup{"a": MissFlushed, "b": MissFlushed, "c": Hit} {
			if _, _, lk := get(s, k); lk != want {
				t.Errorf("%s at the flush: got %v, want %v", k, lk, want)
			}
		}
		checkInvariants(t, s)
	})
	t.Run("a later flush replaces a pending one", func(t *testing.T) {
		s, c := newTestStore(t, Config{}, 4)
		set(t, s, "a", "1")
		s.Flush(start + 10)
		s.Flush(start + 20)
		c.Advance(15)
		if _, _, lk := get(s, "a"); lk != Hit {
			t.Errorf("a at +15: got %v, want %v", lk, Hit)
		}
		c.Advance(5)
		if _, _, lk := get(s, "a"); lk != MissFlushed {
			t.Errorf("a at +20: got %v, want %v", lk, MissFlushed)
		}
	})
	t.Run("flushes in effect stay in effect", func(t *testing.T) {
		s, c := newTestStore(t, Config{}, 4)
		set(t, s, "a", "1")
		s.Flush(start) // a is flushed
		set(t, s, "b", "2")
		s.Flush(start + 5)
		c.Advance(5) // b is flushed
		set(t, s, "c", "3")
		s.Flush(start + 100)
		for k, want := range map[string]Lookup{"a": MissFlushed, "b": MissFlushed, "c": Hit} {
			if _, _, lk := get(s, k); lk != want {
				t.Errorf("%s: got %v, want %v", k, lk, want)
			}
		}
	})
	t.Run("touch does not revive", func(t *testing.T) {
		s, _ := newTestStore(t, Config{}, 4)
		set(t, s, "a", "1")
		s.Flush(start)
		if got := s.Touch([]byte("a"), 0); got != NotFound {
			t.Errorf("Touch: got %v, want %v", got, NotFound)
		}
		if _, _, st := s.Arith([]byte("a"), true, 1, 0, false, 0, 0); st != NotFound {
			t.Errorf("incr: got %v, want %v", st, NotFound)
		}
	})
}

// itemCharge is what an item of these sizes counts against MaxBytes.
func itemCharge(klen, vlen int) int64 {
	return charge(klen, vlen, 0)
}

func TestMemoryAccounting(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 8)
	var want int64
	for i := range 1000 {
		k := fmt.Sprintf("key%d", i)
		v := bytes.Repeat([]byte("x"), i)
		s.Set(ModeSet, []byte(k), v, 0, 0, 0)
		want += itemCharge(len(k), len(v))
	}
	s.Set(ModeAppend, []byte("key1"), []byte("abc"), 0, 0, 0)
	s.Set(ModeSet, []byte("key2"), []byte("5"), 0, 0, 0)
	s.Arith([]byte("key2"), true, 1000, 0, false, 0, 0)
	want += 3 + (4 - 2)
	if got := s.Stats().Bytes; got != want {
		t.Fatalf("Bytes: got %d, want %d", got, want)
	}
	checkInvariants(t, s)
	for i := range 1000 {
		if got := s.Delete([]byte(fmt.Sprintf("key%d", i)), 0); got != OK {
			t.Fatalf("Delete: got %v, want %v", got, OK)
		}
	}
	// The pages stay, for the next items; the items are gone.
	if st := s.Stats(); st.Bytes != 0 || st.CurrItems != 0 {
		t.Fatalf("after deleting all: got Bytes %d CurrItems %d, want 0", st.Bytes, st.CurrItems)
	}
	checkInvariants(t, s)
}

func TestLargeItems(t *testing.T) {
	// An item far larger than a shard's share of memory is stored by
	// evicting from other shards.
	const maxBytes = 4 << 20
	s, _ := newTestStore(t, Config{MaxBytes: maxBytes, ItemSizeMax: 3 << 20}, 64)
	for i := 0; s.Stats().Evictions == 0; i++ {
		s.Set(ModeSet, []byte(fmt.Sprint(i)), bytes.Repeat([]byte("s"), 1000), 0, 0, 0)
	}
	big := bytes.Repeat([]byte("B"), 3<<20-ItemSize(3, 0)-8)
	if st, _ := s.Set(ModeSet, []byte("big"), big, 0, 0, 0); st != OK {
		t.Fatalf("big: got %v, want %v", st, OK)
	}
	if v, _, lk := s.Get([]byte("big"), nil); lk != Hit || !bytes.Equal(v, big) {
		t.Fatalf("Get big: got %d bytes %v, want %d bytes %v", len(v), lk, len(big), Hit)
	}
	checkInvariants(t, s)

	// An item larger than all of memory can never be stored.
	s2, _ := newTestStore(t, Config{MaxBytes: 1 << 20, ItemSizeMax: 2 << 20}, 4)
	set(t, s2, "k", "old")
	if st, _ := s2.Set(ModeSet, []byte("k"), make([]byte, 1<<20), 0, 0, 0); st != NoMemory {
		t.Fatalf("larger than MaxBytes: got %v, want %v", st, NoMemory)
	}
	if _, _, lk := get(s2, "k"); lk != Miss {
		t.Fatalf("after a failed set: got %v, want %v", lk, Miss)
	}
}

func TestMemoryBoundUnderRandomLoad(t *testing.T) {
	const maxBytes = 256 << 10
	s, c := newTestStore(t, Config{MaxBytes: maxBytes, ItemSizeMax: 128 << 10}, 16)
	stop := make(chan struct{})
	var over atomic.Int64
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if u := s.used.Load(); u > maxBytes {
				over.Store(u)
			}
			runtime.Gosched()
		}
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 0, 128<<10)
			for range 5000 {
				k := []byte(strconv.Itoa(r.IntN(500)))
				n := r.IntN(300)
				if r.IntN(50) == 0 {
					n = r.IntN(100 << 10)
				}
				v := bytes.Repeat([]byte("v"), n)
				switch op := r.IntN(10); op {
				case 0, 1, 2:
					s.Set(ModeSet, k, v, 0, int64(start+r.IntN(20)), 0)
				case 3:
					s.Set(Mode(r.IntN(6)), k, v, 0, 0, uint64(r.IntN(3)))
				case 4:
					s.Arith(k, r.IntN(2) == 0, r.Uint64(), 1, true, 0, 0)
				case 5:
					s.Delete(k, 0)
				case 6:
					s.Touch(k, int64(start+r.IntN(20)))
				case 7:
					if r.IntN(100) == 0 {
						s.Flush(c.Now() + int64(r.IntN(3)))
					}
					c.Advance(int64(r.IntN(2)))
				default:
					buf, _, _ = s.Get(k, buf[:0])
				}
				if r.IntN(100) == 0 {
					s.reclaimTick(50)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if u := over.Load(); u != 0 {
		t.Fatalf("used reached %d, over MaxBytes %d", u, maxBytes)
	}
	checkInvariants(t, s)
	st := s.Stats()
	if st.Evictions == 0 {
		t.Errorf("no evictions: the load did not fill the store (%+v)", st)
	}
}

func TestReclaim(t *testing.T) {
	s, c := newTestStore(t, Config{}, 2)
	for i := range 100 {
		deadline := int64(0)
		if i%2 == 0 {
			deadline = start + 10
		}
		s.Set(ModeSet, []byte(fmt.Sprint(i)), []byte("v"), 0, deadline, 0)
	}
	s.Get([]byte("0"), nil)
	s.reclaimTick(1000)
	if got := s.Stats().CurrItems; got != 100 {
		t.Fatalf("before the deadline: got %d items, want 100", got)
	}
	c.Advance(10)
	// Bounded work: a small budget reclaims a little per tick.
	s.reclaimTick(10)
	if got := s.Stats().CurrItems; got < 80 || got >= 100 {
		t.Fatalf("after a small tick: got %d items, want a few reclaimed", got)
	}
	for range 10 {
		s.reclaimTick(10)
	}
	st := s.Stats()
	if st.CurrItems != 50 || st.Reclaimed != 50 || st.ExpiredUnfetched != 49 {
		t.Fatalf("after the ticks: got %+v, want 50 items, 50 reclaimed, 49 expired unfetched", st)
	}
	// Flushed items are reclaimed too.
	s.Flush(c.Now())
	s.reclaimTick(1000)
	s.reclaimTick(1000)
	if got := s.Stats().CurrItems; got != 0 {
		t.Fatalf("after flush: got %d items, want 0", got)
	}
	checkInvariants(t, s)
}

func TestBackgroundReclaimer(t *testing.T) {
	c := newClock()
	s := New(Config{Now: c.Now})
	defer s.Close()
	for i := range 1000 {
		s.Set(ModeSet, []byte(fmt.Sprint(i)), []byte("v"), 0, start+1, 0)
	}
	c.Advance(1)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().CurrItems != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("CurrItems: got %d, want 0 within 10s", s.Stats().CurrItems)
		}
		time.Sleep(time.Millisecond)
	}
	if got := s.Stats().Reclaimed; got != 1000 {
		t.Errorf("Reclaimed: got %d, want 1000", got)
	}
	if got := s.Stats().Bytes; got != 0 {
		t.Errorf("Bytes: got %d, want 0", got)
	}
}

func TestConcurrentCAS(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	const goroutines, each = 32, 300
	key := []byte("counter")
	s.Set(ModeSet, key, []byte("0"), 0, 0, 0)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			var buf []byte
			for range each {
				for {
					var m Meta
					var lk Lookup
					buf, m, lk = s.Get(key, buf[:0])
					if lk != Hit {
						t.Errorf("Get: got %v, want %v", lk, Hit)
						return
					}
					n, _ := strconv.Atoi(string(buf))
					st, _ := s.Set(ModeCAS, key, strconv.AppendInt(nil, int64(n+1), 10), 0, 0, m.CAS)
					if st == OK {
						break
					}
					if st != Exists {
						t.Errorf("Set: got %v, want %v or %v", st, OK, Exists)
						return
					}
				}
			}
		})
		wg.Go(func() {
			for range each {
				if _, _, st := s.Arith([]byte("arith"), true, 1, 1, true, 0, 0); st != OK {
					t.Errorf("Arith: got %v, want %v", st, OK)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, _, _ := get(s, "counter"); v != strconv.Itoa(goroutines*each) {
		t.Errorf("counter: got %s, want %d", v, goroutines*each)
	}
	if v, _, _ := get(s, "arith"); v != strconv.Itoa(goroutines*each) {
		t.Errorf("arith: got %s, want %d", v, goroutines*each)
	}
}

func TestSlabClasses(t *testing.T) {
	// memcached 1.6.18 -vv with the defaults.
	want := []int{96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184, 1480, 1856, 2320,
		2904, 3632, 4544, 5680, 7104, 8880, 11104, 13880, 17352, 21696, 27120, 33904, 42384,
		52984, 66232, 82792, 103496, 129376, 161720, 202152, 252696, 315872, 394840, 524288}
	got := slabClasses(chunkSizeMax(DefaultItemSizeMax))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("classes:\n got %v\nwant %v", got, want)
	}
	// Items are filed by memcached's ITEM_ntotal: ItemSize, 8 bytes of
	// CAS unique unless CAS is off, 4 of flags if they are not zero.
	s, _ := newTestStore(t, Config{}, 4)
	s.Set(ModeSet, []byte("a"), make([]byte, 96-8-ItemSize(1, 0)), 0, 0, 0)   // 96: class 1
	s.Set(ModeSet, []byte("b"), make([]byte, 97-8-ItemSize(1, 0)), 0, 0, 0)   // 97: class 2
	s.Set(ModeSet, []byte("d"), make([]byte, 96-8-4-ItemSize(1, 0)), 1, 0, 0) // flags: 96, class 1
	s.Set(ModeSet, []byte("e"), make([]byte, 96-8-ItemSize(1, 0)), 1, 0, 0)   // flags: 100, class 2
	s.Set(ModeSet, []byte("c"), make([]byte, 600<<10), 0, 0, 0)
	cs := s.ClassStats()
	if len(cs) != 3 {
		t.Fatalf("ClassStats: got %+v, want 3 classes", cs)
	}
	for i, w := range []struct {
		id, chunk int
		items     int64
		requested int64
	}{{1, 96, 2, 96 + 96}, {2, 120, 2, 97 + 100}, {39, 524288, 1, int64(ItemSize(1, 600<<10) + 8)}} {
		if cs[i].ID != w.id || cs[i].ChunkSize != w.chunk || cs[i].Items != w.items || cs[i].RequestedBytes != w.requested {
			t.Errorf("class %d: got %+v, want ID %d chunk %d %d items %d bytes requested", i, cs[i], w.id, w.chunk, w.items, w.requested)
		}
	}

	// With CAS off, memcached's item has no CAS unique: 8 bytes less.
	s, _ = newTestStore(t, Config{NoCAS: true}, 4)
	s.Set(ModeSet, []byte("a"), make([]byte, 96-ItemSize(1, 0)), 0, 0, 0)
	s.Set(ModeSet, []byte("b"), make([]byte, 97-ItemSize(1, 0)), 0, 0, 0)
	cs = s.ClassStats()
	if len(cs) != 2 || cs[0].ID != 1 || cs[0].RequestedBytes != 96 || cs[1].ID != 2 || cs[1].RequestedBytes != 97 {
		t.Errorf("ClassStats with NoCAS: got %+v, want class 1 (96 bytes) and class 2 (97 bytes)", cs)
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 64)
	set(t, s, "key", "value")
	buf := make([]byte, 0, 64)
	testutil.NoAllocs(t, "Get hit", 100, func() { s.Get([]byte("key"), buf[:0]) })
	testutil.NoAllocs(t, "Get miss", 100, func() { s.Get([]byte("nokey"), buf[:0]) })
	testutil.NoAllocs(t, "Set overwrite of the same size", 100, func() { s.Set(ModeSet, []byte("key"), []byte("other"), 0, 0, 0) })
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{NonNumeric.String(), "NonNumeric"},
		{Status(99).String(), "Status(99)"},
		{ModePrepend.String(), "ModePrepend"},
		{Mode(99).String(), "Mode(99)"},
		{MissFlushed.String(), "MissFlushed"},
		{Lookup(99).String(), "Lookup(99)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// fillPaged sets pagedKey(i) for i in [from, to) in a paged store.
func fillPaged(t *testing.T, s *Store, from, to int, deadline int64) {
	t.Helper()
	for i := from; i < to; i++ {
		if st, _ := s.Set(ModeSet, pagedKey(i), pagedValue, 0, deadline, 0); st != OK {
			t.Fatalf("Set(%s): got %v, want %v", pagedKey(i), st, OK)
		}
	}
}

// wantLookups checks that pagedKey(i) gives want for i in [from, to).
func wantLookups(t *testing.T, s *Store, from, to int, want Lookup) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, _, lk := s.Get(pagedKey(i), nil); lk != want {
			t.Errorf("%s: got %v, want %v", pagedKey(i), lk, want)
		}
	}
}

// queueOf returns the queue holding key's record.
func queueOf(t *testing.T, s *Store, key []byte) int {
	t.Helper()
	h := xxhash.Sum64(key)
	sh := s.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, loc, ok := sh.lookupSlot(h, key)
	if !ok {
		t.Fatalf("%s: not indexed", key)
	}
	return int(sh.meta[loc>>pageShift].queue)
}

func TestEvictionS3FIFO(t *testing.T) {
	// Four pages of eight records: three take writes, one is the spare
	// that moving records needs.
	s, _ := newPagedStore(t, Config{}, 4)
	if n := s.pageSize / pagedRecord; n != 8 {
		t.Fatalf("records per page: got %d, want 8", n)
	}
	fillPaged(t, s, 0, 24, 0)
	if st := s.Stats(); st.Evictions != 0 || st.CurrItems != 24 {
		t.Fatalf("before the store is full: got %+v, want 24 items, no evictions", st)
	}
	for i := range 4 {
		s.Get(pagedKey(i), nil)
	}
	// A 25th item empties the oldest page of the small queue: its items
	// read since moved to the main queue, the others are evicted; and to
	// keep a spare, the next page too.
	fillPaged(t, s, 24, 25, 0)
	st := s.Stats()
	if st.Evictions != 12 || st.EvictedUnfetched != 12 || st.CurrItems != 13 || st.TotalItems != 25 {
		t.Errorf("after the 25th: got %+v, want 12 evictions, all unfetched, 13 items, 25 total", st)
	}
	for i := range 4 {
		if q := queueOf(t, s, pagedKey(i)); q != qMain {
			t.Errorf("%s: in queue %d, want the main queue", pagedKey(i), q)
		}
	}
	// An evicted key stored again while the ghost table remembers it goes
	// to the main queue (the table is direct-mapped: it may have lost
	// some).
	ghosted := 0
	for i := 4; i < 16; i++ {
		h := xxhash.Sum64(pagedKey(i))
		sh := s.shardOf(h)
		if sh.ghost[uint32(h>>tagBits)&uint32(len(sh.ghost)-1)] == ghostPrint(h) {
			ghosted = i
			break
		}
	}
	if ghosted == 0 {
		t.Fatalf("no evicted key in the ghost table: %x", s.shards[0].ghost)
	}
	fillPaged(t, s, ghosted, ghosted+1, 0)
	if q := queueOf(t, s, pagedKey(ghosted)); q != qMain {
		t.Errorf("%s after its eviction: in queue %d, want the main queue", pagedKey(ghosted), q)
	}
	if q := queueOf(t, s, pagedKey(24)); q != qSmall {
		t.Errorf("%s: in queue %d, want the small queue", pagedKey(24), q)
	}
	checkInvariants(t, s)
	wantLookups(t, s, 0, 4, Hit)
	wantLookups(t, s, ghosted, ghosted+1, Hit)
	wantLookups(t, s, 16, 25, Hit)

	// Items read again and again stay while a stream of new keys, never
	// read, passes through.
	for i := 25; i < 300; i++ {
		fillPaged(t, s, i, i+1, 0)
		s.Get(pagedKey(0), nil)
		s.Get(pagedKey(1), nil)
	}
	wantLookups(t, s, 0, 2, Hit)
	wantLookups(t, s, 100, 200, Miss)
	checkInvariants(t, s)
}

func TestAppendInFullStore(t *testing.T) {
	// Appending to an item of a full store makes room without losing it.
	s, _ := newPagedStore(t, Config{}, 4)
	fillPaged(t, s, 0, 24, 0)
	if st, _ := s.Set(ModeAppend, pagedKey(23), []byte("+"), 0, 0, 0); st != OK {
		t.Fatalf("append: got %v, want %v", st, OK)
	}
	if v, _, lk := s.Get(pagedKey(23), nil); lk != Hit || string(v) != string(pagedValue)+"+" {
		t.Fatalf("after append: got %q %v", v, lk)
	}
	if st := s.Stats(); st.Evictions == 0 {
		t.Errorf("stats: got %+v, want evictions to make room", st)
	}
	checkInvariants(t, s)
}

func TestNoEvictions(t *testing.T) {
	s, c := newPagedStore(t, Config{NoEvictions: true}, 4)
	fillPaged(t, s, 0, 1, start+10)
	fillPaged(t, s, 1, 24, 0)
	if st, _ := s.Set(ModeAdd, pagedKey(24), pagedValue, 0, 0, 0); st != NoMemory {
		t.Fatalf("full: got %v, want %v", st, NoMemory)
	}
	if v, _, st := s.Arith(pagedKey(25), true, 1, 5, true, 0, 0); st != NoMemory {
		t.Fatalf("incr create when full: got %d %v, want %v", v, st, NoMemory)
	}
	// A failed set drops the key's old item, as memcached does.
	if st, _ := s.Set(ModeSet, pagedKey(2), append(pagedValue, 'v'), 0, 0, 0); st != NoMemory {
		t.Fatalf("growing set when full: got %v, want %v", st, NoMemory)
	}
	if _, _, lk := s.Get(pagedKey(2), nil); lk != Miss {
		t.Fatalf("after a failed set: got %v, want %v", lk, Miss)
	}
	// Its room is compacted out for the next item.
	fillPaged(t, s, 2, 3, 0)
	if st, _ := s.Set(ModeSet, pagedKey(24), pagedValue, 0, 0, 0); st != NoMemory {
		t.Fatalf("full again: got %v, want %v", st, NoMemory)
	}
	// An expired item's memory is reused even without evictions.
	c.Advance(10)
	if st, _ := s.Set(ModeSet, pagedKey(24), pagedValue, 0, 0, 0); st != OK {
		t.Fatalf("over an expired item: got %v, want %v", st, OK)
	}
	st := s.Stats()
	if st.Evictions != 0 || st.Reclaimed != 1 || st.ExpiredUnfetched != 1 || st.CurrItems != 24 {
		t.Errorf("stats: got %+v, want 0 evictions, 1 reclaimed, 1 expired unfetched, 24 items", st)
	}
	wantLookups(t, s, 1, 25, Hit)
	checkInvariants(t, s)
}

func TestFailedWritesReleaseTheirRoom(t *testing.T) {
	// A full store without evictions: writes that cannot be given room
	// fail and give back every byte they took.
	s, _ := newPagedStore(t, Config{NoEvictions: true}, 4)
	fillPaged(t, s, 0, 23, 0)
	s.Set(ModeSet, []byte("n1"), []byte("9999999999"), 0, 0, 0)
	for i := 0; ; i++ {
		st, _ := s.Set(ModeSet, fmt.Appendf(nil, "f%02d", i), []byte("x"), 0, 0, 0)
		if st == NoMemory {
			break
		}
		if st != OK || i > 100 {
			t.Fatalf("filler %d: got %v, want %v until %v", i, st, OK, NoMemory)
		}
	}
	checkInvariants(t, s)
	before, _, _ := s.Get([]byte("n1"), nil)
	// Full now: growing 9999999999 to 10000000000 needs a byte more.
	if _, _, st := s.Arith([]byte("n1"), true, 1, 0, false, 0, 0); st != NoMemory {
		t.Fatalf("Arith growth when full: got %v, want %v", st, NoMemory)
	}
	if st, _ := s.Set(ModeAppend, []byte("n1"), []byte("1"), 0, 0, 0); st != NoMemory {
		t.Fatalf("append when full: got %v, want %v", st, NoMemory)
	}
	if v, _, _ := s.Get([]byte("n1"), nil); !bytes.Equal(v, before) {
		t.Fatalf("n1 after failed writes: got %q, want %q", v, before)
	}
	checkInvariants(t, s)
	// An external value needs memory of its own: the store gives up its
	// spare page for it, and still has too little.
	big := bytes.Repeat([]byte("b"), 3*minPageSize)
	if st, _ := s.Set(ModeSet, []byte("big"), big, 0, 0, 0); st != NoMemory {
		t.Fatalf("Set big: got %v, want %v", st, NoMemory)
	}
	checkInvariants(t, s)

	tiny, _ := newTestStore(t, Config{ItemSizeMax: ItemSize(1, 1)}, 1)
	if _, _, st := tiny.Arith([]byte("k"), true, 1, 10, true, 0, 0); st != TooLarge {
		t.Fatalf("Arith create over ItemSizeMax: got %v, want %v", st, TooLarge)
	}
	small, _ := newTestStore(t, Config{MaxBytes: 1 << 10}, 1)
	if _, _, st := small.Arith([]byte("k"), true, 1, 1, true, 0, 0); st != NoMemory {
		t.Fatalf("Arith create over MaxBytes: got %v, want %v", st, NoMemory)
	}
}

func TestKeyLengthLimit(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 4)
	long := bytes.Repeat([]byte("k"), MaxKeyLen+1)
	if st, _ := s.Set(ModeSet, long, []byte("v"), 0, 0, 0); st != TooLarge {
		t.Errorf("Set of a %d-byte key: got %v, want %v", len(long), st, TooLarge)
	}
	if _, _, st := s.Arith(long, true, 1, 1, true, 0, 0); st != TooLarge {
		t.Errorf("Arith creating a %d-byte key: got %v, want %v", len(long), st, TooLarge)
	}
	if _, _, lk := s.MetaGet(long, MetaGetOptions{Vivify: true}, nil); lk == Hit {
		t.Errorf("MetaGet vivifying a %d-byte key: got a hit", len(long))
	}
	longest := long[:MaxKeyLen]
	if st, _ := s.Set(ModeSet, longest, []byte("v"), 0, 0, 0); st != OK {
		t.Fatalf("Set of a %d-byte key: got %v, want %v", len(longest), st, OK)
	}
	if v, _, lk := s.Get(longest, nil); lk != Hit || string(v) != "v" {
		t.Errorf("Get of the %d-byte key: got %q %v", len(longest), v, lk)
	}
	if st := s.Stats(); st.CurrItems != 1 {
		t.Errorf("items: got %d, want 1", st.CurrItems)
	}
	checkInvariants(t, s)
}
