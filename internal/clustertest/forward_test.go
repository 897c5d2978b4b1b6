package clustertest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	b64 "encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// startForwarding starts three daemons with --forward (and args) and
// returns them with the ring of their agreed view.
func startForwarding(t *testing.T, args ...string) ([]*proc, *ring.Ring) {
	t.Helper()
	var ps []*proc
	var seeds []string
	for _, name := range []string{"a", "b", "c"} {
		p := startProc(t, name, slices.Clone(seeds), append([]string{"--forward"}, args...)...)
		ps = append(ps, p)
		seeds = append(seeds, p.gossip)
	}
	v := clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(ps...), entries(ps...))
	return ps, ringOfEntries(t, v.Entries)
}

// forwardKeys returns n keys named prefix-i of which the node at self owns
// none, and which the two others share.
func forwardKeys(t *testing.T, r *ring.Ring, self *proc, prefix string, n int) []string {
	t.Helper()
	var keys []string
	owners := map[string]int{}
	for i := 0; len(keys) < n; i++ {
		k := prefix + strconv.Itoa(i)
		if o := r.OwnerString(k).Entry(); o != self.entry() {
			keys = append(keys, k)
			owners[o]++
		}
	}
	if len(owners) != 2 {
		t.Fatalf("keys %s* land on %d other nodes, want 2", prefix, len(owners))
	}
	return keys
}

// transcript sends each request of steps to addr on one connection, each
// followed by a no-op whose reply ends what is read (a line end and mn in
// text, a Noop
// with opaque 0xfeedface in binary), and returns the replies.
func transcript(t *testing.T, addr string, bin bool, steps []string) []string {
	t.Helper()
	c := servertest.DialRaw(t, "tcp", addr)
	defer c.Close()
	noop, end := "\r\nmn\r\n", "MN\r\n"
	if bin {
		noop = string(protocol.AppendBinaryRequest(nil, protocol.OpNoop, 0xfeedface, 0, nil, nil, nil))
		end = string(protocol.AppendBinaryResponse(nil, protocol.OpNoop, protocol.StatusOK, 0xfeedface, 0, nil, nil, nil))
	}
	var out []string
	for _, s := range steps {
		c.SendString(s + noop)
		got, err := c.ReadUntil(end, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: request %q: %v after %q", addr, servertest.Abbrev(s, 80), err, servertest.Abbrev(string(got), 200))
		}
		out = append(out, string(got[:len(got)-len(end)]))
	}
	return out
}

// binReq is one binary request.
func binReq(op protocol.BinaryOpcode, opaque uint32, extras []byte, key, value string) string {
	return string(protocol.AppendBinaryRequest(nil, op, opaque, 0, extras, []byte(key), []byte(value)))
}

func storageExtras(flags, exptime uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, flags), exptime)
}

