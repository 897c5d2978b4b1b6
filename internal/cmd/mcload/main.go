// Command mcload drives a memcached-compatible server for the memory, hit
// ratio and GC measurements of scripts/bench-memory.sh and the latency loads
// of scripts/bench.sh. It speaks the text protocol directly over TCP (or, for
// fill and latency, TLS with -tls [-tls-ca FILE | -insecure]), so that one
// core can load millions of items in seconds.
//
//	mcload fill -s host:port -n N [-start I] [-key 16] [-value 100] [-conns 4]
//	mcload hitratio -s host:port -keys 1000000 -zipf 0.99 -warmup W -requests N [-conns 4]
//	mcload latency -s host:port [-conns 50] [-keys 10000] [-value 100] [-ratio 10:1] [-duration 5s] [-fill=true]
//
// fill sets the N items with indexes start … start+N-1, each key of the given
// length and each value of the given size, and prints how many the server
// stored. hitratio runs a lazy-loading workload: get a key drawn from a
// Zipf(θ) distribution over the key space (exactly, by its inverse CDF); on a miss, set it, with a value of
// 100 to 1300 bytes that is a function of the key. It prints hits, misses and
// the ratio over the requests after the warm-up. Both are deterministic in
// what they send: every connection draws from its own seeded generator.
//
// latency runs a closed loop: each connection has one request in flight (a
// get, or a set of -value bytes, in the -ratio mix, of a uniformly drawn key
// of -keys, all set beforehand unless -fill=false) and writes the next only
// when the reply has come. It prints one line of name value pairs: ops,
// ops/s, gets, sets, misses, p50_us, p99_us, p999_us and max_us (each
// request's latency, from its write to the end of its reply, to 1/128),
// cpu (mcload's own CPU time over the run's wall time: near 1 or above, the
// generator, not the server, set the pace) and seconds.
//
// fill and hitratio pipeline: a connection sends a batch of requests in one write and then
// reads their replies. In hitratio, a key that misses twice in one batch is
// set once and its second miss counted as a hit, as it would have been had
// the requests gone one at a time.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/memcluster/memcluster/internal/subcommand"
	"github.com/memcluster/memcluster/internal/workload"
)

func main() {
	subcommand.Main("mcload", "mcload fill|hitratio|latency -s host:port [flags] (mcload fill -h for flags)", map[string]func([]string) error{
		"fill":     runFill,
		"hitratio": runHitRatio,
		"latency":  runLatency,
	})
}

// conn is one pipelined text-protocol connection.
type conn struct {
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	num [20]byte // formats a length without allocating
}

// dial connects to addr, over TLS (handshake done) if tc is not nil.
func dial(addr string, tc *tls.Config) (*conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		if tc.ServerName == "" && !tc.InsecureSkipVerify {
			tc = tc.Clone()
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.Handshake(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tlsConn
	}
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 256<<10), w: bufio.NewWriterSize(nc, 256<<10)}, nil
}

// writeSet appends a set of key with a value of size bytes.
func (c *conn) writeSet(key []byte, size int, value []byte) {
	c.w.WriteString("set ")
	c.w.Write(key)
	c.w.WriteString(" 0 0 ")
	c.w.Write(strconv.AppendInt(c.num[:0], int64(size), 10))
	c.w.WriteString("\r\n")
	c.w.Write(value[:size])
	c.w.WriteString("\r\n")
}

// writeGet appends a get of key.
func (c *conn) writeGet(key []byte) {
	c.w.WriteString("get ")
	c.w.Write(key)
	c.w.WriteString("\r\n")
}

// readStored reads one storage reply and reports whether it was STORED.
func (c *conn) readStored() (bool, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if bytes.Equal(line, []byte("STORED\r\n")) {
		return true, nil
	}
	if bytes.HasPrefix(line, []byte("SERVER_ERROR")) {
		return false, nil
	}
	return false, fmt.Errorf("set: unexpected reply %q", line)
}

// readGet reads one get reply (of one key) and reports whether it hit.
func (c *conn) readGet() (bool, error) {
	_, hit, err := c.readValue()
	return hit, err
}

