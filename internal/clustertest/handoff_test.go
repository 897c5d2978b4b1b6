package clustertest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/ring"
)

// TestHandoffEveryReadCommand checks that a node that has just joined
// serves the keys it has come to own from their previous owners, through
// every command that reads (get with many keys, gets, gat, mg, and the
// binary protocol's get, getk and gat), on connections served by the event
// loop, which leaves the fetch to the connection's goroutine.
func TestHandoffEveryReadCommand(t *testing.T) {
	c := clustertest.Start(t, 3)
	old := ringOfEntries(t, clustertest.WaitAgree(t, agreeTimeout, c.Nodes...).Entries)
	const n = 600
	key := func(i int) string { return fmt.Sprintf("hk-%d", i) }
	for i := range n {
		mc := memcache.New(old.OwnerString(key(i)).Addr())
		if err := mc.Set(&memcache.Item{Key: key(i), Value: []byte("v-" + key(i)), Flags: 5}); err != nil {
			t.Fatal(err)
		}
	}
	d := c.Add("d")
	clustertest.WaitAgree(t, agreeTimeout, c.Live()...)
	var moved []string
	for i := range n {
		if owner, err := nodeOwner(d.Addr, key(i)); err != nil {
			t.Fatal(err)
		} else if owner == d.Entry {
			moved = append(moved, key(i))
		}
	}
	if len(moved) < 60 {
		t.Fatalf("only %d of %d keys moved to d", len(moved), n)
	}
	t.Logf("%d of %d keys moved to d", len(moved), n)
	groups := make([][]string, 7)
	for i, k := range moved {
		groups[i%7] = append(groups[i%7], k)
	}

	// get with many keys, through gomemcache.
	items, err := memcache.New(d.Addr).GetMulti(groups[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range groups[0] {
		if it := items[k]; it == nil || string(it.Value) != "v-"+k || it.Flags != 5 {
			t.Errorf("get %s from d: %v, want v-%s with flags 5", k, it, k)
		}
	}
	text := func(cmd string) string {
		reply, _ := clustertest.Query(d.Addr, cmd) // a one-line reply is Query's error
		return string(reply)
	}
	for _, k := range groups[1] {
		if got := text("gets " + k); !strings.HasPrefix(got, "VALUE "+k+" 5 ") || !strings.Contains(got, "v-"+k) {
			t.Errorf("gets %s from d: %q", k, got)
		}
	}
	for _, k := range groups[2] {
		if got := text("gat 100 " + k); !strings.HasPrefix(got, "VALUE "+k+" 5 ") || !strings.Contains(got, "v-"+k) {
			t.Errorf("gat %s from d: %q", k, got)
		}
	}
	mg, err := net.DialTimeout("tcp", d.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	mg.SetDeadline(time.Now().Add(10 * time.Second))
	mgr := bufio.NewReader(mg)
	for _, k := range groups[3] {
		fmt.Fprintf(mg, "mg %s v f\r\n", k)
		head, _ := mgr.ReadString('\n')
		data, _ := mgr.ReadString('\n')
		if got := head + data; got != fmt.Sprintf("VA %d f5\r\nv-%s\r\n", len("v-"+k), k) {
			t.Errorf("mg %s from d: %q", k, got)
		}
	}
	for op, g := range map[byte][]string{0x00: groups[4], 0x0c: groups[5], 0x1d: groups[6]} {
		conn, err := net.DialTimeout("tcp", d.Addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		for _, k := range g {
			if value, flags, status := binaryRead(t, conn, br, op, k); status != 0 || value != "v-"+k || flags != 5 {
				t.Errorf("binary opcode %#x %s from d: status %#x, %q, flags %d; want v-%s, flags 5", op, k, status, value, flags, k)
			}
		}
		conn.Close()
	}
}

// binaryRead sends a binary get (0x00), getk (0x0c) or gat (0x1d, exptime
// 100) of key and returns the value, flags and status of the reply.
func binaryRead(t *testing.T, w io.Writer, r *bufio.Reader, op byte, key string) (string, uint32, uint16) {
	t.Helper()
	var extras []byte
	if op == 0x1d {
		extras = binary.BigEndian.AppendUint32(nil, 100)
	}
	req := make([]byte, 24, 24+len(extras)+len(key))
	req[0], req[1] = 0x80, op
	binary.BigEndian.PutUint16(req[2:], uint16(len(key)))
	req[4] = byte(len(extras))
	binary.BigEndian.PutUint32(req[8:], uint32(len(extras)+len(key)))
	req = append(append(req, extras...), key...)
	if _, err := w.Write(req); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 24)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(head[8:]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	status := binary.BigEndian.Uint16(head[6:])
	ext, keyLen := int(head[4]), int(binary.BigEndian.Uint16(head[2:]))
	if status != 0 || ext != 4 {
		return "", 0, status
	}
	return string(body[ext+keyLen:]), binary.BigEndian.Uint32(body), status
}

// TestProcessScaleInPushes checks that a node leaving with SIGTERM pushes
// its items to their new owners during its drain: once it has gone, the
// keys it owned hit on the survivors, with their flags.
func TestProcessScaleInPushes(t *testing.T) {
	procs, view := startCluster(t, "a", "b", "c")
	old := ringOfEntries(t, view.Entries)
	leaving := procs[2]
	const n = 1500
	var owned []string
	clients := make(map[string]*memcache.Client)
	client := func(addr string) *memcache.Client {
		if clients[addr] == nil {
			clients[addr] = memcache.New(addr)
			clients[addr].Timeout = 2 * time.Second
		}
		return clients[addr]
	}
	for i := range n {
		k := fmt.Sprintf("push-%d", i)
		owner := old.OwnerString(k)
		if err := client(owner.Addr()).Set(&memcache.Item{Key: k, Value: []byte("v-" + k), Flags: 9}); err != nil {
			t.Fatal(err)
		}
		if owner.Entry() == leaving.entry() {
			owned = append(owned, k)
		}
	}
	leaving.srv.Signal(t, syscall.SIGTERM)
	if st := leaving.srv.Wait(15 * time.Second); st == nil || st.ExitCode() != 0 {
		t.Fatalf("%s: exit %v after SIGTERM\n%s", leaving.name, st, leaving.srv.Output())
	}
	survivors := ringOfEntries(t, entries(procs[:2]...))
	hits := 0
	for _, k := range owned {
		it, err := client(survivors.OwnerString(k).Addr()).Get(k)
		if err == nil && string(it.Value) == "v-"+k && it.Flags == 9 {
			hits++
		} else if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			t.Fatal(err)
		}
	}
	t.Logf("%d of the %d keys %s owned hit on their new owners after it left", hits, len(owned), leaving.name)
	if hits < len(owned)*95/100 {
		t.Errorf("%d of %d keys of the node that left hit on their new owners, want at least 95%%\n%s", hits, len(owned), leaving.srv.Output())
	}
}

// TestHandoffSASL checks the hand-off between nodes whose clients must
// authenticate with SASL: the nodes fetch from each other over the binary
// protocol, as the user of --peer-auth-file, and a client's get on the new
// node hits.
func TestHandoffSASL(t *testing.T) {
	dir := t.TempDir()
	pwdb, peerAuth := dir+"/pwdb", dir+"/peer"
	if err := os.WriteFile(pwdb, []byte("app:apppw\ncluster:clusterpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(peerAuth, []byte("# the cluster's own user\ncluster:clusterpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := clustertest.New(t)
	add := func(name string) *clustertest.Node {
		cfg := node.Config{SASL: true, SASLPasswordFile: pwdb, Cluster: clustertest.FastTiming}
		cfg.Cluster.Join = c.Seeds()
		cfg.Cluster.PeerAuthFile = peerAuth
		return c.AddConfig(name, cfg)
	}
	for _, name := range []string{"a", "b", "c"} {
		add(name)
	}
	view := clustertest.WaitAgree(t, agreeTimeout, c.Nodes...)
	old := ringOfEntries(t, view.Entries)
	const n = 300
	key := func(i int) string { return fmt.Sprintf("sk-%d", i) }
	conns := make(map[string]*saslConn)
	for i := range n {
		addr := old.OwnerString(key(i)).Addr()
		if conns[addr] == nil {
			conns[addr] = dialSASL(t, addr, "app", "apppw")
		}
		conns[addr].set(t, key(i), "v-"+key(i), 6)
	}
	d := add("d")
	cur := ringOfEntries(t, clustertest.WaitAgree(t, agreeTimeout, c.Live()...).Entries)
	cd := dialSASL(t, d.Addr, "app", "apppw")
	moved, hits := 0, 0
	for i := range n {
		if cur.OwnerString(key(i)).Entry() != d.Entry {
			continue
		}
		moved++
		value, flags, status := binaryRead(t, cd.conn, cd.r, 0x00, key(i))
		if status == 0 && value == "v-"+key(i) && flags == 6 {
			hits++
		}
	}
	t.Logf("%d of %d moved keys hit on the new node", hits, moved)
	if moved == 0 || hits != moved {
		t.Errorf("%d of %d moved keys hit on the new node over SASL, want all", hits, moved)
	}
}

// ringOfEntries returns the ring of the members of host|ip|port entries.
func ringOfEntries(t *testing.T, entries []string) *ring.Ring {
	t.Helper()
	var ms []ring.Member
	for _, e := range entries {
		f := strings.Split(e, "|")
		port, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, ring.Member{Host: f[0], IP: f[1], Port: port})
	}
	r, err := ring.New(ms)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// saslConn is a binary-protocol connection that authenticated with SASL
// PLAIN.
type saslConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialSASL(t *testing.T, addr, user, password string) *saslConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &saslConn{conn: conn, r: bufio.NewReader(conn)}
	if status, _ := c.do(t, 0x21, nil, "PLAIN", "\x00"+user+"\x00"+password); status != 0 {
		t.Fatalf("SASL PLAIN as %s on %s: status %#x", user, addr, status)
	}
	return c
}

// do sends one binary request and returns the reply's status and body.
func (c *saslConn) do(t *testing.T, op byte, extras []byte, key, value string) (uint16, []byte) {
	t.Helper()
	req := make([]byte, 24)
	req[0], req[1] = 0x80, op
	binary.BigEndian.PutUint16(req[2:], uint16(len(key)))
	req[4] = byte(len(extras))
	binary.BigEndian.PutUint32(req[8:], uint32(len(extras)+len(key)+len(value)))
	req = append(append(append(req, extras...), key...), value...)
	if _, err := c.conn.Write(req); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 24)
	if _, err := io.ReadFull(c.r, head); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(head[8:]))
	if _, err := io.ReadFull(c.r, body); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint16(head[6:]), body
}

// set sets key with a binary Set.
func (c *saslConn) set(t *testing.T, key, value string, flags uint32) {
	t.Helper()
	extras := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, flags), 0)
	if status, body := c.do(t, 0x01, extras, key, value); status != 0 {
		t.Fatalf("set %s: status %#x %q", key, status, body)
	}
}

