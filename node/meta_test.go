package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/memcluster/memcluster/node/store"
)

// metaRaceClients is how many connections race for one stale item.
const metaRaceClients = 32

// raceForWin has metaRaceClients connections send req at once (each after
// all have connected) and returns how many replies carried W, and how many
// carried Z.
func raceForWin(t *testing.T, addr, req string) (wins, seen int) {
	t.Helper()
	conns := make([]struct {
		send  func()
		reply string
	}, metaRaceClients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range conns {
		c, r := dialForTest(t, addr)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			if _, err := c.Write([]byte(req)); err != nil {
				t.Error(err)
				return
			}
			line, err := r.ReadString('\n')
			if err != nil {
				t.Error(err)
				return
			}
			conns[i].reply = line
		}(i)
	}
	close(start)
	wg.Wait()
	for _, c := range conns {
		flags := strings.Fields(c.reply)
		for _, f := range flags[1:] {
			switch f {
			case "W":
				wins++
			case "Z":
				seen++
			}
		}
	}
	return wins, seen
}

// TestMetaStaleWhileRevalidateRace checks that of many clients that fetch
// one invalidated item at once, exactly one is told to recompute it (W) and
// every other is told that someone is (Z); all of them see it stale (X).
func TestMetaStaleWhileRevalidateRace(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	for round := range 5 {
		if got := roundTrip(t, c, r, "ms k 3 T0\r\nold\r\nmd k I\r\n", 2); got != "HD\r\nHD\r\n" {
			t.Fatalf("round %d: set and invalidate: got %q", round, got)
		}
		wins, seen := raceForWin(t, addr, "mg k s\r\n")
		if wins != 1 || seen != metaRaceClients-1 {
			t.Fatalf("round %d: %d clients won and %d saw the win, want 1 and %d", round, wins, seen, metaRaceClients-1)
		}
		// The winner's fresh value ends the stale state.
		if got := roundTrip(t, c, r, "ms k 3\r\nnew\r\nmg k v\r\n", 3); got != "HD\r\nVA 3\r\nnew\r\n" {
			t.Fatalf("round %d: after recompute: got %q", round, got)
		}
	}
}

// TestMetaVivifyRace checks that of many clients that miss on one key with
// N, exactly one wins the token to fill it.
func TestMetaVivifyRace(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	wins, seen := raceForWin(t, addr, "mg fresh N30 s\r\n")
	if wins != 1 || seen != metaRaceClients-1 {
		t.Fatalf("%d clients won and %d saw the win, want 1 and %d", wins, seen, metaRaceClients-1)
	}
}

// TestMetaRecacheRace checks that R hands out one win for an item whose TTL
// fell below the recache threshold.
func TestMetaRecacheRace(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	if got := roundTrip(t, c, r, "ms k 1 T100\r\nx\r\n", 1); got != "HD\r\n" {
		t.Fatalf("set: got %q", got)
	}
	if got := roundTrip(t, c, r, "mg k R30\r\n", 1); got != "HD\r\n" {
		t.Fatalf("TTL above the threshold: got %q, want no win", got)
	}
	wins, seen := raceForWin(t, addr, "mg k R200\r\n")
	if wins != 1 || seen != metaRaceClients-1 {
		t.Fatalf("%d clients won and %d saw the win, want 1 and %d", wins, seen, metaRaceClients-1)
	}
}

// TestMetaLastAccessAndFetched checks the h, l and me fields that come from
// the store's fetched bit and last access time. The seconds since the last
// access are 0, or 1 if the store's clock ticked between two requests.
func TestMetaLastAccessAndFetched(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	for _, step := range []struct{ req, want string }{
		{"ms k 2 F7\r\nhi\r\n", "HD\r\n"},
		{"me k\r\n", "ME k exp=-1 la=[01] cas=1 fetch=no cls=1 size=66\r\n"},
		{"mg k h l f\r\n", "HD h0 l[01] f7\r\n"},
		{"mg k h\r\n", "HD h1\r\n"},
		{"me k\r\n", "ME k exp=-1 la=[01] cas=1 fetch=yes cls=1 size=66\r\n"},
		{"ms k 2\r\nho\r\n", "HD\r\n"},
		{"mg k u h\r\n", "HD h0\r\n"},
		{"mg k h\r\n", "HD h0\r\n"},
		{"mg k h\r\n", "HD h1\r\n"},
	} {
		want := regexp.MustCompile("^" + step.want + "$")
		if got := roundTrip(t, c, r, step.req, 1); !want.MatchString(got) {
			t.Errorf("%q: got %q, want %q", step.req, got, step.want)
		}
	}
}

// TestMetaQuietPipeline checks that q leaves out only the common replies and
// that mn ends the pipeline.
func TestMetaQuietPipeline(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	req := "ms a 1 q\r\nx\r\nms b 1 q MR\r\ny\r\nmg a v q\r\nmg b v q\r\nmd b q\r\nmd a q\r\nmd a q\r\nma n q\r\nmn\r\n"
	want := "NS\r\nVA 1\r\nx\r\nNF\r\nNF\r\nNF\r\nMN\r\n"
	if got := roundTrip(t, c, r, req, 7); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// metaBatch is a pipeline of meta reads, misses, deletes of absent keys,
// counters and debug lines, ended by mn.
func metaBatch(n int) (input []byte, requests int) {
	one := "mg a v c f t k O1\r\nmg nokey v q\r\nmg b s h l\r\nmd nokey q\r\nma ctr v\r\nme a\r\nmg Yw== b v k\r\nmn\r\n"
	return []byte(strings.Repeat(one, n)), n * 8
}

// newMetaServer returns a server holding items a, b, c and ctr, and a
// connection to it over a fake net.Conn.
func newMetaServer(tb testing.TB) (*conn, *binFakeConn) {
	s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tb.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	for _, k := range []string{"a", "b", "c"} {
		s.store.Set(store.ModeSet, []byte(k), bytes.Repeat([]byte(k), 100), 1, 0, 0)
	}
	s.store.Set(store.ModeSet, []byte("ctr"), []byte("1000000000000"), 0, 0, 0)
	fc := &binFakeConn{}
	return newConn(s, fc), fc
}

// TestMetaAllocations: serving meta gets, misses, deletes of absent keys,
// in-place counters and debug lines allocates nothing per request in
// steady state.
func TestMetaAllocations(t *testing.T) {
	c, fc := newMetaServer(t)
	input, requests := metaBatch(100)
	serve := func() {
		fc.r.Reset(input)
		c.br.Reset(countingReader{fc, &c.srv.counters.bytesRead})
		c.serveText()
	}
	serve()
	if fc.written == 0 {
		t.Fatal("no replies written")
	}
	allocs := testing.AllocsPerRun(5, serve)
	// A run makes the per-connection state afresh (a few allocations);
	// the requests must add nothing.
	if perReq := allocs / float64(requests); allocs > 10 {
		t.Errorf("%v allocations for %d requests (%.4f per request)", allocs, requests, perReq)
	}
}

func BenchmarkMetaPipeline(b *testing.B) {
	c, fc := newMetaServer(b)
	input, requests := metaBatch(100)
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		fc.r.Reset(input)
		c.br.Reset(countingReader{fc, &c.srv.counters.bytesRead})
		c.serveText()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests), "ns/request")
}
