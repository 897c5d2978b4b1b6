package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/internal/workload"
)

// kind counts what one kind of client did.
type kind struct {
	name     string
	clients  int
	conns    atomic.Int64 // connections opened
	refused  atomic.Int64 // dials that failed
	requests atomic.Int64 // requests sent (whole, or begun and left unfinished)
	read     atomic.Int64 // reply bytes read
	closed   atomic.Int64 // connections the server closed or reset
	timeouts atomic.Int64 // replies not come in replyTimeout (well-behaved clients)
	odd      atomic.Int64 // replies other than the one expected
}

// load is one run of the mixed load: its settings and its counters.
type load struct {
	addr  string
	end   time.Time
	zipf  workload.Zipf
	cycle time.Duration

	wellPeriod time.Duration
	promise    int
	halfGet    int
	big        []byte
	repeat     int
	readRate   int
	longLine   int
	longEvery  time.Duration
	churnRate  float64

	well, stalledSet, stalledGet, trickle, nonReader, multiGet, longGet, churn kind
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	duration := fs.Duration("duration", time.Minute, "how long to run")
	keys := fs.Uint64("keys", 100000, "size of the well-behaved clients' key space")
	cycle := fs.Duration("cycle", 30*time.Second, "how long a stalled, non-reading or multi-get connection lives")
	l := &load{}
	fs.IntVar(&l.well.clients, "well", 4, "well-behaved clients")
	fs.DurationVar(&l.wellPeriod, "well-period", time.Millisecond, "time between a well-behaved client's requests")
	stalled := fs.Int("stalled", 8, "stalled clients, half with a set line, half with half a get line")
	fs.IntVar(&l.promise, "promise", 1000000, "data length a stalled set promises")
	fs.IntVar(&l.halfGet, "half-get", 64<<10, "bytes of a stalled client's unfinished get line")
	fs.IntVar(&l.trickle.clients, "trickle", 2, "slow clients sending a byte a second, never reading")
	fs.IntVar(&l.nonReader.clients, "nonreaders", 2, "slow clients sending gets of -big values as fast as they can, never reading")
	fs.IntVar(&l.multiGet.clients, "multiget", 2, "abusive clients asking for one -big item -repeat times in one get")
	bigSize := fs.Int("big", 512<<10, "size of the large values the slow and abusive clients ask for")
	fs.IntVar(&l.repeat, "repeat", 400, "keys in an abusive multi-get")
	fs.IntVar(&l.readRate, "read-rate", 1<<20, "bytes a second an abusive multi-get client reads")
	fs.IntVar(&l.longGet.clients, "long", 2, "abusive clients sending -long-line get lines")
	fs.IntVar(&l.longLine, "long-line", 4<<20, "bytes of an abusive get line of missing keys")
	fs.DurationVar(&l.longEvery, "long-every", 5*time.Second, "time between a -long client's get lines")
	fs.IntVar(&l.churn.clients, "churn", 2, "clients opening and closing connections")
	fs.Float64Var(&l.churnRate, "churn-rate", 50, "connections a second each churn client opens")
	fs.Parse(args)
	l.addr, l.cycle = *addr, *cycle
	if *keys < 2 || *bigSize < 1 || l.repeat < 1 || l.readRate < 1 || l.churnRate <= 0 || l.wellPeriod <= 0 || l.longEvery <= 0 || l.cycle <= 0 {
		return errors.New("load: -keys must be at least 2, and the sizes, rates and periods positive")
	}
	l.zipf = workload.NewZipf(*keys, 0.99)
	l.big = bytes.Repeat([]byte{'b'}, *bigSize)
	l.stalledSet.clients = (*stalled + 1) / 2
	l.stalledGet.clients = *stalled / 2
	l.end = time.Now().Add(*duration)

	var wg sync.WaitGroup
	start := func(k *kind, name string, fn func(i int)) {
		k.name = name
		for i := range k.clients {
			wg.Go(func() { fn(i) })
		}
	}
	start(&l.well, "well-behaved", l.runWellBehaved)
	start(&l.stalledSet, "stalled set", l.runStalledSet)
	start(&l.stalledGet, "stalled get", l.runStalledGet)
	start(&l.trickle, "slow, a byte/s", l.runTrickle)
	start(&l.nonReader, "slow, never reads", l.runNonReader)
	start(&l.multiGet, "abusive multi-get", l.runMultiGet)
	start(&l.longGet, "abusive long line", l.runLongGet)
	start(&l.churn, "churn", l.runChurn)
	wg.Wait()

	fmt.Printf("%-20s %7s %7s %7s %9s %12s %7s %8s %7s\n",
		"# client", "clients", "conns", "refused", "requests", "read_bytes", "closed", "timeouts", "odd")
	for _, k := range []*kind{&l.well, &l.stalledSet, &l.stalledGet, &l.trickle, &l.nonReader, &l.multiGet, &l.longGet, &l.churn} {
		fmt.Printf("%-20s %7d %7d %7d %9d %12d %7d %8d %7d\n", k.name, k.clients, k.conns.Load(), k.refused.Load(),
			k.requests.Load(), k.read.Load(), k.closed.Load(), k.timeouts.Load(), k.odd.Load())
	}
	w := &l.well
	if w.refused.Load()+w.closed.Load()+w.timeouts.Load()+w.odd.Load() > 0 {
		return fmt.Errorf("load: the well-behaved clients had %d connections refused, %d closed, %d replies timed out (%v) and %d unexpected",
			w.refused.Load(), w.closed.Load(), w.timeouts.Load(), replyTimeout, w.odd.Load())
	}
	return nil
}

