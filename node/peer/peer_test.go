package peer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/handoff"
	"github.com/memcluster/memcluster/node/peer"
	"github.com/memcluster/memcluster/node/tlsconf"
	"github.com/memcluster/memcluster/ring"
)

// serve runs a node with cfg on a loopback port and returns its member.
func serve(t *testing.T, cfg node.Config) ring.Member {
	t.Helper()
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	s := node.New(cfg)
	ls, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeListeners(ls)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	port := ls[0].Addr().(*net.TCPAddr).Port
	return ring.Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: port}
}

// send sends text commands to m and reads one reply line per command.
func send(t *testing.T, m ring.Member, cmds ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var out []string
	for _, cmd := range cmds {
		fmt.Fprintf(c, "%s\r\n", cmd)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

func fetch(t *testing.T, c *peer.Client, m ring.Member, key string) (string, uint32, int64, bool, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	it, found, err := c.Fetch(ctx, m, []byte(key))
	return string(it.Value), it.Flags, it.TTL, found, err
}

func TestFetch(t *testing.T) {
	m := serve(t, node.Config{})
	// "a b\r\n" is a binary-protocol key; ms sets it base64-encoded.
	got := send(t, m, "set k1 42 100 5\r\nhello", "set k2 7 0 2\r\nhi", "ms YSBiDQo= 3 b F9\r\nbin")
	if strings.Join(got, ",") != "STORED,STORED,HD" {
		t.Fatalf("setting up: %q", got)
	}
	c := peer.New(peer.Config{})
	for _, tc := range []struct {
		key   string
		value string
		flags uint32
		ttlLo int64
		ttlHi int64
		found bool
	}{
		{"k1", "hello", 42, 99, 100, true},
		{"k2", "hi", 7, 0, 0, true},
		{"a b\r\n", "bin", 9, 0, 0, true},
		{"missing", "", 0, 0, 0, false},
	} {
		v, flags, ttl, found, err := fetch(t, c, m, tc.key)
		if err != nil || found != tc.found || v != tc.value || flags != tc.flags || ttl < tc.ttlLo || ttl > tc.ttlHi {
			t.Errorf("Fetch(%q) = %q flags %d ttl %d found %v err %v; want %q flags %d ttl %d-%d found %v",
				tc.key, v, flags, ttl, found, err, tc.value, tc.flags, tc.ttlLo, tc.ttlHi, tc.found)
		}
	}
}

func TestFetchReusesConnections(t *testing.T) {
	m := serve(t, node.Config{})
	c := peer.New(peer.Config{})
	for range 20 {
		if _, _, _, _, err := fetch(t, c, m, "k"); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "stats\r\n")
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "STAT total_connections ") {
			// The peer's one connection, this one, and the listener's
			// own count, as memcached counts it.
			var n int
			fmt.Sscanf(line, "STAT total_connections %d", &n)
			if n > 3 {
				t.Errorf("20 fetches opened %d connections in all, want one (total_connections %d)", n-2, n)
			}
			return
		}
	}
}

func TestFetchFromDeadPeerFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := ring.Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: port}
	c := peer.New(peer.Config{DownFor: time.Minute})
	if _, _, _, _, err := fetch(t, c, m, "k"); err == nil {
		t.Fatal("Fetch from a closed port succeeded")
	}
	start := time.Now()
	_, _, _, _, err = fetch(t, c, m, "k")
	if err == nil {
		t.Fatal("second Fetch from a closed port succeeded")
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("second Fetch took %v, want at once: the peer is down", d)
	}
}

