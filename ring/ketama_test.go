package ring

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
)

// ketamaKeys returns n keys, one in ten with bytes above 127, which
// libhashkit hashes as signed chars.
func ketamaKeys(n int) [][]byte {
	var keys [][]byte
	for i := range n {
		k := []byte("key:" + strconv.Itoa(i))
		if i%10 == 0 {
			k = fmt.Appendf(nil, "\xe9t\xe9-%d-\xff", i)
		}
		keys = append(keys, k)
	}
	return keys
}

// ketamaServers are five servers, some on memcached's default port, one
// without a host name, listed out of Name order.
var ketamaServers = []Member{
	{Host: "cache-b.example.com", IP: "10.0.0.2", Port: 11211},
	{Host: "cache-a.example.com", IP: "10.0.0.1", Port: 11211},
	{Host: "10.0.0.3", IP: "10.0.0.3", Port: 11212},
	{Host: "", IP: "127.0.0.1", Port: 21211},
	{Host: "cache-e.example.com", IP: "10.0.0.5", Port: 11211},
}

// hostPorts returns the host:port a libmemcached client is given for each
// member: its host, or its IP without one.
func hostPorts(ms []Member) []string {
	var out []string
	for _, m := range ms {
		h := m.Host
		if h == "" {
			h = m.IP
		}
		out = append(out, h+":"+strconv.Itoa(m.Port))
	}
	return out
}

// TestKetamaAgreesWithLibmemcached places 10,000 keys on five servers with
// KetamaRing and with libmemcached itself, in both of KetamaRing's modes,
// and with a Ring in ModeKetama over the servers in Name order (the order
// `config get cluster` lists them): every key must land on the same server.
func TestKetamaAgreesWithLibmemcached(t *testing.T) {
	keys := ketamaKeys(10000)
	for _, tc := range []struct {
		name     string
		mode     KetamaMode
		behavior int
	}{
		{"ketama", Ketama, testutil.LibmemcachedKetama},
		{"ketama weighted", KetamaWeighted, testutil.LibmemcachedKetamaWeighted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := testutil.LibmemcachedOwners(tc.behavior, hostPorts(ketamaServers), keys)
			if err != nil {
				t.Fatal(err)
			}
			k := NewKetama(ketamaServers, tc.mode)
			counts := make([]int, len(ketamaServers))
			for i, key := range keys {
				if got := k.OwnerIndex(key); got != want[i] {
					t.Fatalf("key %q: KetamaRing gives server %d, libmemcached %d", key, got, want[i])
				}
				counts[want[i]]++
			}
			t.Logf("%d keys agree; per server %v", len(keys), counts)
		})
	}
	t.Run("Ring in ModeKetama", func(t *testing.T) {
		r, err := NewMode(ketamaServers, ModeKetama)
		if err != nil {
			t.Fatal(err)
		}
		// libmemcached is given the servers as the ring lists them.
		want, err := testutil.LibmemcachedOwners(testutil.LibmemcachedKetama, hostPorts(r.Members()), keys)
		if err != nil {
			t.Fatal(err)
		}
		for i, key := range keys {
			if got := r.OwnerIndex(key); got != want[i] {
				t.Fatalf("key %q: Ring gives member %d (%s), libmemcached %d", key, got, r.Member(got).Entry(), want[i])
			}
			if got := r.OwnerIndexString(string(key)); got != want[i] {
				t.Fatalf("key %q: OwnerIndexString gives member %d, libmemcached %d", key, got, want[i])
			}
		}
		t.Logf("%d of %d keys agree", len(keys), len(keys))
	})
}

