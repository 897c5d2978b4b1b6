package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/ring"
)

// ringLoad is a cache-aside load (get; on a miss, set) from gomemcache
// clients on a ring.Selector, or ring.Clients over one, counting what
// failed.
type ringLoad struct {
	sel  *ring.Selector
	mc   *memcache.Client
	rc   *ring.Client // nil for the plain gomemcache client
	stop chan struct{}
	wg   sync.WaitGroup

	ops    atomic.Int64
	misses atomic.Int64
	mu     sync.Mutex
	errs   []string // the first failures, with when they happened
	failed int
	// firstAt and lastAt are when the first and the last failure
	// happened.
	firstAt, lastAt time.Time
}

// startRingLoad starts workers clients' load on the cluster that seeds
// belong to, with the Selector's default poll, once the Selector has the
// cluster's view: gomemcache's client on the Selector, or with failover a
// ring.Client. It stops at the end of the test.
func startRingLoad(t *testing.T, seeds []string, workers int, failover bool) *ringLoad {
	t.Helper()
	sel, err := ring.NewSelector(seeds, ring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sel.Refresh(ctx); err != nil {
		sel.Close()
		t.Fatal(err)
	}
	l := &ringLoad{sel: sel, mc: memcache.NewFromSelector(sel), stop: make(chan struct{})}
	if failover {
		l.rc = ring.NewClient(sel)
		l.mc = l.rc.Memcache()
	}
	// The machine is shared and a test's timings are loose: a reply late
	// by a second is not what these tests look for, a failed one is.
	l.mc.Timeout = 2 * time.Second
	start := time.Now()
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("load:%d", rng.IntN(2000))
				err := l.getOrSet(key)
				l.ops.Add(1)
				if err != nil {
					l.mu.Lock()
					if l.failed == 0 {
						l.firstAt = time.Now()
					}
					l.lastAt = time.Now()
					l.failed++
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("%v: %s: %v", time.Since(start).Round(time.Millisecond), key, err))
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	t.Cleanup(l.close)
	return l
}

// getOrSet gets key and, on a miss, sets it.
func (l *ringLoad) getOrSet(key string) error {
	item := &memcache.Item{Key: key, Value: []byte("value of " + key)}
	if l.rc != nil {
		ctx := context.Background()
		_, err := l.rc.Get(ctx, key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			l.misses.Add(1)
			err = l.rc.Set(ctx, item)
		}
		return err
	}
	_, err := l.mc.Get(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		l.misses.Add(1)
		err = l.mc.Set(item)
	}
	return err
}

// close stops the load and its Selector; it may be called again.
func (l *ringLoad) close() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	l.wg.Wait()
	l.sel.Close()
}

// failures returns how many requests failed and the first few.
func (l *ringLoad) failures() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed, append([]string(nil), l.errs...)
}

// TestProcessRollingRestart restarts each of three daemons in turn (SIGTERM,
// then a new process under the same name, at a new address) while
// gomemcache clients on ring.Selector, with its default poll, keep a
// cache-aside load going, and checks that not one request fails: a node
// that leaves drains for the default --drain, so that every client has
// moved its keys away before it closes. During the first drain it checks
// what the draining node says of itself.
func TestProcessRollingRestart(t *testing.T) {
	procs, _ := startCluster(t, "a", "b", "c")
	load := startRingLoad(t, addrs(procs...), 4, false)
	time.Sleep(time.Second)

	for i, p := range procs {
		others := without(procs, i)
		before := load.ops.Load()
		start := time.Now()
		p.srv.Signal(t, syscall.SIGTERM)
		if i == 0 {
			checkDraining(t, p, others)
		}
		st := p.srv.Wait(15 * time.Second)
		if st == nil || st.ExitCode() != 0 {
			t.Fatalf("%s: exit %v after SIGTERM, want status 0\n%s", p.name, st, p.srv.Output())
		}
		served := time.Since(start)
		t.Logf("%s drained and exited %v after SIGTERM; %d requests meanwhile", p.name, served.Round(time.Millisecond), load.ops.Load()-before)
		if served < 4*time.Second {
			t.Errorf("%s exited %v after SIGTERM, before its 5 s drain was over", p.name, served)
		}
		procs[i] = startProc(t, p.name, gossips(others...))
		clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(procs...), entries(procs...))
		time.Sleep(time.Second) // clients take in the new node under load
	}
	load.close()
	failed, first := load.failures()
	t.Logf("rolling restart: %d requests, %d misses, %d failed", load.ops.Load(), load.misses.Load(), failed)
	if failed > 0 {
		t.Errorf("%d requests failed during the rolling restart, want none; the first:\n%s", failed, strings.Join(first, "\n"))
	}
}

