package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/testutil"
)

// Prometheus's memcached_exporter reads stats, stats settings, stats items
// and stats slabs and reports the server down (memcached_up 0) when a name
// it parses is missing. TestMemcachedExporter scrapes memcached and
// memcluster through it after the same workload.

// exporterVersion is the memcached_exporter the test runs.
const exporterVersion = "v0.15.0"

// exporterBinary finds memcached_exporter on $PATH or in $(go env
// GOPATH)/bin, failing the test with how to install it.
func exporterBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("memcached_exporter"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(dir, "bin", "memcached_exporter")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatalf("memcached_exporter is not installed (neither on $PATH nor in $(go env GOPATH)/bin); install it with "+
		"`go install github.com/prometheus/memcached_exporter/cmd/memcached_exporter@%s`", exporterVersion)
	return ""
}

// exporter is a memcached_exporter process watching one server.
type exporter struct {
	url string
	out *testutil.LockedBuffer
}

// startExporter runs memcached_exporter for srv on a free port, waits until
// it serves, and stops it when the test ends.
func startExporter(t *testing.T, bin string, srv *servertest.Server) *exporter {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", servertest.FreePort(t))
	e := &exporter{url: "http://" + listen + "/metrics", out: &testutil.LockedBuffer{}}
	cmd := exec.Command(bin, "--memcached.address="+srv.Addr, "--web.listen-address="+listen)
	cmd.Stdout, cmd.Stderr = e.out, e.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting memcached_exporter: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("memcached_exporter for %s:\n%s", srv.Name, e.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/") // the landing page: no scrape
		if err == nil {
			resp.Body.Close()
			return e
		}
		select {
		case <-done:
			t.Fatalf("memcached_exporter exited: %s", e.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("memcached_exporter did not serve on %s within 15s: %v", listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape is one scrape's metric families and samples.
type scrape struct {
	families []string          // from the # TYPE lines, in order
	types    map[string]string // family → its type
	samples  map[string]string // sample (name and labels) → value
}

// scrape fetches the metrics, which makes the exporter query the server.
func (e *exporter) scrape(t *testing.T) scrape {
	t.Helper()
	resp, err := http.Get(e.url)
	if err != nil {
		t.Fatalf("scraping %s: %v", e.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s %v", e.url, resp.Status, err)
	}
	s := scrape{types: map[string]string{}, samples: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			s.families = append(s.families, name)
			s.types[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			s.samples[line[:i]] = line[i+1:]
		}
	}
	return s
}

// exporterWorkload is the same for both servers: sets in several classes,
// gets that hit and miss, deletes, incr and decr, cas, touch, then enough
// data to evict in a cache of -m 8.
func exporterWorkload(t *testing.T, srv *servertest.Server) {
	t.Helper()
	c := newStatsClient(t, srv, nil)
	c.do("set small 0 0 1\r\n1\r\n", 1)
	c.do(fmt.Sprintf("set mid 0 0 500\r\n%s\r\n", strings.Repeat("m", 500)), 1)
	c.do(fmt.Sprintf("set large 3 0 5000\r\n%s\r\n", strings.Repeat("l", 5000)), 1)
	c.do("get small mid large missing\r\n", 7)
	gets := c.do("gets small\r\n", 3)
	cas := strings.Fields(strings.SplitN(gets, "\r\n", 2)[0])[4]
	c.do("cas small 0 0 1 "+cas+"\r\n5\r\n", 1)
	c.do("cas mid 0 0 1 1\r\n5\r\n", 1)
	c.do("incr small 10\r\ndecr small 3\r\nincr missing 1\r\n", 3)
	c.do("touch mid 100\r\ntouch missing 100\r\n", 2)
	c.do("delete large\r\ndelete missing\r\n", 2)
	var fill bytes.Buffer
	value := strings.Repeat("f", 1000)
	for i := range 12000 { // about 12 MB: evicts in 8
		fmt.Fprintf(&fill, "set fill%d 0 0 1000 noreply\r\n%s\r\n", i, value)
	}
	if got := c.do(fill.String()+"version\r\n", 1); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("%s: after the fill: got %q", srv.Name, got)
	}
	_, stats := c.stats("stats\r\n")
	if n, _ := strconv.Atoi(stats["evictions"]); n == 0 {
		t.Fatalf("%s: the fill evicted nothing", srv.Name)
	}
}

func TestMemcachedExporter(t *testing.T) {
	bin := exporterBinary(t)
	flags := []string{"-m", "8"}
	ref := servertest.StartMemcached(t, flags...)
	node := servertest.StartMemcluster(t, flags...)
	exporterWorkload(t, ref)
	exporterWorkload(t, node)
	refExp, nodeExp := startExporter(t, bin, ref), startExporter(t, bin, node)

	// Two scrapes each: the exporter queries the server on every scrape.
	var refScrape, nodeScrape scrape
	for range 2 {
		refScrape, nodeScrape = refExp.scrape(t), nodeExp.scrape(t)
	}
	if up := refScrape.samples["memcached_up"]; up != "1" {
		t.Fatalf("memcached: memcached_up %q, want 1", up)
	}
	if up := nodeScrape.samples["memcached_up"]; up != "1" {
		t.Errorf("memcluster: memcached_up %q, want 1", up)
	}
	for _, line := range strings.Split(nodeExp.out.String(), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			t.Errorf("memcached_exporter logged for memcluster: %s", line)
		}
	}
	var missing []string
	for _, f := range refScrape.families {
		if !slices.Contains(nodeScrape.families, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		t.Errorf("metric families in memcached's scrape but not memcluster's: %v", missing)
	}
	// The families carry the node's numbers: its evictions, and the
	// command counters of its classes.
	if v := nodeScrape.samples["memcached_items_evicted_total"]; v == "" || v == "0" {
		t.Errorf("memcluster: memcached_items_evicted_total %q, want the evictions", v)
	}
	t.Logf("%d metric families from memcached, %d from memcluster", len(refScrape.families), len(nodeScrape.families))
}
