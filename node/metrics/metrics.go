// Package metrics is a node's Prometheus endpoint and health checks, served
// on an HTTP listener of their own (--metrics-addr): /metrics, /livez and
// /readyz. The counters and gauges of `stats` are exported under the names
// Prometheus's memcached_exporter gives them, so that its dashboards and
// alerts work unchanged without an exporter beside each node; to them it
// adds what no exporter can see: request latency by command family and
// protocol (Latency, observed on the request path), the node's view of the
// cluster, and build information. Come here to change what a node
// exports.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/memcluster/memcluster/node/stats"
)

// Source is what the metrics are read from, at each scrape: the node's
// statistics, as `stats`, `stats settings`, `stats items` and `stats
// slabs` list them. Its methods are called concurrently with the node's
// work.
type Source interface {
	Stats() []stats.Stat
	Settings() []stats.Stat
	Items() []stats.Stat
	Slabs() []stats.Stat
}

// ClusterState is a node's view of its cluster at a scrape.
type ClusterState struct {
	// Enabled is false for a node without a cluster: no cluster metrics.
	Enabled bool
	// Members is how many members the view lists; Version is its version.
	Members int
	Version uint64
	// Share is the fraction of the key space the node owns in its view,
	// 0 when it is not a member (draining).
	Share float64
	// Draining is set while the node drains: it has left the cluster and
	// serves on only while its clients move away.
	Draining bool
}

// Config configures a Server. Source is required.
type Config struct {
	Source Source
	// Cluster, if not nil, returns the node's view of the cluster.
	Cluster func() ClusterState
	// Ready, if not nil, returns why the node is not ready to be sent
	// traffic (not listening yet, not joined, draining), or nil when it
	// is: /readyz answers 503 with the reason, or 200.
	Ready func() error
	// Latency, if not nil, is exported.
	Latency *Latency
	// Version is the node's version, for memcluster_build_info.
	Version string
	// Logger logs the listener's errors. If nil, slog.Default().
	Logger *slog.Logger
}

// Server serves the metrics and health checks. Create it with New.
type Server struct {
	cfg  Config
	reg  *prometheus.Registry
	http *http.Server
}

// New returns a server of cfg's metrics, the Go runtime's and the
// process's.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{src: cfg.Source, cluster: cfg.Cluster},
		buildInfo(cfg.Version),
	)
	if cfg.Latency != nil {
		reg.MustRegister(cfg.Latency.vec)
	}
	s := &Server{cfg: cfg, reg: reg}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve serves l until Shutdown, then returns http.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error { return s.http.Serve(l) }

// Shutdown stops the server, waiting for requests under way until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// readyz answers 200 "ok" when the node is ready, else 503 and why.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// buildInfo is memcluster_build_info: 1, labelled with the version, the
// commit and the Go version the binary was built from.
func buildInfo(version string) prometheus.Collector {
	revision, goVersion := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "memcluster_build_info",
		Help:        "The memcluster build: its version, commit and Go version as labels; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	return g
}

// ErrNotReady is wrapped by Ready functions' errors, for callers that
// test for it.
var ErrNotReady = errors.New("not ready")

// statsCollector exports the node's statistics at each scrape.
type statsCollector struct {
	src     Source
	cluster func() ClusterState
}

// Describe sends nothing: the collector is unchecked, as the names it
// exports depend on the node's statistics (the classes in use).
func (*statsCollector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the statistics and sends them as metrics.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	general := toMap(c.src.Stats())
	settings := toMap(c.src.Settings())
	e := emitter{ch: ch}
	e.general(general)
	e.gauge("memcached_max_connections", "Maximum number of clients allowed.", settings, "maxconns")
	if settings["lru_crawler"] == "yes" {
		e.settings(settings)
	}
	e.items(c.src.Items())
	e.slabs(c.src.Slabs())
	e.memcluster(general)
	if c.cluster != nil {
		if cs := c.cluster(); cs.Enabled {
			e.constant("memcluster_cluster_members", "Members in the node's view of the cluster.", prometheus.GaugeValue, float64(cs.Members))
			e.constant("memcluster_cluster_version", "Version of the node's view of the cluster.", prometheus.GaugeValue, float64(cs.Version))
			e.constant("memcluster_ring_share", "Fraction of the key space the node owns in its view of the cluster.", prometheus.GaugeValue, cs.Share)
			draining := 0.0
			if cs.Draining {
				draining = 1
			}
			e.constant("memcluster_draining", "Whether the node has left the cluster and serves on only while its clients move away.", prometheus.GaugeValue, draining)
		}
	}
	// The node answered: it is up, as the exporter says of a memcached it
	// could read.
	e.constant("memcached_up", "Could the memcached server be reached.", prometheus.GaugeValue, 1)
}

