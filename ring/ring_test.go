package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/memcluster/memcluster/internal/testutil"
)

// The bounds the issue sets, which the property tests assert. What they
// measured is in the package doc; run the tests with -v to see it again.
const (
	maxPeakToMean = 1.10 // peak/mean load, every member count 3..100
	maxMoveRatio  = 1.10 // keys moved on a join or leave / the ideal share
)

// A family of members: what the i'th member of a cluster is called.
type family struct {
	name   string
	member func(i int) Member
}

var families = []family{
	{"named", func(i int) Member {
		return Member{
			Name: "node-" + strconv.Itoa(i),
			Host: fmt.Sprintf("node-%d.memcluster.default.svc.cluster.local", i),
			IP:   fmt.Sprintf("10.0.%d.%d", i/256, i%256),
			Port: 11211,
		}
	}},
	// Named by their entry, as ParseClusterConfig names them: several
	// nodes on one loopback address.
	{"loopback", func(i int) Member {
		return Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: 20000 + i}
	}},
}

func (f family) members(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = f.member(i)
	}
	return ms
}

func mustNew(t testing.TB, ms []Member) *Ring {
	t.Helper()
	r, err := New(ms)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sampleHashes returns the hashes of n random keys, the same every run.
var sampleHashes = sync.OnceValue(func() []uint64 {
	rng := rand.New(rand.NewPCG(3, 11))
	hs := make([]uint64, 1<<20)
	var buf []byte
	for i := range hs {
		buf = strconv.AppendUint(append(buf[:0], "key:"...), rng.Uint64(), 36)
		hs[i] = xxhash.Sum64(buf)
	}
	return hs
})

// exactShares returns the fraction of the circle each member owns: half the
// gap to each neighbouring point, summed over its points.
func exactShares(r *Ring) []float64 {
	s := make([]float64, r.Len())
	n := len(r.entries)
	for i, e := range r.entries {
		prev := r.entries[(i+n-1)%n] &^ ownerMask
		next := r.entries[(i+1)%n] &^ ownerMask
		p := e &^ ownerMask
		s[e&ownerMask] += (float64(p-prev) + float64(next-p)) / 2 / 0x1p64
	}
	return s
}

// sampledLoads counts the sample keys each member owns.
func sampledLoads(r *Ring, hs []uint64) []int {
	c := make([]int, r.Len())
	for _, h := range hs {
		c[r.owner(h)]++
	}
	return c
}

// exactTables holds, for each family, the exact shares of the rings of 3 to
// 100 of its members, by family index in the second dimension: both
// TestBalance and TestMovement read them.
var exactTables sync.Map // family name → func() [][]float64

func exactTable(t *testing.T, f family) [][]float64 {
	v, _ := exactTables.LoadOrStore(f.name, sync.OnceValue(func() [][]float64 {
		tab := make([][]float64, 101)
		for n := 3; n <= 100; n++ {
			r := mustNew(t, f.members(n))
			byRing := exactShares(r)
			byFamily := make([]float64, n)
			for i, id := range ids(r, f, n) {
				byFamily[id] = byRing[i]
			}
			tab[n] = byFamily
		}
		return tab
	}))
	return v.(func() [][]float64)()
}

// sampledCounts are the member counts the tests also check over 1M random
// keys: fewer under the race detector, which slows lookups tenfold.
func sampledCounts(normal, race []int) map[int]bool {
	if raceEnabled {
		normal = race
	}
	m := map[int]bool{}
	for _, n := range normal {
		m[n] = true
	}
	return m
}

// TestBalance checks peak/mean load for every member count from 3 to 100:
// exactly, from the points, and over 1M random keys for a spread of counts.
func TestBalance(t *testing.T) {
	sampled := sampledCounts([]int{3, 4, 5, 7, 10, 16, 25, 33, 50, 64, 77, 99, 100}, []int{3, 10, 50, 100})
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			hs := sampleHashes()
			tab := exactTable(t, f)
			worstExact, worstExactN := 0.0, 0
			worstSampled, worstSampledN := 0.0, 0
			for n := 3; n <= 100; n++ {
				ratio := slices.Max(tab[n]) * float64(n)
				if ratio > maxPeakToMean {
					t.Errorf("%d members: exact peak/mean %.4f, want at most %.2f", n, ratio, maxPeakToMean)
				}
				if ratio > worstExact {
					worstExact, worstExactN = ratio, n
				}
				if !sampled[n] {
					continue
				}
				loads := sampledLoads(mustNew(t, f.members(n)), hs)
				ratio = float64(slices.Max(loads)) * float64(n) / float64(len(hs))
				if ratio > maxPeakToMean {
					t.Errorf("%d members: peak/mean over %d keys %.4f, want at most %.2f", n, len(hs), ratio, maxPeakToMean)
				}
				if ratio > worstSampled {
					worstSampled, worstSampledN = ratio, n
				}
			}
			t.Logf("worst peak/mean: exact %.4f (%d members), over %d keys %.4f (%d members)",
				worstExact, worstExactN, len(hs), worstSampled, worstSampledN)
		})
	}
}