func TestFetchOverTLS(t *testing.T) {
	f := tlstest.NewFiles(t, "peer CA")
	tc := tlsconf.Config{CertFile: f.CertFile, KeyFile: f.KeyFile, CAFile: f.CAFile}
	m := serve(t, node.Config{TLS: &tc})
	st := tlsconf.NewState(tc)
	if err := st.EnsureLoaded(); err != nil {
		t.Fatal(err)
	}
	plain := peer.New(peer.Config{})
	if _, _, _, _, err := fetch(t, plain, m, "k"); err == nil {
		t.Fatal("a plain-text fetch from a TLS node succeeded")
	}
	c := peer.New(peer.Config{TLS: st.ClientConfig})
	v, _, _, found, err := fetch(t, c, m, "k")
	if err != nil || found {
		t.Fatalf("Fetch of a missing key over TLS: %q %v %v, want a miss", v, found, err)
	}
	// A peer whose certificate the CA did not sign is refused.
	other := tlstest.NewFiles(t, "another CA")
	ost := tlsconf.NewState(tlsconf.Config{CertFile: other.CertFile, KeyFile: other.KeyFile, CAFile: other.CAFile})
	if err := ost.EnsureLoaded(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := fetch(t, peer.New(peer.Config{TLS: ost.ClientConfig}), m, "k"); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch from a node with a certificate of another CA: %v, want a verification error", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := t.TempDir() + "/creds"
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func auth(user, password string) func() (string, string, error) {
	return func() (string, string, error) { return user, password, nil }
}

// pushAndFetch pushes an item to m with c and fetches it back.
func pushAndFetch(t *testing.T, c *peer.Client, m ring.Member) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	items := []handoff.PushItem{
		{Key: []byte("p1"), Value: []byte("one"), Flags: 3, TTL: 50},
		{Key: []byte("p 2\n"), Value: []byte("two"), Flags: 4},
		{Key: []byte("p3"), Value: []byte("sixty days"), Flags: 5, TTL: 60 * 86400}, // sent as a unix time
	}
	stored, err := c.Push(ctx, m, items)
	if err != nil || stored != len(items) {
		t.Fatalf("Push: %d stored, %v; want %d", stored, err, len(items))
	}
	// Pushed again: the node has them, so stores none.
	if stored, err := c.Push(ctx, m, items); err != nil || stored != 0 {
		t.Fatalf("Push again: %d stored, %v; want 0", stored, err)
	}
	for _, it := range items {
		v, flags, ttl, found, err := fetch(t, c, m, string(it.Key))
		if err != nil || !found || v != string(it.Value) || flags != it.Flags || ttl > it.TTL || (it.TTL > 0 && ttl < it.TTL-2) {
			t.Errorf("Fetch(%q) = %q flags %d ttl %d found %v err %v; want %q flags %d ttl %d",
				it.Key, v, flags, ttl, found, err, it.Value, it.Flags, it.TTL)
		}
	}
}

func TestPushAndFetch(t *testing.T) {
	pushAndFetch(t, peer.New(peer.Config{}), serve(t, node.Config{}))
}

func TestBinaryPushAndFetch(t *testing.T) {
	pushAndFetch(t, peer.New(peer.Config{Binary: true}), serve(t, node.Config{Protocol: "binary"}))
}

func TestSASLPeer(t *testing.T) {
	m := serve(t, node.Config{SASL: true, SASLPasswordFile: writeFile(t, "alice:secret\n")})
	pushAndFetch(t, peer.New(peer.Config{Binary: true, SASL: true, Auth: auth("alice", "secret")}), m)
	for name, c := range map[string]*peer.Client{
		"no credentials":    peer.New(peer.Config{Binary: true}),
		"a wrong password":  peer.New(peer.Config{Binary: true, SASL: true, Auth: auth("alice", "guess")}),
		"the text protocol": peer.New(peer.Config{ASCII: true, Auth: auth("alice", "secret")}),
	} {
		if _, _, _, found, err := fetch(t, c, m, "p1"); err == nil || found {
			t.Errorf("Fetch with %s from a SASL node: found %v, err %v; want an error", name, found, err)
		}
	}
}

func TestASCIIAuthPeer(t *testing.T) {
	m := serve(t, node.Config{AuthFile: writeFile(t, "bob:pw\n")})
	pushAndFetch(t, peer.New(peer.Config{ASCII: true, Auth: auth("bob", "pw")}), m)
	if _, _, _, found, err := fetch(t, peer.New(peer.Config{ASCII: true, Auth: auth("bob", "nope")}), m, "p1"); !errors.Is(err, peer.ErrAuth) || found {
		t.Errorf("Fetch with a wrong password: found %v, err %v; want ErrAuth", found, err)
	}
}

// exchange sends an mg and a no-op on fc and reads their replies.
func exchange(fc *peer.ForwardConn) (string, error) {
	fc.W.WriteString("mg restart-key v\r\nmn\r\n")
	if err := fc.W.Flush(); err != nil {
		return "", err
	}
	var got string
	for range 2 {
		line, err := fc.R.ReadString('\n')
		if err != nil {
			return got, err
		}
		got += line
	}
	return got, nil
}

// TestForwardingAfterPeerRestart restarts a peer at the same address while
// a forwarding connection to it sits in the pool: the next borrower gets a
// fresh connection that works, not the one the old process closed.
func TestForwardingAfterPeerRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := func() (ring.Member, func()) {
		s := node.New(node.Config{ListenAddrs: []string{addr}})
		ls, err := s.Listen()
		if err != nil {
			t.Fatal(err)
		}
		go s.ServeListeners(ls)
		port := ls[0].Addr().(*net.TCPAddr).Port
		return ring.Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: port}, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}
	}
	m, stop := start()
	c := peer.New(peer.Config{CheckIdle: time.Nanosecond})
	defer c.Close()
	fc, err := c.Forwarding(context.Background(), m, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := exchange(fc); err != nil || got != "EN\r\nMN\r\n" {
		t.Fatalf("first exchange: %q %v", got, err)
	}
	fc.Release(true)
	stop()
	m, stop = start()
	defer stop()
	fc, err = c.Forwarding(context.Background(), m, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := exchange(fc)
	fc.Release(err == nil)
	if err != nil || got != "EN\r\nMN\r\n" {
		t.Errorf("after the peer restarted: %q %v, want a fresh connection's EN and MN", got, err)
	}
}

// TestForwardingBoundsConnections: no more than MaxConnsForward connections
// are lent at once; one more waits for a release, and gives up with
// ErrBusy after DialTimeout.
func TestForwardingBoundsConnections(t *testing.T) {
	m := serve(t, node.Config{})
	c := peer.New(peer.Config{MaxConnsForward: 2, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	var lent []*peer.ForwardConn
	for range 2 {
		fc, err := c.Forwarding(context.Background(), m, false)
		if err != nil {
			t.Fatal(err)
		}
		lent = append(lent, fc)
	}
	start := time.Now()
	if fc, err := c.Forwarding(context.Background(), m, false); !errors.Is(err, peer.ErrBusy) {
		t.Fatalf("a third connection with two lent: %v, %v; want ErrBusy", fc, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("ErrBusy after %v, want about the dial timeout (200ms)", d)
	}
	done := make(chan error, 1)
	go func() {
		fc, err := c.Forwarding(context.Background(), m, false)
		if err == nil {
			_, err = exchange(fc)
			fc.Release(err == nil)
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	lent[0].Release(true) // the waiter takes it
	if err := <-done; err != nil {
		t.Errorf("a waiter after a release: %v", err)
	}
	lent[1].Release(true)
}
