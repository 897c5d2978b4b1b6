package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/buildinfo"
	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/ring"
)

func TestVersion(t *testing.T) {
	for _, flag := range []string{"-version", "--version"} {
		res := mcctl(t, flag)
		if res.code != 0 || res.stdout != buildinfo.Line("mcctl", buildinfo.Read())+"\n" || !strings.HasPrefix(res.stdout, "mcctl "+buildinfo.Version) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 0 and mcctl %s", flag, res.code, res.stdout, res.stderr, buildinfo.Version)
		}
	}
}

// TestDefaultSeed checks that mcctl without -s asks 127.0.0.1:11211: a
// discovery node there when the port is free, or else whatever holds it,
// which mcctl -s 127.0.0.1:11211 must find the same.
func TestDefaultSeed(t *testing.T) {
	if defaultSeed != "127.0.0.1:11211" {
		t.Errorf("defaultSeed = %q, want memcached's 127.0.0.1:11211", defaultSeed)
	}
	l, err := net.Listen("tcp", defaultSeed)
	if err != nil {
		// Taken (a developer's node, say): both must see the same.
		got := mcctl(t, "-timeout", "1s", "members")
		want := mcctl(t, "-s", defaultSeed, "-timeout", "1s", "members")
		if got.code != want.code || got.stdout != want.stdout {
			t.Errorf("without -s: exit %d, stdout %q; with -s %s: exit %d, stdout %q", got.code, got.stdout, defaultSeed, want.code, want.stdout)
		}
		return
	}
	m := ring.Member{Host: "default", IP: "127.0.0.1", Port: 11211}
	startDiscoveryOn(t, l, 3, []ring.Member{m})
	res := mcctl(t, "members")
	if res.code != 0 || !strings.Contains(res.stdout, "cluster version 3, 1 members") || !strings.Contains(res.stdout, m.Entry()) {
		t.Errorf("without -s: exit %d, stdout %q, stderr %q; want the cluster at %s", res.code, res.stdout, res.stderr, defaultSeed)
	}
}

// TestMembersNames checks that mcctl members names memcluster nodes by
// their names in the cluster, with their addresses.
func TestMembersNames(t *testing.T) {
	c := clustertest.New(t)
	for _, name := range []string{"cache-a", "cache-b", "cache-c"} {
		c.Add(name)
	}
	v := clustertest.WaitAgree(t, 10*time.Second, c.Nodes...)
	res := mcctl(t, "-s", c.Nodes[1].Addr, "members")
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if want := fmt.Sprintf("cluster version %d, 3 members", v.Version); len(lines) != 5 || lines[0] != want {
		t.Fatalf("got:\n%s\nwant %q and 4 lines", res.stdout, want)
	}
	if f := strings.Fields(lines[1]); len(f) != 3 || f[0] != "NAME" || f[1] != "ADDRESS" || f[2] != "ENTRY" {
		t.Errorf("header %q", lines[1])
	}
	for _, n := range c.Nodes {
		found := false
		for _, l := range lines[2:] {
			f := strings.Fields(l)
			found = found || len(f) == 3 && f[0] == n.Name && f[1] == n.Addr && f[2] == n.Entry
		}
		if !found {
			t.Errorf("no line for %s at %s (%s):\n%s", n.Name, n.Addr, n.Entry, res.stdout)
		}
	}
}

