package workload

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		i    uint64
		n    int
		want string
	}{
		{0, 16, "k000000000000000"},
		{1234567, 16, "k000000001234567"},
		{42, 4, "k042"},
	} {
		if got := string(Key(nil, tc.i, tc.n)); got != tc.want {
			t.Errorf("Key(%d, %d) = %q, want %q", tc.i, tc.n, got, tc.want)
		}
	}
}

func TestValueSize(t *testing.T) {
	lo, hi := MaxValue, MinValue
	for i := range uint64(100000) {
		s := ValueSize(i)
		if s != ValueSize(i) {
			t.Fatalf("ValueSize(%d) is not deterministic", i)
		}
		lo, hi = min(lo, s), max(hi, s)
	}
	if lo != MinValue || hi != MaxValue {
		t.Errorf("sizes span %d … %d, want %d … %d", lo, hi, MinValue, MaxValue)
	}
}

// TestZipf checks the frequencies of the first ranks against 1/(r+1)^θ / Σ.
func TestZipf(t *testing.T) {
	const (
		n     = 1000
		theta = 0.99
		draws = 200000
	)
	cdf := NewZipf(n, theta)
	rng := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	for range draws {
		r := cdf.Draw(rng)
		if r >= n {
			t.Fatalf("rank %d out of range", r)
		}
		counts[r]++
	}
	var sum float64
	for r := range n {
		sum += 1 / math.Pow(float64(r+1), theta)
	}
	for r := range 5 {
		want := draws / math.Pow(float64(r+1), theta) / sum
		if got := float64(counts[r]); math.Abs(got-want) > 0.05*want {
			t.Errorf("rank %d drawn %v times, want about %.0f", r, got, want)
		}
	}
	a, b := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	for range 100 {
		if x, y := cdf.Draw(a), cdf.Draw(b); x != y {
			t.Fatalf("same seed, ranks %d and %d", x, y)
		}
	}
}
