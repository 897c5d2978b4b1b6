package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/memcluster/memcluster/internal/workload"
)

// tlsFlags are the flags of a subcommand that can speak TLS.
type tlsFlags struct {
	enabled  *bool
	caFile   *string
	insecure *bool
}

func addTLSFlags(fs *flag.FlagSet) tlsFlags {
	return tlsFlags{
		enabled:  fs.Bool("tls", false, "connect over TLS"),
		caFile:   fs.String("tls-ca", "", "PEM `file` of the CA certificates that sign the server's (default: the system's)"),
		insecure: fs.Bool("insecure", false, "with -tls, do not verify the server's certificate"),
	}
}

// config returns the client TLS configuration the flags ask for, or nil
// for plain TCP.
func (f tlsFlags) config() (*tls.Config, error) {
	if !*f.enabled {
		return nil, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: *f.insecure}
	if *f.caFile != "" {
		pem, err := os.ReadFile(*f.caFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca: no certificate in %s", *f.caFile)
		}
	}
	return cfg, nil
}

// latencyConfig is one closed-loop latency load.
type latencyConfig struct {
	addr     string
	tls      *tls.Config // nil for plain TCP
	conns    int
	keys     uint64
	keyLen   int
	valueLen int
	gets     int // gets:sets, the ratio of the two operations
	sets     int
	duration time.Duration
	fill     bool // set every key before the measured load
	seed     uint64
}

// latencyResult is what a latency load measured.
type latencyResult struct {
	gets, sets, misses uint64
	elapsed            time.Duration // wall time of the measured load
	cpu                time.Duration // this process's user and system CPU time over it
	latency            hist          // of every request, from its write to its reply's end
}

func (r *latencyResult) ops() uint64 { return r.gets + r.sets }

// latency runs cfg's load: cfg.conns connections, each with one request in
// flight at a time (it writes a request, reads its reply, and writes the
// next), each request a get or, with probability sets/(gets+sets), a set
// of a uniformly drawn key, until cfg.duration has passed. Connections are
// made, and the keys filled, before the clock starts.
func latency(cfg latencyConfig) (*latencyResult, error) {
	if cfg.conns < 1 || cfg.keys < 1 || cfg.valueLen < 0 || cfg.gets < 0 || cfg.sets < 0 || cfg.gets+cfg.sets < 1 {
		return nil, errors.New("latency: -conns and -keys must be positive, -ratio gets:sets not both 0")
	}
	if digits := len(strconv.FormatUint(cfg.keys, 10)); cfg.keyLen < 1+digits {
		return nil, fmt.Errorf("latency: -key %d leaves no room for %d-digit indexes", cfg.keyLen, digits)
	}
	value := bytes.Repeat([]byte{'v'}, cfg.valueLen)
	if cfg.fill {
		if err := fillKeys(cfg, value); err != nil {
			return nil, err
		}
	}
	conns := make([]*conn, cfg.conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	for i := range conns {
		c, err := dial(cfg.addr, cfg.tls)
		if err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
		conns[i] = c
	}
	var (
		wg      sync.WaitGroup
		results = make([]latencyResult, cfg.conns)
		errs    = make([]error, cfg.conns)
	)
	cpu0, err := cpuTime()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(cfg.duration)
	for i, c := range conns {
		rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)))
		wg.Go(func() { errs[i] = c.closedLoop(cfg, rng, deadline, value, &results[i]) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := cpuTime()
	if err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("latency: %w", err)
	}
	total := &latencyResult{elapsed: elapsed, cpu: cpu1 - cpu0}
	for i := range results {
		r := &results[i]
		total.gets += r.gets
		total.sets += r.sets
		total.misses += r.misses
		total.latency.merge(&r.latency)
	}
	return total, nil
}

