package clustertest_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/cluster"
)

// TestFleetSimulation runs a fleet of in-process nodes (100 by default) on
// the in-memory gossip network, with the daemon's default timings, and
// reports how long every node takes to agree on the view after a join, a
// graceful leave and ten simultaneous failures, and the gossip bytes each
// node sends per second while the fleet is stable: what a fleet larger than
// this machine's three processes would see of the defaults. It takes about
// two minutes and both cores, so it runs only when MEMCLUSTER_FLEET_TEST is
// set (to the number of nodes, or 1 for 100); `make bench-cluster` runs it.
func TestFleetSimulation(t *testing.T) {
	env := os.Getenv("MEMCLUSTER_FLEET_TEST")
	if env == "" {
		t.Skip("set MEMCLUSTER_FLEET_TEST=1 (or a number of nodes) to run it")
	}
	size := 100
	if n, err := strconv.Atoi(env); err == nil && n > 10 {
		size = n
	}
	c := clustertest.New(t)
	add := func() *clustertest.Node {
		// Zero timings are the daemon's defaults (cluster.Config.WithDefaults).
		cfg := node.Config{MemoryLimit: 1 << 20}
		cfg.Cluster.Join = c.Seeds()
		return c.AddConfig("", cfg)
	}
	start := time.Now()
	for range size {
		add()
	}
	v := clustertest.WaitAgree(t, 2*time.Minute, c.Live()...)
	t.Logf("%d nodes started and agreed in %v (version %d)", size, time.Since(start).Round(time.Millisecond), v.Version)

	// Gossip while stable.
	time.Sleep(cluster.DefaultPushPullInterval) // past the start's exchanges
	live := c.Live()
	before := make([]int64, len(live))
	for i, n := range live {
		before[i] = n.Transport.BytesSent()
	}
	const quiet = 30 * time.Second // memberlist spaces a fleet's push-pulls out to about this
	time.Sleep(quiet)
	var total, most int64
	for i, n := range live {
		d := n.Transport.BytesSent() - before[i]
		total += d
		most = max(most, d)
	}
	perSec := func(b int64) float64 { return float64(b) / quiet.Seconds() }
	t.Logf("stable: gossip sent per node, %.0f B/s on average, %.0f B/s at most", perSec(total)/float64(len(live)), perSec(most))

	agreeAfter := func(what string, do func()) {
		t.Helper()
		start := time.Now()
		do()
		v := clustertest.WaitAgree(t, 2*time.Minute, c.Live()...)
		t.Logf("%s: every node agreed %v later (version %d, %d members)", what, time.Since(start).Round(time.Millisecond), v.Version, len(v.Entries))
	}
	agreeAfter("a join", func() { add() })
	agreeAfter("a graceful leave", func() { c.Stop(c.Live()[len(c.Live())/2]) })
	agreeAfter("ten simultaneous failures", func() {
		victims := c.Live()[size/3 : size/3+10]
		for _, n := range victims {
			n.Transport.Shutdown() // all off the network at once
		}
		for _, n := range victims {
			c.Kill(n)
		}
	})
}
