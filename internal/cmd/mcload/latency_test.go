package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/tlstest"
)

// checkLoad asserts what every prefilled latency run must show.
func checkLoad(t *testing.T, res *latencyResult, conns int) {
	t.Helper()
	if res.gets == 0 || res.sets == 0 {
		t.Errorf("gets %d, sets %d: want both in a 10:1 mix", res.gets, res.sets)
	}
	if res.misses != 0 {
		t.Errorf("%d misses after filling every key", res.misses)
	}
	if res.latency.total != res.ops() {
		t.Errorf("%d latencies recorded for %d requests", res.latency.total, res.ops())
	}
	p50, p99, p999 := res.latency.quantile(0.5), res.latency.quantile(0.99), res.latency.quantile(0.999)
	if !(0 < p50 && p50 <= p99 && p99 <= p999) {
		t.Errorf("p50 %v, p99 %v, p99.9 %v: want 0 < p50 ≤ p99 ≤ p99.9", p50, p99, p999)
	}
	if res.elapsed < 200*time.Millisecond || res.cpu <= 0 {
		t.Errorf("elapsed %v, cpu %v: want the 200ms asked for and some CPU", res.elapsed, res.cpu)
	}
	var out strings.Builder
	res.print(&out)
	if f := strings.Fields(out.String()); len(f) != 22 || f[0] != "ops" || f[20] != "seconds" {
		t.Errorf("printed %q: want 11 name value pairs from ops to seconds", out.String())
	}
}

func TestLatencyAgainstNode(t *testing.T) {
	srv := servertest.StartMemcluster(t, "-m", "64")
	res, err := latency(latencyConfig{
		addr: srv.Addr, conns: 4, keys: 200, keyLen: 16, valueLen: 4096,
		gets: 10, sets: 1, duration: 200 * time.Millisecond, fill: true, seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, res, 4)
}

func TestLatencyOverTLSAgainstMemcached(t *testing.T) {
	certs := tlstest.NewFiles(t, "mcload test CA")
	srv := servertest.StartMemcached(t, "-Z", "-o", "ssl_chain_cert="+certs.CertFile+",ssl_key="+certs.KeyFile)
	res, err := latency(latencyConfig{
		addr: srv.Addr, tls: certs.ClientConfig(nil), conns: 3, keys: 100, keyLen: 16, valueLen: 100,
		gets: 10, sets: 1, duration: 200 * time.Millisecond, fill: true, seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkLoad(t, res, 3)
}

// Without the fill, every get of an empty server misses, and the count
// says so.
func TestLatencyCountsMisses(t *testing.T) {
	srv := servertest.StartMemcached(t)
	res, err := latency(latencyConfig{
		addr: srv.Addr, conns: 2, keys: 1000, keyLen: 16, valueLen: 10,
		gets: 1, sets: 0, duration: 50 * time.Millisecond, seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.gets == 0 || res.misses != res.gets || res.sets != 0 {
		t.Errorf("gets %d, misses %d, sets %d: want every get a miss, no set", res.gets, res.misses, res.sets)
	}
}

func TestParseRatio(t *testing.T) {
	for _, tc := range []struct {
		in         string
		gets, sets int
		ok         bool
	}{
		{"10:1", 10, 1, true}, {"1:0", 1, 0, true}, {"0:1", 0, 1, true},
		{"0:0", 0, 0, false}, {"10", 0, 0, false}, {"a:1", 0, 0, false}, {"1:-1", 0, 0, false},
	} {
		g, s, err := parseRatio(tc.in)
		if (err == nil) != tc.ok || g != tc.gets || s != tc.sets {
			t.Errorf("parseRatio(%q) = %d, %d, %v; want %d, %d, ok %v", tc.in, g, s, err, tc.gets, tc.sets, tc.ok)
		}
	}
}

// readValue parses a hit, with or without a CAS, and a miss, without
// allocating, and rejects a malformed length.
func TestReadValue(t *testing.T) {
	replies := []byte("VALUE k 0 5\r\nhello\r\nEND\r\nVALUE key 7 3 99\r\nabc\r\nEND\r\nEND\r\n")
	var r bytes.Reader
	c := &conn{r: bufio.NewReader(&r)}
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(replies)
		c.r.Reset(&r)
		for _, want := range []struct {
			size int
			hit  bool
		}{{5, true}, {3, true}, {0, false}} {
			size, hit, err := c.readValue()
			if err != nil || size != want.size || hit != want.hit {
				t.Fatalf("readValue = %d, %v, %v; want %d, %v", size, hit, err, want.size, want.hit)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("readValue allocates %v times per three replies", allocs)
	}
	for _, bad := range []string{"VALUE k 0 x\r\n", "VALUE k 0\r\n", "VALUE k 0 99999999999\r\n", "ERROR\r\n"} {
		c.r.Reset(strings.NewReader(bad))
		if _, _, err := c.readValue(); err == nil {
			t.Errorf("readValue accepted %q", bad)
		}
	}
}
