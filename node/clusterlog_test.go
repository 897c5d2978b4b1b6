package node_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node"
)

// logFormats are the daemon's --log-format handlers, at its default level.
var logFormats = []struct {
	name       string
	newHandler func(io.Writer) slog.Handler
}{
	{"text", func(w io.Writer) slog.Handler {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	}},
	{"json", func(w io.Writer) slog.Handler {
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})
	}},
}

// logRecords parses a log, text or JSON, into one map of attributes per
// line. The text parser knows what slog's text handler writes: key=value
// pairs, values quoted when they hold spaces.
func logRecords(t *testing.T, format, log string) []map[string]string {
	t.Helper()
	var recs []map[string]string
	for line := range strings.Lines(log) {
		rec := map[string]string{}
		if format == "json" {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(line))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				t.Fatalf("a log line that is not JSON: %q: %v", line, err)
			}
			for k, v := range m {
				rec[k] = fmt.Sprint(v)
			}
		} else {
			rest := strings.TrimSpace(line)
			for rest != "" {
				k, v, ok := strings.Cut(rest, "=")
				if !ok {
					t.Fatalf("a text log line slog did not write: %q", line)
				}
				if strings.HasPrefix(v, `"`) {
					q, err := strconv.QuotedPrefix(v)
					if err != nil {
						t.Fatalf("a bad quoted value in %q: %v", line, err)
					}
					rest = strings.TrimSpace(v[len(q):])
					v, _ = strconv.Unquote(q)
				} else {
					v, rest, _ = strings.Cut(v, " ")
				}
				rec[k] = v
			}
		}
		recs = append(recs, rec)
	}
	return recs
}

// findRecords returns the records of log with the message msg and every
// attribute of attrs.
func findRecords(t *testing.T, format, log, msg string, attrs map[string]string) []map[string]string {
	t.Helper()
	var found []map[string]string
next:
	for _, r := range logRecords(t, format, log) {
		if r["msg"] != msg {
			continue
		}
		for k, v := range attrs {
			if r[k] != v {
				continue next
			}
		}
		found = append(found, r)
	}
	return found
}

