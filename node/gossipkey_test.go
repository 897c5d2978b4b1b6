package node_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/cluster"
)

// gossipKey returns a random AES-256 gossip key.
func gossipKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKeyFile writes keys to path as a gossip key file, the primary first.
func writeKeyFile(t *testing.T, path string, keys ...[]byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# gossip keys, the primary first\n")
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// keyFile returns the path of a new key file holding keys.
func keyFile(t *testing.T, keys ...[]byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "gossip-*.key")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	writeKeyFile(t, f.Name(), keys...)
	return f.Name()
}

// gossipDropped sums the nodes' gossip_dropped stats: the gossip messages
// they dropped as undecodable or not encrypted with one of their keys
// (memberlist's "Decrypt packet failed", "no installed keys could decrypt
// the message", "encryption is configured but remote state is not
// encrypted").
func gossipDropped(nodes []*clustertest.Node) uint64 {
	var n uint64
	for _, nd := range nodes {
		for _, st := range nd.Server.Stats() {
			if st.Name == "gossip_dropped" {
				v, _ := strconv.ParseUint(st.Value, 10, 64)
				n += v
			}
		}
	}
	return n
}

// addKeyed starts a node with FastTiming that joins seeds, encrypting with
// the key file kf (none if empty).
func addKeyed(c *clustertest.Cluster, seeds []*clustertest.Node, kf string) *clustertest.Node {
	cfg := node.Config{Cluster: clustertest.FastTiming}
	for _, s := range seeds {
		cfg.Cluster.Join = append(cfg.Cluster.Join, s.Transport.Addr())
	}
	cfg.Cluster.GossipKeyFile = kf
	return c.AddConfig("", cfg)
}

// holdViews checks, every few milliseconds for d, that each node in nodes
// keeps the view want and that each lone node sees itself alone. It fails
// the test at the first change.
func holdViews(t *testing.T, d time.Duration, want clustertest.View, nodes []*clustertest.Node, lone ...*clustertest.Node) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, n := range nodes {
			if got := clustertest.ViewOf(n); got.Version != want.Version || !slices.Equal(got.Entries, want.Entries) {
				t.Fatalf("%s's view changed: %v, want %v to hold", n.Name, got, want)
			}
		}
		for _, n := range lone {
			if got := clustertest.ViewOf(n); !slices.Equal(got.Entries, []string{n.Entry}) {
				t.Fatalf("%s, which should be refused, sees %v", n.Name, got)
			}
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusalWindow is how long a refused node is watched: ten probe intervals
// and forty gossip intervals of FastTiming, and several rejoin attempts.
const refusalWindow = 2 * time.Second

// TestGossipWrongKeyCannotJoin starts three nodes with one key, then a node
// with another key and a node with none: neither joins, and the three keep
// their view, while they drop what the intruders send for its encryption.
func TestGossipWrongKeyCannotJoin(t *testing.T) {
	k, other := gossipKey(t), gossipKey(t)
	kf := keyFile(t, k)

	c := clustertest.New(t)
	var good []*clustertest.Node
	for range 3 {
		good = append(good, addKeyed(c, good, kf))
	}
	before := clustertest.WaitAgree(t, 10*time.Second, good...)
	if n := gossipDropped(good); n != 0 {
		t.Fatalf("the three nodes with one key dropped %d messages for their encryption", n)
	}

	for _, tt := range []struct {
		name string
		kf   string
	}{
		{"another key", keyFile(t, other)},
		{"no key", ""},
		{"the key as a secondary only", keyFile(t, other, k)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := gossipDropped(good)
			intruder := addKeyed(c, good, tt.kf)
			holdViews(t, refusalWindow, before, good, intruder)
			c.Kill(intruder)
			if gossipDropped(good) == start {
				t.Errorf("the cluster dropped nothing the intruder sent for its encryption: was it ever asked?")
			}
		})
	}

	// And the cluster still takes a node with its key.
	joiner := addKeyed(c, good, kf)
	after := clustertest.WaitAgree(t, 10*time.Second, append(good, joiner)...)
	if after.Version <= before.Version {
		t.Errorf("version went from %d to %d with a new member, want it to rise", before.Version, after.Version)
	}
}