// forwardTranscripts returns the requests TestForwardMatchesMemcached and
// TestForwardMatchesOwner send, in the classic, meta and binary protocols:
// keyed commands on the twelve keys of k, local (a key of another owner, or
// of the entry node), and pipelines over many.
func forwardTranscripts(k []string, local string, many []string) (text, meta, bin []string) {
	big := strings.Repeat("0123456789abcdef", 40<<10) // 640 KiB
	text = []string{
		"set " + k[0] + " 5 0 3\r\none",
		"add " + k[0] + " 0 0 1\r\nx",
		"add " + k[1] + " 7 0 3\r\ntwo",
		"replace " + k[2] + " 0 0 1\r\nx",
		"set " + local + " 9 0 5\r\nlocal",
		"append " + k[0] + " 0 0 2\r\n-a",
		"prepend " + k[0] + " 0 0 2\r\np-",
		"cas " + k[1] + " 0 0 1 999999\r\nz",
		"cas " + k[3] + " 0 0 1 1\r\nz",
		"set " + k[4] + " 0 0 1 noreply\r\n5",
		"set " + k[5] + " 3 0 " + strconv.Itoa(len(big)) + "\r\n" + big,
		"get " + k[0],
		"get " + k[2],
		"get " + strings.Join([]string{k[0], k[2], local, k[1], k[4], k[5], k[0], "missing", k[3]}, " "),
		"get " + k[5] + " " + local + " " + k[5],
		"touch " + k[1] + " 100",
		"touch " + k[6] + " 100",
		"gat 100 " + k[1] + " " + local + " " + k[7],
		"incr " + k[4] + " 10",
		"decr " + k[4] + " 100",
		"incr " + k[0] + " 1",
		"incr " + k[8] + " 1",
		"incr " + k[4] + " 1 noreply",
		"get " + k[4],
		"delete " + k[1],
		"delete " + k[1],
		"delete " + k[4] + " noreply",
		"get " + k[1] + " " + k[4],
		"set " + k[9] + " 0 0 2\r\ntoolong",
		"get " + strings.Repeat("x", 251),
	}
	meta = []string{
		"ms " + k[0] + " 3 T0 F12\r\nabc",
		"ms " + k[1] + " 2 q O7\r\nhi",
		"ms " + k[2] + " 1 I\r\nx",
		"mg " + k[0] + " v f k O1",
		"mg " + k[0] + " s v q O2",
		"mg " + k[9] + " v q O3",
		"mg " + k[9] + " v O4",
		"mg " + k[9] + " v k q O5\r\nmg " + k[1] + " v k q O6\r\nmg " + local + " v q k O7",
		"ms " + base64(k[10]) + " 3 b\r\nb64",
		"mg " + base64(k[10]) + " b v k",
		"mg " + k[10] + " v",
		"ma " + k[11] + " N0 J5 v",
		"ma " + k[11] + " D3 v",
		"ma " + k[11] + " MD D100 q",
		"ma " + k[11] + " v",
		"md " + k[1] + " q",
		"md " + k[1] + " q O8",
		"md " + k[1],
		"me " + k[9],
		"mg " + k[0] + " zz",
	}
	bin = append(bin,
		binReq(protocol.OpSet, 1, storageExtras(3, 0), k[0], "bin-zero"),
		binReq(protocol.OpSetQ, 2, storageExtras(4, 0), k[1], "bin-one"),
		binReq(protocol.OpAddQ, 3, storageExtras(0, 0), k[1], "exists"),
		binReq(protocol.OpGet, 4, nil, k[0], ""),
		binReq(protocol.OpGetK, 5, nil, k[9], ""),
		binReq(protocol.OpGet, 6, nil, k[9], ""),
		binReq(protocol.OpGetKQ, 7, nil, k[0], "")+binReq(protocol.OpGetKQ, 8, nil, k[9], "")+
			binReq(protocol.OpGetKQ, 9, nil, k[1], "")+binReq(protocol.OpGetKQ, 10, nil, local, "")+
			binReq(protocol.OpGetQ, 11, nil, k[5], ""),
		binReq(protocol.OpIncrement, 12, make([]byte, 20), k[11], ""),
		binReq(protocol.OpAppend, 13, nil, k[0], "+app"),
		binReq(protocol.OpDeleteQ, 14, nil, k[9], ""),
		binReq(protocol.OpDelete, 15, nil, k[1], ""),
		binReq(protocol.OpTouch, 16, binary.BigEndian.AppendUint32(nil, 100), k[0], ""),
		binReq(protocol.OpGATK, 17, binary.BigEndian.AppendUint32(nil, 100), k[0], ""),
		binReq(protocol.OpGATKQ, 18, binary.BigEndian.AppendUint32(nil, 100), k[9], ""),
	)
	// Long pipelines, which go to the owners in runs: sets, then reads
	// that hit and miss, quiet and not.
	var sets, reads, mreads, breads strings.Builder
	for i, key := range many {
		if i%3 != 0 {
			fmt.Fprintf(&sets, "set %s %d 0 %d noreply\r\n%s\r\n", key, i, len(key), key)
		}
		fmt.Fprintf(&reads, "get %s\r\n", key)
		fmt.Fprintf(&mreads, "mg %s v f q k O%d\r\n", key, i)
		breads.WriteString(binReq(protocol.OpGetKQ, uint32(i), nil, key, ""))
	}
	text = append(text, strings.TrimSuffix(sets.String(), "\r\n"), strings.TrimSuffix(reads.String(), "\r\n"))
	meta = append(meta, strings.TrimSuffix(mreads.String(), "\r\n"))
	bin = append(bin, breads.String())
	return text, meta, bin
}