// TestWatch follows a cluster with mcctl watch while a node joins and
// another leaves: it prints the first view, then each change, by name and
// address, and ends after -n views.
func TestWatch(t *testing.T) {
	c := clustertest.New(t)
	n1, n2 := c.Add("n1"), c.Add("n2")
	clustertest.WaitAgree(t, 10*time.Second, n1, n2)

	var out testutil.LockedBuffer
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		var errb strings.Builder
		done <- run(ctx, []string{"-s", n1.Addr, "-n", "3", "watch"}, &out, &errb)
	}()
	testutil.WaitFor(t, 10*time.Second, "the first view", func() bool { return strings.Contains(out.String(), "+ n2 ") })
	n3 := c.Add("n3")
	testutil.WaitFor(t, 10*time.Second, "n3's join", func() bool { return strings.Contains(out.String(), "+ n3 ") })
	c.Stop(n2)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("watch -n 3 did not end after 3 views:\n%s", out.String())
	}
	t.Logf("mcctl watch:\n%s", out.String())
	head := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ cluster version \d+, (\d) members$`)
	var views []string // each view's member count and changes, without the time
	for line := range strings.Lines(out.String()) {
		line = strings.TrimSuffix(line, "\n")
		if m := head.FindStringSubmatch(line); m != nil {
			views = append(views, m[1])
			continue
		}
		if len(views) == 0 {
			t.Fatalf("a change before any view: %q", line)
		}
		views[len(views)-1] += " " + strings.TrimSpace(line)
	}
	want := []string{
		"2 + n1 " + n1.Addr + " + n2 " + n2.Addr,
		"3 + n3 " + n3.Addr,
		"2 - n2 " + n2.Addr,
	}
	if len(views) != 3 {
		t.Fatalf("got %d views, want 3:\n%s", len(views), out.String())
	}
	// The first view lists the members in ring order.
	if !strings.HasPrefix(views[0], "2 + ") || !strings.Contains(views[0], "+ n1 "+n1.Addr) || !strings.Contains(views[0], "+ n2 "+n2.Addr) {
		t.Errorf("first view %q, want %q in some order", views[0], want[0])
	}
	for i := 1; i < 3; i++ {
		if views[i] != want[i] {
			t.Errorf("view %d: %q, want %q", i+1, views[i], want[i])
		}
	}
}

// TestTop runs mcctl top once over two nodes, one of which serves gets
// that hit throughout the interval: each node has a row, by name, with its
// memory and connections; the busy one has operations and a 100% hit
// ratio; a TOTAL row ends the table.
func TestTop(t *testing.T) {
	c := clustertest.New(t)
	n1, n2 := c.Add("n1"), c.Add("n2")
	clustertest.WaitAgree(t, 10*time.Second, n1, n2)
	if _, err := clustertest.Query(n1.Addr, "set hot 0 0 3\r\nabc"); err != nil && err.Error() != "STORED" {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		nc, err := net.Dial("tcp", n1.Addr)
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		for ctx.Err() == nil {
			fmt.Fprintf(nc, "get hot\r\n")
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "END\r\n" {
					break
				}
			}
		}
	}()
	res := mcctl(t, "-s", n1.Addr, "-n", "1", "-interval", "500ms", "top")
	cancel()
	<-busy
	if res.code != 0 {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	t.Logf("mcctl top:\n%s", res.stdout)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "cluster version") || !strings.Contains(lines[0], "2 members") {
		t.Fatalf("got:\n%s\nwant a title, a header, 2 rows and totals", res.stdout)
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "NAME ADDRESS OPS/S HIT% MEMORY LIMIT CONNS" {
		t.Errorf("header %q", lines[1])
	}
	rows := map[string][]string{}
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	for _, n := range []*clustertest.Node{n1, n2} {
		f := rows[n.Name]
		if len(f) != 7 || f[1] != n.Addr || f[5] != "64.0M" {
			t.Errorf("row of %s: %q, want its address and a 64.0M limit", n.Name, f)
		}
	}
	if f := rows["n1"]; len(f) == 7 && (f[2] == "0" || f[2] == "-" || f[3] != "100.0" || f[6] == "0") {
		t.Errorf("the busy node: %q, want operations, a 100.0 hit ratio and connections", f)
	}
	if f := rows["TOTAL"]; len(f) != 6 || f[4] != "128.0M" {
		t.Errorf("totals %q, want a 128.0M limit", f)
	}
}
