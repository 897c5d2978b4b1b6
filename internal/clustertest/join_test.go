package clustertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/ring"
)

// agreeTimeout bounds how long daemons with their default timings may take
// to agree on a view, on a shared two-core machine under the race detector.
const agreeTimeout = 10 * time.Second

// startCluster starts one daemon per name, each joining the gossip
// addresses of those before it, and waits until all agree on a view that
// lists exactly them.
func startCluster(t *testing.T, names ...string) ([]*proc, clustertest.View) {
	t.Helper()
	var ps []*proc
	var seeds []string
	for _, name := range names {
		p := startProc(t, name, slices.Clone(seeds))
		ps = append(ps, p)
		seeds = append(seeds, p.gossip)
	}
	v := clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(ps...), entries(ps...))
	return ps, v
}

func gossips(ps ...*proc) []string {
	var g []string
	for _, p := range ps {
		g = append(g, p.gossip)
	}
	return g
}

// mcctlRun is the outcome of one mcctl process.
type mcctlRun struct {
	stdout, stderr string
	code           int
}

func (r mcctlRun) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// mcctl runs the mcctl binary with -s seeds and args, and returns its exit
// status and output. It fails the test if mcctl cannot be built or run, or
// runs for more than 30 s.
func mcctl(t *testing.T, seeds []string, args ...string) mcctlRun {
	t.Helper()
	bin, err := servertest.MCCTLBinary()
	if err != nil {
		t.Fatalf("mcctl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"-s", strings.Join(seeds, ","), "-timeout", "5s"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := mcctlRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("mcctl %s: %v (stderr %q)", strings.Join(full, " "), err, r.stderr)
	}
	return r
}

// rawGet asks the node at addr for key with a plain text `get` and returns
// the value and whether the node holds the key.
func rawGet(addr, key string) (value string, ok bool, err error) {
	reply, err := clustertest.Query(addr, "get "+key)
	if err != nil {
		return "", false, fmt.Errorf("get %s from %s: %w", key, addr, err)
	}
	s := string(reply)
	if s == "END\r\n" {
		return "", false, nil
	}
	header, rest, _ := strings.Cut(s, "\r\n")
	f := strings.Fields(header)
	if len(f) != 4 || f[0] != "VALUE" || f[1] != key {
		return "", false, fmt.Errorf("get %s from %s: unexpected reply %q", key, addr, s)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || len(rest) != n+len("\r\nEND\r\n") {
		return "", false, fmt.Errorf("get %s from %s: unexpected reply %q", key, addr, s)
	}
	return rest[:n], true, nil
}

// nodeOwner asks the node at addr which node owns key (`config get owner`)
// and returns its host|ip|port entry.
func nodeOwner(addr, key string) (string, error) {
	reply, err := clustertest.Query(addr, "config get owner "+key)
	if err != nil {
		return "", fmt.Errorf("config get owner %s on %s: %w", key, addr, err)
	}
	lines := strings.Split(string(reply), "\r\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CONFIG owner ") || lines[2] != "END" {
		return "", fmt.Errorf("config get owner %s on %s: unexpected reply %q", key, addr, reply)
	}
	return lines[1], nil
}

// TestProcessMCCTL runs the mcctl binary against three daemons: members
// lists the three; set puts a key on its owner (as the nodes name it) and
// on no other node, whichever node mcctl is given as seed; get through any
// one seed finds it; a miss exits 1 with nothing on stdout; delete removes
// the key; stats has a row per node whose counts match what was set.
func TestProcessMCCTL(t *testing.T) {
	ps, view := startCluster(t, "a", "b", "c")
	all := addrs(ps...)
	byEntry := map[string]*proc{}
	for _, p := range ps {
		byEntry[p.entry()] = p
	}

	// members: the version the nodes agree on, and one row per node, by
	// its name.
	r := mcctl(t, all, "members")
	if r.code != 0 {
		t.Fatalf("mcctl members: %v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if want := fmt.Sprintf("cluster version %d, 3 members", view.Version); lines[0] != want {
		t.Errorf("mcctl members: first line %q, want %q", lines[0], want)
	}
	if len(lines) != 2+len(ps) || !strings.HasPrefix(lines[1], "NAME") {
		t.Fatalf("mcctl members: got %q, want a header and %d rows", r.stdout, len(ps))
	}
	for _, p := range ps {
		n := 0
		for _, l := range lines[2:] {
			if f := strings.Fields(l); len(f) == 3 && f[0] == p.name && f[1] == p.srv.Addr && f[2] == p.entry() {
				n++
			}
		}
		if n != 1 {
			t.Errorf("mcctl members: %d rows naming %s at %s (%s), want 1:\n%s", n, p.name, p.srv.Addr, p.entry(), r.stdout)
		}
	}

	// One key owned by each node, as the nodes themselves say.
	keyOf := map[*proc]string{}
	for i := 0; len(keyOf) < len(ps); i++ {
		if i == 200 {
			t.Fatalf("200 keys do not cover every node: %v", keyOf)
		}
		key := "mcctl-key-" + strconv.Itoa(i)
		owner, err := nodeOwner(ps[i%len(ps)].srv.Addr, key)
		if err != nil {
			t.Fatal(err)
		}
		p := byEntry[owner]
		if p == nil {
			t.Fatalf("owner of %s is %q, not one of %v", key, owner, entries(ps...))
		}
		if _, ok := keyOf[p]; !ok {
			keyOf[p] = key
		}
	}

	for i, owner := range ps {
		key := keyOf[owner]
		value := "value-of-" + key
		// mcctl owner agrees with the nodes, through every seed.
		for _, seed := range ps {
			if r := mcctl(t, []string{seed.srv.Addr}, "owner", key); r.code != 0 || r.stdout != owner.entry()+"\n" {
				t.Errorf("mcctl -s %s owner %s: %v, want %q", seed.name, key, r, owner.entry())
			}
		}
		// set through a seed that is not the owner.
		other := ps[(i+1)%len(ps)]
		if r := mcctl(t, []string{other.srv.Addr}, "set", key, value); r.code != 0 || r.stdout != "" {
			t.Fatalf("mcctl -s %s set %s: %v, want exit 0 and no output", other.name, key, r)
		}
		for _, p := range ps {
			got, ok, err := rawGet(p.srv.Addr, key)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case p == owner && (!ok || got != value):
				t.Errorf("owner %s: get %s = %q, %v; want %q", p.name, key, got, ok, value)
			case p != owner && ok:
				t.Errorf("%s, not the owner (%s), holds %s = %q", p.name, owner.name, key, got)
			}
		}
		// get through any one seed: the value and a newline.
		for _, seed := range ps {
			if r := mcctl(t, []string{seed.srv.Addr}, "get", key); r.code != 0 || r.stdout != value+"\n" {
				t.Errorf("mcctl -s %s get %s: %v, want exit 0 and %q", seed.name, key, r, value)
			}
		}
	}

	// A miss exits 1 and prints nothing, through any seed.
	for _, seed := range ps {
		if r := mcctl(t, []string{seed.srv.Addr}, "get", "mcctl-never-set"); r.code != 1 || r.stdout != "" {
			t.Errorf("mcctl -s %s get of a missing key: %v, want exit 1 and no output", seed.name, r)
		}
	}

	// stats: a row per node, each holding the one key set on it.
	r = mcctl(t, all, "stats")
	if r.code != 0 {
		t.Fatalf("mcctl stats: %v", r)
	}
	t.Logf("mcctl stats:\n%s", r.stdout)
	rows := map[string][]string{}
	var header []string
	for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if f[0] == "NODE" {
			header = f
			continue
		}
		if _, dup := rows[f[0]]; dup {
			t.Errorf("mcctl stats: two rows for %s", f[0])
		}
		rows[f[0]] = f
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	if _, ok := col["curr_items"]; !ok {
		t.Fatalf("mcctl stats: no curr_items column in %q", r.stdout)
	}
	if len(rows) != len(ps)+1 {
		t.Errorf("mcctl stats: %d rows, want one per node and TOTAL:\n%s", len(rows), r.stdout)
	}
	want := map[string]string{"TOTAL": strconv.Itoa(len(ps))}
	for _, p := range ps {
		want[p.entry()] = "1"
	}
	for name, items := range want {
		row, ok := rows[name]
		if !ok || len(row) != len(header) {
			t.Errorf("mcctl stats: row for %s is %q, want %d columns", name, row, len(header))
			continue
		}
		if got := row[col["curr_items"]]; got != items {
			t.Errorf("mcctl stats: %s curr_items = %s, want %s", name, got, items)
		}
	}

	// delete: the key is gone from its owner; a second delete finds nothing.
	key := keyOf[ps[0]]
	if r := mcctl(t, all, "delete", key); r.code != 0 {
		t.Errorf("mcctl delete %s: %v, want exit 0", key, r)
	}
	if _, ok, err := rawGet(ps[0].srv.Addr, key); err != nil || ok {
		t.Errorf("after mcctl delete, %s still holds %s (%v)", ps[0].name, key, err)
	}
	if r := mcctl(t, all, "delete", key); r.code != 1 {
		t.Errorf("second mcctl delete %s: %v, want exit 1", key, r)
	}
}

// TestProcessJoin is the cluster issue's "Done when" for a join: a
// gomemcache client on a ring.Selector fills three daemons with keys; a
// fourth daemon joins while the client keeps working; the client's ring
// follows within the poll interval; about a quarter of the keys move, every
// one of them to the new node; keys that stayed still hit, keys that moved
// miss once and, set again, are read from the new node.
func TestProcessJoin(t *testing.T) {
	const (
		nKeys    = 2000
		nBgKeys  = 500
		pollEach = 200 * time.Millisecond
	)
	old, view := startCluster(t, "a", "b", "c")

	sel, err := ring.NewSelector(addrs(old...), ring.Config{
		PollInterval: pollEach,
		Timeout:      2 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sel.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), agreeTimeout)
	defer cancel()
	if err := sel.Refresh(ctx); err != nil {
		t.Fatalf("selector: first refresh: %v", err)
	}
	oldVersion, oldRing := sel.Current()
	if got := ringEntries(oldRing); oldVersion != view.Version || !slices.Equal(got, view.Entries) {
		t.Fatalf("selector holds version %d %v, want the nodes' %v", oldVersion, got, view)
	}

	mc := memcache.NewFromSelector(sel)
	// gomemcache's 500 ms default is a latency budget for production;
	// here two shared cores run four daemons, the race detector and
	// this client, and a stall of half a second is not the cluster's
	// fault. Errors counted below are then real ones: refused or reset
	// connections, or a node that does not answer in 2 s.
	mc.Timeout = 2 * time.Second
	keys := make([]string, nKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("join-key-%04d", i)
		if err := mc.Set(&memcache.Item{Key: keys[i], Value: []byte("v1-" + keys[i]), Flags: 42, Expiration: 3600}); err != nil {
			t.Fatalf("set %s: %v", keys[i], err)
		}
	}

	// Background traffic on keys of its own, so it neither fills nor
	// reads the keys whose movement is measured.
	var (
		ops, hits, misses atomic.Int64
		errMu             sync.Mutex // guards errs
		errs              []error
		stop              = make(chan struct{})
		wg                sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := "join-bg-" + strconv.Itoa(i%nBgKeys)
			_, err := mc.Get(key)
			switch {
			case err == nil:
				hits.Add(1)
			case errors.Is(err, memcache.ErrCacheMiss):
				misses.Add(1)
				err = mc.Set(&memcache.Item{Key: key, Value: []byte("bg")})
			}
			if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				errMu.Lock()
				errs = append(errs, fmt.Errorf("op %d on %s: %w", i, key, err))
				errMu.Unlock()
			}
			ops.Add(1)
		}
	})
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopTraffic()
	// The traffic is under way before the join.
	testutil.WaitFor(t, agreeTimeout, "background traffic", func() bool { return ops.Load() >= 100 })

	start := time.Now()
	opsBefore := ops.Load()
	d := startProc(t, "d", gossips(old...))
	accepting := time.Since(start)
	all := append(slices.Clone(old), d)
	testutil.WaitFor(t, agreeTimeout, "4-member ring in the selector", func() bool {
		_, r := sel.Current()
		return r.Len() == 4
	})
	followed := time.Since(start)
	opsDuring := ops.Load() - opsBefore
	newView := clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(all...), entries(all...))
	agreed := time.Since(start)
	// The traffic goes on for a while on the new ring before it stops.
	opsFollowed := ops.Load()
	testutil.WaitFor(t, agreeTimeout, "background traffic on the new ring", func() bool { return ops.Load() >= opsFollowed+200 })
	stopTraffic()

	// A join may bump the nodes' version more than once; the selector
	// catches up by its next poll.
	testutil.WaitFor(t, agreeTimeout, "the selector on the nodes' view", func() bool {
		v, r := sel.Current()
		return v >= newView.Version && slices.Equal(ringEntries(r), newView.Entries)
	})
	newVersion, newRing := sel.Current()
	t.Logf("join: d accepting after %v; selector on 4 members after %v (version %d -> %d); all nodes agree after %v",
		accepting.Round(time.Millisecond), followed.Round(time.Millisecond), oldVersion, newVersion, agreed.Round(time.Millisecond))

	// The client kept working through the join. No node leaves or
	// restarts, and d accepts connections before it joins (the helper
	// waits for that), so no request has a reason to fail: every one
	// observed run has had zero errors, and one is a regression.
	errMu.Lock()
	nErrs := len(errs)
	t.Logf("background client: %d ops (%d between d's start and the 4-member ring), %d hits, %d misses, %d errors",
		ops.Load(), opsDuring, hits.Load(), misses.Load(), nErrs)
	for i, err := range errs {
		if i == 10 {
			t.Errorf("... and %d more", nErrs-i)
			break
		}
		t.Errorf("client error during the join: %v", err)
	}
	errMu.Unlock()
	if opsDuring == 0 {
		t.Errorf("the background client did nothing while d joined")
	}

	// Which keys moved: only to d, and about a quarter of them.
	var moved, stayed []string
	for _, k := range keys {
		from, to := oldRing.OwnerString(k), newRing.OwnerString(k)
		if from == to {
			stayed = append(stayed, k)
			continue
		}
		moved = append(moved, k)
		if to.Entry() != d.entry() {
			t.Errorf("key %s moved from %s to %s, not to the new node %s", k, from.Entry(), to.Entry(), d.entry())
		}
	}
	frac := float64(len(moved)) / nKeys
	t.Logf("moved %d of %d keys to d: fraction %.3f (ideal 0.25)", len(moved), nKeys, frac)
	if frac < 0.18 || frac > 0.32 {
		t.Errorf("fraction of keys moved = %.3f, want 0.18 to 0.32 (ideal 0.25)", frac)
	}
	// The client's ring is the nodes' ring: d names the same owners.
	for _, k := range keys[:100] {
		owner, err := nodeOwner(d.srv.Addr, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := newRing.OwnerString(k).Entry(); owner != want {
			t.Errorf("owner of %s: d says %s, the client's ring %s", k, owner, want)
		}
	}

	// Keys that stayed still hit.
	bad := 0
	for _, k := range stayed {
		it, err := mc.Get(k)
		if err != nil || string(it.Value) != "v1-"+k {
			if bad++; bad <= 10 {
				t.Errorf("get %s, which did not move: %v, %v; want a hit", k, itemValue(it), err)
			}
		}
	}
	// Keys that moved are served by d from their previous owners during
	// the hand-off window (hits, with their flags and remaining TTL and
	// a CAS of d's), except those the application wrote through d in the
	// meantime: a key deleted there stays deleted, and one overwritten
	// there keeps its new value.
	deleted, overwritten, handed := moved[:50], moved[50:100], moved[100:]
	for _, k := range deleted {
		if err := mc.Delete(k); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			t.Fatalf("delete %s: %v", k, err)
		}
	}
	for _, k := range overwritten {
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte("v2-" + k)}); err != nil {
			t.Fatalf("set %s again: %v", k, err)
		}
	}
	want := func(k string) string {
		switch {
		case slices.Contains(deleted, k):
			return ""
		case slices.Contains(overwritten, k):
			return "v2-" + k
		}
		return "v1-" + k
	}
	for _, k := range moved {
		it, err := mc.Get(k)
		got := ""
		if err == nil {
			got = string(it.Value)
		} else if !errors.Is(err, memcache.ErrCacheMiss) {
			t.Fatalf("get %s: %v", k, err)
		}
		if got != want(k) {
			if bad++; bad <= 10 {
				t.Errorf("get %s after it moved to d: %q, want %q", k, got, want(k))
			}
		}
	}
	for _, k := range handed[:20] {
		// A one-line reply is Query's error.
		reply, _ := clustertest.Query(d.srv.Addr, "mg "+k+" f t c")
		var flags, ttl, cas int
		if _, err := fmt.Sscanf(string(reply), "HD f%d t%d c%d", &flags, &ttl, &cas); err != nil || flags != 42 || ttl < 3500 || ttl > 3600 || cas == 0 {
			t.Errorf("d's item %s: %q; want flags 42, a TTL just under 3600 and a CAS", k, reply)
		}
	}
	direct := memcache.New(d.srv.Addr)
	direct.Timeout = mc.Timeout
	onD, err := direct.GetMulti(moved)
	if err != nil {
		t.Fatalf("get of the moved keys from d directly: %v", err)
	}
	for _, k := range moved {
		got := ""
		if it := onD[k]; it != nil {
			got = string(it.Value)
		}
		if got != want(k) {
			if bad++; bad <= 10 {
				t.Errorf("d holds %s = %q, want %q", k, got, want(k))
			}
		}
	}
	stats, err := clustertest.Query(d.srv.Addr, "stats")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("d's hand-off: %s", handoffStats(stats))
	if bad > 10 {
		t.Errorf("... %d key checks failed in all", bad)
	}
	t.Logf("data: %d keys stayed, %d moved; %d failed checks", len(stayed), len(moved), bad)
}

// handoffStats returns the handoff_ lines of a stats reply.
func handoffStats(reply []byte) string {
	var out []string
	for _, line := range strings.Split(string(reply), "\r\n") {
		if strings.HasPrefix(line, "STAT handoff_") {
			out = append(out, strings.TrimPrefix(line, "STAT "))
		}
	}
	return strings.Join(out, " ")
}

// ringEntries returns the host|ip|port entries of r's members, sorted.
func ringEntries(r *ring.Ring) []string {
	var e []string
	for _, m := range r.Members() {
		e = append(e, m.Entry())
	}
	slices.Sort(e)
	return e
}

// itemValue returns it's value for messages, or "<nil>".
func itemValue(it *memcache.Item) string {
	if it == nil {
		return "<nil>"
	}
	return strconv.Quote(string(it.Value))
}
