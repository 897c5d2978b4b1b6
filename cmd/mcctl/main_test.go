package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/ring"
)

// fakeDiscovery is a discovery-only node: it answers `config get cluster`
// with a fixed config and ERROR to everything else. It stores nothing.
type fakeDiscovery struct {
	addr string
}

// startDiscovery starts a fakeDiscovery on 127.0.0.1:0 that serves version
// and members, stopped when the test ends.
func startDiscovery(t *testing.T, version uint64, members []ring.Member) *fakeDiscovery {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startDiscoveryOn(t, l, version, members)
}

// startDiscoveryOn is startDiscovery on the listener l.
func startDiscoveryOn(t *testing.T, l net.Listener, version uint64, members []ring.Member) *fakeDiscovery {
	t.Helper()
	cfg := ring.FormatClusterConfig(version, members)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[nc] = true
			mu.Unlock()
			wg.Go(func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch strings.TrimRight(line, "\r\n") {
					case "config get cluster":
						nc.Write(cfg)
					case "quit":
						return
					default:
						io.WriteString(nc, "ERROR\r\n")
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &fakeDiscovery{addr: l.Addr().String()}
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// result is one in-process run of mcctl.
type result struct {
	code           int
	stdout, stderr string
}

func mcctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// rawGet asks the server at addr for key with a plain text `get` and
// returns the value and whether it was there.
func rawGet(t *testing.T, addr, key string) (string, bool) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "get %s\r\n", key)
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("get %s from %s: %v", key, addr, err)
	}
	if line == "END\r\n" {
		return "", false
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "VALUE" || f[1] != key {
		t.Fatalf("get %s from %s: got %q", key, addr, line)
	}
	n, _ := strconv.Atoi(f[3])
	buf := make([]byte, n+len("\r\nEND\r\n"))
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatalf("get %s from %s: %v", key, addr, err)
	}
	if got := string(buf[n:]); got != "\r\nEND\r\n" {
		t.Fatalf("get %s from %s: value ends %q", key, addr, got)
	}
	return string(buf[:n]), true
}

// rawTTL returns the remaining TTL of key at addr, with meta get's t flag
// (-1: none).
func rawTTL(t *testing.T, addr, key string) int {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "mg %s t\r\n", key)
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(line)[1:] {
		if v, ok := strings.CutPrefix(f, "t"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("mg %s: %q", key, line)
			}
			return n
		}
	}
	t.Fatalf("mg %s t: got %q", key, line)
	return 0
}

// testCluster is three memcached data nodes behind two discovery seeds.
type testCluster struct {
	version  uint64
	members  []ring.Member
	ring     *ring.Ring
	backends map[string]string // member entry → data address
	seeds    []string
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	tc := &testCluster{version: 7, backends: map[string]string{}}
	for range 3 {
		s := servertest.StartMemcached(t)
		m := ring.Member{Host: "localhost", IP: "127.0.0.1", Port: s.Port}
		tc.members = append(tc.members, m)
		tc.backends[m.Entry()] = s.Addr
	}
	r, err := ring.New(tc.members)
	if err != nil {
		t.Fatal(err)
	}
	tc.ring = r
	for range 2 {
		tc.seeds = append(tc.seeds, startDiscovery(t, tc.version, tc.members).addr)
	}
	return tc
}