// ids maps each member index of r to its index i in family f.
func ids(r *Ring, f family, n int) []int {
	byName := map[string]int{}
	for i := range n {
		byName[f.member(i).key()] = i
	}
	out := make([]int, r.Len())
	for i := range out {
		out[i] = byName[r.Member(i).Name]
	}
	return out
}

// moves counts the sample keys whose owner differs between rings a and b,
// and fails the test for any key that moves but neither to joined nor from
// left. aid and bid map each ring's member indexes to family indexes.
func moves(t *testing.T, hs []uint64, a, b *Ring, aid, bid []int, joined, left int) int {
	t.Helper()
	moved, bad := 0, 0
	for _, h := range hs {
		from, to := aid[a.owner(h)], bid[b.owner(h)]
		if from == to {
			continue
		}
		moved++
		if to != joined && from != left {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d keys moved between members that both stayed", bad, len(hs))
	}
	return moved
}

// TestMovement checks that a join or a leave moves at most maxMoveRatio
// times the ideal share of keys, and never a key between two members that
// both stayed. For every member count, exactly: a join moves the joiner's
// share and a leave the leaver's, and for a spread of counts over 1M random
// keys, which also shows that no other key moves.
func TestMovement(t *testing.T) {
	sampled := sampledCounts([]int{3, 4, 6, 10, 20, 32, 50, 99}, []int{3, 20, 99})
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			hs := sampleHashes()
			tab := exactTable(t, f)
			worstJoin, worstLeave := 0.0, 0.0
			worstJoinS, worstLeaveS := 0.0, 0.0
			for n := 3; n < 100; n++ {
				// Join: member n joins members 0..n-1.
				ratio := tab[n+1][n] * float64(n+1)
				if ratio > maxMoveRatio {
					t.Errorf("join to %d members: moves %.4f of the ideal share, want at most %.2f", n, ratio, maxMoveRatio)
				}
				worstJoin = max(worstJoin, ratio)
				// Leave: any of members 0..n leaves.
				ratio = slices.Max(tab[n+1]) * float64(n+1)
				if ratio > maxMoveRatio {
					t.Errorf("leave from %d members: moves %.4f of the ideal share, want at most %.2f", n+1, ratio, maxMoveRatio)
				}
				worstLeave = max(worstLeave, ratio)

				if !sampled[n] {
					continue
				}
				small := mustNew(t, f.members(n))
				big := mustNew(t, f.members(n+1))
				leaver := n / 2
				after := mustNew(t, slices.Delete(f.members(n+1), leaver, leaver+1))
				sid, bid, aid := ids(small, f, n), ids(big, f, n+1), ids(after, f, n+1)
				m := moves(t, hs, small, big, sid, bid, n, -1)
				ratio = float64(m) / float64(len(hs)) * float64(n+1)
				if ratio > maxMoveRatio {
					t.Errorf("join to %d members: %d of %d keys moved, %.4f of the ideal share", n, m, len(hs), ratio)
				}
				worstJoinS = max(worstJoinS, ratio)
				m = moves(t, hs, big, after, bid, aid, -1, leaver)
				ratio = float64(m) / float64(len(hs)) * float64(n+1)
				if ratio > maxMoveRatio {
					t.Errorf("leave from %d members: %d of %d keys moved, %.4f of the ideal share", n+1, m, len(hs), ratio)
				}
				worstLeaveS = max(worstLeaveS, ratio)
			}
			t.Logf("worst moved/ideal: join %.4f, leave %.4f exactly; join %.4f, leave %.4f over %d keys",
				worstJoin, worstLeave, worstJoinS, worstLeaveS, len(hs))
		})
	}
}