// TestHandoffTLS checks the hand-off between nodes that serve TLS: a node
// fetches from the others over TLS, verifying their certificates against
// the CA of ssl_ca_cert, and a client's get on the new node hits.
func TestHandoffTLS(t *testing.T) {
	files := tlstest.NewFiles(t, "cluster CA")
	c := clustertest.New(t)
	add := func(name string) *clustertest.Node {
		cfg := node.Config{
			TLS:     &node.TLSConfig{CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CAFile},
			Cluster: clustertest.FastTiming,
		}
		cfg.Cluster.Join = c.Seeds()
		return c.AddConfig(name, cfg)
	}
	for _, name := range []string{"a", "b", "c"} {
		add(name)
	}
	old := ringOfEntries(t, clustertest.WaitAgree(t, agreeTimeout, c.Nodes...).Entries)
	client := func(addr string) *memcache.Client {
		mc := memcache.New(addr)
		mc.Timeout = 2 * time.Second
		mc.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
			d := tls.Dialer{Config: files.ClientConfig(nil)}
			return d.DialContext(ctx, network, address)
		}
		return mc
	}
	const n = 300
	key := func(i int) string { return fmt.Sprintf("tk-%d", i) }
	for i := range n {
		if err := client(old.OwnerString(key(i)).Addr()).Set(&memcache.Item{Key: key(i), Value: []byte("v-" + key(i))}); err != nil {
			t.Fatal(err)
		}
	}
	d := add("d")
	cur := ringOfEntries(t, clustertest.WaitAgree(t, agreeTimeout, c.Live()...).Entries)
	var moved []string
	for i := range n {
		if cur.OwnerString(key(i)).Entry() == d.Entry {
			moved = append(moved, key(i))
		}
	}
	items, err := client(d.Addr).GetMulti(moved)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d moved keys hit on the new node over TLS", len(items), len(moved))
	if len(moved) == 0 || len(items) != len(moved) {
		t.Errorf("%d of %d moved keys hit on the new node over TLS, want all", len(items), len(moved))
	}
}

