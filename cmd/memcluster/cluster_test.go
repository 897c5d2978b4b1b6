package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/ring"
)

func TestParseArgsCluster(t *testing.T) {
	tests := []struct {
		args   []string
		want   func(c *node.ClusterConfig) // applied to the defaults
		chosen bool
	}{
		{nil, func(c *node.ClusterConfig) {}, false},
		{[]string{"--gossip-addr", "127.0.0.1:7947"}, func(c *node.ClusterConfig) { c.GossipAddr = "127.0.0.1:7947" }, true},
		{[]string{"--gossip-addr=:7947"}, func(c *node.ClusterConfig) { c.GossipAddr = ":7947" }, true},
		{[]string{"--gossip-addr=[::1]:7947"}, func(c *node.ClusterConfig) { c.GossipAddr = "[::1]:7947" }, true},
		{[]string{"--gossip-addr="}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, true},
		{[]string{"--no-cluster"}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, true},
		{[]string{"--no-cluster", "--gossip-addr=:1"}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, true},
		{[]string{"--advertise-addr", "cache-0.cache"}, func(c *node.ClusterConfig) { c.AdvertiseAddr = "cache-0.cache" }, false},
		{[]string{"--advertise-addr=10.0.0.1:17946"}, func(c *node.ClusterConfig) { c.AdvertiseAddr = "10.0.0.1:17946" }, false},
		{[]string{"--name", "node-a"}, func(c *node.ClusterConfig) { c.Name = "node-a" }, false},
		{[]string{"--join", "10.0.0.1:7946,cache.default.svc", "--join=[::1]:7000"}, func(c *node.ClusterConfig) {
			c.Join = []string{"10.0.0.1:7946", "cache.default.svc:7946", "[::1]:7000"}
		}, true},
		{[]string{"--join", " a:1 , ,b:2"}, func(c *node.ClusterConfig) { c.Join = []string{"a:1", "b:2"} }, true},
		{[]string{"--probe-interval=1s", "--probe-timeout", "300ms", "--suspicion-mult=5",
			"--suspicion-max-timeout-mult=3", "--gossip-interval=50ms", "--push-pull-interval=1m",
			"--rejoin-interval=10s", "--leave-timeout=500ms"}, func(c *node.ClusterConfig) {
			c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult = time.Second, 300*time.Millisecond, 5
			c.SuspicionMaxTimeoutMult, c.GossipInterval, c.PushPullInterval = 3, 50*time.Millisecond, time.Minute
			c.RejoinInterval, c.LeaveTimeout = 10*time.Second, 500*time.Millisecond
		}, false},
		// Without TCP, gossip is off unless asked for.
		{[]string{"-s", "/tmp/mc.sock"}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, false},
		{[]string{"-s", "/tmp/mc.sock", "-l", "127.0.0.1"}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, false},
		// Gossip binds to the host of the first -l address, unless told
		// otherwise.
		{[]string{"-l", "127.0.0.1"}, func(c *node.ClusterConfig) { c.GossipAddr = "127.0.0.1:7946" }, false},
		{[]string{"-l", "127.0.0.1,10.0.0.5"}, func(c *node.ClusterConfig) { c.GossipAddr = "127.0.0.1:7946" }, false},
		{[]string{"-l", "10.0.0.5:11311", "-l", "127.0.0.1"}, func(c *node.ClusterConfig) { c.GossipAddr = "10.0.0.5:7946" }, false},
		{[]string{"-l", "[::1]:11311"}, func(c *node.ClusterConfig) { c.GossipAddr = "[::1]:7946" }, false},
		{[]string{"-l", "localhost"}, func(c *node.ClusterConfig) { c.GossipAddr = "localhost:7946" }, false},
		{[]string{"-l", "*,127.0.0.1"}, func(c *node.ClusterConfig) { c.GossipAddr = "0.0.0.0:7946" }, false},
		{[]string{"-l", "127.0.0.1", "--join", "127.0.0.1:7000"}, func(c *node.ClusterConfig) {
			c.GossipAddr, c.Join = "127.0.0.1:7946", []string{"127.0.0.1:7000"}
		}, true},
		{[]string{"-l", "127.0.0.1", "--gossip-addr", "0.0.0.0:7000"}, func(c *node.ClusterConfig) { c.GossipAddr = "0.0.0.0:7000" }, true},
		{[]string{"--gossip-addr", "[::1]:7000", "-l", "10.0.0.5"}, func(c *node.ClusterConfig) { c.GossipAddr = "[::1]:7000" }, true},
		{[]string{"-l", "127.0.0.1", "--gossip-addr="}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, true},
		{[]string{"-l", "127.0.0.1", "--no-cluster"}, func(c *node.ClusterConfig) { c.GossipAddr = "" }, true},
		// Encrypted gossip asks for a cluster.
		{[]string{"--gossip-key-file", "/etc/memcluster/gossip.key"}, func(c *node.ClusterConfig) {
			c.GossipKeyFile = "/etc/memcluster/gossip.key"
		}, true},
		{[]string{"--gossip-key-file=gossip.key", "--gossip-addr=127.0.0.1:7947"}, func(c *node.ClusterConfig) {
			c.GossipKeyFile, c.GossipAddr = "gossip.key", "127.0.0.1:7947"
		}, true},
		// The ring mode.
		{[]string{"--ring=ketama"}, func(c *node.ClusterConfig) { c.Ring = ring.ModeKetama }, false},
		{[]string{"--ring", "memcluster"}, func(c *node.ClusterConfig) { c.Ring = ring.ModeMemcluster }, false},
		// The hand-off: a window (0: none), and the drain's push.
		{[]string{"--handoff=2m", "--handoff-push=16"}, func(c *node.ClusterConfig) {
			c.Handoff, c.HandoffPush = 2*time.Minute, 16<<20
		}, false},
		{[]string{"--handoff", "0", "--handoff-push", "0"}, func(c *node.ClusterConfig) {
			c.Handoff, c.HandoffPush = -1, 0
		}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, _, err := parse(tt.args...)
			if err != nil {
				t.Fatalf("parseArgs(%q) error: %v", tt.args, err)
			}
			want := defaultClusterConfig()
			tt.want(&want)
			if !reflect.DeepEqual(o.cfg.Cluster, want) {
				t.Errorf("parseArgs(%q):\ngot  %+v\nwant %+v", tt.args, o.cfg.Cluster, want)
			}
			if o.gossipChosen != tt.chosen {
				t.Errorf("parseArgs(%q): gossipChosen = %v, want %v", tt.args, o.gossipChosen, tt.chosen)
			}
		})
	}
}

