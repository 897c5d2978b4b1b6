package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/node/stats"
)

// fakeSource is a node's statistics, as lists.
type fakeSource struct{ general, settings, items, slabs []stats.Stat }

func (f fakeSource) Stats() []stats.Stat    { return f.general }
func (f fakeSource) Settings() []stats.Stat { return f.settings }
func (f fakeSource) Items() []stats.Stat    { return f.items }
func (f fakeSource) Slabs() []stats.Stat    { return f.slabs }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// TestExposition checks the exporter's derived series (set without the
// compare-and-swaps, per-class LRU hits), the cluster gauges, the latency
// histograms and the health checks.
func TestExposition(t *testing.T) {
	notReady := error(nil)
	lat := NewLatency()
	lat.Observe(FamilyGet, ProtocolMeta, 30*time.Microsecond)
	s := New(Config{
		Source: fakeSource{
			general: []stats.Stat{{Name: "version", Value: "1.6.18"}, {Name: "cmd_set", Value: "10"},
				{Name: "cas_hits", Value: "2"}, {Name: "cas_misses", Value: "1"}, {Name: "cas_badval", Value: "3"},
				{Name: "get_hits", Value: "7"}, {Name: "rusage_user", Value: "1.500000"}, {Name: "forwarded", Value: "4"}, {Name: "gossip_dropped", Value: "2"}},
			settings: []stats.Stat{{Name: "maxconns", Value: "1024"}, {Name: "lru_crawler", Value: "no"}},
			items:    []stats.Stat{{Name: "items:3:number", Value: "5"}, {Name: "items:3:hits_to_warm", Value: "6"}},
			slabs:    []stats.Stat{{Name: "3:cmd_set", Value: "9"}, {Name: "3:cas_hits", Value: "1"}, {Name: "3:chunk_size", Value: "152"}, {Name: "total_malloced", Value: "1048576"}},
		},
		Cluster: func() ClusterState {
			return ClusterState{Enabled: true, Members: 3, Version: 7, Share: 0.25, Draining: true}
		},
		Ready:   func() error { return notReady },
		Latency: lat,
		Version: "test",
	})
	h := s.Handler()
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`memcached_up 1`,
		`memcached_version{version="1.6.18"} 1`,
		`memcached_commands_total{command="set",status="hit"} 4`,
		`memcached_commands_total{command="get",status="hit"} 7`,
		`memcached_process_user_cpu_seconds_total 1.5`,
		`memcached_max_connections 1024`,
		`memcached_slab_current_items{slab="3"} 5`,
		`memcached_slab_lru_hits_total{lru="warm",slab="3"} 6`,
		`memcached_slab_commands_total{command="set",slab="3",status="hit"} 8`,
		`memcached_slab_chunk_size_bytes{slab="3"} 152`,
		`memcached_malloced_bytes 1.048576e+06`,
		`memcluster_forwarded_total 4`,
		`memcluster_gossip_dropped_total 2`,
		`memcluster_cluster_members 3`,
		`memcluster_cluster_version 7`,
		`memcluster_ring_share 0.25`,
		`memcluster_draining 1`,
		`memcluster_request_duration_seconds_bucket{family="get",protocol="meta",le="5e-05"} 1`,
		`memcluster_request_duration_seconds_count{family="set",protocol="binary"} 0`,
		`memcluster_build_info{goversion=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "memcached_lru_crawler_enabled") {
		t.Errorf("the crawler's settings are exported with the crawler off")
	}
	if code, body := get(t, h, "/livez"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez: %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz ready: %d %q", code, body)
	}
	notReady = errors.New("not ready: draining")
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || body != "not ready: draining\n" {
		t.Errorf("/readyz draining: %d %q", code, body)
	}
}

// TestObserveAllocates nothing: the request path pays no allocation for
// its latency.
func TestObserveAllocates(t *testing.T) {
	l := NewLatency()
	if n := testing.AllocsPerRun(1000, func() { l.Observe(FamilySet, ProtocolBinary, time.Millisecond) }); n != 0 {
		t.Errorf("Observe: %v allocations", n)
	}
}

// BenchmarkObserve is the cost of one request's latency.
func BenchmarkObserve(b *testing.B) {
	l := NewLatency()
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		l.Observe(FamilyGet, ProtocolText, time.Since(start))
	}
}

// BenchmarkObserveOnly is Observe alone, without reading the clock.
func BenchmarkObserveOnly(b *testing.B) {
	l := NewLatency()
	b.ReportAllocs()
	for b.Loop() {
		l.Observe(FamilyGet, ProtocolText, 30*time.Microsecond)
	}
}