// over reports whether the run has ended.
func (l *load) over() bool { return !time.Now().Before(l.end) }

// sleep sleeps d, or until the run ends.
func (l *load) sleep(d time.Duration) { time.Sleep(min(d, time.Until(l.end))) }

// earliest returns the earliest of ts.
func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}

// dial opens a connection for k, whose I/O fails when the run ends. (A
// deadline set later must not be later than l.end.)
func (l *load) dial(k *kind) (net.Conn, bool) {
	nc, err := net.Dial("tcp", l.addr)
	if err != nil {
		k.refused.Add(1)
		l.sleep(100 * time.Millisecond) // and do not spin on a refusing server
		return nil, false
	}
	k.conns.Add(1)
	nc.SetDeadline(l.end)
	return nc, true
}

// ended counts err, which ended one of k's connections, as the server's
// doing unless it is a deadline of the client's own or the run is over.
func (l *load) ended(k *kind, err error) {
	if err == nil || l.over() {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return
	}
	k.closed.Add(1)
}

// hold reads and discards what the server sends on nc until until, or the
// end of the run, and counts it.
func (l *load) hold(k *kind, nc net.Conn, until time.Time) {
	nc.SetReadDeadline(earliest(until, l.end))
	n, err := io.Copy(io.Discard, nc)
	k.read.Add(n)
	if err == nil {
		err = io.EOF // io.Copy's nil is the server's close
	}
	l.ended(k, err)
}

// bigKey is the key of the i-th large item: each slow or abusive client
// has one of its own (the trickle clients first, then the non-readers, then
// the multi-gets), which it sets on each new connection, lest the
// well-behaved clients' sets have evicted it.
func bigKey(i int) string { return "soak:big:" + strconv.Itoa(i) }

// storeBig sets the i-th large item over nc.
func (l *load) storeBig(k *kind, nc net.Conn, r *bufio.Reader, i int) bool {
	req := fmt.Appendf(nil, "set %s 0 0 %d\r\n", bigKey(i), len(l.big))
	req = append(append(req, l.big...), "\r\n"...)
	k.requests.Add(1)
	if _, err := nc.Write(req); err != nil {
		l.ended(k, err)
		return false
	}
	line, err := r.ReadString('\n')
	k.read.Add(int64(len(line)))
	if err != nil {
		l.ended(k, err)
		return false
	}
	if line != "STORED\r\n" {
		k.odd.Add(1)
	}
	return true
}