func TestCluster(t *testing.T) {
	tc := startCluster(t)
	all := strings.Join(tc.seeds, ",")

	t.Run("members", func(t *testing.T) {
		res := mcctl(t, "-s", all, "members")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if want := "cluster version 7, 3 members"; lines[0] != want {
			t.Errorf("header: got %q, want %q", lines[0], want)
		}
		if len(lines) != 2+len(tc.members) {
			t.Fatalf("got %d lines, want %d:\n%s", len(lines), 2+len(tc.members), res.stdout)
		}
		for _, m := range tc.members {
			if !strings.Contains(res.stdout, m.Entry()) || !strings.Contains(res.stdout, m.Addr()) {
				t.Errorf("member %s (%s) missing:\n%s", m.Entry(), m.Addr(), res.stdout)
			}
		}
	})

	t.Run("owner", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 40 {
			key := fmt.Sprintf("owner-key-%d", i)
			res := mcctl(t, "-s", tc.seeds[i%2], "owner", key)
			want := tc.ring.OwnerString(key).Entry()
			if res.code != 0 || res.stdout != want+"\n" {
				t.Fatalf("owner %s: got %q exit %d (stderr %q), want %q", key, res.stdout, res.code, res.stderr, want)
			}
			seen[want] = true
		}
		if len(seen) != len(tc.members) {
			t.Errorf("40 keys went to %d owners, want %d", len(seen), len(tc.members))
		}
	})

	t.Run("set on owner only, get through any seed", func(t *testing.T) {
		owners := map[string]bool{}
		for i := range 30 {
			key := fmt.Sprintf("key-%d", i)
			val := fmt.Sprintf("value %d", i)
			if res := mcctl(t, "-s", tc.seeds[0], "set", key, val); res.code != 0 || res.stdout != "" {
				t.Fatalf("set %s: exit %d, stdout %q, stderr %q", key, res.code, res.stdout, res.stderr)
			}
			owner := tc.ring.OwnerString(key).Entry()
			owners[owner] = true
			for entry, addr := range tc.backends {
				got, ok := rawGet(t, addr, key)
				switch {
				case entry == owner && (!ok || got != val):
					t.Errorf("%s on its owner %s: got %q, %v, want %q", key, entry, got, ok, val)
				case entry != owner && ok:
					t.Errorf("%s found on %s, which is not its owner %s", key, entry, owner)
				}
			}
			for _, seed := range tc.seeds {
				res := mcctl(t, "-s", seed, "get", key)
				if res.code != 0 || res.stdout != val+"\n" {
					t.Errorf("get %s via %s: got %q exit %d (stderr %q), want %q", key, seed, res.stdout, res.code, res.stderr, val)
				}
			}
		}
		if len(owners) != len(tc.members) {
			t.Errorf("30 keys went to %d owners, want %d", len(owners), len(tc.members))
		}
	})

	t.Run("set --ttl", func(t *testing.T) {
		for _, args := range [][]string{
			{"set", "ttl-a", "v", "--ttl", "1000"},
			{"set", "--ttl=1000", "ttl-b", "v"},
			{"set", "-ttl", "1000", "--", "ttl-c", "-v"},
		} {
			res := mcctl(t, append([]string{"-s", all}, args...)...)
			if res.code != 0 {
				t.Fatalf("%q: exit %d, stderr %q", args, res.code, res.stderr)
			}
		}
		for _, key := range []string{"ttl-a", "ttl-b", "ttl-c"} {
			addr := tc.backends[tc.ring.OwnerString(key).Entry()]
			if ttl := rawTTL(t, addr, key); ttl < 990 || ttl > 1000 {
				t.Errorf("%s: ttl %d, want about 1000", key, ttl)
			}
		}
		if got, _ := rawGet(t, tc.backends[tc.ring.OwnerString("ttl-c").Entry()], "ttl-c"); got != "-v" {
			t.Errorf("ttl-c: got %q, want %q", got, "-v")
		}
		if ttl := rawTTL(t, tc.backends[tc.ring.OwnerString("key-0").Entry()], "key-0"); ttl != -1 {
			t.Errorf("key-0 set without --ttl: ttl %d, want -1", ttl)
		}
	})

	t.Run("get miss", func(t *testing.T) {
		res := mcctl(t, "-s", all, "get", "no-such-key")
		if res.code != 1 || res.stdout != "" || res.stderr != "" {
			t.Errorf("got exit %d, stdout %q, stderr %q; want 1 and nothing", res.code, res.stdout, res.stderr)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if res := mcctl(t, "-s", all, "set", "doomed", "x"); res.code != 0 {
			t.Fatalf("set: exit %d, stderr %q", res.code, res.stderr)
		}
		if res := mcctl(t, "-s", tc.seeds[1], "delete", "doomed"); res.code != 0 || res.stdout != "" {
			t.Fatalf("delete: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		for entry, addr := range tc.backends {
			if _, ok := rawGet(t, addr, "doomed"); ok {
				t.Errorf("doomed still on %s", entry)
			}
		}
		if res := mcctl(t, "-s", all, "get", "doomed"); res.code != 1 {
			t.Errorf("get after delete: exit %d, want 1", res.code)
		}
		if res := mcctl(t, "-s", all, "delete", "doomed"); res.code != 1 || res.stderr != "" {
			t.Errorf("delete again: exit %d, stderr %q; want 1 and nothing", res.code, res.stderr)
		}
	})

	t.Run("stats", func(t *testing.T) {
		res := mcctl(t, "-s", all, "stats")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		if len(lines) != 1+len(tc.members)+1 {
			t.Fatalf("got %d lines, want header, %d nodes and totals:\n%s", len(lines), len(tc.members), res.stdout)
		}
		head := strings.Fields(lines[0])
		col := -1
		for i, h := range head {
			if h == "curr_items" {
				col = i
			}
		}
		if head[0] != "NODE" || col < 0 {
			t.Fatalf("header %q: want NODE and curr_items", lines[0])
		}
		sum := 0
		for i, m := range tc.ring.Members() {
			f := strings.Fields(lines[1+i])
			if f[0] != m.Entry() || len(f) != len(head) {
				t.Fatalf("row %d: %q, want %s and %d columns", i, lines[1+i], m.Entry(), len(head))
			}
			n, err := strconv.Atoi(f[col])
			if err != nil {
				t.Fatalf("row %d curr_items %q", i, f[col])
			}
			sum += n
		}
		// 30 keys and 3 ttl keys remain.
		tot := strings.Fields(lines[len(lines)-1])
		if tot[0] != "TOTAL" || tot[len(tot)-len(head)+col] != "33" || sum != 33 {
			t.Errorf("totals %q (rows sum to %d): want curr_items 33", lines[len(lines)-1], sum)
		}
	})

	t.Run("dead seed first", func(t *testing.T) {
		res := mcctl(t, "-s", deadAddr(t)+","+tc.seeds[1], "-timeout", "1s", "get", "key-1")
		if res.code != 0 || res.stdout != "value 1\n" {
			t.Errorf("got %q exit %d (stderr %q), want %q", res.stdout, res.code, res.stderr, "value 1\n")
		}
	})
}

func TestStatsUnreachableNode(t *testing.T) {
	mc := servertest.StartMemcached(t)
	_, port, _ := net.SplitHostPort(deadAddr(t))
	deadPort, _ := strconv.Atoi(port)
	members := []ring.Member{
		{Host: "up", IP: "127.0.0.1", Port: mc.Port},
		{Host: "down", IP: "127.0.0.1", Port: deadPort},
	}
	seed := startDiscovery(t, 1, members)
	res := mcctl(t, "-s", seed.addr, "-timeout", "1s", "stats")
	if res.code != 2 {
		t.Errorf("exit %d, want 2", res.code)
	}
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	var down, total []string
	for _, l := range lines {
		f := strings.Fields(l)
		switch f[0] {
		case members[1].Entry():
			down = f
		case "TOTAL":
			total = f
		}
	}
	if len(lines) != 4 || len(down) < 2 || down[1] != "unreachable" || total == nil {
		t.Errorf("stdout lacks the unreachable row or totals:\n%s", res.stdout)
	}
	if !strings.Contains(res.stderr, "127.0.0.1:"+port) {
		t.Errorf("stderr %q does not name the unreachable node", res.stderr)
	}
}

func TestNoCluster(t *testing.T) {
	plain := servertest.StartMemcached(t) // answers ERROR to config get cluster
	for _, tt := range []struct {
		name  string
		seeds string
	}{
		{"nothing listening", deadAddr(t) + "," + deadAddr(t)},
		{"plain memcached", plain.Addr},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := mcctl(t, "-s", tt.seeds, "-timeout", "1s", "members")
			if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, "cannot find the cluster") {
				t.Errorf("got exit %d, stdout %q, stderr %q; want 2 and an error", res.code, res.stdout, res.stderr)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	const s = "127.0.0.1:1" // never dialed: usage errors come first
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"no args", nil},
		{"empty seeds", []string{"-s", "", "members"}},
		{"watch with arg", []string{"-s", s, "watch", "x"}},
		{"zero interval", []string{"-s", s, "-interval", "0s", "top"}},
		{"negative count", []string{"-s", s, "-n", "-1", "watch"}},
		{"no command", []string{"-s", s}},
		{"bad seed", []string{"-s", "nocolon", "members"}},
		{"bad flag", []string{"-x", "-s", s, "members"}},
		{"zero timeout", []string{"-s", s, "-timeout", "0s", "members"}},
		{"unknown command", []string{"-s", s, "frobnicate"}},
		{"members with arg", []string{"-s", s, "members", "x"}},
		{"get without key", []string{"-s", s, "get"}},
		{"get two keys", []string{"-s", s, "get", "a", "b"}},
		{"owner key with space", []string{"-s", s, "owner", "a b"}},
		{"key too long", []string{"-s", s, "get", strings.Repeat("k", 251)}},
		{"set without value", []string{"-s", s, "set", "k"}},
		{"set bad ttl", []string{"-s", s, "set", "k", "v", "--ttl", "soon"}},
		{"set negative ttl", []string{"-s", s, "set", "k", "v", "--ttl=-1"}},
		{"set ttl without value", []string{"-s", s, "set", "k", "v", "--ttl"}},
		{"set unknown flag", []string{"-s", s, "set", "k", "v", "--flags", "3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := mcctl(t, tt.args...)
			if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, "usage: mcctl") {
				t.Errorf("got exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", res.code, res.stdout, res.stderr)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		res := mcctl(t, "-h")
		if res.code != 0 || !strings.HasPrefix(res.stdout, "usage: mcctl") {
			t.Errorf("got exit %d, stdout %q", res.code, res.stdout)
		}
	})
}

func TestParseSet(t *testing.T) {
	for _, tt := range []struct {
		args       []string
		key, value string
		ttl        int32
	}{
		{[]string{"k", "v"}, "k", "v", 0},
		{[]string{"k", "v", "--ttl", "60"}, "k", "v", 60},
		{[]string{"--ttl=60", "k", "v"}, "k", "v", 60},
		{[]string{"k", "-ttl", "5", "v"}, "k", "v", 5},
		{[]string{"k", "--", "--ttl"}, "k", "--ttl", 0},
		{[]string{"k", "-"}, "k", "-", 0},
		{[]string{"k", ""}, "k", "", 0},
	} {
		key, value, ttl, err := parseSet(tt.args)
		if err != nil || key != tt.key || value != tt.value || ttl != tt.ttl {
			t.Errorf("parseSet(%q): got %q %q %d %v, want %q %q %d", tt.args, key, value, ttl, err, tt.key, tt.value, tt.ttl)
		}
	}
}

func TestParseStats(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{"STAT pid 1\r\nSTAT version 1.6.0 x\r\nEND\r\n", map[string]string{"pid": "1", "version": "1.6.0 x"}, true},
		{"END\r\n", map[string]string{}, true},
		{"STAT pid 1\r\n", nil, false},
		{"ERROR\r\n", nil, false},
	} {
		got, err := parseStats(bufio.NewReader(strings.NewReader(tt.in)))
		if (err == nil) != tt.ok || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseStats(%q): got %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestTLS runs mcctl against a node that serves only TLS and asks for
// client certificates: with -tls-ca and a client certificate every command
// works; without TLS, or without the certificate, discovery fails.
func TestTLS(t *testing.T) {
	files := tlstest.NewFiles(t, "mcctl CA")
	client := files.CA.Client(t, "mcctl")
	certFile, keyFile := client.WriteFiles(t, files.Dir, "client")
	srv := servertest.StartMemcluster(t, "--no-cluster", "-Z", "-o",
		"ssl_chain_cert="+files.CertFile+",ssl_key="+files.KeyFile+",ssl_ca_cert="+files.CAFile+",ssl_verify_mode=2")
	tlsFlags := []string{"-tls-ca", files.CAFile, "-tls-cert", certFile, "-tls-key", keyFile, "-s", srv.Addr}
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"set", "k", "over-tls"}, ""},
		{[]string{"get", "k"}, "over-tls\n"},
		{[]string{"owner", "k"}, "127.0.0.1|127.0.0.1|" + strconv.Itoa(srv.Port) + "\n"},
	} {
		r := mcctl(t, append(tlsFlags, tc.args...)...)
		if r.code != exitOK || r.stdout != tc.out {
			t.Errorf("mcctl %v over TLS: exit %d, out %q, err %q; want 0, %q", tc.args, r.code, r.stdout, r.stderr, tc.out)
		}
	}
	if r := mcctl(t, append(tlsFlags, "stats")...); r.code != exitOK || !strings.Contains(r.stdout, "curr_items") {
		t.Errorf("mcctl stats over TLS: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	for name, args := range map[string][]string{
		"plain TCP":          {"-s", srv.Addr, "get", "k"},
		"no client cert":     {"-tls-ca", files.CAFile, "-s", srv.Addr, "get", "k"},
		"an unknown CA":      {"-tls", "-tls-cert", certFile, "-tls-key", keyFile, "-s", srv.Addr, "get", "k"},
		"a cert without key": {"-tls-cert", certFile, "-s", srv.Addr, "get", "k"},
	} {
		if r := mcctl(t, args...); r.code != exitError {
			t.Errorf("mcctl with %s: exit %d, out %q; want %d", name, r.code, r.stdout, exitError)
		}
	}
}

