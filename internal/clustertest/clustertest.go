// Package clustertest runs memcluster clusters for tests: nodes in one
// process that gossip over an in-memory network (Network), and helpers that
// wait, with a deadline, until nodes agree on one view of the cluster, in
// process or over the wire with "config get cluster".
package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/cluster"
	"github.com/memcluster/memcluster/ring"
)

// FastTiming is the cluster timing of in-process nodes: failure detection
// in about a second, rejoins every few hundred milliseconds. It leaves
// enough slack for the race detector on two busy cores.
var FastTiming = node.ClusterConfig{
	RejoinInterval:   300 * time.Millisecond,
	ProbeInterval:    200 * time.Millisecond,
	ProbeTimeout:     150 * time.Millisecond,
	SuspicionMult:    4,
	GossipInterval:   50 * time.Millisecond,
	PushPullInterval: 2 * time.Second,
	LeaveTimeout:     time.Second,
}

// Cluster is a set of in-process nodes on one in-memory network.
type Cluster struct {
	Net   cluster.Network
	Nodes []*Node // in the order started, stopped ones included
	t     testing.TB
	seq   int
}

// Node is one in-process node.
type Node struct {
	// Name is the node's memberlist name.
	Name string
	// Addr is the node's memcached address, 127.0.0.1:port.
	Addr string
	// Entry is the node's host|ip|port entry in the cluster config.
	Entry string
	// Server is the node.
	Server *node.Server
	// Transport is the node's end of the in-memory network.
	Transport *cluster.Transport

	served  chan error
	stopped bool
}

// New returns an empty cluster whose nodes are stopped when the test ends.
func New(t testing.TB) *Cluster {
	c := &Cluster{t: t}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			c.halt(n)
		}
	})
	return c
}

// Start returns a cluster of n nodes started one after the other, each
// joining the first.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := New(t)
	for range n {
		c.Add("")
	}
	return c
}

// Seeds returns the gossip addresses of the running nodes.
func (c *Cluster) Seeds() []string {
	var s []string
	for _, n := range c.Live() {
		s = append(s, n.Transport.Addr())
	}
	return s
}

// Live returns the nodes not stopped.
func (c *Cluster) Live() []*Node {
	var live []*Node
	for _, n := range c.Nodes {
		if !n.stopped {
			live = append(live, n)
		}
	}
	return live
}

// Add starts a node named name (or "n<seq>" if empty) that joins the
// running nodes, with FastTiming.
func (c *Cluster) Add(name string) *Node {
	c.t.Helper()
	cfg := node.Config{Cluster: FastTiming}
	cfg.Cluster.Join = c.Seeds()
	return c.AddConfig(name, cfg)
}

// AddConfig starts a node named name (or "n<seq>" if empty) with cfg, to
// which it adds a listener on 127.0.0.1, a free port, and a transport on
// the cluster's network.
func (c *Cluster) AddConfig(name string, cfg node.Config) *Node {
	c.t.Helper()
	c.seq++
	if name == "" {
		name = fmt.Sprintf("n%d", c.seq)
	}
	tr := c.Net.NewTransport()
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Cluster.Name = name
	cfg.Cluster.Transport = tr
	srv := node.New(cfg)
	ls, err := srv.Listen()
	if err != nil {
		c.t.Fatalf("clustertest: node %s: %v", name, err)
	}
	if err := srv.StartCluster(context.Background(), ls); err != nil {
		for _, l := range ls {
			l.Close()
		}
		c.t.Fatalf("clustertest: node %s: %v", name, err)
	}
	n := &Node{
		Name:      name,
		Addr:      ls[0].Addr().String(),
		Server:    srv,
		Transport: tr,
		served:    make(chan error, 1),
	}
	_, port, _ := net.SplitHostPort(n.Addr)
	n.Entry = "127.0.0.1|127.0.0.1|" + port
	go func() { n.served <- srv.ServeListeners(ls) }()
	c.Nodes = append(c.Nodes, n)
	return n
}

// Stop stops n gracefully: it leaves the cluster, then shuts down.
func (c *Cluster) Stop(n *Node) {
	c.t.Helper()
	if n.stopped {
		return
	}
	n.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Server.Shutdown(ctx); err != nil {
		c.t.Errorf("clustertest: stopping %s: %v", n.Name, err)
	}
	<-n.served
}