// TestOrderIndependence checks that any order of the same members gives the
// same ring.
func TestOrderIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	for _, f := range families {
		for _, n := range []int{1, 2, 3, 17, 100} {
			ms := f.members(n)
			want := mustNew(t, ms)
			for range 5 {
				rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
				got := mustNew(t, ms)
				if !slices.Equal(got.members, want.members) || !slices.Equal(got.entries, want.entries) ||
					!slices.Equal(got.index, want.index) || got.shift != want.shift {
					t.Fatalf("%s, %d members: order %v gives a different ring", f.name, n, ms)
				}
			}
		}
	}
}

// TestOwnerNearest checks lookups against a scan of every point: the owner
// is the member with the point nearest the key, ties going clockwise,
// including keys on, between, before and after the points.
func TestOwnerNearest(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		r := mustNew(t, families[0].members(n))
		hs := slices.Clone(sampleHashes()[:2000])
		hs = append(hs, 0, ownerMask, 1<<63, ^uint64(0))
		for _, i := range []int{0, 1, len(r.entries) / 2, len(r.entries) - 1} {
			p := r.entries[i] &^ ownerMask
			q := r.entries[(i+1)%len(r.entries)] &^ ownerMask
			mid := p + (q-p)/2
			hs = append(hs, p, p+1, p-1, p|ownerMask, q-1, mid, mid+1<<ownerBits, mid-1<<ownerBits)
		}
		for _, h := range hs {
			if got, want := r.owner(h), nearestScan(r, h); got != want {
				t.Errorf("%d members, hash %#x: owner %d, want %d", n, h, got, want)
			}
		}
	}
}

// nearestScan is owner done the slow way.
func nearestScan(r *Ring, h uint64) int {
	t := h &^ ownerMask
	best, bestDist, bestCW := -1, uint64(0), false
	for _, e := range r.entries {
		p := e &^ ownerMask
		cw, ccw := p-t, t-p
		d, isCW := cw, true
		if ccw < cw {
			d, isCW = ccw, false
		}
		if best < 0 || d < bestDist || d == bestDist && isCW && !bestCW {
			best, bestDist, bestCW = int(e&ownerMask), d, isCW
		}
	}
	return best
}

// TestSamePosition checks that two members with a point at the same place
// leave it to the one whose Name sorts first, whichever order the points
// came in, and that it passes to the other when that one leaves.
func TestSamePosition(t *testing.T) {
	const pos = 0x1234_5678_9abc << ownerBits
	far := uint64(pos + 1<<62)
	for _, raw := range [][]uint64{
		{pos | 1, pos | 0, far | 0, far + 1<<ownerBits | 1},
		{far | 0, pos | 0, pos | 1, far + 1<<ownerBits | 1},
	} {
		var r Ring
		r.build(raw)
		if len(r.entries) != 3 {
			t.Fatalf("entries %x, want 3 points", r.entries)
		}
		for _, h := range []uint64{pos, pos - 1<<ownerBits, pos + 1<<ownerBits} {
			if got := r.owner(h); got != 0 {
				t.Errorf("points %x: owner of %#x is %d, want 0", raw, h, got)
			}
		}
		var left Ring
		left.build([]uint64{pos | 1, far + 1<<ownerBits | 1})
		if got := left.owner(pos); got != 1 {
			t.Errorf("member 0 gone: owner of %#x is %d, want 1", uint64(pos), got)
		}
	}
}

