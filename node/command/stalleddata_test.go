package command

import (
	"bytes"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
)

// TestStalledDataBlockReservesWhatArrived: with -I 1024m, a client that
// promises a data block of 1 GiB, sends a few KiB of it and stalls costs
// the node about what it sent, not the gigabyte; once it goes, the node
// serves others as before and has let go of what it held.
func TestStalledDataBlockReservesWhatArrived(t *testing.T) {
	const sent, growthLimit = 8 << 10, 4 << 20
	for _, line := range []string{
		"set k 0 0 1073741824\r\n",
		"ms k 1073741824 T0\r\n",
	} {
		name, _, _ := strings.Cut(line, " ")
		t.Run(name, func(t *testing.T) {
			s, addr := serveForTest(t, Config{
				MemoryLimit: 2 << 30, ItemSizeMax: 1 << 30, // -m 2048 -I 1024m
				Logger: slog.New(slog.DiscardHandler),
			})
			c, r := dialForTest(t, addr)
			if got := roundTrip(t, c, r, "version\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
				t.Fatalf("version: got %q", got)
			}

			stacks := make([]byte, 1<<20) // for goroutineWaitsIn, outside the figures
			var before, stalled, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			readBefore := s.Counters().BytesRead.Load()
			req := line + strings.Repeat("v", sent)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 5*time.Second, "the node has read what was sent and waits for the rest", func() bool {
				return s.Counters().BytesRead.Load() >= readBefore+uint64(len(req)) &&
					goroutineWaitsIn(stacks, "protocol.(*TextReader).readData")
			})
			runtime.ReadMemStats(&stalled)
			allocated := stalled.TotalAlloc - before.TotalAlloc
			grown := int64(stalled.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("stalled after %d bytes: allocated %d bytes, heap grew by %d", len(req), allocated, grown)
			if allocated > growthLimit || grown > growthLimit {
				t.Errorf("a stalled promise of 1 GiB with %d bytes sent: the node allocated %d bytes and its heap grew by %d; want at most %d",
					len(req), allocated, grown, growthLimit)
			}

			c.Close()
			testutil.WaitFor(t, 5*time.Second, "the stalled connection closed", func() bool {
				return s.net.CurrConnections() == 0
			})
			c2, r2 := dialForTest(t, addr)
			if got := roundTrip(t, c2, r2, "set k 0 0 5\r\nhello\r\n", 1); got != "STORED\r\n" {
				t.Fatalf("set after the stalled client left: got %q", got)
			}
			if got := roundTrip(t, c2, r2, "get k\r\n", 3); got != "VALUE k 0 5\r\nhello\r\nEND\r\n" {
				t.Fatalf("get after the stalled client left: got %q", got)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > growthLimit {
				t.Errorf("the node's heap is %d bytes larger after the stalled client left; want at most %d", grown, growthLimit)
			}
		})
	}
}

// goroutineWaitsIn reports whether a goroutine whose stack holds fn is
// waiting (not running or runnable). It writes the stacks to buf.
func goroutineWaitsIn(buf []byte, fn string) bool {
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		if bytes.Contains(g, []byte(fn)) &&
			!bytes.Contains(header, []byte("[running")) && !bytes.Contains(header, []byte("[runnable")) {
			return true
		}
	}
	return false
}