// TestGossipKeyRotation rotates a live cluster of three from key K to K2 in
// the documented three steps, reloading one node at a time: install K2,
// use K2, remove K. Throughout, every node keeps the same view, version
// included (no node is ever suspected long enough to be declared dead),
// and no node drops a message for its encryption. Then a node with only K2
// joins and one with only K is refused.
func TestGossipKeyRotation(t *testing.T) {
	k, k2 := gossipKey(t), gossipKey(t)

	c := clustertest.New(t)
	var good []*clustertest.Node
	var files []string
	for range 3 {
		f := keyFile(t, k)
		files = append(files, f)
		good = append(good, addKeyed(c, good, f))
	}
	before := clustertest.WaitAgree(t, 10*time.Second, good...)

	// A bad file on reload is an error and changes nothing.
	if err := os.WriteFile(files[0], []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := good[0].Server.Reload(); err == nil || !strings.Contains(err.Error(), "line 1: not base64") {
		t.Errorf("Reload of a bad file: %v, want the line's error", err)
	}
	writeKeyFile(t, files[0], k)

	// Each mixed state (some nodes reloaded, some not) holds for a few
	// probe intervals: the step's whole point is that any two nodes
	// understand each other in it.
	const hold = 600 * time.Millisecond
	start := time.Now()
	for _, step := range []struct {
		name string
		keys [][]byte
	}{
		{"install K2", [][]byte{k, k2}},
		{"use K2", [][]byte{k2, k}},
		{"remove K", [][]byte{k2}},
	} {
		for i, n := range good {
			writeKeyFile(t, files[i], step.keys...)
			if err := n.Server.Reload(); err != nil {
				t.Fatalf("%s: %s: Reload: %v", step.name, n.Name, err)
			}
			holdViews(t, hold, before, good)
			if d := gossipDropped(good); d != 0 {
				t.Fatalf("%s, %s reloaded: %d messages dropped for their encryption", step.name, n.Name, d)
			}
		}
	}
	t.Logf("rotated in %v with the view held at %v", time.Since(start).Round(time.Millisecond), before)

	// Only K2 is in use now: a node with K2 joins, one with K does not.
	joiner := addKeyed(c, good, keyFile(t, k2))
	good = append(good, joiner)
	after := clustertest.WaitAgree(t, 10*time.Second, good...)
	if d := gossipDropped(good); d != 0 {
		t.Errorf("%d messages dropped for their encryption as a node with K2 joined", d)
	}
	old := addKeyed(c, good[:3], keyFile(t, k))
	holdViews(t, refusalWindow, after, good, old)
	if gossipDropped(good) == 0 {
		t.Errorf("the cluster dropped nothing the node with the old key sent")
	}
}

// TestGossipKeyFileErrors checks that StartCluster refuses a key file it
// cannot use, naming the file and the line but no key.
func TestGossipKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	short := base64.StdEncoding.EncodeToString(make([]byte, 10))
	tests := []struct {
		name, file, want string
	}{
		{"empty", "", ": no key"},
		{"bad base64", "# key\n\n!!!!\n", ": line 3: not base64"},
		{"wrong length", short + "\n", ": line 1: the key is 10 bytes, want 16, 24 or 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".key")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			err := startWithKeyFile(t, path)
			if err == nil || !strings.Contains(err.Error(), "gossip key file "+path+tt.want) {
				t.Errorf("StartCluster: %v, want an error with %q", err, path+tt.want)
			}
			if err != nil && strings.Contains(err.Error(), short) {
				t.Errorf("the error %q shows the key", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		err := startWithKeyFile(t, filepath.Join(dir, "missing.key"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("StartCluster: %v, want os.ErrNotExist", err)
		}
	})
}

// startWithKeyFile calls StartCluster on a node that gossips on an
// in-memory network with the key file path, and returns its error.
func startWithKeyFile(t *testing.T, path string) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mem cluster.Network
	tr := mem.NewTransport()
	defer tr.Shutdown()
	s := node.New(node.Config{Logger: slog.New(slog.DiscardHandler),
		Cluster: node.ClusterConfig{Transport: tr, GossipKeyFile: path}})
	err = s.StartCluster(context.Background(), []net.Listener{l})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}
	return err
}
