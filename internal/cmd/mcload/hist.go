package main

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits sets a histogram's precision: each power of two is split into
// 2^histSubBits buckets, so a recorded value is known to within 1/128 of
// itself (below 256 ns, exactly).
const histSubBits = 7

const (
	histSub     = 1 << histSubBits
	histBuckets = (64-histSubBits-1)*histSub + 2*histSub
)

// hist is a log-linear histogram of durations in nanoseconds, in the manner
// of HdrHistogram: recording is an index computation and an increment, with
// no allocation, and a quantile is reported as the highest value of its
// bucket (never below the true quantile, and above it by less than 1/128).
// The zero value is empty and ready to use; it is not safe for concurrent
// use (each connection keeps its own and they are merged at the end).
type hist struct {
	counts [histBuckets]uint64
	total  uint64
	max    uint64
}

// bucketOf returns the index of v's bucket. Values below 2·histSub have a
// bucket each; above, a value whose highest bit is bit k (k ≥ histSubBits+1)
// falls in one of histSub buckets of width 2^(k-histSubBits).
func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return shift*histSub + int(v>>shift)
}

// bucketHigh returns the highest value that falls in bucket b.
func bucketHigh(b int) uint64 {
	if b < 2*histSub {
		return uint64(b)
	}
	shift := b/histSub - 1
	m := uint64(b - shift*histSub)
	return (m+1)<<shift - 1
}

// record adds one duration (negative ones count as zero).
func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.total++
	h.max = max(h.max, v)
}

// merge adds o's counts to h's.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the smallest recorded value's bucket bound below which
// at least the fraction q of the values lie (0 for an empty histogram),
// never more than the largest value recorded.
func (h *hist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	// rank is the 1-based position of the quantile's value in sorted
	// order: ceil(q·total), at least 1, forgiving the rounding error of
	// q·total (0.99·100 must be rank 99, not 100).
	rank := uint64(max(math.Ceil(q*float64(h.total)-1e-9), 1))
	rank = min(rank, h.total)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketHigh(b), h.max))
		}
	}
	return time.Duration(h.max)
}
