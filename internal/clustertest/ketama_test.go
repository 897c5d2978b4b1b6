package clustertest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/ring"
)

// owners asks the node at addr "config get owner" for every key, over one
// pipelined connection, and returns each key's owner entry.
func owners(t *testing.T, addr string, keys []string) []string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		w := bufio.NewWriter(nc)
		for _, k := range keys {
			fmt.Fprintf(w, "config get owner %s\r\n", k)
		}
		w.Flush()
	}()
	br := bufio.NewReader(nc)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		var lines [3]string
		for i := range lines {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("config get owner %s on %s: %v", k, addr, err)
			}
			lines[i] = strings.TrimSuffix(line, "\r\n")
		}
		if !strings.HasPrefix(lines[0], "CONFIG owner 0 ") || lines[2] != "END" {
			t.Fatalf("config get owner %s on %s: %q", k, addr, lines)
		}
		out = append(out, lines[1])
	}
	return out
}

// hostPort is the server a client of Auto Discovery adds for a member:
// its host (its IP without one) and port.
func hostPort(m ring.Member) string {
	h := m.Host
	if h == "" {
		h = m.IP
	}
	return net.JoinHostPort(h, strconv.Itoa(m.Port))
}

// TestProcessKetama starts three daemons with --ring=ketama, which
// announce it (`config get ring`), and checks that clients that know
// nothing of memcluster agree with them: libmemcached itself, with ketama
// on and the servers `config get cluster` lists, places 10,000 keys each
// on the node `config get owner` names, asked of every node in turn; and
// that gomemcache on a ring.Selector left to follow the cluster stores
// each key on its owner and on no other node, as mcctl also names it.
// pylibmcSet sets, with pylibmc and ketama on over the servers of argv[1]
// (comma-separated host:port), each key of argv[2:] to "py-" + key.
const pylibmcSet = `
import sys, pylibmc
mc = pylibmc.Client(sys.argv[1].split(","), behaviors={"ketama": True})
for k in sys.argv[2:]:
    assert mc.set(k, ("py-" + k).encode())
`