// TestGossipAddrFor checks the default gossip address for each -l: the
// host of the first address with the default's port, or the default.
func TestGossipAddrFor(t *testing.T) {
	tests := []struct {
		listen   []string // as options.cfg.ListenAddrs holds them
		fallback string
		want     string
	}{
		{nil, "0.0.0.0:7946", "0.0.0.0:7946"},
		{nil, "127.0.0.1:7947", "127.0.0.1:7947"},
		{[]string{"127.0.0.1"}, "0.0.0.0:7946", "127.0.0.1:7946"},
		{[]string{"127.0.0.1:11311"}, "0.0.0.0:7946", "127.0.0.1:7946"},
		{[]string{"127.0.0.1", "10.0.0.5"}, "0.0.0.0:7946", "127.0.0.1:7946"},
		{[]string{"10.0.0.5", "127.0.0.1"}, "0.0.0.0:7946", "10.0.0.5:7946"},
		{[]string{"::1"}, "0.0.0.0:7946", "[::1]:7946"},
		{[]string{"[::1]:11311"}, "0.0.0.0:7946", "[::1]:7946"},
		{[]string{"fe80::1%eth0"}, "0.0.0.0:7946", "[fe80::1%eth0]:7946"},
		{[]string{"localhost"}, "0.0.0.0:7946", "localhost:7946"},
		{[]string{"cache-0.cache.svc:11211"}, "0.0.0.0:7946", "cache-0.cache.svc:7946"},
		{[]string{"127.0.0.1"}, "0.0.0.0:0", "127.0.0.1:0"},
		{[]string{"127.0.0.1"}, ":7000", "127.0.0.1:7000"},
		// Every interface: as without -l.
		{[]string{""}, "0.0.0.0:7946", "0.0.0.0:7946"},
		{[]string{":11311", "127.0.0.1"}, "0.0.0.0:7946", "0.0.0.0:7946"},
		{[]string{"*"}, "0.0.0.0:7946", "0.0.0.0:7946"},
		{[]string{"0.0.0.0"}, "0.0.0.0:7946", "0.0.0.0:7946"},
		{[]string{"::"}, "0.0.0.0:7946", "0.0.0.0:7946"},
		{[]string{"[::]:11311"}, "0.0.0.0:7946", "0.0.0.0:7946"},
	}
	for _, tt := range tests {
		if got := gossipAddrFor(tt.listen, tt.fallback); got != tt.want {
			t.Errorf("gossipAddrFor(%q, %q) = %q, want %q", tt.listen, tt.fallback, got, tt.want)
		}
	}
}

func TestParseArgsClusterErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--gossip-addr", "7946"}, `invalid address "7946" for --gossip-addr: want host:port`},
		{[]string{"--gossip-addr", "host"}, `invalid address "host" for --gossip-addr: want host:port`},
		{[]string{"--gossip-addr", "h:99999"}, `invalid address "h:99999" for --gossip-addr: bad port`},
		{[]string{"--advertise-addr", ":7946"}, `invalid address ":7946" for --advertise-addr: no host`},
		{[]string{"--advertise-addr", "h:x"}, `invalid address "h:x" for --advertise-addr: bad port`},
		{[]string{"--join", "a:1,b:c"}, `invalid address "b:c" for --join: bad port`},
		{[]string{"--join"}, "option '--join' requires an argument"},
		{[]string{"--ring", "Ketama"}, `invalid value "Ketama" for --ring: want memcluster or ketama`},
		{[]string{"--ring="}, `invalid value "" for --ring: want memcluster or ketama`},
		{[]string{"--ring"}, "option '--ring' requires an argument"},
		{[]string{"--handoff", "-1s"}, `invalid value "-1s" for --handoff: want a duration such as 1m, or 0 for none`},
		{[]string{"--handoff-push", "lots"}, `invalid value "lots" for --handoff-push: want megabytes, 0 for none`},
		{[]string{"--probe-interval", "1"}, `invalid value "1" for --probe-interval: want a positive duration such as 500ms or 2s`},
		{[]string{"--probe-timeout", "-1s"}, `invalid value "-1s" for --probe-timeout: want a positive duration such as 500ms or 2s`},
		{[]string{"--suspicion-mult", "0"}, `invalid value "0" for --suspicion-mult: must be at least 1`},
		{[]string{"--suspicion-mult", "x"}, `invalid value "x" for --suspicion-mult: not an integer`},
		{[]string{"--probe-timeout", "1s"}, "--probe-timeout (1s) must be shorter than --probe-interval (400ms)"},
		{[]string{"--no-cluster", "--join", "a:1"}, "--join needs gossip: drop --no-cluster or give --gossip-addr"},
		{[]string{"-s", "/tmp/s", "--join", "a:1"}, "a cluster needs a TCP port to publish: --gossip-addr, --join and --gossip-key-file cannot go with -s or -p 0"},
		{[]string{"-s", "/tmp/s", "--gossip-addr", ":1"}, "a cluster needs a TCP port to publish: --gossip-addr, --join and --gossip-key-file cannot go with -s or -p 0"},
		{[]string{"-p", "0", "-s", "/tmp/s", "--gossip-key-file", "k"}, "a cluster needs a TCP port to publish: --gossip-addr, --join and --gossip-key-file cannot go with -s or -p 0"},
		{[]string{"--no-cluster", "--gossip-key-file", "k"}, "--gossip-key-file needs gossip: drop --no-cluster or give --gossip-addr"},
		{[]string{"--gossip-addr=", "--gossip-key-file", "k"}, "--gossip-key-file needs gossip: drop --no-cluster or give --gossip-addr"},
		{[]string{"--gossip-key-file="}, `invalid value "" for --gossip-key-file: want a file`},
		{[]string{"--gossip-key-file"}, "option '--gossip-key-file' requires an argument"},
		{[]string{"--gossip=:1"}, "option '--gossip=:1' is ambiguous; possibilities: '--gossip-addr' '--gossip-interval' '--gossip-key-file'"},
		{[]string{"--pro=1"}, "option '--pro=1' is ambiguous; possibilities: '--protocol' '--probe-interval' '--probe-timeout'"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := parse(tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("parseArgs(%q) error %v, want %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestRunGossipAddressTaken checks what a taken gossip address does: fatal
// when the command line chose it, a warning and a single node when it is
// the default.
func TestRunGossipAddressTaken(t *testing.T) {
	keepGlobals(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()

	var stdout, stderr testutil.LockedBuffer
	code := run(context.Background(), context.Background(), []string{"-l", "127.0.0.1", "-p", freePort(t), "--gossip-addr", taken}, nil, &stdout, &stderr)
	if code != exitFailure || !strings.Contains(stderr.String(), "memcluster: node: starting gossip on "+taken) {
		t.Errorf("exit status %d, stderr %q; want %d and the gossip error", code, stderr.String(), exitFailure)
	}

	t.Run("default", func(t *testing.T) {
		// The default taken: here an address of the test's own rather
		// than port 7946, which other tests' nodes may hold.
		def, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer def.Close()
		saved := defaultGossipAddr
		defaultGossipAddr = def.Addr().String()
		defer func() { defaultGossipAddr = saved }()
		port := freePort(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var stdout, stderr testutil.LockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, context.Background(), []string{"-l", "127.0.0.1", "-p", port}, nil, &stdout, &stderr)
		}()
		if err := testutil.WaitAccepting("tcp", net.JoinHostPort("127.0.0.1", port), 10*time.Second, returned(done)); err != nil {
			t.Fatalf("%v; stderr:\n%s", err, stderr.String())
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		if !strings.Contains(stderr.String(), "running as a single node") {
			t.Errorf("stderr %q: want the warning", stderr.String())
		}
	})
}

// TestRunBadGossipKeyFile checks that a key file the node cannot use stops
// it at start, with an error that names the file and the line but shows
// no key.
func TestRunBadGossipKeyFile(t *testing.T) {
	keepGlobals(t)
	dir := t.TempDir()
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 12))
	tests := []struct{ name, file, want string }{
		{"wrong length", "# keys\n" + good + "\n" + short + "\n", ": line 3: the key is 12 bytes, want 16, 24 or 32"},
		{"empty", "\n", ": no key"},
		{"missing", "", ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".key")
			if tt.file != "" {
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr testutil.LockedBuffer
			args := []string{"-l", "127.0.0.1", "-p", freePort(t), "--gossip-addr", "127.0.0.1:0", "--gossip-key-file", path}
			code := run(context.Background(), context.Background(), args, nil, &stdout, &stderr)
			if code != exitFailure || !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "gossip key file") {
				t.Errorf("exit status %d, stderr %q; want %d and %q", code, stderr.String(), exitFailure, tt.want)
			}
			if strings.Contains(stderr.String(), good) || strings.Contains(stderr.String(), short) {
				t.Errorf("stderr %q shows a key", stderr.String())
			}
		})
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// runServing runs the daemon with args, whose memcached address is addr,
// until it serves, then stops it as a signal does and returns what it
// logged.
func runServing(t *testing.T, addr string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.LockedBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, context.Background(), args, nil, &stdout, &stderr) }()
	if err := testutil.WaitAccepting("tcp", addr, 10*time.Second, returned(done)); err != nil {
		t.Fatalf("%q: %v; stderr:\n%s", args, err, stderr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("%q: exit status %d, want 0; stderr:\n%s", args, code, stderr.String())
	}
	return stderr.String()
}

// TestRunWarnsOfUnencryptedGossip checks the warning at start of a node
// that gossips in the clear beyond loopback: logged at the default level,
// naming --gossip-key-file, and only then.
func TestRunWarnsOfUnencryptedGossip(t *testing.T) {
	keepGlobals(t)
	// The default gossip address's port 0: a port of its own for each
	// node, which never competes for 7946 with other tests.
	saved := defaultGossipAddr
	defaultGossipAddr = "0.0.0.0:0"
	defer func() { defaultGossipAddr = saved }()
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const warning = "level=WARN msg=\"gossip is not encrypted and listens on a non-loopback address"
	tests := []struct {
		name    string
		args    []string // after -l 127.0.0.1 -p <port>
		gossip  string   // a prefix of the gossip address logged with -v; "" for no gossip
		warning bool
	}{
		{"make run's default", nil, "gossip_addr=127.0.0.1:", false},
		{"every interface", []string{"--gossip-addr", "0.0.0.0:0"}, "gossip_addr=", true},
		{"every interface, encrypted", []string{"--gossip-addr", ":0", "--gossip-key-file", key}, "gossip_addr=", false},
		{"IPv6 loopback", []string{"--gossip-addr", "[::1]:0"}, "gossip_addr=[::1]:", false},
		{"localhost", []string{"--gossip-addr", "localhost:0"}, "gossip_addr=127.0.0.1:", false},
		{"no cluster", []string{"--gossip-addr", "0.0.0.0:0", "--no-cluster"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			base := []string{"-l", "127.0.0.1", "-p", port}
			addr := net.JoinHostPort("127.0.0.1", port)
			// At the default level: the warning, and nothing else
			// about gossip.
			logged := runServing(t, addr, append(base, tt.args...)...)
			if got := strings.Contains(logged, warning); got != tt.warning {
				t.Errorf("warned %v, want %v; stderr:\n%s", got, tt.warning, logged)
			}
			if tt.warning && !strings.Contains(logged, "--gossip-key-file=gossip.key") {
				t.Errorf("the warning does not say how to add a key:\n%s", logged)
			}
			// With -v: where gossip went, so that no warning means
			// gossip started without one.
			logged = runServing(t, addr, append(append(base, "-v"), tt.args...)...)
			started := strings.Contains(logged, `msg="gossip started"`)
			if started != (tt.gossip != "") || tt.gossip != "" && !strings.Contains(logged, tt.gossip) {
				t.Errorf("gossip started %v, want it at %q; stderr:\n%s", started, tt.gossip, logged)
			}
			if got := strings.Contains(logged, warning); got != tt.warning {
				t.Errorf("with -v: warned %v, want %v; stderr:\n%s", got, tt.warning, logged)
			}
		})
	}
}
