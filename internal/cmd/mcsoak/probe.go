package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/memcluster/memcluster/internal/procstatus"
	"github.com/memcluster/memcluster/internal/workload"
)

// replyTimeout is how long a well-behaved client waits for a reply before
// it counts a timeout and starts afresh on a new connection.
const replyTimeout = 10 * time.Second

// window gathers the probe's figures between two rows.
type window struct {
	mu        sync.Mutex
	latencies []time.Duration // answered requests', and stand-ins for the requests late replies held back
	answered  int
	timeouts  int
	errors    int
	lastErr   error
}

// take returns the window's figures and empties it.
func (w *window) take() (latencies []time.Duration, answered, timeouts, errs int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	latencies, answered, timeouts, errs = w.latencies, w.answered, w.timeouts, w.errors
	w.latencies, w.answered, w.timeouts, w.errors = nil, 0, 0, 0
	return latencies, answered, timeouts, errs
}

func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	pid := fs.Int("pid", 0, "the server's process id, to read its RSS (0: not read)")
	duration := fs.Duration("duration", time.Minute, "how long to measure, after -warmup")
	warmup := fs.Duration("warmup", 0, "how long to run before measuring")
	interval := fs.Duration("interval", 5*time.Second, "one row of figures per `interval`")
	period := fs.Duration("period", time.Millisecond, "time between requests")
	keys := fs.Uint64("keys", 100000, "size of the key space")
	seed := fs.Uint64("seed", 1, "seed of the key sequence")
	fs.Parse(args)
	if *interval <= 0 || *period <= 0 || *keys < 2 {
		return errors.New("probe: -interval and -period must be positive and -keys at least 2")
	}
	c := newWellBehaved(*addr, workload.NewZipf(*keys, 0.99), *seed)
	defer c.close()

	// drive makes requests until until, one every period at most, and
	// passes each outcome to record.
	drive := func(until time.Time, record func(took time.Duration, err error)) {
		next := time.Now()
		for time.Now().Before(until) {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			record(c.step(earliest(time.Now().Add(replyTimeout), until)))
			next = next.Add(*period)
			if now := time.Now(); next.Before(now) {
				next = now
			}
		}
	}
	drive(time.Now().Add(*warmup), func(time.Duration, error) {})

	var w window
	begin := time.Now()
	end := begin.Add(*duration)
	done := make(chan struct{})
	go func() {
		defer close(done)
		drive(end, func(took time.Duration, err error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			switch {
			case err == nil:
				w.answered++
			case isTimeout(err) && !time.Now().Before(end):
				return // cut short by the end of the run
			case isTimeout(err):
				w.timeouts++
			default:
				w.errors++
				w.lastErr = err
				return
			}
			// A timeout counts as a latency of at least replyTimeout.
			w.latencies = append(w.latencies, took)
			for late := took - *period; late > 0; late -= *period {
				w.latencies = append(w.latencies, late)
			}
		})
	}()

	fmt.Printf("%7s %9s %8s %6s %8s %8s %8s %10s %10s\n",
		"# t_s", "requests", "timeouts", "errors", "p50_us", "p99_us", "max_us", "rss_kib", "peak_kib")
	var (
		all                    []time.Duration
		answered, timeouts, ne int
		serverGone             error
	)
	for tick := begin.Add(*interval); serverGone == nil; tick = tick.Add(*interval) {
		at := earliest(tick, end)
		time.Sleep(time.Until(at))
		if !at.Before(end) {
			<-done // the last request's outcome belongs to the last row
		}
		lat, a, t, e := w.take()
		mem := fmt.Sprintf("%10s %10s", "-", "-")
		if *pid > 0 {
			m, err := procstatus.Read(*pid)
			if err != nil {
				serverGone = err
			} else {
				mem = fmt.Sprintf("%10d %10d", m.RSS>>10, m.Peak>>10)
			}
		}
		fmt.Printf("%7.0f %9d %8d %6d %s %s\n", at.Sub(begin).Seconds(), a, t, e, percentiles(lat), mem)
		all = append(all, lat...)
		answered, timeouts, ne = answered+a, timeouts+t, ne+e
		if !at.Before(end) {
			break
		}
	}
	fmt.Printf("%7s %9d %8d %6d %s\n", "all", answered, timeouts, ne, percentiles(all))
	switch {
	case serverGone != nil:
		return fmt.Errorf("probe: the server is gone: %w", serverGone)
	case timeouts > 0 || ne > 0:
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.lastErr != nil {
			fmt.Fprintln(os.Stderr, "mcsoak: probe: last error:", w.lastErr)
		}
		return fmt.Errorf("probe: %d requests timed out (%v) and %d failed", timeouts, replyTimeout, ne)
	}
	return nil
}

// percentiles formats the median, 99th percentile (by nearest rank: the
// smallest of latencies that at least 99% of them do not exceed) and
// largest of latencies, in µs, and sorts latencies.
func percentiles(latencies []time.Duration) string {
	if len(latencies) == 0 {
		return fmt.Sprintf("%8s %8s %8s", "-", "-", "-")
	}
	slices.Sort(latencies)
	at := func(q float64) int64 {
		rank := int(math.Ceil(q * float64(len(latencies))))
		return latencies[max(rank, 1)-1].Microseconds()
	}
	return fmt.Sprintf("%8d %8d %8d", at(0.50), at(0.99), latencies[len(latencies)-1].Microseconds())
}