// TestForwardMatchesMemcached sends the same requests, keyed commands of
// the classic, meta and binary protocols, to memcached and, through a node
// that owns none of their keys, to a forwarding cluster: every reply must be
// memcached's, byte for byte. The keys are spread over both other nodes, so
// multi-key reads are split between owners and put back in order.
func TestForwardMatchesMemcached(t *testing.T) {
	ps, r := startForwarding(t)
	mc := servertest.StartMemcached(t)
	k := forwardKeys(t, r, ps[0], "fw-", 12)
	// A key the entry node owns, for reads that mix local and forwarded
	// keys.
	var local string
	for i := 0; local == ""; i++ {
		if s := "loc-" + strconv.Itoa(i); r.OwnerString(s).Entry() == ps[0].entry() {
			local = s
		}
	}
	many := forwardKeys(t, r, ps[0], "run-", 150)
	text, meta, bin := forwardTranscripts(k, local, many)
	for _, tc := range []struct {
		name  string
		bin   bool
		steps []string
	}{{"classic", false, text}, {"meta", false, meta}, {"binary", true, bin}} {
		t.Run(tc.name, func(t *testing.T) {
			want := transcript(t, mc.Addr, tc.bin, tc.steps)
			got := transcript(t, ps[0].srv.Addr, tc.bin, tc.steps)
			for i := range want {
				if tc.bin {
					want[i], got[i] = zeroCAS(t, want[i]), zeroCAS(t, got[i])
				}
				if got[i] != want[i] {
					t.Errorf("request %q:\n got %q\nwant %q (memcached)", servertest.Abbrev(tc.steps[i], 120),
						servertest.Abbrev(got[i], 300), servertest.Abbrev(want[i], 300))
				}
			}
		})
	}
	// Nothing was stored on the entry node but its own key: every other
	// key went to its owner.
	st, err := clustertest.Query(ps[0].srv.Addr, "stats")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(st, []byte("STAT curr_items 1\r\n")) || !bytes.Contains(st, []byte("STAT forward_errors 0\r\n")) {
		t.Errorf("entry node's stats: want curr_items 1 and forward_errors 0:\n%s", st)
	}
}

func base64(s string) string { return b64.StdEncoding.EncodeToString([]byte(s)) }

// zeroCAS returns the binary responses of b with their CAS fields zeroed:
// memcached and the node number their items differently.
func zeroCAS(t *testing.T, b string) string {
	t.Helper()
	out := []byte(b)
	for i := 0; i < len(out); {
		if len(out)-i < protocol.BinaryHeaderLen {
			t.Fatalf("a partial binary response: %q", out[i:])
		}
		clear(out[i+16 : i+24])
		i += protocol.BinaryHeaderLen + int(binary.BigEndian.Uint32(out[i+8:i+12]))
	}
	return string(out)
}

// libmemcached's tools, from Debian's libmemcached-tools.
const (
	memccpPath  = "/usr/bin/memccp"
	memccatPath = "/usr/bin/memccat"
)

// forwardPymemcache sets, with pymemcache's HashClient over the nodes of
// argv[1] (comma-separated host:port; its own placement, not the ring's),
// the keys py-0 … py-<argv[2]-1> to "v-" + key, then reads them all back
// through it, and prints how many it read back right.
const forwardPymemcache = `
import sys
from pymemcache.client.hash import HashClient
servers = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
c = HashClient(servers, timeout=5, connect_timeout=5)
n = int(sys.argv[2])
keys = ["py-%d" % i for i in range(n)]
for k in keys:
    assert c.set(k, ("v-" + k).encode(), noreply=False)
got = c.get_many(keys)
print(sum(1 for k in keys if got.get(k) == ("v-" + k).encode()))
`

