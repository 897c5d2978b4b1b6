package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/servertest"
)

// TestBuiltinMetrics checks the node's own Prometheus endpoint
// (--metrics-addr) against memcached_exporter watching the same node: every
// series the exporter makes from the node's stats is on the endpoint too,
// under the same name and labels, with the same type and, for the counts
// the exporter's own scrapes do not move, the same value. So dashboards and
// alerts written for the exporter work on the endpoint unchanged.
func TestBuiltinMetrics(t *testing.T) {
	bin := exporterBinary(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", servertest.FreePort(t))
	node := servertest.StartMemcluster(t, "-m", "8", "--metrics-addr", metricsAddr)
	exporterWorkload(t, node)
	exp := startExporter(t, bin, node)
	builtin := &exporter{url: "http://" + metricsAddr + "/metrics"}

	want := exp.scrape(t)
	got := builtin.scrape(t)
	if got.samples["memcached_up"] != "1" {
		t.Errorf("memcached_up %q, want 1", got.samples["memcached_up"])
	}
	compared, missing := 0, 0
	for sample, v := range want.samples {
		if !strings.HasPrefix(sample, "memcached_") || strings.HasPrefix(sample, "memcached_exporter_") {
			continue
		}
		gv, ok := got.samples[sample]
		if !ok {
			t.Errorf("the exporter's %s is not on the endpoint", sample)
			missing++
			continue
		}
		if stable(sample) && gv != v {
			t.Errorf("%s: the endpoint says %s, the exporter %s", sample, gv, v)
		}
		compared++
	}
	for f, typ := range want.types {
		if strings.HasPrefix(f, "memcached_") && !strings.HasPrefix(f, "memcached_exporter_") && got.types[f] != typ {
			t.Errorf("%s: type %q on the endpoint, %q from the exporter", f, got.types[f], typ)
		}
	}
	t.Logf("%d of the exporter's series found on the endpoint, %d missing", compared, missing)

	// What only the node can tell: latency by family and protocol, and
	// its build.
	for _, s := range []string{
		`memcluster_request_duration_seconds_count{family="get",protocol="text"}`,
		`memcluster_request_duration_seconds_count{family="set",protocol="text"}`,
	} {
		if v := got.samples[s]; v == "" || v == "0" {
			t.Errorf("%s = %q, want the requests of the workload", s, v)
		}
	}
	if !hasPrefix(got.samples, "memcluster_build_info{") {
		t.Errorf("no memcluster_build_info")
	}
	for path, want := range map[string]string{"/livez": "ok\n", "/readyz": "ok\n"} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("%s: %s %q, want 200 %q", path, resp.Status, body, want)
		}
	}
}

// stable reports whether the exporter's own scrapes leave sample's value
// alone: not the time, CPU, bytes or connections, which they move.
func stable(sample string) bool {
	for _, moving := range []string{"time_seconds", "uptime", "cpu_seconds", "bytes_total", "connections", "age_seconds", "lru_crawler"} {
		if strings.Contains(sample, moving) {
			return false
		}
	}
	return true
}

func hasPrefix(samples map[string]string, prefix string) bool {
	for s := range samples {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