func TestProcessKetama(t *testing.T) {
	var ps []*proc
	var seeds []string
	for _, name := range []string{"a", "b", "c"} {
		p := startProc(t, name, slices.Clone(seeds), "--ring=ketama")
		ps = append(ps, p)
		seeds = append(seeds, p.gossip)
	}
	clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(ps...), entries(ps...))
	for _, p := range ps {
		if got, err := clustertest.Query(p.srv.Addr, "config get ring"); err != nil || string(got) != "CONFIG ring 0 6\r\nketama\r\nEND\r\n" {
			t.Fatalf("config get ring on %s: %q, %v", p.name, got, err)
		}
	}
	reply, err := clustertest.Query(ps[0].srv.Addr, "config get cluster")
	if err != nil {
		t.Fatal(err)
	}
	_, members, err := ring.ParseClusterConfig(bufio.NewReader(bytes.NewReader(reply)))
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for _, m := range members {
		servers = append(servers, hostPort(m))
	}

	var keys []string
	var raw [][]byte
	for i := range 10000 {
		k := "ketama:" + strconv.Itoa(i)
		if i%10 == 0 {
			k = fmt.Sprintf("clé-%d-ü", i) // bytes above 127
		}
		keys = append(keys, k)
		raw = append(raw, []byte(k))
	}
	want, err := testutil.LibmemcachedOwners(testutil.LibmemcachedKetama, servers, raw)
	if err != nil {
		t.Fatal(err)
	}
	// Each node answers for a third of the keys.
	byNode := make([][]string, len(ps))
	for i, k := range keys {
		byNode[i%len(ps)] = append(byNode[i%len(ps)], k)
	}
	got := make([][]string, len(ps))
	for j, p := range ps {
		got[j] = owners(t, p.srv.Addr, byNode[j])
	}
	agree, counts := 0, make([]int, len(members))
	for i := range keys {
		entry := got[i%len(ps)][i/len(ps)]
		if w := members[want[i]].Entry(); entry != w {
			t.Errorf("key %q: the node names %s, libmemcached places it on %s", keys[i], entry, w)
			continue
		}
		agree++
		counts[want[i]]++
	}
	t.Logf("%d of %d keys: libmemcached and config get owner agree; per node %v; servers %v", agree, len(keys), counts, servers)

	// gomemcache on a Selector that follows the cluster's mode.
	sel, err := ring.NewSelector(addrs(ps[1]), ring.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sel.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, r := sel.Current(); r.Mode() != ring.ModeKetama || r.Len() != 3 {
		t.Fatalf("the Selector's ring: mode %v, %d members; want ketama, 3", r.Mode(), r.Len())
	}
	mc := memcache.NewFromSelector(sel)
	mc.Timeout = 2 * time.Second
	plain, err := ring.New(members)
	if err != nil {
		t.Fatal(err)
	}
	var differ []string // keys memcluster's ring would place elsewhere
	for i := 0; i < 300; i++ {
		k := keys[i]
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte("v-" + k)}); err != nil {
			t.Fatalf("gomemcache set %s: %v", k, err)
		}
		owner := members[want[i]].Entry()
		if plain.OwnerString(k).Entry() != owner {
			differ = append(differ, k)
		}
		for _, p := range ps {
			v, ok, err := rawGet(p.srv.Addr, k)
			if err != nil {
				t.Fatal(err)
			}
			if isOwner := p.entry() == owner; ok != isOwner || ok && v != "v-"+k {
				t.Fatalf("key %s (owner %s): on %s found=%v %q", k, owner, p.name, ok, v)
			}
		}
	}
	if len(differ) == 0 {
		t.Fatal("memcluster's ring places 300 keys as ketama does: the test cannot tell the modes apart")
	}
	t.Logf("gomemcache on ring.Selector put 300 keys on their owners, %d of them elsewhere on memcluster's ring", len(differ))

	// pylibmc (Debian's, on libmemcached), ketama on, given the servers
	// config get cluster lists: every key lands on its owner alone.
	var pyKeys []string
	for i := 300; i < 1300; i++ {
		if !strings.ContainsFunc(keys[i], func(r rune) bool { return r > 127 }) {
			pyKeys = append(pyKeys, keys[i])
		}
	}
	out, err := exec.Command(systemPython, append([]string{"-c", pylibmcSet, strings.Join(servers, ",")}, pyKeys...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pylibmc (apt-get install python3-pylibmc): %v\n%s", err, out)
	}
	misplaced := 0
	for _, k := range pyKeys {
		owner := members[want[slices.Index(keys, k)]].Entry()
		for _, p := range ps {
			v, ok, err := rawGet(p.srv.Addr, k)
			if err != nil {
				t.Fatal(err)
			}
			if isOwner := p.entry() == owner; ok != isOwner || ok && v != "py-"+k {
				misplaced++
			}
		}
	}
	t.Logf("pylibmc with ketama set %d keys: %d found off their owner or missing from it", len(pyKeys), misplaced)
	if misplaced > 0 {
		t.Errorf("pylibmc with ketama: %d of %d keys off their owner or missing from it", misplaced, len(pyKeys))
	}

	// mcctl, on the Selector, says the mode and names the ketama owner.
	if r := mcctl(t, addrs(ps[0]), "members"); r.code != 0 || !strings.HasPrefix(r.stdout, "cluster version ") || !strings.Contains(r.stdout, " 3 members, ring ketama\n") {
		t.Errorf("mcctl members: %v, want the ring mode, ketama", r)
	}
	for _, k := range differ[:3] {
		i := slices.Index(keys, k)
		if r := mcctl(t, addrs(ps[2]), "owner", k); r.code != 0 || r.stdout != members[want[i]].Entry()+"\n" {
			t.Errorf("mcctl owner %s: %v, want %s", k, r, members[want[i]].Entry())
		}
	}
}