// TestKetamaModeRing checks a ModeKetama Ring against KetamaRing over the
// same members in Name order, for 1 to 40 members: the same owner for
// every key; members sorted by Name as in ModeMemcluster; Mode and Rebuild
// keep the mode.
func TestKetamaModeRing(t *testing.T) {
	keys := ketamaKeys(2000)
	for _, n := range []int{1, 2, 3, 7, 40} {
		var ms []Member
		for i := range n {
			ms = append(ms, Member{Host: fmt.Sprintf("node-%d.cache", (i*7)%n), IP: fmt.Sprintf("10.1.0.%d", i+1), Port: 11211 + i%3})
		}
		r, err := NewMode(ms, ModeKetama)
		if err != nil {
			t.Fatal(err)
		}
		if r.Mode() != ModeKetama {
			t.Fatalf("Mode() = %v, want ketama", r.Mode())
		}
		plain, _ := New(ms)
		if got, want := r.Members(), plain.Members(); !slices.Equal(got, want) {
			t.Fatalf("%d members: ketama ring lists %v, memcluster ring %v", n, got, want)
		}
		k := NewKetama(r.Members(), Ketama)
		for _, key := range keys {
			if got, want := r.OwnerIndex(key), k.OwnerIndex(key); got != want {
				t.Fatalf("%d members, key %q: Ring gives %d, KetamaRing %d", n, key, got, want)
			}
			if got, want := r.Owner(key), k.Owner(key); got != want {
				t.Fatalf("%d members, key %q: Owner %v, KetamaRing %v", n, key, got, want)
			}
		}
		again, err := r.Rebuild(ms[:n/2+1])
		if err != nil || again.Mode() != ModeKetama || again.Len() != n/2+1 {
			t.Fatalf("Rebuild: %v, mode %v, %d members", err, again.Mode(), again.Len())
		}
	}
	empty, err := NewMode(nil, ModeKetama)
	if err != nil || empty.OwnerIndex([]byte("k")) != -1 || empty.OwnerIndexString("k") != -1 || empty.Owner([]byte("k")) != (Member{}) {
		t.Errorf("empty ketama ring: %v, owner %d", err, empty.OwnerIndex([]byte("k")))
	}
	if _, err := NewMode(ms3(), Mode(9)); err == nil {
		t.Error("NewMode with Mode(9): no error")
	}
	if r, _ := NewMode(ms3(), 0); r.Mode() != ModeMemcluster {
		t.Errorf("NewMode with the zero Mode: mode %v, want memcluster", r.Mode())
	}
	if m := (*Ring)(nil).Mode(); m != ModeMemcluster {
		t.Errorf("nil ring: mode %v", m)
	}
}

func ms3() []Member {
	return []Member{{Host: "a", Port: 1}, {Host: "b", Port: 1}, {Host: "c", Port: 1}}
}

// TestKetamaBalance measures a ModeKetama ring's balance over 100,000
// keys for three members, as a cluster of three names them.
func TestKetamaBalance(t *testing.T) {
	var ms []Member
	for i := range 3 {
		ms = append(ms, Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: 40001 + i})
	}
	r, err := NewMode(ms, ModeKetama)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, r.Len())
	const n = 100000
	for i := range n {
		counts[r.OwnerIndexString("key:"+strconv.Itoa(i))]++
	}
	peak := float64(slices.Max(counts)) / (n / 3.0)
	t.Logf("per member %v, peak/mean %.3f", counts, peak)
	if slices.Min(counts) == 0 || peak > 1.5 {
		t.Errorf("per member %v: peak/mean %.3f", counts, peak)
	}
}

func TestModeNames(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		name string
	}{{ModeMemcluster, "memcluster"}, {ModeKetama, "ketama"}} {
		if got := tc.mode.String(); got != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.mode, got, tc.name)
		}
		if got, err := ParseMode(tc.name); err != nil || got != tc.mode {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", tc.name, got, err, tc.mode)
		}
	}
	if got := Mode(0).String(); got != "memcluster" {
		t.Errorf("the zero Mode's String() = %q, want memcluster", got)
	}
	for _, bad := range []string{"", "default", "Ketama", "ketama ", "xxhash"} {
		if m, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) = %v, want an error", bad, m)
		}
	}
}

// TestKetamaOwnerAllocs checks that ketama lookups allocate nothing.
func TestKetamaOwnerAllocs(t *testing.T) {
	r, err := NewMode(ketamaServers, ModeKetama)
	if err != nil {
		t.Fatal(err)
	}
	key, skey := []byte("user:12345:profile"), "user:12345:profile"
	if n := testing.AllocsPerRun(100, func() { r.OwnerIndex(key); r.OwnerIndexString(skey); r.Owner(key) }); n != 0 {
		t.Errorf("%v allocations a lookup, want 0", n)
	}
}

func BenchmarkKetamaOwner(b *testing.B) {
	var ms []Member
	for i := range 30 {
		ms = append(ms, Member{Host: fmt.Sprintf("10.0.0.%d", i+1), Port: 11211})
	}
	for _, mode := range []KetamaMode{Ketama, KetamaWeighted} {
		k := NewKetama(ms, mode)
		key := []byte("user:12345:profile")
		b.Run("KetamaRing/"+strconv.Itoa(int(mode)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.OwnerIndex(key)
			}
		})
	}
	for _, n := range []int{3, 30, 100} {
		r, err := NewMode(ms[:min(n, len(ms))], ModeKetama)
		if n > len(ms) {
			var more []Member
			for i := range n {
				more = append(more, Member{Host: fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), Port: 11211})
			}
			r, err = NewMode(more, ModeKetama)
		}
		if err != nil {
			b.Fatal(err)
		}
		key := "user:12345:profile"
		b.Run("Ring/OwnerIndexString/"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.OwnerIndexString(key)
			}
		})
		bkey := []byte(key)
		b.Run("Ring/OwnerIndex/"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.OwnerIndex(bkey)
			}
		})
	}
}