// TestSASL runs mcctl against a node with -S, which serves no text
// command: with -sasl-user every command works, over the binary protocol
// (the config through memcluster's ConfigGet); a wrong password fails.
func TestSASL(t *testing.T) {
	pwdb := t.TempDir() + "/pwdb"
	if err := os.WriteFile(pwdb, []byte("ops:opspw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.StartMemcluster(t, "--no-cluster", "-S", "--sasl-pwdb", pwdb)
	login := []string{"-sasl-user", "ops", "-sasl-password", "opspw", "-s", srv.Addr}
	entry := "127.0.0.1|127.0.0.1|" + strconv.Itoa(srv.Port)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"set", "k", "with-sasl", "--ttl", "100"}, exitOK, ""},
		{[]string{"get", "k"}, exitOK, "with-sasl\n"},
		{[]string{"owner", "k"}, exitOK, entry + "\n"},
		{[]string{"delete", "k"}, exitOK, ""},
		{[]string{"get", "k"}, exitNotFound, ""},
		{[]string{"delete", "k"}, exitNotFound, ""},
	} {
		r := mcctl(t, append(login, tc.args...)...)
		if r.code != tc.code || r.stdout != tc.out {
			t.Errorf("mcctl %v with SASL: exit %d, out %q, err %q; want %d, %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.out)
		}
	}
	if r := mcctl(t, append(login, "members")...); r.code != exitOK || !strings.Contains(r.stdout, entry) {
		t.Errorf("mcctl members with SASL: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	// top's stats come over the binary protocol too.
	if r := mcctl(t, append(login, "-n", "1", "-interval", "100ms", "top")...); r.code != exitOK || !strings.Contains(r.stdout, "\n"+entry+"  ") {
		t.Errorf("mcctl top with SASL: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	if r := mcctl(t, append(login, "stats")...); r.code != exitOK || !strings.Contains(r.stdout, "curr_items") {
		t.Errorf("mcctl stats with SASL: exit %d, out %q, err %q", r.code, r.stdout, r.stderr)
	}
	for name, args := range map[string][]string{
		"no login":         {"-s", srv.Addr, "get", "k"},
		"a wrong password": {"-sasl-user", "ops", "-sasl-password", "guess", "-s", srv.Addr, "get", "k"},
	} {
		if r := mcctl(t, args...); r.code != exitError {
			t.Errorf("mcctl with %s: exit %d, out %q; want %d", name, r.code, r.stdout, exitError)
		}
	}
}