// runWellBehaved is the probe's workload, unmeasured. After an error it
// starts afresh on a new connection.
func (l *load) runWellBehaved(i int) {
	k := &l.well
	c := newWellBehaved(l.addr, l.zipf, uint64(100+i))
	defer c.close()
	for !l.over() {
		dialled := c.nc == nil
		_, err := c.step(earliest(time.Now().Add(replyTimeout), l.end))
		switch {
		case l.over():
			return
		case errors.Is(err, errDial):
			k.refused.Add(1)
			l.sleep(100 * time.Millisecond)
			continue
		case dialled:
			k.conns.Add(1)
		}
		k.requests.Add(1)
		switch {
		case err == nil:
		case isTimeout(err):
			k.timeouts.Add(1)
		case errors.Is(err, errOdd):
			k.odd.Add(1)
		default:
			k.closed.Add(1)
		}
		l.sleep(l.wellPeriod)
	}
}

// runStalledSet sends a set line promising l.promise bytes and nothing
// more, on a new connection each cycle.
func (l *load) runStalledSet(i int) {
	k := &l.stalledSet
	line := fmt.Sprintf("set soak:stalled:%d 0 0 %d\r\n", i, l.promise)
	for !l.over() {
		l.stall(k, line)
	}
}

// runStalledGet sends half a get line, l.halfGet bytes of keys and no end,
// on a new connection each cycle.
func (l *load) runStalledGet(i int) {
	k := &l.stalledGet
	line := []byte("get")
	for j := 0; len(line) < l.halfGet; j++ {
		line = workload.Key(append(line, ' '), uint64(j), keyLen)
	}
	for !l.over() {
		l.stall(k, string(line[:l.halfGet]))
	}
}

// stall sends req on a new connection and holds it for a cycle.
func (l *load) stall(k *kind, req string) {
	nc, ok := l.dial(k)
	if !ok {
		return
	}
	defer nc.Close()
	k.requests.Add(1)
	if _, err := io.WriteString(nc, req); err != nil {
		l.ended(k, err)
		return
	}
	l.hold(k, nc, time.Now().Add(l.cycle))
}

// runTrickle sends gets of a large item one byte a second and never reads
// the replies, on one connection for the whole run (a new one if the server
// closes it).
func (l *load) runTrickle(i int) {
	k := &l.trickle
	req := "get " + bigKey(i) + "\r\n"
	for !l.over() {
		nc, ok := l.dial(k)
		if !ok {
			continue
		}
		if !l.storeBig(k, nc, bufio.NewReader(nc), i) {
			nc.Close()
			continue
		}
		for j := 0; !l.over(); j++ {
			if j%len(req) == 0 {
				k.requests.Add(1)
			}
			if _, err := nc.Write([]byte{req[j%len(req)]}); err != nil {
				l.ended(k, err)
				break
			}
			l.sleep(time.Second)
		}
		nc.Close()
	}
}

// runNonReader sends gets of a large item as fast as the socket takes them
// and never reads the replies; once a write has waited a second, it holds
// the connection, still not reading, until the cycle ends.
func (l *load) runNonReader(i int) {
	k := &l.nonReader
	big := l.trickle.clients + i
	req := bytes.Repeat([]byte("get "+bigKey(big)+"\r\n"), 16)
	for !l.over() {
		nc, ok := l.dial(k)
		if !ok {
			continue
		}
		cycleEnd := time.Now().Add(l.cycle)
		if l.storeBig(k, nc, bufio.NewReader(nc), big) {
			for time.Now().Before(cycleEnd) {
				nc.SetWriteDeadline(earliest(time.Now().Add(time.Second), cycleEnd, l.end))
				n, err := nc.Write(req)
				k.requests.Add(int64(n * 16 / len(req)))
				if err != nil {
					l.ended(k, err)
					break
				}
			}
			l.sleep(time.Until(cycleEnd))
		}
		nc.Close()
	}
}