// TestOwnerGolden pins the ring's definition: every node and client must
// place keys alike, so a change here breaks mixed-version clusters.
func TestOwnerGolden(t *testing.T) {
	r := mustNew(t, families[1].members(5))
	got := map[string]int{}
	for _, k := range []string{"a", "foo", "user:42", "session:7f3a", ""} {
		got[k] = r.OwnerString(k).Port
	}
	want := map[string]int{"a": 20002, "foo": 20000, "user:42": 20002, "session:7f3a": 20001, "": 20002}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("owners %v, want %v", got, want)
	}
	// The owners of k0 … k9999 among 10 named members, digested.
	r = mustNew(t, families[0].members(10))
	d := xxhash.New()
	for i := range 10000 {
		d.WriteString(r.OwnerString("k" + strconv.Itoa(i)).Name)
	}
	if got, want := d.Sum64(), uint64(0x25f0f19a910444c4); got != want {
		t.Errorf("owners of k0…k9999 digest to %#x, want %#x", got, want)
	}
}

func TestOwnerVariants(t *testing.T) {
	r := mustNew(t, families[0].members(10))
	for i := range 1000 {
		k := "k" + strconv.Itoa(i)
		i := r.OwnerIndexString(k)
		if j := r.OwnerIndex([]byte(k)); j != i {
			t.Fatalf("OwnerIndex(%q) = %d, OwnerIndexString = %d", k, j, i)
		}
		if m, want := r.Owner([]byte(k)), r.Member(i); m != want {
			t.Fatalf("Owner(%q) = %v, want %v", k, m, want)
		}
		if m, want := r.OwnerString(k), r.Member(i); m != want {
			t.Fatalf("OwnerString(%q) = %v, want %v", k, m, want)
		}
	}
}

func TestEmptyRing(t *testing.T) {
	for name, r := range map[string]*Ring{"nil": nil, "zero": {}, "New(nil)": mustNew(t, nil)} {
		if got := r.OwnerIndexString("k"); got != -1 {
			t.Errorf("%s: OwnerIndexString = %d, want -1", name, got)
		}
		if got := r.Owner([]byte("k")); got != (Member{}) {
			t.Errorf("%s: Owner = %v, want the zero Member", name, got)
		}
		if r.Len() != 0 || r.Members() != nil {
			t.Errorf("%s: Len %d, Members %v, want 0 and nil", name, r.Len(), r.Members())
		}
	}
}

func TestNewNames(t *testing.T) {
	in := []Member{{Name: "b", Host: "h", Port: 1}, {Host: "a", IP: "::1", Port: 2}}
	r := mustNew(t, in)
	want := []Member{{Name: "a|::1|2", Host: "a", IP: "::1", Port: 2}, {Name: "b", Host: "h", Port: 1}}
	if got := r.Members(); !reflect.DeepEqual(got, want) {
		t.Errorf("Members() = %v, want %v", got, want)
	}
	if in[1].Name != "" {
		t.Errorf("New changed its argument: %v", in)
	}
}

func TestNewErrors(t *testing.T) {
	ok := Member{Host: "h", IP: "10.0.0.1", Port: 11211}
	tooMany := make([]Member, MaxMembers+1)
	for i := range tooMany {
		tooMany[i] = Member{Host: "h", Port: i + 1}
	}
	for name, ms := range map[string][]Member{
		"no address":        {{Name: "a", Port: 1}},
		"port 0":            {{Host: "h"}},
		"port 65536":        {{Host: "h", Port: 65536}},
		"space in host":     {{Host: "h h", Port: 1}},
		"bar in host":       {{Host: "h|", Port: 1}},
		"control in host":   {{Host: "h\n", Port: 1}},
		"long host":         {{Host: string(make([]byte, MaxHostLen+1)), Port: 1}},
		"bad ip":            {{IP: "10.0.0.256", Port: 1}},
		"host in ip":        {{IP: "localhost", Port: 1}},
		"same name":         {ok, {Name: ok.Entry(), Host: "x", Port: 1}},
		"same entry":        {ok, ok},
		"too many":          tooMany,
		"one bad among two": {ok, {Host: "", Port: 1}},
	} {
		if _, err := New(ms); !errors.Is(err, ErrInvalidMember) {
			t.Errorf("%s: New error %v, want ErrInvalidMember", name, err)
		}
	}
}

