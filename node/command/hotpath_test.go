package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node/metrics"
	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/protocol"
)

// The request path as memcaslap drives it: 64-byte keys, 100-byte values,
// gets and sets 9:1. These benchmarks serve a pipelined batch of such
// requests through a connection over a fake net.Conn; they must report 0
// allocs/op.

const (
	hotKeys     = 100
	hotValueLen = 100
)

// hotKey is the i-th key: 64 bytes, as memcaslap's.
func hotKey(i int) string {
	return fmt.Sprintf("%064d", i)
}

// hotMemoryLimit is the hot servers' store: small, so that a test's warm-up
// fills it and its pages are reused from then on, as in a node that has run
// a while, rather than allocated as the first sets of a fresh one need them.
const hotMemoryLimit = 1 << 20

// newHotServer returns a server holding every hot key.
func newHotServer(tb testing.TB) *testServer {
	s := newTestServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MemoryLimit: hotMemoryLimit})
	tb.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	value := bytes.Repeat([]byte("v"), hotValueLen)
	for i := range hotKeys {
		s.store.Set(store.ModeSet, []byte(hotKey(i)), value, 0, 0, 0)
	}
	return s
}

// hotBinaryRequests are 9 Gets and a Set of round r, one request each as
// memcaslap sends them (no quiet opcodes).
func hotBinaryRequests(r int) [][]byte {
	value := strings.Repeat("w", hotValueLen)
	var reqs [][]byte
	for i := range 9 {
		reqs = append(reqs, binReq(protocol.OpGet, uint32(i), 0, "", hotKey((r*10+i)%hotKeys), ""))
	}
	return append(reqs, binReq(protocol.OpSet, 9, 0, binStorageExtras(0, 0), hotKey((r*10+9)%hotKeys), value))
}

// hotTextRequests is hotBinaryRequests in the text protocol.
func hotTextRequests(r int) [][]byte {
	value := strings.Repeat("w", hotValueLen)
	var reqs [][]byte
	for i := range 9 {
		reqs = append(reqs, []byte("get "+hotKey((r*10+i)%hotKeys)+"\r\n"))
	}
	return append(reqs, []byte("set "+hotKey((r*10+9)%hotKeys)+" 0 0 "+strconv.Itoa(hotValueLen)+"\r\n"+value+"\r\n"))
}

// hotBatch is the requests of rounds 0 to n-1.
func hotBatch(requests func(int) [][]byte, n int) [][]byte {
	var reqs [][]byte
	for r := range n {
		reqs = append(reqs, requests(r)...)
	}
	return reqs
}

// benchmarkHot serves b.N requests, reqs after reqs, over one connection,
// with the latency histograms off and on (--metrics-addr): ns/op and
// allocs/op are per request.
func benchmarkHot(b *testing.B, reqs [][]byte, pipelined bool, serve func(*session)) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", on), func(b *testing.B) { benchmarkHotServer(b, reqs, pipelined, serve, on) })
	}
}

func benchmarkHotServer(b *testing.B, reqs [][]byte, pipelined bool, serve func(*session), latency bool) {
	fc := &testutil.ReplayConn{Requests: reqs, Pipelined: pipelined}
	s := newHotServer(b)
	if latency {
		s.Handler.latency = metrics.NewLatency()
	}
	c := newTestSession(s, fc)
	run := func(rounds int) {
		fc.Rewind(rounds)
		serve(c)
	}
	run(1) // grow the buffers
	if fc.Written == 0 {
		b.Fatal("no replies written")
	}
	size := 0
	for _, r := range reqs {
		size += len(r)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size / len(reqs)))
	b.ResetTimer()
	run((b.N + len(reqs) - 1) / len(reqs))
}

// BenchmarkBinaryGetSet: memcaslap's binary load, pipelined.
func BenchmarkBinaryGetSet(b *testing.B) {
	benchmarkHot(b, hotBatch(hotBinaryRequests, 10), true, (*session).serveBinary)
}

// BenchmarkBinaryGetSetOneByOne: memcaslap's binary load, one request per
// read and one write per reply, as memcaslap drives a connection.
func BenchmarkBinaryGetSetOneByOne(b *testing.B) {
	benchmarkHot(b, hotBatch(hotBinaryRequests, 10), false, (*session).serveBinary)
}