// runMultiGet asks for one large item l.repeat times in one get line and
// reads the reply at l.readRate bytes a second, until it is whole or the
// cycle ends; then it starts over on a new connection.
func (l *load) runMultiGet(i int) {
	k := &l.multiGet
	big := l.trickle.clients + l.nonReader.clients + i
	key := bigKey(big)
	line := []byte("get")
	for range l.repeat {
		line = append(append(line, ' '), key...)
	}
	line = append(line, "\r\n"...)
	value := fmt.Sprintf("VALUE %s 0 %d\r\n", key, len(l.big))
	whole := int64(l.repeat)*int64(len(value)+len(l.big)+2) + int64(len("END\r\n"))
	buf := make([]byte, 64<<10)
	for !l.over() {
		nc, ok := l.dial(k)
		if !ok {
			continue
		}
		cycleEnd := time.Now().Add(l.cycle)
		if l.storeBig(k, nc, bufio.NewReader(nc), big) {
			k.requests.Add(1)
			_, err := nc.Write(line)
			nc.SetReadDeadline(earliest(cycleEnd, l.end))
			began := time.Now()
			var got int64
			for err == nil && got < whole {
				var n int
				n, err = nc.Read(buf[:min(int64(len(buf)), whole-got)])
				got += int64(n)
				// Keep to readRate on average since the reply began.
				l.sleep(time.Duration(float64(got)/float64(l.readRate)*float64(time.Second)) - time.Since(began))
			}
			k.read.Add(got)
			l.ended(k, err)
		}
		nc.Close()
	}
}

// runLongGet sends a get line of l.longLine bytes of missing keys every
// l.longEvery and reads the reply, on one connection while the server keeps
// it.
func (l *load) runLongGet(i int) {
	k := &l.longGet
	line := []byte("get")
	for j := 0; len(line) < l.longLine-keyLen-3; j++ {
		line = append(append(line, " soak:miss:"...), strconv.Itoa(i*10_000_000+j)...)
	}
	line = append(line, "\r\n"...)
	for !l.over() {
		nc, ok := l.dial(k)
		if !ok {
			continue
		}
		r := bufio.NewReader(nc)
		for !l.over() {
			next := time.Now().Add(l.longEvery)
			k.requests.Add(1)
			if _, err := nc.Write(line); err != nil {
				l.ended(k, err)
				break
			}
			nc.SetReadDeadline(earliest(time.Now().Add(replyTimeout), l.end))
			reply, err := r.ReadString('\n')
			k.read.Add(int64(len(reply)))
			if err != nil {
				l.ended(k, err)
				break
			}
			if reply != "END\r\n" {
				k.odd.Add(1)
				break // what follows is unknown: start afresh
			}
			l.sleep(time.Until(next))
		}
		nc.Close()
	}
}

// runChurn opens l.churnRate connections a second; each sends one get and
// reads its reply, or sends half a set, or nothing, and closes.
func (l *load) runChurn(i int) {
	k := &l.churn
	rng := rand.New(rand.NewPCG(uint64(i), 0xc4a2))
	every := time.Duration(float64(time.Second) / l.churnRate)
	halfSet := fmt.Sprintf("set soak:churn:%d 0 0 1000\r\n%s", i, bytes.Repeat([]byte{'c'}, 500))
	key := make([]byte, 0, keyLen)
	for !l.over() {
		next := time.Now().Add(every)
		nc, ok := l.dial(k)
		if !ok {
			continue
		}
		switch rng.IntN(3) {
		case 0:
			rank := l.zipf.Draw(rng)
			k.requests.Add(1)
			req := append(append([]byte("get "), workload.Key(key[:0], rank, keyLen)...), "\r\n"...)
			if _, err := nc.Write(req); err != nil {
				l.ended(k, err)
				break
			}
			r := bufio.NewReader(nc)
			if _, err := readGetReply(r, workload.ValueSize(rank)); err != nil {
				var ne net.Error
				if errors.As(err, &ne) || errors.Is(err, io.EOF) {
					l.ended(k, err)
				} else {
					k.odd.Add(1)
				}
			}
		case 1:
			k.requests.Add(1)
			if _, err := io.WriteString(nc, halfSet); err != nil {
				l.ended(k, err)
			}
		}
		nc.Close()
		l.sleep(time.Until(next))
	}
}