func TestMemberAddr(t *testing.T) {
	for _, c := range []struct {
		m    Member
		want string
	}{
		{Member{Host: "h", IP: "10.0.0.1", Port: 11211}, "10.0.0.1:11211"},
		{Member{Host: "h", Port: 11211}, "h:11211"},
		{Member{IP: "::1", Port: 1}, "[::1]:1"},
	} {
		if got := c.m.Addr(); got != c.want {
			t.Errorf("%v.Addr() = %q, want %q", c.m, got, c.want)
		}
	}
}

func TestOwnerAllocs(t *testing.T) {
	r := mustNew(t, families[0].members(100))
	key := []byte("user:12345")
	testutil.NoAllocs(t, "Owner", 1000, func() { r.Owner(key); r.OwnerString("user:12345") })
}

// randomKeys returns 64Ki keys shaped like an application's.
func randomKeys() [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%d:profile", rng.Uint64())
	}
	return keys
}

func benchOwner(n int) func(b *testing.B) {
	return func(b *testing.B) {
		r := mustNew(b, families[0].members(n))
		keys := randomKeys()
		b.ReportAllocs()
		sum := 0
		for i := 0; b.Loop(); i++ {
			sum += r.Owner(keys[i&(len(keys)-1)]).Port
		}
		_ = sum
	}
}

func BenchmarkOwner(b *testing.B) {
	for _, n := range []int{3, 10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), benchOwner(n))
	}
}

func BenchmarkOwnerString(b *testing.B) {
	r := mustNew(b, families[0].members(100))
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i*7919) + ":profile"
	}
	b.ReportAllocs()
	sum := 0
	for i := 0; b.Loop(); i++ {
		sum += r.OwnerIndexString(keys[i&(len(keys)-1)])
	}
	_ = sum
}

func BenchmarkNew(b *testing.B) {
	ms := families[0].members(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(ms); err != nil {
			b.Fatal(err)
		}
	}
}

// TestShares checks Shares against the owners of a million random keys,
// in both modes.
func TestShares(t *testing.T) {
	var ms []Member
	for i := range 5 {
		ms = append(ms, Member{Host: "10.0.0." + strconv.Itoa(i+1), IP: "10.0.0." + strconv.Itoa(i+1), Port: 11211})
	}
	for _, mode := range []Mode{ModeMemcluster, ModeKetama} {
		r, err := NewMode(ms, mode)
		if err != nil {
			t.Fatal(err)
		}
		shares := r.Shares()
		sum := 0.0
		for _, s := range shares {
			sum += s
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("%v: shares sum to %v", mode, sum)
		}
		const n = 1 << 20
		counts := make([]int, len(ms))
		rnd := rand.New(rand.NewPCG(1, 2))
		var key [16]byte
		for range n {
			binary.LittleEndian.PutUint64(key[:], rnd.Uint64())
			binary.LittleEndian.PutUint64(key[8:], rnd.Uint64())
			counts[r.OwnerIndex(key[:])]++
		}
		for i, s := range shares {
			if got := float64(counts[i]) / n; math.Abs(got-s) > 0.005 {
				t.Errorf("%v: member %d owns %.4f of random keys, Shares says %.4f", mode, i, got, s)
			}
		}
	}
	if s := (*Ring)(nil).Shares(); s != nil {
		t.Errorf("nil ring: %v", s)
	}
}