// readValue reads one get reply (of one key), discarding the value, and
// returns the value's size and whether it hit. It does not allocate.
func (c *conn) readValue() (size int, hit bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if bytes.Equal(line, []byte("END\r\n")) {
		return 0, false, nil
	}
	// VALUE <key> <flags> <bytes> [<cas>]\r\n
	n, ok := -1, bytes.HasPrefix(line, []byte("VALUE "))
	if ok {
		n, ok = parseSize(field(line, 3))
	}
	if !ok {
		return 0, false, fmt.Errorf("get: unexpected reply %q", line)
	}
	if _, err := c.r.Discard(n + 2); err != nil {
		return 0, false, err
	}
	end, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if !bytes.Equal(end, []byte("END\r\n")) {
		return 0, false, fmt.Errorf("get: unexpected reply %q after value", end)
	}
	return n, true, nil
}

// field returns the i-th (from 0) of line's space-separated fields, without
// the line's CR LF, or nil if it has fewer.
func field(line []byte, i int) []byte {
	line = bytes.TrimRight(line, "\r\n")
	for ; i > 0; i-- {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return nil
		}
		line = line[sp+1:]
	}
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		line = line[:sp]
	}
	return line
}

// parseSize parses b, decimal digits, as a length of at most 2^31-1 bytes.
func parseSize(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, n <= math.MaxInt32
}

