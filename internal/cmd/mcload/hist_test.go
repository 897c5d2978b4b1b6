package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The buckets tile the values without gaps or overlaps: each bucket's
// highest value is followed by the next bucket's lowest.
func TestHistBucketsTile(t *testing.T) {
	for b := range histBuckets - 1 {
		high := bucketHigh(b)
		if got := bucketOf(high); got != b {
			t.Fatalf("bucketOf(bucketHigh(%d) = %d) = %d", b, high, got)
		}
		if got := bucketOf(high + 1); got != b+1 {
			t.Fatalf("bucketOf(%d) = %d, want the next bucket %d", high+1, got, b+1)
		}
	}
	if got := bucketOf(^uint64(0)); got != histBuckets-1 {
		t.Fatalf("bucketOf(max) = %d, want the last bucket %d", got, histBuckets-1)
	}
}

// A quantile is never below the exact one from the sorted samples, and
// above it by less than 1/128 of it.
func TestHistQuantileWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 7, 100, 10007} {
		var h hist
		samples := make([]time.Duration, n)
		for i := range samples {
			// Log-uniform from 1 ns to about 1 s, as latencies spread.
			samples[i] = time.Duration(math.Exp2(rng.Float64() * 30))
			h.record(samples[i])
		}
		slices.Sort(samples)
		for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := max(int(math.Ceil(q*float64(n)-1e-9)), 1)
			exact := samples[rank-1]
			got := h.quantile(q)
			if got < exact || float64(got-exact) > float64(exact)/histSub {
				t.Errorf("n=%d q=%v: quantile %v, exact %v", n, q, got, exact)
			}
		}
		if got := h.quantile(1); got != samples[n-1] {
			t.Errorf("n=%d: quantile(1) = %v, want the maximum %v", n, got, samples[n-1])
		}
	}
}

func TestHistMergeAndEmpty(t *testing.T) {
	var a, b, empty hist
	if got := empty.quantile(0.99); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}
	for i := range 99 {
		a.record(time.Duration(i + 1))
	}
	b.record(time.Second)
	a.merge(&b)
	if a.total != 100 {
		t.Fatalf("merged total %d, want 100", a.total)
	}
	if got := a.quantile(0.99); got != 99 {
		t.Errorf("p99 = %v, want 99ns", got)
	}
	if got := a.quantile(0.999); got != time.Second {
		t.Errorf("p99.9 = %v, want 1s", got)
	}
}

func TestHistRecordDoesNotAllocate(t *testing.T) {
	var h hist
	if n := testing.AllocsPerRun(1000, func() { h.record(1234567) }); n != 0 {
		t.Errorf("record allocates %v times", n)
	}
}
