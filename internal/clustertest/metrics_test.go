package clustertest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node"
)

// prometheusPath is Debian's Prometheus server, which .ci/run installs.
const prometheusPath = "/usr/bin/prometheus"

// metricsAddr returns a free loopback address for --metrics-addr.
func metricsAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(servertest.FreePort(t))
}

// httpGet returns the status and body of a GET of u.
func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// promResult is one series of a Prometheus instant query's answer.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs query on the Prometheus at base and returns its series.
func promQuery(t *testing.T, base, query string) []promResult {
	t.Helper()
	code, body := httpGet(t, base+"/api/v1/query?query="+url.QueryEscape(query))
	if code != http.StatusOK {
		return nil
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		t.Fatalf("query %q: %v: %s", query, err, body)
	}
	return r.Data.Result
}

// TestPrometheusScrapesCluster runs Debian's Prometheus server against a
// three-node cluster's --metrics-addr endpoints and asks it, over its HTTP
// API, for what a dashboard shows: memcached_up of every node, the request
// latency histograms, and every node's view of the cluster.
func TestPrometheusScrapesCluster(t *testing.T) {
	if _, err := os.Stat(prometheusPath); err != nil {
		t.Fatalf("Prometheus is not installed (%v): install it with `apt-get install prometheus`", err)
	}
	var ps []*proc
	var seeds, targets []string
	for _, name := range []string{"a", "b", "c"} {
		m := metricsAddr(t)
		p := startProc(t, name, slices.Clone(seeds), "--metrics-addr", m)
		ps = append(ps, p)
		seeds = append(seeds, p.gossip)
		targets = append(targets, strconv.Quote(m))
	}
	clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(ps...), entries(ps...))
	for _, p := range ps {
		mc := memcache.New(p.srv.Addr)
		for i := range 50 {
			k := fmt.Sprintf("%s-%d", p.name, i)
			if err := mc.Set(&memcache.Item{Key: k, Value: []byte(k)}); err != nil {
				t.Fatal(err)
			}
			if _, err := mc.Get(k); err != nil {
				t.Fatal(err)
			}
		}
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	yml := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: memcluster\n    static_configs:\n      - targets: [%s]\n", strings.Join(targets, ", "))
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	web := "127.0.0.1:" + strconv.Itoa(servertest.FreePort(t))
	out := &testutil.LockedBuffer{}
	cmd := exec.Command(prometheusPath, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", out.String())
		}
	})
	base := "http://" + web
	var up []promResult
	deadline := time.Now().Add(60 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if up = promQuery(t, base, "memcached_up == 1"); len(up) == 3 {
			break
		}
	}
	if len(up) != 3 {
		t.Fatalf("memcached_up == 1 for %d targets, want 3: %v", len(up), up)
	}
	queries := []struct {
		query string
		want  func([]promResult) bool
	}{
		{"memcluster_cluster_members", func(r []promResult) bool { return len(r) == 3 && all(r, "3") }},
		{`sum by (instance) (memcluster_request_duration_seconds_count{family="get",protocol="text"})`, func(r []promResult) bool { return len(r) == 3 && all(r, "50") }},
		{`histogram_quantile(0.99, sum by (le) (memcluster_request_duration_seconds_bucket{family="set"}))`, func(r []promResult) bool { return len(r) == 1 }},
		{"sum(memcluster_ring_share)", func(r []promResult) bool {
			if len(r) != 1 {
				return false
			}
			v, err := strconv.ParseFloat(r[0].Value[1].(string), 64)
			return err == nil && v > 0.999 && v < 1.001
		}},
		{"sum(memcached_current_items)", func(r []promResult) bool { return len(r) == 1 && r[0].Value[1] == "150" }},
	}
	for _, q := range queries {
		r := promQuery(t, base, q.query)
		t.Logf("%s → %s", q.query, render(r))
		if !q.want(r) {
			t.Errorf("%s: %s", q.query, render(r))
		}
	}
}

// all reports whether every series of r has the value v.
func all(r []promResult, v string) bool {
	for _, s := range r {
		if s.Value[1] != v {
			return false
		}
	}
	return true
}

// render writes r as instance=value pairs.
func render(r []promResult) string {
	var parts []string
	for _, s := range r {
		parts = append(parts, fmt.Sprintf("%s=%v", s.Metric["instance"], s.Value[1]))
	}
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

// TestHealthThroughLifecycle follows /livez and /readyz through a node's
// life: not ready while its seed cannot be joined, ready once it has
// joined, not ready while it drains after SIGTERM; live throughout.
func TestHealthThroughLifecycle(t *testing.T) {
	seedGossip := "127.0.0.1:" + strconv.Itoa(servertest.FreePort(t))
	m := metricsAddr(t)
	n := startProc(t, "n", []string{seedGossip}, "--metrics-addr", m, "--rejoin-interval", "200ms", "--drain", "3s")
	ready := func() (int, string) { return httpGet(t, "http://"+m+"/readyz") }
	live := func() int { code, _ := httpGet(t, "http://"+m+"/livez"); return code }

	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "not joined") {
		t.Errorf("before its seed is up: /readyz %d %q, want 503 not joined", code, body)
	}
	if code := live(); code != http.StatusOK {
		t.Errorf("before its seed is up: /livez %d, want 200", code)
	}
	seed := &proc{name: "seed", gossip: seedGossip, srv: servertest.StartMemcluster(t, "--name", "seed", "--gossip-addr", seedGossip)}
	clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(n, seed), entries(n, seed))
	deadline := time.Now().Add(10 * time.Second)
	code, body := ready()
	for ; code != http.StatusOK && time.Now().Before(deadline); code, body = ready() {
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusOK || body != "ok\n" {
		t.Fatalf("after joining: /readyz %d %q, want 200 ok", code, body)
	}
	n.srv.Signal(t, syscall.SIGTERM)
	deadline = time.Now().Add(2 * time.Second)
	for code, body = ready(); !strings.Contains(body, "draining") && time.Now().Before(deadline); code, body = ready() {
		time.Sleep(50 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("while draining: /readyz %d %q, want 503 draining", code, body)
	}
	if code := live(); code != http.StatusOK {
		t.Errorf("while draining: /livez %d, want 200", code)
	}
}

// TestReadyWithDeadSeed: a node whose seeds name a member that is up and
// an address where nothing answers (a dead pod's address lingering in a
// headless Service's DNS) is ready once it has joined the member.
func TestReadyWithDeadSeed(t *testing.T) {
	c := clustertest.New(t)
	a := c.Add("a")
	cfg := node.Config{Cluster: clustertest.FastTiming, MetricsAddr: "127.0.0.1:0"}
	cfg.Cluster.Join = []string{a.Transport.Addr(), "127.0.0.1:65000"}
	b := c.AddConfig("b", cfg)
	clustertest.WaitAgree(t, agreeTimeout, a, b)
	u := "http://" + b.Server.MetricsAddr().String() + "/readyz"
	var code int
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = httpGet(t, u); code == http.StatusOK {
			break
		}
	}
	if code != http.StatusOK {
		t.Errorf("/readyz with one seed dead and one joined: %d %q, want 200", code, body)
	}
}
