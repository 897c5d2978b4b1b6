package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Family is a family of commands, the "family" label of the latency
// histograms.
type Family uint8

// The command families.
const (
	FamilyGet    Family = iota // get, gets, gat, gats, mg; binary Get, GetK, GAT and their quiet forms
	FamilySet                  // set, add, replace, append, prepend, cas, ms; binary Set … Prepend
	FamilyDelete               // delete, md; binary Delete
	FamilyArith                // incr, decr, ma; binary Increment, Decrement
	FamilyTouch                // touch; binary Touch
	FamilyOther                // everything else: stats, version, mn, flush_all, …
	numFamilies
)

var familyNames = [numFamilies]string{"get", "set", "delete", "arith", "touch", "other"}

// Protocol is the protocol a request came in, the "protocol" label of the
// latency histograms.
type Protocol uint8

// The protocols.
const (
	ProtocolText   Protocol = iota // memcached's classic text commands
	ProtocolMeta                   // the meta commands (mg, ms, md, ma, mn, me)
	ProtocolBinary                 // the binary protocol
	numProtocols
)

var protocolNames = [numProtocols]string{"text", "meta", "binary"}

// Latency is the histograms of the time the node takes to answer a
// request, from its decoding to its reply's being ready to write, by
// family and protocol. Observe takes no lock and allocates nothing: each
// histogram is resolved once, in NewLatency, and counts with atomic
// operations.
type Latency struct {
	vec *prometheus.HistogramVec
	obs [numFamilies][numProtocols]prometheus.Observer
}

// LatencyBuckets are the histograms' upper bounds, in seconds: from 10 µs,
// a request answered from memory, to 1 s.
var LatencyBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}

// NewLatency returns empty histograms.
func NewLatency() *Latency {
	l := &Latency{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "memcluster_request_duration_seconds",
		Help:    "Time from a request's decoding to its reply's being ready to write, by command family and protocol.",
		Buckets: LatencyBuckets,
	}, []string{"family", "protocol"})}
	for f := range numFamilies {
		for p := range numProtocols {
			l.obs[f][p] = l.vec.WithLabelValues(familyNames[f], protocolNames[p])
		}
	}
	return l
}

// Observe counts one request of family f in protocol p that took d. It is
// safe for concurrent use.
func (l *Latency) Observe(f Family, p Protocol, d time.Duration) {
	l.obs[f][p].Observe(d.Seconds())
}