// waitRecord waits until log holds a record with msg and attrs, and
// returns it.
func waitRecord(t *testing.T, format string, log *testutil.LockedBuffer, msg string, attrs map[string]string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if rs := findRecords(t, format, log.String(), msg, attrs); len(rs) > 0 {
			return rs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q record with %v within 15s; the log:\n%s", msg, attrs, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterLogsMembership checks that a node logs, at the default level
// and in text and JSON, every member that joins, leaves or fails, by name
// and address, with the version of the view it leads to.
func TestClusterLogsMembership(t *testing.T) {
	for _, f := range logFormats {
		t.Run(f.name, func(t *testing.T) {
			var logs testutil.LockedBuffer
			c := clustertest.New(t)
			n1 := c.AddConfig("n1", node.Config{Cluster: clustertest.FastTiming, Logger: slog.New(f.newHandler(&logs))})
			n2 := c.Add("n2")
			n3 := c.Add("n3")
			all := clustertest.WaitAgree(t, 10*time.Second, n1, n2, n3)
			// The version a record gives is n1's at the change; the
			// cluster's may rise again while the members' epochs settle.
			version := func(r map[string]string) uint64 {
				t.Helper()
				v, err := strconv.ParseUint(r["version"], 10, 64)
				if err != nil {
					t.Errorf("record %v: no version", r)
				}
				return v
			}
			var joined uint64
			for _, n := range []*clustertest.Node{n2, n3} {
				r := waitRecord(t, f.name, &logs, "member joined", map[string]string{"name": n.Name, "addr": n.Addr, "level": "INFO"})
				if r["gossip_addr"] != n.Transport.Addr() || r["entry"] != n.Entry {
					t.Errorf("%s joined: %v; want gossip_addr %s and entry %s", n.Name, r, n.Transport.Addr(), n.Entry)
				}
				if v := version(r); v == 0 || v > all.Version {
					t.Errorf("%s joined: %v; want a version from 1 to the cluster's %d", n.Name, r, all.Version)
				}
				joined = max(joined, version(r))
			}

			c.Stop(n2)
			after := clustertest.WaitAgree(t, 5*time.Second, n1, n3)
			r := waitRecord(t, f.name, &logs, "member left", map[string]string{"name": n2.Name, "addr": n2.Addr, "level": "INFO"})
			if v := version(r); v <= joined || v > after.Version || r["members"] != "2" {
				t.Errorf("the leave: %v; want a version above %d, up to %d, and 2 members", r, joined, after.Version)
			}
			left := version(r)

			c.Kill(n3)
			r = waitRecord(t, f.name, &logs, "member failed", map[string]string{"name": n3.Name, "addr": n3.Addr, "level": "WARN"})
			if v := version(r); v < left {
				t.Errorf("the failure: %v; want a version of at least the leave's %d", r, left)
			}
			if rs := findRecords(t, f.name, logs.String(), "member failed", map[string]string{"name": n2.Name}); len(rs) > 0 {
				t.Errorf("a graceful leave logged as a failure: %v", rs)
			}
		})
	}
}

// TestClusterWarnsOfSeeds checks that a node whose seeds do not resolve or
// answer warns at the default level, in text and JSON, naming them, and
// does not repeat the warning at every retry.
func TestClusterWarnsOfSeeds(t *testing.T) {
	for _, f := range logFormats {
		t.Run(f.name, func(t *testing.T) {
			var logs testutil.LockedBuffer
			c := clustertest.New(t)
			cfg := node.Config{Cluster: clustertest.FastTiming, Logger: slog.New(f.newHandler(&logs))}
			// Nothing listens at the first on the in-memory network (its
			// nodes take ports from 1 up); the second is a name that
			// never resolves (RFC 2606).
			cfg.Cluster.Join = []string{"127.0.0.1:999", "seed.invalid:7946"}
			c.AddConfig("n1", cfg)
			r := waitRecord(t, f.name, &logs, "cannot join the seeds; retrying", map[string]string{"level": "WARN"})
			if !strings.Contains(r["unresolved"], "seed.invalid:7946") || !strings.Contains(r["unreachable"], "127.0.0.1:999") {
				t.Errorf("the warning %v: want seed.invalid:7946 unresolved and 127.0.0.1:999 unreachable", r)
			}
			// The node retries every 300 ms; the next warning is due
			// 10 s after the first.
			time.Sleep(1500 * time.Millisecond)
			if rs := findRecords(t, f.name, logs.String(), "cannot join the seeds; retrying", nil); len(rs) != 1 {
				t.Errorf("%d warnings within 1.5 s of retries every 300 ms, want 1:\n%s", len(rs), logs.String())
			}
		})
	}
}

// TestGossipJunkIsCountedAndWarned sends junk datagrams to a node's
// gossip port, in the clear and to a node whose gossip is encrypted: the
// node counts every one in stats (gossip_dropped) and warns once, at the
// default level, not once per datagram.
func TestGossipJunkIsCountedAndWarned(t *testing.T) {
	key := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, keyFile string }{{"clear", ""}, {"encrypted", key}} {
		t.Run(tt.name, func(t *testing.T) {
			var logs testutil.LockedBuffer
			cfg := node.Config{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
			cfg.Cluster.GossipAddr = "127.0.0.1:0"
			cfg.Cluster.GossipKeyFile = tt.keyFile
			addr := serveSingle(t, cfg, true)
			if got := statValue(t, addr, "gossip_dropped"); got != "" {
				t.Errorf("a node alone, before any drop: gossip_dropped = %q, want it unlisted", got)
			}
			gossip := waitRecord(t, "json", &logs, "gossip started", nil)["gossip_addr"]
			uc, err := net.Dial("udp", gossip)
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			const junk = 20
			for i := range junk {
				if _, err := fmt.Fprintf(uc, "junk datagram %d", i); err != nil {
					t.Fatal(err)
				}
			}
			testutil.WaitFor(t, 5*time.Second, "gossip_dropped = 20", func() bool {
				return statValue(t, addr, "gossip_dropped") == strconv.Itoa(junk)
			})
			warnings := findRecords(t, "json", logs.String(), "gossip message dropped: undecodable, or not encrypted with a key of this node's", map[string]string{"level": "WARN"})
			if len(warnings) != 1 {
				t.Errorf("%d warnings for %d junk datagrams, want 1:\n%s", len(warnings), junk, logs.String())
			} else if !strings.Contains(warnings[0]["reason"], "127.0.0.1:") {
				t.Errorf("the warning %v does not say where the junk came from", warnings[0])
			}
		})
	}
}

// statValue returns the value of the stat name in the node's "stats", ""
// if it is not listed.
func statValue(t *testing.T, addr, name string) string {
	t.Helper()
	reply, err := clustertest.Query(addr, "stats")
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("stats: %v", err)
	}
	for line := range strings.Lines(string(reply)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "STAT "+name+" "); ok {
			return v
		}
	}
	return ""
}