func runFill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	n := fs.Uint64("n", 1000000, "items to set")
	start := fs.Uint64("start", 0, "index of the first item")
	keyLen := fs.Int("key", 16, "key length in bytes")
	valueLen := fs.Int("value", 100, "value size in bytes")
	conns := fs.Int("conns", 4, "connections")
	batch := fs.Int("batch", 100, "requests per pipelined batch (with -tls against memcached, 1: it stalls on pipelined small requests over TLS)")
	tf := addTLSFlags(fs)
	fs.Parse(args)
	tc, err := tf.config()
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	if digits := len(strconv.FormatUint(*start+*n, 10)); *keyLen < 1+digits {
		return fmt.Errorf("fill: -key %d leaves no room for %d-digit indexes", *keyLen, digits)
	}
	if *conns < 1 || *batch < 1 {
		return errors.New("fill: -conns and -batch must be positive")
	}
	value := bytes.Repeat([]byte{'v'}, *valueLen)
	begin := time.Now()
	var (
		mu     sync.Mutex
		stored uint64
		failed uint64
		wg     sync.WaitGroup
		errs   = make([]error, *conns)
	)
	for ci := range *conns {
		lo := *start + *n*uint64(ci)/uint64(*conns)
		hi := *start + *n*uint64(ci+1)/uint64(*conns)
		wg.Go(func() {
			s, f, err := fillRange(*addr, tc, lo, hi, *keyLen, value, *batch)
			errs[ci] = err
			mu.Lock()
			stored += s
			failed += f
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	el := time.Since(begin)
	fmt.Printf("stored %d failed %d seconds %.2f sets/s %.0f\n", stored, failed, el.Seconds(), float64(*n)/el.Seconds())
	return nil
}

// fillRange sets items lo … hi-1 over one connection, batch at a time.
func fillRange(addr string, tc *tls.Config, lo, hi uint64, keyLen int, value []byte, batch int) (stored, failed uint64, err error) {
	c, err := dial(addr, tc)
	if err != nil {
		return 0, 0, err
	}
	defer c.nc.Close()
	key := make([]byte, 0, keyLen)
	for i := lo; i < hi; {
		end := min(i+uint64(batch), hi)
		for j := i; j < end; j++ {
			c.writeSet(workload.Key(key[:0], j, keyLen), len(value), value)
		}
		if err := c.w.Flush(); err != nil {
			return stored, failed, err
		}
		for ; i < end; i++ {
			ok, err := c.readStored()
			if err != nil {
				return stored, failed, err
			}
			if ok {
				stored++
			} else {
				failed++
			}
		}
	}
	return stored, failed, nil
}

func runHitRatio(args []string) error {
	fs := flag.NewFlagSet("hitratio", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	keys := fs.Uint64("keys", 1000000, "size of the key space")
	theta := fs.Float64("zipf", 0.99, "Zipf exponent θ")
	warmup := fs.Uint64("warmup", 1000000, "requests before counting")
	requests := fs.Uint64("requests", 2000000, "requests counted")
	conns := fs.Int("conns", 4, "connections")
	batch := fs.Int("batch", 16, "gets per pipelined batch")
	seed := fs.Uint64("seed", 1, "seed of the key sequence")
	fs.Parse(args)
	if !(*theta > 0) {
		return fmt.Errorf("hitratio: -zipf %v is not positive", *theta)
	}
	if *conns < 1 || *batch < 1 || *keys < 2 {
		return errors.New("hitratio: -conns and -batch must be positive and -keys at least 2")
	}
	cdf := workload.NewZipf(*keys, *theta)
	begin := time.Now()
	var (
		wg   sync.WaitGroup
		res  = make([]lazyResult, *conns)
		errs = make([]error, *conns)
	)
	phase := newPhaser(*conns)
	for ci := range *conns {
		rng := rand.New(rand.NewPCG(*seed, uint64(ci)))
		wl := *warmup*uint64(ci+1)/uint64(*conns) - *warmup*uint64(ci)/uint64(*conns)
		rq := *requests*uint64(ci+1)/uint64(*conns) - *requests*uint64(ci)/uint64(*conns)
		wg.Go(func() {
			res[ci], errs[ci] = lazyLoad(*addr, cdf, rng, wl, rq, *batch, phase)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var total lazyResult
	for _, r := range res {
		total.hits += r.hits
		total.misses += r.misses
	}
	el := time.Since(begin)
	fmt.Printf("hits %d misses %d ratio %.4f seconds %.2f\n", total.hits, total.misses,
		float64(total.hits)/float64(total.hits+total.misses), el.Seconds())
	return nil
}

// phaser lets every connection finish its warm-up before any counts.
type phaser struct {
	mu   sync.Mutex
	left int
	done chan struct{}
}

func newPhaser(n int) *phaser { return &phaser{left: n, done: make(chan struct{})} }

func (p *phaser) arrive() {
	p.mu.Lock()
	p.left--
	if p.left == 0 {
		close(p.done)
	}
	p.mu.Unlock()
	<-p.done
}

type lazyResult struct{ hits, misses uint64 }

// lazyLoad runs warmup and then counted requests of the lazy-loading
// workload over one connection. The sets for one batch's misses go out in
// the write of the next batch's gets.
func lazyLoad(addr string, cdf workload.Zipf, rng *rand.Rand, warmup, requests uint64, batch int, phase *phaser) (lazyResult, error) {
	c, err := dial(addr, nil)
	if err != nil {
		return lazyResult{}, err
	}
	defer c.nc.Close()
	value := bytes.Repeat([]byte{'v'}, workload.MaxValue)
	var (
		res     lazyResult
		key     []byte
		ranks   = make([]uint64, 0, batch)
		pending []uint64 // misses to set with the next write
		missed  = make(map[uint64]bool, batch)
	)
	run := func(n uint64, count bool) error {
		for n > 0 {
			b := min(uint64(batch), n)
			n -= b
			for _, r := range pending {
				c.writeSet(workload.Key(key[:0], r, 16), workload.ValueSize(r), value)
			}
			ranks = ranks[:0]
			for range b {
				r := cdf.Draw(rng)
				ranks = append(ranks, r)
				c.writeGet(workload.Key(key[:0], r, 16))
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
			for range pending {
				if _, err := c.readStored(); err != nil {
					return err
				}
			}
			pending = pending[:0]
			clear(missed)
			for _, r := range ranks {
				hit, err := c.readGet()
				if err != nil {
					return err
				}
				if !hit && missed[r] {
					hit = true // set by the first miss, one at a time
				}
				if !hit {
					missed[r] = true
					pending = append(pending, r)
				}
				if count {
					if hit {
						res.hits++
					} else {
						res.misses++
					}
				}
			}
		}
		return nil
	}
	key = make([]byte, 0, 16)
	err = run(warmup, false)
	phase.arrive() // even on error, lest the others wait for ever
	if err != nil {
		return res, err
	}
	if err := run(requests, true); err != nil {
		return res, err
	}
	// Send the last sets, so the server ends in the state the workload implies.
	for _, r := range pending {
		c.writeSet(workload.Key(key[:0], r, 16), workload.ValueSize(r), value)
	}
	if err := c.w.Flush(); err != nil {
		return res, err
	}
	for range pending {
		if _, err := c.readStored(); err != nil && !errors.Is(err, io.EOF) {
			return res, err
		}
	}
	return res, nil
}
