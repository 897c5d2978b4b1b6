package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// The lazy-loading workload of scripts/bench-memory.sh (internal/cmd/mcload
// hitratio), run on a Store in-process, so that eviction policies can be
// compared in seconds: Zipf(0.99) keys over a million ranks, 16-byte keys,
// values of 100 to 1300 bytes by rank, get and on a miss set, at 64 MiB.
const (
	hitKeys     = 1_000_000
	hitTheta    = 0.99
	hitWarmup   = 1_000_000
	hitRequests = 1_500_000
	hitMinValue = 100
	hitMaxValue = 1300
)

// zipfRanks is the cumulative distribution of Zipf(θ) over n ranks.
func zipfRanks(n int, theta float64) []float64 {
	cdf := make([]float64, n)
	var sum float64
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), theta)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return cdf
}

// mix is splitmix64's finalizer, as mcload sizes values by it.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// lazyLoadHitRatio runs the workload on s and returns the hit ratio after
// the warm-up.
func lazyLoadHitRatio(s *Store, cdf []float64, rng *rand.Rand) float64 {
	value := make([]byte, hitMaxValue)
	key := make([]byte, 0, 16)
	buf := make([]byte, 0, hitMaxValue)
	hits := 0
	for i := range hitWarmup + hitRequests {
		r, _ := slices.BinarySearch(cdf, rng.Float64())
		r = min(r, len(cdf)-1)
		key = append(key[:0], 'k')
		digits := strconv.AppendUint(nil, uint64(r), 10)
		for range 15 - len(digits) {
			key = append(key, '0')
		}
		key = append(key, digits...)
		var lk Lookup
		buf, _, lk = s.Get(key, buf[:0])
		if lk == Hit {
			if i >= hitWarmup {
				hits++
			}
			continue
		}
		size := hitMinValue + int(mix(uint64(r))%(hitMaxValue-hitMinValue+1))
		s.Set(ModeSet, key, value[:size], 0, 0, 0)
	}
	return float64(hits) / hitRequests
}

// BenchmarkHitRatio reports the hit ratio of the lazy-loading workload
// (hit-ratio) at 64 MiB; ns/op is one whole run.
func BenchmarkHitRatio(b *testing.B) {
	cdf := zipfRanks(hitKeys, hitTheta)
	for b.Loop() {
		s := New(Config{MaxBytes: 64 << 20})
		ratio := lazyLoadHitRatio(s, cdf, rand.New(rand.NewPCG(1, 2)))
		s.Close()
		b.ReportMetric(ratio, "hit-ratio")
	}
}
