package command

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
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
func newMetaServer(tb testing.TB) (*session, *testutil.ReplayConn) {
	s := newTestServer(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tb.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	for _, k := range []string{"a", "b", "c"} {
		s.store.Set(store.ModeSet, []byte(k), bytes.Repeat([]byte(k), 100), 1, 0, 0)
	}
	s.store.Set(store.ModeSet, []byte("ctr"), []byte("1000000000000"), 0, 0, 0)
	fc := &testutil.ReplayConn{Pipelined: true}
	return newTestSession(s, fc), fc
}

// TestMetaAllocations: serving meta gets, misses, deletes of absent keys,
// in-place counters and debug lines allocates nothing per request in
// steady state.
func TestMetaAllocations(t *testing.T) {
	c, fc := newMetaServer(t)
	input, requests := metaBatch(100)
	fc.Requests = [][]byte{input}
	checkBatchAllocs(t, fc, requests, c.serveText)
}

func BenchmarkMetaPipeline(b *testing.B) {
	c, fc := newMetaServer(b)
	input, requests := metaBatch(100)
	b.ReportAllocs()
	b.SetBytes(int64(len(input)))
	fc.Requests = [][]byte{input}
	for b.Loop() {
		fc.Rewind(1)
		c.serveText()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*requests), "ns/request")
}

// metaStep is one request of a meta conversation and a regular expression
// its whole reply must match. The reply has as many lines as want has
// line ends: CRLFs, or \r\n escapes in a raw string.
type metaStep struct{ req, want string }

// runMetaSteps sends each step's request over one connection to addr and
// checks its reply.
func runMetaSteps(t *testing.T, addr string, steps []metaStep) {
	t.Helper()
	c, r := dialForTest(t, addr)
	for _, step := range steps {
		want := regexp.MustCompile("^" + step.want + "$")
		if got := roundTrip(t, c, r, step.req, strings.Count(step.want, "\n")+strings.Count(step.want, `\n`)); !want.MatchString(got) {
			t.Errorf("%q: got %q, want %q", step.req, got, step.want)
		}
	}
}

// TestMetaSetExplicitCAS checks ms's E flag (memcached versions after 1.6.18):
// the item stored gets E's token as its CAS unique, C still decides the
// compare, and the store's own counter goes on from where it was.
func TestMetaSetExplicitCAS(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	runMetaSteps(t, addr, []metaStep{
		{"ms a 1 E500 c\r\nx\r\n", "HD c500\r\n"},
		{"mg a c v\r\n", "VA 1 c500\r\nx\r\n"},
		{"gets a\r\n", "VALUE a 0 1 500\r\nx\r\nEND\r\n"},
		// C compares with the item's CAS unique, E sets the next one.
		{"ms a 1 C600 E700\r\ny\r\n", "EX\r\n"},
		{"ms a 1 C500 E600 c\r\ny\r\n", "HD c600\r\n"},
		{"ms a 1 C600 E0 c\r\nz\r\n", "HD c0\r\n"},
		{"mg a c v\r\n", "VA 1 c0\r\nz\r\n"},
		// Three stores took a sequence number each: the counter was
		// neither raised to 600 nor lowered to 0.
		{"ms b 1 c\r\nb\r\n", "HD c4\r\n"},
		// Every mode takes E.
		{"ms a 1 MA E42 c\r\n!\r\n", "HD c42\r\n"},
		{"ms a 1 MP E43 c\r\n<\r\n", "HD c43\r\n"},
		{"ms a 1 MR E44 c\r\nr\r\n", "HD c44\r\n"},
		{"ms n 1 ME E45 c\r\nn\r\n", "HD c45\r\n"},
		{"ms n 1 ME E46\r\nn\r\n", "NS\r\n"},
		{"mg n c\r\n", "HD c45\r\n"},
		{"ms a 1 E18446744073709551615 c q\r\nm\r\nmg a c v\r\n", "VA 1 c18446744073709551615\r\nm\r\n"},
		// I with a C older than the item's stores it stale, with E's CAS.
		{"ms s 1 E100\r\nx\r\n", "HD\r\n"},
		{"ms s 1 I C99 E101 c\r\ny\r\n", "HD c101\r\n"},
		{"mg s c v\r\n", "VA 1 c101 X W\r\ny\r\n"},
		// An explicit CAS unique lower than the sequence a flush_all
		// recorded does not make the item look flushed.
		{"flush_all\r\n", "OK\r\n"},
		{"ms f 1 E1 c\r\nf\r\n", "HD c1\r\n"},
		{"mg f c v\r\n", "VA 1 c1\r\nf\r\n"},
		{"ms f 1 C1 c\r\ng\r\n", `HD c\d+\r\n`},
		// A bad token is C's error; the data block is swallowed.
		{"ms a 1 Ex\r\nx\r\nmn\r\n", "CLIENT_ERROR bad token in command line format\r\nMN\r\n"},
		{"ms a 1 E1 E2\r\nx\r\nmn\r\n", "CLIENT_ERROR duplicate flag\r\nMN\r\n"},
	})
}

// TestMetaGetExplicitCAS checks mg's E flag: it gives its token to the item
// N creates, and leaves an item found (touched with T or not) alone.
func TestMetaGetExplicitCAS(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	runMetaSteps(t, addr, []metaStep{
		{"mg v N30 E900 c s\r\n", "HD c900 s0 W\r\n"},
		{"mg v N30 E901 c\r\n", "HD c900 Z\r\n"},
		{"mg v c v\r\n", "VA 0 c900 Z\r\n\r\n"},
		{"mg miss E5 c\r\n", "EN\r\n"},
		{"ms a 1 c\r\nx\r\n", "HD c2\r\n"},
		{"mg a T60 E77 c t\r\n", "HD c2 t(59|60)\r\n"},
		{"mg a E78 c v\r\n", "VA 1 c2\r\nx\r\n"},
		{"mg a Ex\r\n", "CLIENT_ERROR bad token in command line format\r\n"},
		{"mg a E1 E1\r\n", "CLIENT_ERROR duplicate flag\r\n"},
	})
}