// Kill stops n abruptly: its transport goes off the network at once, as if
// the process died, and the node then shuts down unheard.
func (c *Cluster) Kill(n *Node) {
	if n.stopped {
		return
	}
	n.Transport.Shutdown()
	c.halt(n)
}

// halt takes n off the network and shuts it down without leaving (a
// context already done skips the leave) and without waiting for its
// connections.
func (c *Cluster) halt(n *Node) {
	if n.stopped {
		return
	}
	n.stopped = true
	n.Transport.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Server.Shutdown(ctx)
	<-n.served
}

// Partition cuts the network between groups of nodes.
func (c *Cluster) Partition(groups ...[]*Node) {
	var addrs [][]string
	for _, g := range groups {
		var a []string
		for _, n := range g {
			a = append(a, n.Transport.Addr())
		}
		addrs = append(addrs, a)
	}
	c.Net.Partition(addrs...)
}

// Heal ends a partition.
func (c *Cluster) Heal() { c.Net.Heal() }

// View is one node's view of the cluster as a test compares it.
type View struct {
	Version uint64
	Entries []string // host|ip|port, sorted
}

func (v View) String() string {
	return fmt.Sprintf("version %d: %s", v.Version, strings.Join(v.Entries, " "))
}

// ViewOf returns n's view of the cluster.
func ViewOf(n *Node) View {
	cv := n.Server.ClusterView()
	return viewOf(cv.Version, cv.Members)
}

func viewOf(version uint64, members []ring.Member) View {
	v := View{Version: version}
	for _, m := range members {
		v.Entries = append(v.Entries, m.Entry())
	}
	slices.Sort(v.Entries)
	return v
}

// WaitAgree waits until every node in nodes has the same view, one that
// lists exactly nodes, and returns it. It fails the test at the deadline,
// showing every node's view.
func WaitAgree(t testing.TB, timeout time.Duration, nodes ...*Node) View {
	t.Helper()
	var want []string
	for _, n := range nodes {
		want = append(want, n.Entry)
	}
	slices.Sort(want)
	return waitAgree(t, timeout, want, len(nodes), func(i int) (View, error) { return ViewOf(nodes[i]), nil })
}

// WaitAgreeAddrs is WaitAgree over the wire: it asks each of the memcached
// addresses "config get cluster" until all answer the same view listing
// exactly the entries want.
func WaitAgreeAddrs(t testing.TB, timeout time.Duration, addrs []string, want []string) View {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	return waitAgree(t, timeout, want, len(addrs), func(i int) (View, error) { return QueryView(addrs[i]) })
}

func waitAgree(t testing.TB, timeout time.Duration, want []string, n int, get func(int) (View, error)) View {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for {
		views := make([]View, n)
		errs := make([]error, n)
		ok := true
		for i := range n {
			views[i], errs[i] = get(i)
			if errs[i] != nil || views[i].Version == 0 || !slices.Equal(views[i].Entries, want) || views[i].Version != views[0].Version {
				ok = false
			}
		}
		if ok {
			return views[0]
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, "\n  node %d: %v", i, views[i])
				if errs[i] != nil {
					fmt.Fprintf(&b, " (%v)", errs[i])
				}
			}
			t.Fatalf("clustertest: no agreement within %v on %v; views:%s", timeout, want, b.String())
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// QueryView asks the node at addr "config get cluster" and parses the reply.
func QueryView(addr string) (View, error) {
	reply, err := Query(addr, "config get cluster")
	if err != nil {
		return View{}, err
	}
	version, members, err := ring.ParseClusterConfig(bufio.NewReader(bytes.NewReader(reply)))
	if err != nil {
		return View{}, err
	}
	return viewOf(version, members), nil
}

// Query sends one text command to the node at addr and returns its whole
// reply, through the line "END" (or the first line, if it is not a CONFIG,
// VALUE or STAT block).
func Query(addr, cmd string) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	var out []byte
	for {
		line, err := br.ReadBytes('\n')
		out = append(out, line...)
		if err != nil {
			return out, err
		}
		s := string(line)
		if s == "END\r\n" {
			return out, nil
		}
		if len(out) == len(line) && !strings.HasPrefix(s, "CONFIG ") && !strings.HasPrefix(s, "VALUE ") && !strings.HasPrefix(s, "STAT ") {
			return out, errors.New(strings.TrimSpace(s))
		}
	}
}
