package store

import (
	"math/rand/v2"
	"testing"

	"github.com/memcluster/memcluster/internal/workload"
)

// The lazy-loading workload of scripts/bench-memory.sh (internal/cmd/mcload
// hitratio), run on a Store in-process, so that eviction policies can be
// compared in seconds: Zipf(0.99) keys over a million ranks, 16-byte keys,
// values of 100 to 1300 bytes by rank (internal/workload), get and on a miss
// set, at 64 MiB.
const (
	hitKeys     = 1_000_000
	hitTheta    = 0.99
	hitWarmup   = 1_000_000
	hitRequests = 1_500_000
)

// lazyLoadHitRatio runs the workload on s and returns the hit ratio after
// the warm-up.
func lazyLoadHitRatio(s *Store, zipf workload.Zipf, rng *rand.Rand) float64 {
	value := make([]byte, workload.MaxValue)
	key := make([]byte, 0, 16)
	buf := make([]byte, 0, workload.MaxValue)
	hits := 0
	for i := range hitWarmup + hitRequests {
		r := zipf.Draw(rng)
		key = workload.Key(key[:0], r, 16)
		var lk Lookup
		buf, _, lk = s.Get(key, buf[:0])
		if lk == Hit {
			if i >= hitWarmup {
				hits++
			}
			continue
		}
		s.Set(ModeSet, key, value[:workload.ValueSize(r)], 0, 0, 0)
	}
	return float64(hits) / hitRequests
}

// BenchmarkHitRatio reports the hit ratio of the lazy-loading workload
// (hit-ratio) at 64 MiB; ns/op is one whole run.
func BenchmarkHitRatio(b *testing.B) {
	zipf := workload.NewZipf(hitKeys, hitTheta)
	for b.Loop() {
		s := New(Config{MaxBytes: 64 << 20})
		ratio := lazyLoadHitRatio(s, zipf, rand.New(rand.NewPCG(1, 2)))
		s.Close()
		b.ReportMetric(ratio, "hit-ratio")
	}
}
