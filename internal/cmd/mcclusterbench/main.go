// Command mcclusterbench measures what a change of membership costs a
// cache-aside application, for scripts/bench-cluster.sh. It starts three
// memcluster daemons on loopback, runs a cache-aside load on them (get a
// key drawn from Zipf(0.99); on a miss, set it) from gomemcache clients on
// a ring.Selector, and, once the cache is warm, goes through these events,
// -phase apart:
//
//   - scale-out: a fourth node joins;
//   - rolling restart: each node in turn gets SIGTERM and, once it has
//     exited, comes back under its name at new ports;
//   - scale-in: one node gets SIGTERM and does not come back;
//   - kill -9: one node is killed and does not come back.
//
// The events come at fixed times, -warmup and then -phase apart (later if
// the one before took longer, as a rolling restart may). It prints one row
// a second (gets, hit ratio, failed requests) and, for each event, the
// requests that failed and the misses (failed gets included) in the -phase
// from the event on. With -events=false it runs the same timeline without
// the events: the misses of a window there are what the load itself costs
// (keys asked for the first time), which scripts/bench-cluster.sh
// subtracts.
//
//	mcclusterbench [-bin bin/memcluster] [-client ring|plain] [-drain D] [-handoff D]
//	               [-events=false] [-keys 100000] [-workers 8] [-warmup 30s] [-phase 30s]
//
// -client ring uses ring.Client, which sends a dead node's keys elsewhere at
// the first failure; plain, gomemcache on the Selector alone. -drain and
// -handoff are passed to the daemons as --drain and --handoff (the
// daemon's defaults if empty). Each event's row also gives the hit ratio
// over the 20 s from the event on (hits20s).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/workload"
	"github.com/memcluster/memcluster/ring"
)

// ratioWindow is how long after an event its hit ratio is measured: the
// issue's bar is a scale-out costing at most a point over 20 s.
const ratioWindow = 20 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mcclusterbench:", err)
		os.Exit(1)
	}
}

// bench is one run: its daemons, its load and its counters.
type bench struct {
	bin, drain, handoff, logDir string

	mu    sync.Mutex
	nodes map[string]*daemon // live daemons by name

	gets, hits, failed atomic.Int64
}

// daemon is one memcluster process.
type daemon struct {
	name, addr, gossip string
	cmd                *exec.Cmd
	exited             chan struct{}
}