// systemPython is the python with Debian's python3-pymemcache, which
// .ci/run installs.
const systemPython = "/usr/bin/python3"

// handoffPymemcache reads, through pymemcache on the node at argv[1], the
// keys of argv[2:] (each moved to that node and set to "v-" + key with
// flags 0), deletes the first, and reads it again: it prints how many hit
// with the right value, and whether the deleted key came back.
const handoffPymemcache = `
import sys
from pymemcache.client.base import Client
host, port = sys.argv[1].rsplit(":", 1)
c = Client((host, int(port)), timeout=5, connect_timeout=5)
keys = sys.argv[2:]
got = c.get_many(keys)
hits = sum(1 for k in keys if got.get(k) == ("v-" + k).encode())
c.delete(keys[0])
back = c.get(keys[0]) is not None
print(hits, len(keys), back)
`

// TestProcessHandoffPymemcache checks the hand-off with a client that
// knows nothing of the cluster: pymemcache, talking to a node that has
// just joined, gets the keys it has come to own from their previous
// owners, and a key it deletes there stays deleted.
func TestProcessHandoffPymemcache(t *testing.T) {
	if out, err := exec.Command(systemPython, "-c", "import pymemcache").CombinedOutput(); err != nil {
		t.Fatalf("pymemcache is not importable by %s (%v): %s; install it with `apt-get install python3-pymemcache`", systemPython, err, out)
	}
	procs, view := startCluster(t, "a", "b", "c")
	old := ringOfEntries(t, view.Entries)
	const n = 400
	key := func(i int) string { return fmt.Sprintf("py-%d", i) }
	for i := range n {
		mc := memcache.New(old.OwnerString(key(i)).Addr())
		mc.Timeout = 2 * time.Second
		if err := mc.Set(&memcache.Item{Key: key(i), Value: []byte("v-" + key(i))}); err != nil {
			t.Fatal(err)
		}
	}
	d := startProc(t, "d", gossips(procs...))
	all := append(procs, d)
	cur := ringOfEntries(t, clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(all...), entries(all...)).Entries)
	var moved []string
	for i := range n {
		if cur.OwnerString(key(i)).Entry() == d.entry() {
			moved = append(moved, key(i))
		}
	}
	if len(moved) < 40 {
		t.Fatalf("only %d of %d keys moved to d", len(moved), n)
	}
	out, err := exec.Command(systemPython, append([]string{"-c", handoffPymemcache, d.srv.Addr}, moved...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("pymemcache: %v\n%s", err, out)
	}
	var hits, asked int
	var back string
	if _, err := fmt.Sscanf(string(out), "%d %d %s", &hits, &asked, &back); err != nil {
		t.Fatalf("pymemcache printed %q: %v", out, err)
	}
	t.Logf("pymemcache on the new node: %d of %d moved keys hit; the deleted key came back: %s", hits, asked, back)
	if hits != len(moved) || back != "False" {
		t.Errorf("pymemcache on the new node: %d of %d moved keys hit, deleted key back %s; want all, and False", hits, len(moved), back)
	}
}
