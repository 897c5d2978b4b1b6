package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// statsClient talks to a server over one connection, plain or TLS.
type statsClient struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func newStatsClient(t *testing.T, srv *servertest.Server, cfg *tls.Config) *statsClient {
	t.Helper()
	var nc net.Conn
	if cfg == nil {
		nc = srv.Dial(t)
	} else {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
		c, err := d.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatalf("%s: TLS dial: %v", srv.Name, err)
		}
		t.Cleanup(func() { c.Close() })
		nc = c
	}
	return &statsClient{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<16)}
}

// do sends req and reads n reply lines.
func (c *statsClient) do(req string, n int) string {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.nc, req); err != nil {
		c.t.Fatal(err)
	}
	var b strings.Builder
	for range n {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading the reply to %q: %v (so far %q)", servertest.Abbrev(req, 100), err, servertest.Abbrev(b.String(), 200))
		}
		b.WriteString(line)
	}
	return b.String()
}

// names sends a stats request and returns the names of its STAT lines in
// order, stats conns' connection numbers (file descriptors in memcached,
// ids in memcluster) shown as N.
func (c *statsClient) names(req string) []string {
	c.t.Helper()
	names, _ := c.stats(req)
	return names
}

// stats sends a stats request and returns the names of its STAT lines, as
// names does, and their values by name.
func (c *statsClient) stats(req string) ([]string, map[string]string) {
	c.t.Helper()
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.nc, req); err != nil {
		c.t.Fatal(err)
	}
	var names []string
	values := map[string]string{}
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading the reply to %q: %v", req, err)
		}
		if line == "END\r\n" {
			return names, values
		}
		name, value, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(line, "STAT "), "\r\n"), " ")
		if !strings.HasPrefix(line, "STAT ") || !ok {
			c.t.Fatalf("reply to %q: line %q", req, line)
		}
		names = append(names, connNumber.ReplaceAllString(name, "N:"))
		values[name] = value
	}
}

var connNumber = regexp.MustCompile(`^[0-9]+:(addr|listen_addr|state|secs_since_last_cmd)$`)

// statsWorkload stores items in three classes and reads some, so that
// stats items and stats slabs list classes.
func statsWorkload(c *statsClient) {
	c.do("set a 0 0 1\r\nx\r\n", 1)
	c.do(fmt.Sprintf("set b 0 0 500\r\n%s\r\n", strings.Repeat("b", 500)), 1)
	c.do(fmt.Sprintf("set c 5 100 5000\r\n%s\r\n", strings.Repeat("c", 5000)), 1)
	c.do("get a b c d\r\n", 7)
	c.do("delete a\r\n", 1)
}

// TestStatsNamesInOrder starts memcached and memcluster with the same flags,
// runs the same commands on both, and checks that every stats group prints
// exactly memcached's names in memcached's order.
func TestStatsNamesInOrder(t *testing.T) {
	certs := newTLSCerts(t)
	groups := []string{"stats", "stats settings", "stats items", "stats slabs", "stats conns", "stats extstore"}
	for _, tc := range []struct {
		name  string
		flags []string
		tls   bool
		setup string // commands run first, with their reply lines
		lines int
	}{
		{name: "defaults"},
		{name: "flags", flags: []string{"-m", "32", "-c", "100", "-t", "2", "-R", "7", "-b", "128", "-C", "-M", "-I", "2m", "-o", "idle_timeout=600"}},
		{name: "temp_lru", setup: "lru temp_ttl 10\r\n", lines: 1},
		{name: "tls", flags: certs.flags("ssl_session_cache"), tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg *tls.Config
			if tc.tls {
				cfg = certs.ClientConfig(nil)
			}
			ref := newStatsClient(t, servertest.StartMemcached(t, tc.flags...), cfg)
			got := newStatsClient(t, servertest.StartMemcluster(t, tc.flags...), cfg)
			for _, c := range []*statsClient{ref, got} {
				if tc.setup != "" {
					c.do(tc.setup, tc.lines)
				}
				statsWorkload(c)
			}
			for _, g := range groups {
				want, have := ref.names(g+"\r\n"), got.names(g+"\r\n")
				if !slices.Equal(have, want) {
					t.Errorf("%s: memcluster prints %d names, memcached %d; differences (- memcached, + memcluster):\n%s",
						g, len(have), len(want), diffLines(want, have, "  "))
				}
				t.Logf("%s: %d names", g, len(have))
			}
		})
	}
}
