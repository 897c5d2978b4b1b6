package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
)

// dialSmallWindow connects to addr with a receive buffer of a few
// kilobytes, so that a client that reads nothing stops the server's writes
// soon rather than after megabytes of kernel buffers.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestWatcherThatNeverReads: a watcher whose client reads nothing neither
// slows nor blocks the node: every request is answered, the lines it cannot
// take are dropped and counted, and it holds no more than its buffers.
// Node shutdown then ends it at once.
func TestWatcherThatNeverReads(t *testing.T) {
	s, addr, served := startServer(t, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), WatcherBufSize: 16 << 10})
	wc := dialSmallWindow(t, addr)
	if _, err := io.WriteString(wc, "watch fetchers mutations\r\n"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "s.counters.LogWatchers.Load() == 1", func() bool { return s.counters.LogWatchers.Load() == 1 })
	// From here the watcher's client reads nothing.

	c, r := dialForTest(t, addr)
	const batches, perBatch = 50, 200
	value := strings.Repeat("v", 100)
	var lines uint64
	for b := range batches {
		var req strings.Builder
		for i := range perBatch {
			key := "k" + strconv.Itoa((b*perBatch+i)%50)
			fmt.Fprintf(&req, "set %s 0 0 %d\r\n%s\r\nget %s\r\n", key, len(value), value, key)
		}
		lines += 3 * perBatch // a set's lookup and store, a get's lookup
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got := roundTrip(t, c, r, req.String(), 4*perBatch)
		if n := strings.Count(got, "STORED\r\n"); n != perBatch {
			t.Fatalf("batch %d: %d STORED, want %d", b, n, perBatch)
		}
	}
	sent, skipped := s.counters.LogWatcherSent.Load(), s.counters.LogWatcherSkipped.Load()
	t.Logf("%d lines: %d sent, %d skipped", lines, sent, skipped)
	if skipped == 0 {
		t.Errorf("log_watcher_skipped is 0 after %d lines to a watcher that reads nothing", lines)
	}
	if sent+skipped != lines {
		t.Errorf("log_watcher_sent %d + log_watcher_skipped %d = %d, want every line counted once: %d", sent, skipped, sent+skipped, lines)
	}
	for _, w := range *s.watch.list.Load() {
		w.mu.Lock()
		held, size := len(w.buf), cap(w.buf)
		w.mu.Unlock()
		if held > w.size || size != w.size {
			t.Errorf("watcher buffer: %d bytes held, capacity %d; want at most its size %d, never grown", held, size, w.size)
		}
	}

	// Shutdown ends the watch, although its client still reads nothing
	// and the connection's write waits.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v, want the watcher ended at once", err)
	}
	<-served
	// What the node had queued before it closed reaches the client through
	// its 4 KiB window before the end does. The client read nothing for
	// seconds, so the node's kernel has backed off probing that window
	// (200 ms, doubling): on a loaded machine the next probe can be many
	// seconds away.
	_ = wc.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.Copy(io.Discard, wc); err != nil {
		t.Errorf("watcher connection after shutdown: %v, want it closed", err)
	}
}