// closedLoop runs one connection's requests until deadline, into res.
func (c *conn) closedLoop(cfg latencyConfig, rng *rand.Rand, deadline time.Time, value []byte, res *latencyResult) error {
	key := make([]byte, 0, cfg.keyLen)
	mix := cfg.gets + cfg.sets
	for {
		begin := time.Now()
		if !begin.Before(deadline) {
			return nil
		}
		k := workload.Key(key[:0], rng.Uint64N(cfg.keys), cfg.keyLen)
		set := rng.IntN(mix) < cfg.sets
		if set {
			c.writeSet(k, len(value), value)
		} else {
			c.writeGet(k)
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
		if set {
			stored, err := c.readStored()
			if err != nil {
				return err
			}
			if !stored {
				return fmt.Errorf("set of a %d-byte value not stored", len(value))
			}
			res.sets++
		} else {
			size, hit, err := c.readValue()
			if err != nil {
				return err
			}
			if hit && size != len(value) {
				return fmt.Errorf("get: a %d-byte value, want %d (filled with another -value?)", size, len(value))
			}
			if !hit {
				res.misses++
			}
			res.gets++
		}
		res.latency.record(time.Since(begin))
	}
}

// fillKeys sets every key of cfg's load, over up to four connections,
// pipelined over TCP, one at a time over TLS: memcached 1.6.18 stalls on a
// TLS connection that sends it a batch of small requests at once (seen
// here: batches of 10 or 100 sets of 100 bytes never get their replies;
// batches of 5, or of 4 KiB values, do).
func fillKeys(cfg latencyConfig, value []byte) error {
	n := uint64(min(cfg.conns, 4))
	batch := 100
	if cfg.tls != nil {
		batch = 1
	}
	var (
		wg     sync.WaitGroup
		failed = make([]uint64, n)
		errs   = make([]error, n)
	)
	for ci := range n {
		lo, hi := cfg.keys*ci/n, cfg.keys*(ci+1)/n
		wg.Go(func() {
			_, failed[ci], errs[ci] = fillRange(cfg.addr, cfg.tls, lo, hi, cfg.keyLen, value, batch)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("latency: filling: %w", err)
	}
	var notStored uint64
	for _, f := range failed {
		notStored += f
	}
	if notStored > 0 {
		return fmt.Errorf("latency: filling: %d of %d items not stored (raise the server's -m, or lower -keys)", notStored, cfg.keys)
	}
	return nil
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// parseRatio parses "G:S", the gets:sets mix.
func parseRatio(s string) (gets, sets int, err error) {
	g, st, ok := strings.Cut(s, ":")
	if ok {
		gets, err = strconv.Atoi(g)
	}
	if ok && err == nil {
		sets, err = strconv.Atoi(st)
	}
	if !ok || err != nil || gets < 0 || sets < 0 || gets+sets == 0 {
		return 0, 0, fmt.Errorf("-ratio %q is not gets:sets (say 10:1)", s)
	}
	return gets, sets, nil
}

func runLatency(args []string) error { return latencyMain(args, os.Stdout) }

func latencyMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	conns := fs.Int("conns", 50, "connections, each with one request in flight")
	keys := fs.Uint64("keys", 10000, "keys, drawn uniformly")
	keyLen := fs.Int("key", 16, "key length in bytes")
	valueLen := fs.Int("value", 100, "value size in bytes")
	ratio := fs.String("ratio", "10:1", "`gets:sets`")
	duration := fs.Duration("duration", 5*time.Second, "how long to run the measured load")
	fill := fs.Bool("fill", true, "set every key before the measured load (else run mcload fill first)")
	seed := fs.Uint64("seed", 1, "seed of the request sequence")
	tf := addTLSFlags(fs)
	fs.Parse(args)
	gets, sets, err := parseRatio(*ratio)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	tc, err := tf.config()
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	res, err := latency(latencyConfig{
		addr: *addr, tls: tc, conns: *conns, keys: *keys, keyLen: *keyLen, valueLen: *valueLen,
		gets: gets, sets: sets, duration: *duration, fill: *fill, seed: *seed,
	})
	if err != nil {
		return err
	}
	res.print(stdout)
	return nil
}

// print writes res as one line of name value pairs, latencies in µs.
func (r *latencyResult) print(w io.Writer) {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	fmt.Fprintf(w, "ops %d ops/s %.0f gets %d sets %d misses %d p50_us %.1f p99_us %.1f p999_us %.1f max_us %.1f cpu %.3f seconds %.2f\n",
		r.ops(), float64(r.ops())/r.elapsed.Seconds(), r.gets, r.sets, r.misses,
		us(r.latency.quantile(0.5)), us(r.latency.quantile(0.99)), us(r.latency.quantile(0.999)), us(r.latency.quantile(1)),
		r.cpu.Seconds()/r.elapsed.Seconds(), r.elapsed.Seconds())
}
