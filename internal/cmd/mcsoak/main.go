// Command mcsoak is the load of scripts/soak.sh, which holds a
// memcached-compatible server under mixed, partly hostile traffic and checks
// that its memory stays bounded and that a well-behaved client's latency
// does not suffer. It has two parts, run as separate processes so that the
// latency measured is the server's and not the load generator's own
// scheduling:
//
//	mcsoak probe -s host:port [-pid PID] -duration 10m [-interval 5s] [-warmup 0s]
//	mcsoak load  -s host:port -duration 10m [flags] (mcsoak load -h lists them)
//
// probe is one well-behaved client: over one connection it gets a key
// drawn from a Zipf(0.99) mix over -keys keys and, on a miss, sets it
// (lazy loading), one request about every -period. After -warmup, which is
// not measured, it prints one row per -interval: the requests answered,
// timed out (no reply in 10 s) and failed, the median, 99th percentile and
// largest latency in µs, and, given -pid, the server's VmRSS and VmHWM in
// KiB; and a last row, "all", over the whole run. A latency is measured
// from the request's write to its reply's last byte; a reply later than
// the next request was due also counts, as a sample each, the requests
// that would have been sent meanwhile (latency − period, − 2 × period …),
// so that a server that stalls for a second weighs a second's worth of
// requests and not one. After a timeout or an error the probe goes on over
// a new connection; it exits non-zero at the end if there was any.
//
// load runs, until -duration is over, each of these at once:
//
//   - well-behaved clients: the probe's workload, several connections;
//   - stalled clients: a set line promising -promise bytes and nothing
//     more, or half a get line (-half-get bytes of keys and no end), each
//     held for -cycle, then a new connection;
//   - slow clients: trickle clients send gets of -big-byte values one byte
//     a second and never read (for the whole run); non-readers send such
//     gets as fast as the socket takes them and never read, for -cycle;
//   - abusive clients: one get line naming the same -big-byte item -repeat
//     times, its reply read at -read-rate bytes a second for -cycle; and
//     get lines of -long-line bytes of missing keys, one every -long-every,
//     their replies read;
//   - connection churn: connections that send one get and close, close
//     halfway through a set, or close at once.
//
// By default: 4 well-behaved clients, 8 stalled, 2 of each slow and
// abusive kind, and 2 churn clients opening 50 connections a second each.
//
// It ends with one summary row per kind of client: connections, dials
// refused, requests, bytes read, connections the server closed, replies
// timed out and unexpected replies. The well-behaved clients start afresh
// on a new connection after an error, and load exits non-zero at the end
// if they had any; the others' connections may be refused, closed or
// answered oddly by the server, which is counted, not failed.
package main

import (
	"github.com/memcluster/memcluster/internal/subcommand"
)

func main() {
	subcommand.Main("mcsoak", "mcsoak probe|load -s host:port -duration D [flags] (mcsoak probe -h for flags)", map[string]func([]string) error{
		"probe": runProbe,
		"load":  runLoad,
	})
}