// checkDraining checks, right after p was sent SIGTERM, that it drains:
// within a second it answers "config get cluster" with the others alone,
// at a version above the view they shared, and its stats say "draining".
func checkDraining(t *testing.T, p *proc, others []*proc) {
	t.Helper()
	was, err := clustertest.QueryView(others[0].srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	want := entries(others...)
	slices.Sort(want)
	deadline := time.Now().Add(time.Second)
	for {
		v, err := clustertest.QueryView(p.srv.Addr)
		if err == nil && slices.Equal(v.Entries, want) {
			if v.Version <= was.Version {
				t.Errorf("draining %s: version %d, want above the cluster's %d", p.name, v.Version, was.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("draining %s still answers %v (%v), want %v", p.name, v, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stats, err := clustertest.Query(p.srv.Addr, "stats")
	if err != nil || !strings.Contains(string(stats), "STAT draining 1\r\n") {
		t.Errorf("draining %s: stats lack \"STAT draining 1\" (%v):\n%s", p.name, err, stats)
	}
}

// TestProcessDrainEndsEarly checks that a second SIGTERM ends a long drain
// at once, and that a node with no other members does not drain at all.
func TestProcessDrainEndsEarly(t *testing.T) {
	a := startProc(t, "a", nil, "--drain", "1m")
	b := startProc(t, "b", []string{a.gossip}, "--drain", "1m")
	clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(a, b), entries(a, b))

	b.srv.Signal(t, syscall.SIGTERM)
	waitDropped(t, time.Now(), 2*time.Second, b, a)
	if b.srv.Wait(500 * time.Millisecond); b.srv.Exited() {
		t.Fatalf("b exited within 0.5 s of SIGTERM, want it draining for a minute\n%s", b.srv.Output())
	}
	start := time.Now()
	b.srv.Signal(t, syscall.SIGTERM)
	if st := b.srv.Wait(5 * time.Second); st == nil || st.ExitCode() != 0 {
		t.Fatalf("b: %v 5 s after a second SIGTERM, want exit status 0\n%s", st, b.srv.Output())
	}
	t.Logf("second SIGTERM: b exited after %v", time.Since(start).Round(time.Millisecond))

	// a is alone now: nothing to drain to.
	clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(a), entries(a))
	start = time.Now()
	a.srv.Signal(t, syscall.SIGTERM)
	if st := a.srv.Wait(5 * time.Second); st == nil || st.ExitCode() != 0 {
		t.Fatalf("lone a: %v 5 s after SIGTERM, want exit status 0 without a drain\n%s", st, a.srv.Output())
	}
	t.Logf("lone node: exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// without returns ps without its i-th element, in a new slice.
func without(ps []*proc, i int) []*proc {
	out := make([]*proc, 0, len(ps)-1)
	out = append(out, ps[:i]...)
	return append(out, ps[i+1:]...)
}

// TestProcessKillUnderLoad kills one of three daemons (kill -9) while
// ring.Clients keep a cache-aside load going, and checks that requests fail
// for at most a second after the first failure: the clients mark the dead
// node down at once and send its keys to their owners without it, before
// the gossip has dropped it.
func TestProcessKillUnderLoad(t *testing.T) {
	procs, _ := startCluster(t, "a", "b", "c")
	load := startRingLoad(t, addrs(procs...), 4, true)
	time.Sleep(time.Second)
	before := load.ops.Load()
	killed := time.Now()
	procs[1].srv.Kill()
	waitDropped(t, killed, 10*time.Second, procs[1], procs[0], procs[2])
	time.Sleep(2 * time.Second) // the clients poll the config without it
	load.close()
	failed, first := load.failures()
	t.Logf("kill -9 under load: %d requests after the kill, %d misses in all, %d failed", load.ops.Load()-before, load.misses.Load(), failed)
	if failed > 0 {
		load.mu.Lock()
		span := load.lastAt.Sub(load.firstAt)
		load.mu.Unlock()
		t.Logf("failures for %v after the first; the first:\n%s", span, strings.Join(first, "\n"))
		if span > time.Second {
			t.Errorf("requests failed for %v after the first failure, want at most 1 s", span)
		}
	}
}