// BenchmarkTextGetSet: memcaslap's text load, pipelined.
func BenchmarkTextGetSet(b *testing.B) {
	benchmarkHot(b, hotBatch(hotTextRequests, 10), true, (*session).serveText)
}

// BenchmarkTextGetSetOneByOne: memcaslap's text load, one request per
// read.
func BenchmarkTextGetSetOneByOne(b *testing.B) {
	benchmarkHot(b, hotBatch(hotTextRequests, 10), false, (*session).serveText)
}

// TestHotPathAllocations: the binary and text get/set paths allocate
// nothing per request in steady state, pipelined or not, with the latency
// histograms (--metrics-addr) or without.
func TestHotPathAllocations(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requests  func(int) [][]byte
		pipelined bool
		serve     func(*session)
		latency   bool
	}{
		{"binary", hotBinaryRequests, true, (*session).serveBinary, false},
		{"binary one by one", hotBinaryRequests, false, (*session).serveBinary, false},
		{"text", hotTextRequests, true, (*session).serveText, false},
		{"text one by one", hotTextRequests, false, (*session).serveText, false},
		{"binary with metrics", hotBinaryRequests, true, (*session).serveBinary, true},
		{"text with metrics", hotTextRequests, false, (*session).serveText, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs := hotBatch(tc.requests, 10)
			fc := &testutil.ReplayConn{Requests: reqs, Pipelined: tc.pipelined}
			s := newHotServer(t)
			if tc.latency {
				s.Handler.latency = metrics.NewLatency()
			}
			c := newTestSession(s, fc)
			serve := func(rounds int) func() {
				return func() {
					fc.Rewind(rounds)
					tc.serve(c)
				}
			}
			// Enough sets to fill the store several times over.
			serve(4 * hotMemoryLimit / (10 * hotValueLen))()
			if fc.Written == 0 {
				t.Fatal("no replies written")
			}
			// A run may make per-connection state afresh; the
			// requests must add nothing: ten times the requests,
			// the same allocations. AllocsPerRun counts the whole
			// process's, and the store's reclaimer runs meanwhile:
			// a stray allocation or two is the reclaimer's, while
			// one per request would add hundreds.
			few, many := testing.AllocsPerRun(5, serve(10)), testing.AllocsPerRun(5, serve(100))
			if many > few+2 {
				t.Errorf("%v allocations for %d requests, %v for %d", few, 10*len(reqs), many, 100*len(reqs))
			}
		})
	}
}

// BenchmarkMemcaslap serves a node in this process while memcaslap
// (libmemcached-tools) loads it for 10 seconds with 50 connections, gets
// and sets 9:1, 100-byte values, from the other core, so that go test
// -cpuprofile profiles the node under the load scripts/bench.sh measures:
//
//	GOMAXPROCS=1 taskset -c 0 go test -run '^$' -bench Memcaslap/binary -cpuprofile /tmp/cpu.out ./node/command/
//
// It reports memcaslap's TPS.
func BenchmarkMemcaslap(b *testing.B) {
	if _, err := exec.LookPath("memcaslap"); err != nil {
		b.Fatal("memcaslap is not installed (apt-get install libmemcached-tools)")
	}
	for _, tc := range []struct{ name, flag string }{{"text", ""}, {"binary", "-B"}} {
		b.Run(tc.name, func(b *testing.B) {
			_, addr := binStartNode(b, Config{})
			args := []string{"-c", "1", "memcaslap", "-s", addr, "-T", "1", "-c", "50", "-t", "10s", "-X", "100"}
			if tc.flag != "" {
				args = append(args, tc.flag)
			}
			for b.Loop() {
				out, err := exec.Command("taskset", args...).CombinedOutput()
				if err != nil {
					b.Fatalf("memcaslap: %v\n%s", err, out)
				}
				tps := 0.0
				for _, line := range strings.Split(string(out), "\n") {
					if f := strings.Fields(line); len(f) > 0 && f[0] == "Run" {
						for i := range f[:len(f)-1] {
							if f[i] == "TPS:" {
								tps, _ = strconv.ParseFloat(f[i+1], 64)
							}
						}
					}
				}
				if tps == 0 {
					b.Fatalf("memcaslap gave no TPS:\n%s", out)
				}
				b.ReportMetric(tps, "TPS")
			}
		})
	}
}
