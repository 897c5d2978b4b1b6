package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// TestConnectionCounts checks curr_connections, total_connections and
// connection_structures against memcached's as clients come and go:
// memcached counts its listening connection in all three, and prints
// curr_connections less one.
func TestConnectionCounts(t *testing.T) {
	run := func(t *testing.T, name string) []string {
		srv := servertest.Start(t, name)
		var got []string
		note := func(step string, st map[string]string) {
			got = append(got, fmt.Sprintf("%s: curr_connections %s total_connections %s connection_structures %s",
				step, st["curr_connections"], st["total_connections"], st["connection_structures"]))
		}
		c1 := srv.Raw(t)
		note("one client", statsGroup(t, c1, ""))
		c2 := srv.Raw(t)
		c2.RoundTrip(t, "version\r\n", "VERSION 1.6.18\r\n")
		note("two clients", statsGroup(t, c1, ""))
		c2.Close()
		deadline := time.Now().Add(5 * time.Second)
		st := statsGroup(t, c1, "")
		for st["curr_connections"] != "1" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			st = statsGroup(t, c1, "")
		}
		note("the second gone", st)
		c3 := srv.Raw(t)
		c3.RoundTrip(t, "version\r\n", "VERSION 1.6.18\r\n")
		note("a third", statsGroup(t, c1, ""))
		return got
	}
	want := run(t, "memcached")
	if !enabled("memcluster") {
		return
	}
	got := run(t, "memcluster")
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("memcluster %s\n memcached %s", got[i], want[i])
		}
	}
}

// TestConnectionLimitUnderFileLimit opens connections one at a time to a
// server started with the default -c 1024 under an open-file limit of 1024,
// polling stats on another connection after each, and reads from the
// newest connection as soon as rejected_connections rises: it must get
// "ERROR Too many open connections", as from memcached, and the
// connections accepted before must still be served. (A node that let the
// file limit bind before -c failed accept with EMFILE and left the client
// waiting for ever.)
func TestConnectionLimitUnderFileLimit(t *testing.T) {
	const limit = 1024
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	// Each server's connections are closed before the next is tested.
	const need = limit + 300
	if rl.Cur < need {
		rl.Cur = max(rl.Max, need)
		rl.Max = rl.Cur
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatalf("this test opens about %d connections to a server and needs an open-file limit of %d: %v", limit+100, need, err)
		}
	}
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.StartWithFileLimit(t, name, limit)
			poll := srv.Raw(t)
			base := statsGroup(t, poll, "")["rejected_connections"]
			var conns []*servertest.Conn
			for len(conns) < limit+100 {
				c := srv.Raw(t)
				conns = append(conns, c)
				if statsGroup(t, poll, "")["rejected_connections"] == base {
					continue
				}
				line, err := c.ReadLine(5 * time.Second)
				if line != "ERROR Too many open connections\r\n" {
					t.Fatalf("connection %d, opened once rejected_connections rose: got %q (%v), want the limit's error", len(conns), line, err)
				}
				if _, closed := c.WaitClosed(5 * time.Second); !closed {
					t.Errorf("connection %d: not closed after the limit's error", len(conns))
				}
				t.Logf("%s: connection %d refused", name, len(conns))
				conns[0].RoundTrip(t, "version\r\n", "VERSION 1.6.18\r\n")
				poll.RoundTrip(t, "version\r\n", "VERSION 1.6.18\r\n")
				return
			}
			t.Fatalf("%d connections opened, and rejected_connections never rose", len(conns))
		})
	}
}

// TestConnYieldsAndIdleKicks checks conn_yields and idle_kicks against
// memcached's: a connection served more pipelined requests in one read
// than -R yields, one served fewer does not, and a connection idle past
// -o idle_timeout is closed and counted.
func TestConnYieldsAndIdleKicks(t *testing.T) {
	for _, flags := range [][]string{
		{"-R", "5"},
		{"-R", "5", "-o", "idle_timeout=1"}, // the node serves these off its event loops
	} {
		for _, name := range backends {
			t.Run(strings.Join(flags, "_")+"/"+name, func(t *testing.T) {
				t.Parallel()
				srv := servertest.Start(t, name, flags...)
				stats := srv.Raw(t)
				c := srv.Raw(t)
				c.RoundTrip(t, "get k\r\nget k\r\nget k\r\n", "END\r\nEND\r\nEND\r\n")
				if n := statInt(t, stats, "conn_yields"); n != 0 {
					t.Errorf("conn_yields = %d after 3 pipelined requests with -R 5, want 0", n)
				}
				c.RoundTrip(t, strings.Repeat("get k\r\n", 100), strings.Repeat("END\r\n", 100))
				if n := statInt(t, stats, "conn_yields"); n == 0 {
					t.Errorf("conn_yields = 0 after 100 pipelined requests with -R 5")
				}
				if len(flags) < 3 {
					return
				}
				idle := srv.Raw(t)
				if _, closed := idle.WaitClosed(5 * time.Second); !closed {
					t.Fatalf("a connection idle for 5 s past idle_timeout=1 is still open")
				}
				// The first stats connection idled too: a fresh one.
				stats = srv.Raw(t)
				deadline := time.Now().Add(5 * time.Second)
				for statInt(t, stats, "idle_kicks") == 0 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if n := statInt(t, stats, "idle_kicks"); n < 1 {
					t.Errorf("idle_kicks = %d after an idle connection was closed", n)
				}
			})
		}
	}
}