func toMap(list []stats.Stat) map[string]string {
	m := make(map[string]string, len(list))
	for _, s := range list {
		m[s.Name] = s.Value
	}
	return m
}

// emitter sends metrics made from statistics' values; a statistic that is
// missing, or not a number, is left out.
type emitter struct {
	ch chan<- prometheus.Metric
}

func (e emitter) constant(name, help string, t prometheus.ValueType, v float64) {
	e.constantL(name, help, t, v, nil, nil)
}

func (e emitter) constantL(name, help string, t prometheus.ValueType, v float64, labelNames, labelValues []string) {
	e.ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, labelNames, nil), t, v, labelValues...)
}

// value parses the statistic key of m: a number, "yes"/"no", or a
// seconds.microseconds time.
func value(m map[string]string, key string) (float64, bool) {
	s, ok := m[key]
	if !ok {
		return 0, false
	}
	switch s {
	case "yes":
		return 1, true
	case "no":
		return 0, true
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

func (e emitter) counter(name, help string, m map[string]string, key string) {
	if v, ok := value(m, key); ok {
		e.constant(name, help, prometheus.CounterValue, v)
	}
}

func (e emitter) gauge(name, help string, m map[string]string, key string) {
	if v, ok := value(m, key); ok {
		e.constant(name, help, prometheus.GaugeValue, v)
	}
}

// general exports the general statistics.
func (e emitter) general(s map[string]string) {
	if v, ok := s["version"]; ok {
		e.constantL("memcached_version", "The version of this memcached server.", prometheus.GaugeValue, 1, []string{"version"}, []string{v})
	}
	const cmdHelp = "Total number of all requests broken down by command (get, set, etc.) and status."
	cmd := func(command, status, key string) {
		if v, ok := value(s, key); ok {
			e.constantL("memcached_commands_total", cmdHelp, prometheus.CounterValue, v, []string{"command", "status"}, []string{command, status})
		}
	}
	for _, op := range []string{"get", "delete", "incr", "decr", "cas", "touch"} {
		cmd(op, "hit", op+"_hits")
		cmd(op, "miss", op+"_misses")
	}
	cmd("cas", "badval", "cas_badval")
	cmd("flush", "hit", "cmd_flush")
	// cmd_set counts the compare-and-swaps too; the exporter's "set"
	// leaves them out.
	if set, ok := value(s, "cmd_set"); ok {
		var cas float64
		for _, k := range []string{"cas_misses", "cas_hits", "cas_badval"} {
			v, _ := value(s, k)
			cas += v
		}
		e.constantL("memcached_commands_total", cmdHelp, prometheus.CounterValue, set-cas, []string{"command", "status"}, []string{"set", "hit"})
	}
	for _, m := range []struct {
		name, help, key string
		counter         bool
	}{
		{"memcached_uptime_seconds", "Number of seconds since the server started.", "uptime", true},
		{"memcached_time_seconds", "current UNIX time according to the server.", "time", false},
		{"memcached_process_user_cpu_seconds_total", "Accumulated user time for this process.", "rusage_user", true},
		{"memcached_process_system_cpu_seconds_total", "Accumulated system time for this process.", "rusage_system", true},
		{"memcached_current_bytes", "Current number of bytes used to store items.", "bytes", false},
		{"memcached_limit_bytes", "Number of bytes this server is allowed to use for storage.", "limit_maxbytes", false},
		{"memcached_current_items", "Current number of items stored by this instance.", "curr_items", false},
		{"memcached_items_total", "Total number of items stored during the life of this instance.", "total_items", true},
		{"memcached_read_bytes_total", "Total number of bytes read by this server from network.", "bytes_read", true},
		{"memcached_written_bytes_total", "Total number of bytes sent by this server to network.", "bytes_written", true},
		{"memcached_current_connections", "Current number of open connections.", "curr_connections", false},
		{"memcached_connections_total", "Total number of connections opened since the server started running.", "total_connections", true},
		{"memcached_connections_rejected_total", "Total number of connections rejected due to hitting the -c limit.", "rejected_connections", true},
		{"memcached_connections_yielded_total", "Total number of connections yielded running due to hitting the -R limit.", "conn_yields", true},
		{"memcached_connections_listener_disabled_total", "Number of times the connection limit disabled the listener.", "listen_disabled_num", true},
		{"memcached_items_evicted_total", "Total number of valid items removed from cache to free memory for new items.", "evictions", true},
		{"memcached_items_reclaimed_total", "Total number of times an entry was stored using memory from an expired entry.", "reclaimed", true},
		{"memcached_item_too_large_total", "The number of times an item exceeded the max-item-size when being stored.", "store_too_large", true},
		{"memcached_item_no_memory_total", "The number of times an item could not be stored due to no more memory.", "store_no_memory", true},
		{"memcached_lru_crawler_starts_total", "Times an LRU crawler was started.", "lru_crawler_starts", true},
		{"memcached_direct_reclaims_total", "Times worker threads had to directly reclaim or evict items.", "direct_reclaims", true},
		{"memcached_lru_crawler_items_checked_total", "Total items examined by LRU Crawler.", "crawler_items_checked", true},
		{"memcached_lru_crawler_reclaimed_total", "Total items freed by LRU Crawler.", "crawler_reclaimed", true},
		{"memcached_lru_crawler_moves_to_cold_total", "Total number of items moved from HOT/WARM to COLD LRU's.", "moves_to_cold", true},
		{"memcached_lru_crawler_moves_to_warm_total", "Total number of items moved from COLD to WARM LRU.", "moves_to_warm", true},
		{"memcached_lru_crawler_moves_within_lru_total", "Total number of items reshuffled within HOT or WARM LRU's.", "moves_within_lru", true},
		{"memcached_malloced_bytes", "Number of bytes of memory allocated to slab pages.", "total_malloced", false},
		{"memcached_accepting_connections", "The server is currently accepting new connections.", "accepting_conns", false},
	} {
		if m.counter {
			e.counter(m.name, m.help, s, m.key)
		} else {
			e.gauge(m.name, m.help, s, m.key)
		}
	}
}

// settings exports the LRU crawler's settings, as the exporter does when
// the crawler is on.
func (e emitter) settings(s map[string]string) {
	for _, m := range []struct{ name, help, key string }{
		{"memcached_lru_crawler_enabled", "Whether the LRU crawler is enabled.", "lru_crawler"},
		{"memcached_lru_crawler_sleep", "Microseconds to sleep between LRU crawls.", "lru_crawler_sleep"},
		{"memcached_lru_crawler_to_crawl", "Max items to crawl per slab per run.", "lru_crawler_tocrawl"},
		{"memcached_lru_crawler_maintainer_thread", "Split LRU mode and background threads.", "lru_maintainer_thread"},
		{"memcached_lru_crawler_hot_percent", "Percent of slab memory reserved for HOT LRU.", "hot_lru_pct"},
		{"memcached_lru_crawler_warm_percent", "Percent of slab memory reserved for WARM LRU.", "warm_lru_pct"},
		{"memcached_lru_crawler_hot_max_factor", "Set idle age of HOT LRU to COLD age * this", "hot_max_factor"},
		{"memcached_lru_crawler_warm_max_factor", "Set idle age of WARM LRU to COLD age * this", "warm_max_factor"},
	} {
		e.gauge(m.name, m.help, s, m.key)
	}
}

// itemMetrics are the per-class statistics of `stats items` the exporter
// exports, by their name there.
var itemMetrics = map[string]struct {
	name, help string
	counter    bool
}{
	"number":            {"memcached_slab_current_items", "Number of items currently stored in this slab class.", false},
	"age":               {"memcached_slab_items_age_seconds", "Number of seconds the oldest item has been in the slab class.", false},
	"crawler_reclaimed": {"memcached_slab_items_crawler_reclaimed_total", "Number of items freed by the LRU Crawler.", true},
	"evicted":           {"memcached_slab_items_evicted_total", "Total number of times an item had to be evicted from the LRU before it expired.", true},
	"evicted_nonzero":   {"memcached_slab_items_evicted_nonzero_total", "Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.", true},
	"evicted_time":      {"memcached_slab_items_evicted_time_seconds", "Seconds since the last access for the most recent item evicted from this class.", true},
	"evicted_unfetched": {"memcached_slab_items_evicted_unfetched_total", "Total number of items evicted and never fetched.", true},
	"expired_unfetched": {"memcached_slab_items_expired_unfetched_total", "Total number of valid items evicted from the LRU which were never touched after being set.", true},
	"outofmemory":       {"memcached_slab_items_outofmemory_total", "Total number of items for this slab class that have triggered an out of memory error.", true},
	"reclaimed":         {"memcached_slab_items_reclaimed_total", "Total number of items reclaimed.", true},
	"tailrepairs":       {"memcached_slab_items_tailrepairs_total", "Total number of times the entries for a particular ID need repairing.", true},
	"mem_requested":     {"memcached_slab_mem_requested_bytes", "Number of bytes of memory actual items take up within a slab.", true},
	"moves_to_cold":     {"memcached_slab_items_moves_to_cold", "Number of items moved from HOT or WARM into COLD.", true},
	"moves_to_warm":     {"memcached_slab_items_moves_to_warm", "Number of items moves from COLD into WARM.", true},
	"moves_within_lru":  {"memcached_slab_items_moves_within_lru", "Number of times active items were bumped within HOT or WARM.", true},
	"number_hot":        {"memcached_slab_hot_items", "Number of items presently stored in the HOT LRU.", false},
	"number_warm":       {"memcached_slab_warm_items", "Number of items presently stored in the WARM LRU.", false},
	"number_cold":       {"memcached_slab_cold_items", "Number of items presently stored in the COLD LRU.", false},
	"number_temp":       {"memcached_slab_temporary_items", "Number of items presently stored in the TEMPORARY LRU.", false},
	"age_hot":           {"memcached_slab_hot_age_seconds", "Age of the oldest item in HOT LRU.", false},
	"age_warm":          {"memcached_slab_warm_age_seconds", "Age of the oldest item in WARM LRU.", false},
}

// lruHits are the per-class hits by LRU of `stats items`.
var lruHits = map[string]string{"hits_to_hot": "hot", "hits_to_warm": "warm", "hits_to_cold": "cold", "hits_to_temp": "temporary"}

// items exports `stats items`: "items:<class>:<name>" statistics.
func (e emitter) items(list []stats.Stat) {
	for _, st := range list {
		rest, ok := strings.CutPrefix(st.Name, "items:")
		if !ok {
			continue
		}
		class, name, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(st.Value, 64)
		if err != nil {
			continue
		}
		if lru, ok := lruHits[name]; ok {
			e.constantL("memcached_slab_lru_hits_total", "Number of get_hits to the LRU.", prometheus.CounterValue, v, []string{"slab", "lru"}, []string{class, lru})
			continue
		}
		m, ok := itemMetrics[name]
		if !ok {
			continue
		}
		t := prometheus.GaugeValue
		if m.counter {
			t = prometheus.CounterValue
		}
		e.constantL(m.name, m.help, t, v, []string{"slab"}, []string{class})
	}
}

// slabGauges are the per-class statistics of `stats slabs` the exporter
// exports as gauges, by their name there.
var slabGauges = map[string]struct{ name, help string }{
	"chunk_size":      {"memcached_slab_chunk_size_bytes", "Number of bytes allocated to each chunk within this slab class."},
	"chunks_per_page": {"memcached_slab_chunks_per_page", "Number of chunks within a single page for this slab class."},
	"total_pages":     {"memcached_slab_current_pages", "Number of pages allocated to this slab class."},
	"total_chunks":    {"memcached_slab_current_chunks", "Number of chunks allocated to this slab class."},
	"used_chunks":     {"memcached_slab_chunks_used", "Number of chunks allocated to an item."},
	"free_chunks":     {"memcached_slab_chunks_free", "Number of chunks not yet allocated items."},
	"free_chunks_end": {"memcached_slab_chunks_free_end", "Number of free chunks at the end of the last allocated page."},
}

// slabs exports `stats slabs`: "<class>:<name>" statistics and the totals.
func (e emitter) slabs(list []stats.Stat) {
	const help = "Total number of all requests broken down by command (get, set, etc.) and status per slab."
	classes := map[string]map[string]float64{}
	var order []string
	for _, st := range list {
		class, name, ok := strings.Cut(st.Name, ":")
		if !ok {
			if st.Name == "total_malloced" {
				if v, err := strconv.ParseFloat(st.Value, 64); err == nil {
					e.constant("memcached_malloced_bytes", "Number of bytes of memory allocated to slab pages.", prometheus.GaugeValue, v)
				}
			}
			continue
		}
		v, err := strconv.ParseFloat(st.Value, 64)
		if err != nil {
			continue
		}
		if classes[class] == nil {
			classes[class] = map[string]float64{}
			order = append(order, class)
		}
		classes[class][name] = v
		if g, ok := slabGauges[name]; ok {
			e.constantL(g.name, g.help, prometheus.GaugeValue, v, []string{"slab"}, []string{class})
		}
	}
	for _, class := range order {
		c := classes[class]
		cmd := func(command, status string, v float64) {
			e.constantL("memcached_slab_commands_total", help, prometheus.CounterValue, v, []string{"slab", "command", "status"}, []string{class, command, status})
		}
		for _, op := range []string{"get", "delete", "incr", "decr", "cas", "touch"} {
			if v, ok := c[op+"_hits"]; ok {
				cmd(op, "hit", v)
			}
		}
		if v, ok := c["cas_badval"]; ok {
			cmd("cas", "badval", v)
		}
		if set, ok := c["cmd_set"]; ok {
			// As in the general stats, the exporter's "set" leaves
			// out the compare-and-swaps.
			cmd("set", "hit", set-c["cas_hits"]-c["cas_badval"])
		}
	}
}

// memcluster exports memcluster's own statistics: forwarding and the
// hand-off, when the node has them.
func (e emitter) memcluster(s map[string]string) {
	for _, m := range []struct{ name, help, key string }{
		{"memcluster_forwarded_total", "Requests forwarded to their keys' owners (a get counts one per owner).", "forwarded"},
		{"memcluster_forward_errors_total", "Forwarded requests that failed: the owner could not be reached or answered amiss.", "forward_errors"},
		{"memcluster_handoff_fetches_total", "Keys fetched from their previous owners after a change of membership.", "handoff_fetches"},
		{"memcluster_handoff_hits_total", "Hand-off fetches that found the key.", "handoff_hits"},
		{"memcluster_handoff_misses_total", "Hand-off fetches that did not find the key.", "handoff_misses"},
		{"memcluster_handoff_errors_total", "Hand-off fetches that failed.", "handoff_errors"},
		{"memcluster_handoff_accepted_total", "Items other nodes pushed here and this node stored.", "handoff_accepted"},
		{"memcluster_gossip_dropped_total", "Gossip messages dropped as undecodable or not encrypted with the cluster's keys.", "gossip_dropped"},
	} {
		e.counter(m.name, m.help, s, m.key)
	}
	e.gauge("memcluster_handoff_active", "Whether a hand-off window is open.", s, "handoff_active")
}