// TestForwardClients has clients that know nothing of the cluster's ring
// write 1,000 keys each through a forwarding cluster: pymemcache's
// HashClient over the three nodes, gomemcache given one node, and
// libmemcached's memccp given another. Every key is then found through
// every node, and is stored once, on its owner.
func TestForwardClients(t *testing.T) {
	if out, err := exec.Command(systemPython, "-c", "import pymemcache").CombinedOutput(); err != nil {
		t.Fatalf("pymemcache is not importable by %s (%v): %s; install it with `apt-get install python3-pymemcache`", systemPython, err, out)
	}
	ps, r := startForwarding(t)
	const n = 1000
	want := map[string]string{}

	out, err := exec.Command(systemPython, "-c", forwardPymemcache, strings.Join(addrs(ps...), ","), strconv.Itoa(n)).CombinedOutput()
	if err != nil {
		t.Fatalf("pymemcache: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(n) {
		t.Fatalf("pymemcache's HashClient read back %s of %d keys", got, n)
	}
	for i := range n {
		k := "py-" + strconv.Itoa(i)
		want[k] = "v-" + k
	}

	one := memcache.New(ps[1].srv.Addr)
	one.Timeout = 5 * time.Second
	for i := range n {
		k := "go-" + strconv.Itoa(i)
		if err := one.Set(&memcache.Item{Key: k, Value: []byte("v-" + k)}); err != nil {
			t.Fatalf("gomemcache through b: set %s: %v", k, err)
		}
		want[k] = "v-" + k
	}

	dir := t.TempDir()
	var files []string
	for i := range n {
		k := "cp-" + strconv.Itoa(i)
		f := filepath.Join(dir, k)
		if err := os.WriteFile(f, []byte("v-"+k), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		want[k] = "v-" + k
	}
	if out, err := exec.Command(memccpPath, append([]string{"--servers=" + ps[2].srv.Addr}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("memccp through c: %v\n%s", err, out)
	}
	if out, err := exec.Command(memccatPath, "--servers="+ps[0].srv.Addr, "cp-7", "go-7", "py-7").CombinedOutput(); err != nil || string(out) != "v-cp-7\nv-go-7\nv-py-7\n" {
		t.Errorf("memccat through a: %q (%v), want the three values, one a line", out, err)
	}

	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, p := range ps {
		c := memcache.New(p.srv.Addr)
		c.Timeout = 5 * time.Second
		found := 0
		for chunk := range slices.Chunk(keys, 100) {
			got, err := c.GetMulti(chunk)
			if err != nil {
				t.Fatalf("gomemcache through %s: %v", p.name, err)
			}
			for k, it := range got {
				if string(it.Value) == want[k] {
					found++
				}
			}
		}
		t.Logf("through %s: %d of %d keys found", p.name, found, len(keys))
		if found != len(keys) {
			t.Errorf("through %s: %d of %d keys found with their values", p.name, found, len(keys))
		}
	}

	checkPlacement(t, ps, r, keys)
}

// checkPlacement checks that each of keys is stored on its owner in r and
// on no other node of ps: asked on connections marked as a peer's, which
// are served from each node's own store, only the owner has it.
func checkPlacement(t *testing.T, ps []*proc, r *ring.Ring, keys []string) {
	t.Helper()
	misplaced := 0
	for _, p := range ps {
		c := servertest.DialRaw(t, "tcp", p.srv.Addr)
		c.SendString("peer\r\n")
		if line, err := c.ReadLine(5 * time.Second); line != "OK\r\n" {
			t.Fatalf("peer on %s: %q (%v)", p.name, line, err)
		}
		for _, k := range keys {
			c.SendString("mg " + k + " k\r\n")
			line, err := c.ReadLine(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			has := strings.HasPrefix(line, "HD")
			if owns := r.OwnerString(k).Entry() == p.entry(); has != owns {
				misplaced++
			}
		}
		c.Close()
	}
	if misplaced > 0 {
		t.Errorf("%d keys are stored off their owner, or missing from it", misplaced)
	}
}

// TestForwardKetama forwards in a cluster on libmemcached's ring
// (--ring=ketama): keys written through one node land on their ketama
// owners, and read back through every node.
func TestForwardKetama(t *testing.T) {
	ps, def := startForwarding(t, "--ring=ketama")
	r, err := ring.NewMode(def.Members(), ring.ModeKetama)
	if err != nil {
		t.Fatal(err)
	}
	c := memcache.New(ps[0].srv.Addr)
	c.Timeout = 5 * time.Second
	var keys []string
	moved := 0 // keys whose owner differs between the two rings
	for i := range 300 {
		k := "ketama-" + strconv.Itoa(i)
		if err := c.Set(&memcache.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		if r.OwnerString(k) != def.OwnerString(k) {
			moved++
		}
	}
	if moved < 50 {
		t.Fatalf("only %d of 300 keys have another owner on the default ring: the test could not tell the rings apart", moved)
	}
	for _, p := range ps {
		got, err := memcache.New(p.srv.Addr).GetMulti(keys)
		if err != nil || len(got) != len(keys) {
			t.Errorf("through %s: %d of %d keys (%v)", p.name, len(got), len(keys), err)
		}
	}
	checkPlacement(t, ps, r, keys)
}

// TestForwardOwnerKilled kills (SIGKILL) the owner of the keys a stream of
// forwarded gets reads, in mid-stream: every get is answered, by the
// value, memcached's proxy's "SERVER_ERROR backend failure" while the
// owner is dead and still a member, or a miss once the others have
// dropped it; none hangs, and the connection stays usable, in the text
// and in the binary protocol.
func TestForwardOwnerKilled(t *testing.T) {
	ps, r := startForwarding(t)
	a, c := ps[0], ps[2]
	var keys []string
	for i := 0; len(keys) < 50; i++ {
		if k := "dead-" + strconv.Itoa(i); r.OwnerString(k).Entry() == c.entry() {
			keys = append(keys, k)
		}
	}
	direct := memcache.New(c.srv.Addr)
	for _, k := range keys {
		if err := direct.Set(&memcache.Item{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	var other string // a key b owns
	for i := 0; other == ""; i++ {
		if k := "alive-" + strconv.Itoa(i); r.OwnerString(k).Entry() == ps[1].entry() {
			other = k
		}
	}
	text := servertest.DialRaw(t, "tcp", a.srv.Addr)
	bin := servertest.DialRaw(t, "tcp", a.srv.Addr)
	const rounds = 400
	counts := map[string]int{}
	start := time.Now()
	for i := range rounds {
		if i == rounds/4 {
			c.srv.Kill()
			// A get of keys of the dead owner and of a live one
			// fails whole, as memcached's proxy answers it.
			text.SendString("get " + keys[0] + " " + other + " " + keys[1] + "\r\n")
			if line, err := text.ReadLine(5 * time.Second); line != "SERVER_ERROR backend failure\r\n" {
				t.Errorf("a get of a dead owner's and a live owner's keys: %q (%v)", line, err)
			}
		}
		k := keys[i%len(keys)]
		text.SendString("get " + k + "\r\n")
		line, err := text.ReadLine(5 * time.Second)
		if err != nil {
			t.Fatalf("text get %d: %v after %q", i, err, line)
		}
		switch {
		case line == "VALUE "+k+" 0 1\r\n":
			if rest, err := text.ReadN(len("v\r\nEND\r\n"), 5*time.Second); string(rest) != "v\r\nEND\r\n" {
				t.Fatalf("text get %d: %q (%v) after the VALUE line", i, rest, err)
			}
			counts["text hit"]++
		case line == "END\r\n":
			counts["text miss"]++
		case line == "SERVER_ERROR backend failure\r\n":
			counts["text error"]++
		default:
			t.Fatalf("text get %d: %q", i, line)
		}
		bin.SendString(binReq(protocol.OpGetK, uint32(i), nil, k, ""))
		head, err := bin.ReadN(protocol.BinaryHeaderLen, 5*time.Second)
		if err != nil {
			t.Fatalf("binary GetK %d: %v", i, err)
		}
		var h protocol.BinaryHeader
		_ = h.Decode(head)
		if _, err := bin.ReadN(int(h.BodyLen), 5*time.Second); err != nil || h.Opaque != uint32(i) {
			t.Fatalf("binary GetK %d: opaque %d, %v", i, h.Opaque, err)
		}
		switch h.Status {
		case protocol.StatusOK:
			counts["binary hit"]++
		case protocol.StatusKeyNotFound:
			counts["binary miss"]++
		case protocol.StatusInternalError:
			counts["binary error"]++
		default:
			t.Fatalf("binary GetK %d: status %v", i, h.Status)
		}
		// Pace the pipeline over the time the others take to drop c.
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d gets in each protocol in %v, c killed at the %dth: %v", rounds, time.Since(start).Round(time.Millisecond), rounds/4, counts)
	if counts["text error"] == 0 || counts["binary error"] == 0 || counts["text hit"] < rounds/4 {
		t.Errorf("want hits before the kill and errors after it: %v", counts)
	}
	text.RoundTrip(t, "version\r\n", "VERSION 1.6.18\r\n")
}

// TestForwardSASL forwards between SASL nodes (-S): a client that
// authenticated as an application user writes and reads keys through one
// node, which forwards them over the binary protocol as the cluster's
// user of --peer-auth-file; every key is read back through every node. A
// client that has not authenticated gets memcached's refusal, and nothing
// of its request is forwarded.
func TestForwardSASL(t *testing.T) {
	dir := t.TempDir()
	pwdb, peerAuth := dir+"/pwdb", dir+"/peer"
	if err := os.WriteFile(pwdb, []byte("app:apppw\ncluster:clusterpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(peerAuth, []byte("cluster:clusterpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := clustertest.New(t)
	for _, name := range []string{"a", "b", "c"} {
		cfg := node.Config{SASL: true, SASLPasswordFile: pwdb, Cluster: clustertest.FastTiming}
		cfg.Cluster.Join = c.Seeds()
		cfg.Cluster.PeerAuthFile = peerAuth
		cfg.Cluster.Forward = true
		c.AddConfig(name, cfg)
	}
	r := ringOfEntries(t, clustertest.WaitAgree(t, agreeTimeout, c.Nodes...).Entries)
	a := c.Nodes[0]
	ca := dialSASL(t, a.Addr, "app", "apppw")
	var keys []string
	for i := 0; len(keys) < 60; i++ {
		if k := "sasl-" + strconv.Itoa(i); r.OwnerString(k).Entry() != a.Entry {
			keys = append(keys, k)
			ca.set(t, k, "v-"+k, 5)
		}
	}
	for _, n := range c.Nodes {
		cn := dialSASL(t, n.Addr, "app", "apppw")
		hits := 0
		for _, k := range keys {
			if value, flags, status := binaryRead(t, cn.conn, cn.r, 0x00, k); status == 0 && value == "v-"+k && flags == 5 {
				hits++
			}
		}
		if hits != len(keys) {
			t.Errorf("through %s over SASL: %d of %d keys hit", n.Name, hits, len(keys))
		}
	}
	st := binaryStat(t, ca, "forwarded")
	anon := servertest.DialRaw(t, "tcp", a.Addr)
	anon.SendString(binReq(protocol.OpGet, 1, nil, keys[0], ""))
	got, closed := anon.WaitClosed(5 * time.Second)
	if len(got) < protocol.BinaryHeaderLen || binary.BigEndian.Uint16(got[6:8]) != uint16(protocol.StatusAuthError) || !closed {
		t.Errorf("an unauthenticated Get: %q, closed %v; want Auth failure and the connection closed", got, closed)
	}
	if now := binaryStat(t, ca, "forwarded"); now != st || st == "" {
		t.Errorf("forwarded went from %s to %s for an unauthenticated client", st, now)
	}
}

// binaryStat returns the value of the general stat name, read with a
// binary Stat on c, "" if none.
func binaryStat(t *testing.T, c *saslConn, name string) string {
	t.Helper()
	if _, err := c.conn.Write(protocol.AppendBinaryRequest(nil, protocol.OpStat, 0, 0, nil, nil, nil)); err != nil {
		t.Fatal(err)
	}
	value := ""
	for {
		h, _, key, v, err := protocol.ReadBinaryResponse(c.r, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if h.Status != protocol.StatusOK {
			t.Fatalf("Stat: status %v", h.Status)
		}
		if len(key) == 0 {
			return value
		}
		if string(key) == name {
			value = string(v)
		}
	}
}

// TestForwardTLS forwards between nodes that serve TLS alone: a client
// writes keys over TLS through one node, which forwards them over TLS,
// verifying the others against the cluster's CA; every key is read back
// through every node.
func TestForwardTLS(t *testing.T) {
	files := tlstest.NewFiles(t, "cluster CA")
	c := clustertest.New(t)
	for _, name := range []string{"a", "b", "c"} {
		cfg := node.Config{
			TLS:     &node.TLSConfig{CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CAFile},
			Cluster: clustertest.FastTiming,
		}
		cfg.Cluster.Join = c.Seeds()
		cfg.Cluster.Forward = true
		c.AddConfig(name, cfg)
	}
	r := ringOfEntries(t, clustertest.WaitAgree(t, agreeTimeout, c.Nodes...).Entries)
	client := func(addr string) *memcache.Client {
		mc := memcache.New(addr)
		mc.Timeout = 5 * time.Second
		mc.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
			d := tls.Dialer{Config: files.ClientConfig(nil)}
			return d.DialContext(ctx, network, address)
		}
		return mc
	}
	a := c.Nodes[0]
	var keys []string
	for i := 0; len(keys) < 100; i++ {
		if k := "tls-" + strconv.Itoa(i); r.OwnerString(k).Entry() != a.Entry {
			keys = append(keys, k)
			if err := client(a.Addr).Set(&memcache.Item{Key: k, Value: []byte("v-" + k)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range c.Nodes {
		items, err := client(n.Addr).GetMulti(keys)
		if err != nil || len(items) != len(keys) {
			t.Errorf("through %s over TLS: %d of %d keys (%v)", n.Name, len(items), len(keys), err)
		}
	}
}

// TestForwardJoinHandoff adds a fourth node to a forwarding cluster and
// reads every key through it with multi-key gets: the keys it has just
// come to own are fetched from their previous owners (the hand-off) and
// the others forwarded to theirs, so every key hits.
func TestForwardJoinHandoff(t *testing.T) {
	ps, _ := startForwarding(t)
	c := memcache.New(ps[0].srv.Addr)
	c.Timeout = 5 * time.Second
	var keys []string
	for i := range 400 {
		k := "join-" + strconv.Itoa(i)
		if err := c.Set(&memcache.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	d := startProc(t, "d", gossips(ps...), "--forward")
	all := append(ps, d)
	r := ringOfEntries(t, clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(all...), entries(all...)).Entries)
	moved := 0
	for _, k := range keys {
		if r.OwnerString(k).Entry() == d.entry() {
			moved++
		}
	}
	if moved < 40 {
		t.Fatalf("only %d of %d keys moved to d", moved, len(keys))
	}
	got, err := memcache.New(d.srv.Addr).GetMulti(keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("through the new node: %d of %d keys hit, %d of them its own", len(got), len(keys), moved)
	if len(got) != len(keys) {
		t.Errorf("through the new node: %d of %d keys hit", len(got), len(keys))
	}
}

// TestForwardMatchesOwner sends the requests of TestForwardMatchesMemcached,
// all on keys one node owns, through another node, which forwards them, and
// then to the owner itself, each run on an owner just flushed. Every reply
// through the forwarding node is the owner's own, byte for byte (but for
// the binary protocol's CAS uniques, which a second run numbers anew).
func TestForwardMatchesOwner(t *testing.T) {
	ps, r := startForwarding(t)
	entry, owner := ps[0], ps[1]
	var keys []string
	for i := 0; len(keys) < 12+1+150; i++ {
		if k := "own-" + strconv.Itoa(i); r.OwnerString(k).Entry() == owner.entry() {
			keys = append(keys, k)
		}
	}
	text, meta, bin := forwardTranscripts(keys[:12], keys[12], keys[13:])
	for _, tc := range []struct {
		name  string
		bin   bool
		steps []string
	}{{"classic", false, text}, {"meta", false, meta}, {"binary", true, bin}} {
		t.Run(tc.name, func(t *testing.T) {
			// Each run starts from an empty owner.
			flush := servertest.DialRaw(t, "tcp", owner.srv.Addr)
			defer flush.Close()
			flush.RoundTrip(t, "flush_all\r\n", "OK\r\n")
			got := transcript(t, entry.srv.Addr, tc.bin, tc.steps)
			flush.RoundTrip(t, "flush_all\r\n", "OK\r\n")
			want := transcript(t, owner.srv.Addr, tc.bin, tc.steps)
			for i := range want {
				if tc.bin {
					want[i], got[i] = zeroCAS(t, want[i]), zeroCAS(t, got[i])
				}
				if got[i] != want[i] {
					t.Errorf("request %q:\n got %q\nwant %q (the owner)", servertest.Abbrev(tc.steps[i], 120),
						servertest.Abbrev(got[i], 300), servertest.Abbrev(want[i], 300))
				}
			}
		})
	}
	st, err := clustertest.Query(entry.srv.Addr, "stats")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(st, []byte("STAT curr_items 0\r\n")) {
		t.Errorf("the entry node stored items of keys it does not own:\n%s", st)
	}
}
