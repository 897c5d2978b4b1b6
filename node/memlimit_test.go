package node_test

import (
	"bufio"
	"math"
	"net"
	"runtime/debug"
	"testing"
	"time"

	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/scavenge"
)

// A node that owns its process keeps the runtime's memory limit at 1.1 × its
// cache plus scavenge.Slack, through cache_memlimit too.
func TestRuntimeMemoryLimitFollowsTheCache(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // a limit from the environment would win
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	addr := serveSingle(t, node.Config{MemoryLimit: 1 << 30, RuntimeMemoryLimit: true}, false)
	want := func(cache int64) int64 { return cache + cache/10 + scavenge.Slack }
	if got := debug.SetMemoryLimit(-1); got != want(1<<30) {
		t.Errorf("memory limit %d with -m 1024, want %d", got, want(1<<30))
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("cache_memlimit 2048\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "OK\r\n" {
		t.Fatalf("cache_memlimit: %q %v", line, err)
	}
	if got := debug.SetMemoryLimit(-1); got != want(2<<30) {
		t.Errorf("memory limit %d after cache_memlimit 2048, want %d", got, want(2<<30))
	}
}

// GOMEMLIMIT in the environment wins over the node's limit.
func TestRuntimeMemoryLimitLeavesGOMEMLIMIT(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	if scavenge.SetMemoryLimit(64 << 20) {
		t.Error("SetMemoryLimit set a limit with GOMEMLIMIT in the environment")
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d, want the one before", got)
	}
}