func run() error {
	b := &bench{nodes: map[string]*daemon{}}
	flag.StringVar(&b.bin, "bin", "bin/memcluster", "the memcluster daemon")
	client := flag.String("client", "ring", "ring (ring.Client) or plain (gomemcache on the Selector)")
	flag.StringVar(&b.drain, "drain", "", "the daemons' --drain (their default if empty)")
	flag.StringVar(&b.handoff, "handoff", "", "the daemons' --handoff (their default if empty)")
	keys := flag.Uint64("keys", 100000, "keys in the Zipf(0.99) mix")
	workers := flag.Int("workers", 8, "concurrent clients")
	warmup := flag.Duration("warmup", 30*time.Second, "load before the first event")
	phase := flag.Duration("phase", 30*time.Second, "time from one event to the next, and each event's window")
	events := flag.Bool("events", true, "do the events (false: the same timeline without them, for a baseline)")
	flag.Parse()
	if *client != "ring" && *client != "plain" {
		return fmt.Errorf("-client is ring or plain, not %q", *client)
	}
	dir, err := os.MkdirTemp("", "mcclusterbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.logDir = dir
	defer b.stopAll()

	var seeds []string
	for _, name := range []string{"n1", "n2", "n3"} {
		d, err := b.start(name, seeds)
		if err != nil {
			return err
		}
		seeds = append(seeds, d.gossip)
	}
	if err := b.waitAgree(3); err != nil {
		return err
	}
	sel, err := ring.NewSelector(b.addrs(), ring.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer sel.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = sel.Refresh(ctx)
	cancel()
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	zipf := workload.NewZipf(*keys, 0.99)
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.load(sel, *client == "ring", zipf, uint64(w), stop)
		}()
	}

	fmt.Printf("# client %s, drain %q, handoff %q, events %v, %d keys, %d workers\n", *client, b.drain, b.handoff, *events, *keys, *workers)
	fmt.Printf("%6s %9s %7s %7s\n", "t_s", "gets/s", "hits", "failed")
	began := time.Now()
	b.printEverySecond(began, stop)

	type result struct {
		name           string
		failed, misses int64
		ratio20        float64 // the hit ratio over the 20 s from the event on
	}
	var results []result
	next := began.Add(*warmup)
	event := func(name string, do func() error) error {
		time.Sleep(time.Until(next))
		start := time.Now()
		c0 := b.counts()
		fmt.Printf("# %.0f s: %s\n", start.Sub(began).Seconds(), name)
		if *events {
			if err := do(); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		time.Sleep(time.Until(start.Add(ratioWindow)))
		c20 := b.counts()
		time.Sleep(time.Until(start.Add(*phase)))
		c1 := b.counts()
		ratio20 := float64(c20.hits-c0.hits) / float64(max(c20.gets-c0.gets, 1))
		b.printHandoff()
		results = append(results, result{name, c1.failed - c0.failed, c1.misses - c0.misses, ratio20})
		next = next.Add(*phase)
		return nil
	}
	if err := event("scale-out 3->4", func() error {
		_, err := b.start("n4", b.gossips())
		if err != nil {
			return err
		}
		return b.waitAgree(4)
	}); err != nil {
		return err
	}
	if err := event("rolling restart", func() error {
		for _, name := range []string{"n1", "n2", "n3", "n4"} {
			if err := b.stop(name, syscall.SIGTERM); err != nil {
				return err
			}
			if _, err := b.start(name, b.gossips()); err != nil {
				return err
			}
			if err := b.waitAgree(4); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := event("scale-in 4->3 (SIGTERM)", func() error { return b.stop("n4", syscall.SIGTERM) }); err != nil {
		return err
	}
	if err := event("kill -9", func() error { return b.stop("n3", syscall.SIGKILL) }); err != nil {
		return err
	}
	close(stop)
	wg.Wait()

	fmt.Printf("\n%-26s %8s %8s %8s\n", "event", "failed", "misses", "hits20s")
	for _, r := range results {
		fmt.Printf("%-26s %8d %8d %8.4f\n", r.name, r.failed, r.misses, r.ratio20)
	}
	return nil
}

// load runs one worker's cache-aside requests until stop.
func (b *bench) load(sel *ring.Selector, failover bool, zipf workload.Zipf, seed uint64, stop chan struct{}) {
	mc := memcache.NewFromSelector(sel)
	var rc *ring.Client
	if failover {
		rc = ring.NewClient(sel)
		mc = rc.Memcache()
	}
	mc.Timeout = time.Second
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	var key []byte
	for {
		select {
		case <-stop:
			return
		default:
		}
		i := zipf.Draw(rng)
		key = workload.Key(key[:0], i, 16)
		k := string(key)
		var err error
		if rc != nil {
			_, err = rc.Get(ctx, k)
		} else {
			_, err = mc.Get(k)
		}
		b.gets.Add(1)
		switch {
		case err == nil:
			b.hits.Add(1)
		case errors.Is(err, memcache.ErrCacheMiss):
			item := &memcache.Item{Key: k, Value: make([]byte, workload.ValueSize(i))}
			if rc != nil {
				err = rc.Set(ctx, item)
			} else {
				err = mc.Set(item)
			}
			if err != nil {
				b.failed.Add(1)
			}
		default:
			b.failed.Add(1)
		}
	}
}

// counts are cumulative counters at one moment.
type counts struct{ gets, hits, failed, misses int64 }

// counts returns b's counters now.
func (b *bench) counts() counts {
	g, h, f := b.gets.Load(), b.hits.Load(), b.failed.Load()
	return counts{g, h, f, g - h}
}

// printEverySecond prints, every second until stop, the gets, the hit
// ratio and the failed requests of that second.
func (b *bench) printEverySecond(began time.Time, stop chan struct{}) {
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prev := b.counts()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			c := b.counts()
			gets := c.gets - prev.gets
			ratio := 0.0
			if gets > 0 {
				ratio = float64(c.hits-prev.hits) / float64(gets)
			}
			fmt.Printf("%6.0f %9d %7.3f %7d\n", time.Since(began).Seconds(), gets, ratio, c.failed-prev.failed)
			prev = c
		}
	}()
}

// printHandoff prints each live daemon's hand-off counters (its stats'
// handoff_ lines, which a node has once it has had a window or a push).
func (b *bench) printHandoff() {
	b.mu.Lock()
	ds := make([]*daemon, 0, len(b.nodes))
	for _, d := range b.nodes {
		ds = append(ds, d)
	}
	b.mu.Unlock()
	for _, d := range ds {
		nc, err := net.DialTimeout("tcp", d.addr, time.Second)
		if err != nil {
			continue
		}
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(nc, "stats\r\n")
		var out []string
		sc := bufio.NewScanner(nc)
		for sc.Scan() && sc.Text() != "END" {
			if rest, ok := strings.CutPrefix(sc.Text(), "STAT handoff_"); ok {
				out = append(out, rest)
			}
		}
		nc.Close()
		if len(out) > 0 {
			fmt.Printf("# hand-off of %s: %s\n", d.name, strings.Join(out, " "))
		}
	}
}

// start starts the daemon name, joining seeds, on free loopback ports.
func (b *bench) start(name string, seeds []string) (*daemon, error) {
	port, gport := freePort(), freePort()
	if port == 0 || gport == 0 {
		return nil, errors.New("no free port")
	}
	d := &daemon{
		name:   name,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		gossip: net.JoinHostPort("127.0.0.1", strconv.Itoa(gport)),
		exited: make(chan struct{}),
	}
	args := []string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "64",
		"--name", name, "--gossip-addr", d.gossip}
	if len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	if b.handoff != "" {
		args = append(args, "--handoff", b.handoff)
	}
	if b.drain != "" {
		args = append(args, "--drain", b.drain)
	}
	logFile, err := os.Create(fmt.Sprintf("%s/%s-%d.log", b.logDir, name, port))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(b.bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	go func() {
		d.cmd.Wait()
		logFile.Close()
		close(d.exited)
	}()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err := net.Dial("tcp", d.addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			d.cmd.Process.Kill()
			return nil, fmt.Errorf("%s does not listen on %s", name, d.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	b.nodes[name] = d
	b.mu.Unlock()
	return d, nil
}

// stop sends sig to the daemon name and waits for it to exit.
func (b *bench) stop(name string, sig syscall.Signal) error {
	b.mu.Lock()
	d := b.nodes[name]
	delete(b.nodes, name)
	b.mu.Unlock()
	if d == nil {
		return fmt.Errorf("no daemon %s", name)
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
		return nil
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		return fmt.Errorf("%s did not exit within 20 s of %v", name, sig)
	}
}

// stopAll kills every daemon left.
func (b *bench) stopAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.nodes {
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// addrs returns the memcached addresses of the live daemons.
func (b *bench) addrs() []string { return b.each(func(d *daemon) string { return d.addr }) }

// gossips returns the gossip addresses of the live daemons.
func (b *bench) gossips() []string { return b.each(func(d *daemon) string { return d.gossip }) }

// each returns field of every live daemon.
func (b *bench) each(field func(*daemon) string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, d := range b.nodes {
		out = append(out, field(d))
	}
	return out
}

// waitAgree waits until every live daemon lists n members at one version.
func (b *bench) waitAgree(n int) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var version uint64
		agree := true
		addrs := b.addrs()
		for i, a := range addrs {
			v, members, err := clusterConfig(a)
			if err != nil || len(members) != n || (i > 0 && v != version) {
				agree = false
				break
			}
			version = v
		}
		if agree && len(addrs) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %d daemons did not agree on %d members within 15 s", len(addrs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterConfig asks the node at addr for its config.
func clusterConfig(addr string) (uint64, []ring.Member, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "config get cluster\r\n"); err != nil {
		return 0, nil, err
	}
	return ring.ParseClusterConfig(bufio.NewReader(c))
}

// freePort returns a loopback TCP port free a moment ago, 0 if none.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