// TestMetaDeleteExplicitCAS checks md's E flag: an item that I keeps gets
// its token; an item md removes is gone as without it.
func TestMetaDeleteExplicitCAS(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	runMetaSteps(t, addr, []metaStep{
		{"ms d 1 c\r\nx\r\n", "HD c1\r\n"},
		{"md d I E321\r\n", "HD\r\n"},
		{"mg d c v\r\n", "VA 1 c321 X W\r\nx\r\n"},
		{"md d C1 I E5\r\n", "EX\r\n"},
		{"md d C321 I E322 q\r\nmn\r\n", "MN\r\n"},
		{"mg d c\r\n", "HD c322 X W\r\n"},
		// I without E bumps the CAS unique from the store's counter.
		{"md d I\r\nmg d c\r\n", "HD\r\nHD c4 X W\r\n"},
		{"md d E5\r\n", "HD\r\n"},
		{"mg d\r\n", "EN\r\n"},
		{"md d Ex\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
	})
}

// TestMetaArithExplicitCAS checks ma's E flag: the item counted, in place
// or grown, and the one N creates get its token.
func TestMetaArithExplicitCAS(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	runMetaSteps(t, addr, []metaStep{
		{"ma n N0 J10 E1000 c v\r\n", "VA 2 c1000\r\n10\r\n"},
		{"ma n E1001 c v\r\n", "VA 2 c1001\r\n11\r\n"},
		{"ma n MD E1002 c v t\r\n", "VA 2 c1002 t-1\r\n10\r\n"},
		{"ma n C1 E3 c\r\n", "EX\r\n"},
		{"ma n C1002 E3 c\r\n", "HD c3\r\n"},
		{"ma n c\r\n", "HD c5\r\n"},
		{"ms g 2\r\n99\r\n", "HD\r\n"},
		{"ma g E44 c v\r\n", "VA 3 c44\r\n100\r\n"},
		{"mg g c v\r\n", "VA 3 c44\r\n100\r\n"},
		{"ma g E45 q\r\nmn\r\n", "MN\r\n"},
		{"mg g c\r\n", "HD c45\r\n"},
		{"ma miss E5\r\n", "NF\r\n"},
		{"ma n E-1\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
	})
}

// TestMetaDeleteRemoveValue checks md's x flag (memcached versions after 1.6.18):
// the item stays with an empty value, client flags 0 (or F's), no TTL (or
// T's), not stale, and its CAS unique (or E's); with I it is also marked
// stale with a new CAS unique; q hides HD.
func TestMetaDeleteRemoveValue(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	runMetaSteps(t, addr, []metaStep{
		{"ms k 3 F9 T100 E50\r\nabc\r\n", "HD\r\n"},
		{"mg k v\r\n", "VA 3\r\nabc\r\n"},
		{"md k x\r\n", "HD\r\n"},
		{"mg k v s f t c h\r\n", "VA 0 s0 f0 t-1 c50 h0\r\n\r\n"},
		{"get k\r\n", "VALUE k 0 0\r\n\r\nEND\r\n"},
		{"md k x k O7\r\n", "HD kk O7\r\n"},
		{"md k x F3 T100 E51\r\n", "HD\r\n"},
		{"mg k f t c\r\n", "HD f3 t(99|100) c51\r\n"},
		{"md k x C1\r\n", "EX\r\n"},
		{"md k x q\r\nmn\r\n", "MN\r\n"},
		{"md nokey x q\r\nmn\r\n", "NF\r\nMN\r\n"},
		{"md nokey x\r\n", "NF\r\n"},
		// With I: a tombstone, stale, whose next reader wins the
		// token, with a fresh CAS unique or E's.
		{"ms t 4\r\nlive\r\n", "HD\r\n"},
		{"md t x I T30\r\n", "HD\r\n"},
		{"mg t v c t\r\n", `VA 0 c\d+ t(29|30) X W\r\n\r\n`},
		{"ms t 4 E60\r\nlive\r\n", "HD\r\n"},
		{"md t x I E61 q\r\nmn\r\n", "MN\r\n"},
		{"mg t v c\r\n", "VA 0 c61 X W\r\n\r\n"},
		// A set ends the tombstone.
		{"ms t 3\r\nnew\r\nmg t v\r\n", "HD\r\nVA 3\r\nnew\r\n"},
		{"md t x x\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n"},
		// Without x, md removes the item.
		{"md k\r\nmg k\r\n", "HD\r\nEN\r\n"},
	})
}

// TestMetaExplicitCASNoCAS checks that with -C E is accepted and every CAS
// unique is still 0.
func TestMetaExplicitCASNoCAS(t *testing.T) {
	_, addr := serveForTest(t, Config{NoCAS: true})
	runMetaSteps(t, addr, []metaStep{
		{"ms a 1 E5 c\r\nx\r\n", "HD c0\r\n"},
		{"mg a c\r\n", "HD c0\r\n"},
		{"md a I E6\r\nmg a c\r\n", "HD\r\nHD c0 X W\r\n"},
		{"md a x E7\r\nmg a c v\r\n", "HD\r\nVA 0 c0\r\n\r\n"},
		{"ma n N0 E8 c\r\n", "HD c0\r\n"},
		{"mg v N0 E9 c\r\n", "HD c0 W\r\n"},
	})
}
