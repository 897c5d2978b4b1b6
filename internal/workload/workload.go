// Package workload defines the benchmark loads that scripts/bench-memory.sh
// runs over the network (through internal/cmd/mcload) and the store's
// benchmarks run in-process, so that both measure the same thing: keys by
// index, value sizes by key, and Zipf-distributed ranks.
package workload

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Key appends the key of index i to dst, n bytes long: "k" and i in
// decimal, zero-padded. n must leave room for i's digits.
func Key(dst []byte, i uint64, n int) []byte {
	dst = append(dst, 'k')
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], i, 10)
	for j := len(d); j < n-1; j++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// Mix is splitmix64's finalizer: a fixed, well-spread hash of x.
func Mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Value sizes of the hit-ratio workload.
const (
	MinValue = 100
	MaxValue = 1300
)

// ValueSize returns the size of key i's value in the hit-ratio workload,
// uniform over MinValue … MaxValue.
func ValueSize(i uint64) int {
	return MinValue + int(Mix(i)%(MaxValue-MinValue+1))
}

// Zipf is the cumulative distribution of Zipf(θ) over ranks 0 … n-1: rank r
// has probability proportional to 1/(r+1)^θ, for any θ > 0 (math/rand's
// Zipf needs θ > 1). It is read-only once built, so any number of
// goroutines may draw from it, each with its own generator.
type Zipf []float64

// NewZipf returns the distribution of Zipf(theta) over n ranks.
func NewZipf(n uint64, theta float64) Zipf {
	cdf := make(Zipf, n)
	var s float64
	for i := range cdf {
		s += 1 / math.Pow(float64(i+1), theta)
		cdf[i] = s
	}
	for i := range cdf {
		cdf[i] /= s
	}
	return cdf
}

// Draw returns a rank; rank 0 is the most frequent.
func (z Zipf) Draw(rng *rand.Rand) uint64 {
	i, _ := slices.BinarySearch(z, rng.Float64())
	return uint64(min(i, len(z)-1))
}
