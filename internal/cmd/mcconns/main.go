// Command mcconns measures what client connections cost a
// memcached-compatible server in resident memory, for
// scripts/bench-resources.sh. It opens connections, takes them through a few
// steps, and after each step reads the server's VmRSS from /proc/PID/status
// (so it runs on the server's machine, Linux only).
//
//	mcconns idle  -s host:port -pid PID [-conns 10000] [-settle 3s]
//	mcconns large -s host:port -pid PID [-conns 1024] [-value 1048576] [-settle 10s] [-idle 10s,30s] [-closed 10s]
//
// idle opens -conns connections and sends nothing on them; after -settle it
// reads RSS ("idle"); then it sends one "version" on each connection and
// reads the reply, and after -settle reads RSS again ("version").
//
// large first stores -conns items of -value bytes over one connection of
// its own, closes it and, -settle later, reads RSS ("items"): what the
// items themselves cost, once a garbage-collected server has returned what
// storing them left behind. Then it opens -conns connections; each in turn sets one of those
// keys again, to a value of the same size, and gets it back (checked), and
// then stays open and idle. RSS is read at each of the -idle times after
// the last get ("idle_10s", "idle_30s" …); then every connection closes, and
// RSS is read -closed later ("closed"). Bytes per connection above the
// items are (RSS − items) / conns. The connections take their turns one at
// a time, so that no more than one item is being replaced at any moment.
//
// Before opening any, both read RSS ("start"), and after opening them all
// they check with "stats" that the server counts them (curr_connections).
// The output is one "name value" line per figure, RSS in KiB: start_kib,
// idle_kib …, and conns, for the script to compute bytes per connection
// from.
//
// Opening the connections needs as many open files as -conns: raise
// `ulimit -n` first.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/internal/procstatus"
	"github.com/memcluster/memcluster/internal/subcommand"
)

// dialers is how many connections are dialled, or sent a version, at once.
const dialers = 32

func main() {
	subcommand.Main("mcconns", "mcconns idle|large -s host:port -pid PID [flags] (mcconns idle -h for flags)", map[string]func([]string) error{
		"idle":  runIdle,
		"large": runLarge,
	})
}

// server is the server under measurement: its address, its process, and a
// control connection for stats, opened before the first measurement.
type server struct {
	addr string
	pid  int
	ctl  net.Conn
	r    *bufio.Reader
}

func newServer(addr string, pid int) (*server, error) {
	if pid <= 0 {
		return nil, errors.New("-pid: the server's process id is needed")
	}
	ctl, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &server{addr: addr, pid: pid, ctl: ctl, r: bufio.NewReader(ctl)}, nil
}

// report prints the server's RSS in KiB as "name_kib value".
func (s *server) report(name string) error {
	m, err := procstatus.Read(s.pid)
	if err != nil {
		return err
	}
	fmt.Printf("%s_kib %d\n", name, m.RSS>>10)
	return nil
}

// checkConns fails unless the server's curr_connections counts at least
// want connections besides the control connection.
func (s *server) checkConns(want int) error {
	if _, err := io.WriteString(s.ctl, "stats\r\n"); err != nil {
		return err
	}
	cur := -1
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		if line == "END\r\n" {
			break
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" && f[1] == "curr_connections" {
			cur, _ = strconv.Atoi(f[2])
		}
	}
	if cur < want+1 {
		return fmt.Errorf("the server counts %d connections, want at least %d", cur, want+1)
	}
	return nil
}

// openConns dials n connections, dialers at a time.
func openConns(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	err := forEach(n, dialers, func(i int) error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("connection %d of %d: %w", i+1, n, err)
		}
		conns[i] = c
		return nil
	})
	if err != nil {
		closeAll(conns)
		return nil, err
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// forEach calls fn(0) … fn(n-1), workers at a time, and returns the errors;
// after an error the calls not yet begun are skipped.
func forEach(n, workers int, fn func(i int) error) error {
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
		errs   = make([]error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	pid := fs.Int("pid", 0, "the server's process id")
	n := fs.Int("conns", 10000, "connections to open")
	settle := fs.Duration("settle", 3*time.Second, "wait before each measurement")
	fs.Parse(args)
	s, err := newServer(*addr, *pid)
	if err != nil {
		return err
	}
	defer s.ctl.Close()
	if err := s.report("start"); err != nil {
		return err
	}
	conns, err := openConns(*addr, *n)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	time.Sleep(*settle)
	if err := s.checkConns(*n); err != nil {
		return err
	}
	if err := s.report("idle"); err != nil {
		return err
	}
	err = forEach(len(conns), dialers, func(i int) error {
		var reply [64]byte
		if _, err := io.WriteString(conns[i], "version\r\n"); err != nil {
			return err
		}
		line, err := readLine(conns[i], reply[:])
		if err != nil {
			return fmt.Errorf("version: %w", err)
		}
		if !bytes.HasPrefix(line, []byte("VERSION ")) {
			return fmt.Errorf("version: unexpected reply %q", line)
		}
		return nil
	})
	if err != nil {
		return err
	}
	time.Sleep(*settle)
	if err := s.report("version"); err != nil {
		return err
	}
	fmt.Printf("conns %d\n", *n)
	return nil
}

// readLine reads one reply line into buf, a byte at a time so that nothing
// after it is consumed, and returns it without its "\r\n".
func readLine(c net.Conn, buf []byte) ([]byte, error) {
	for n := 0; n < len(buf); {
		m, err := c.Read(buf[n : n+1])
		if err != nil {
			return nil, err
		}
		n += m
		if n >= 2 && buf[n-2] == '\r' && buf[n-1] == '\n' {
			return buf[:n-2], nil
		}
	}
	return nil, fmt.Errorf("reply longer than %d bytes: %q", len(buf), buf)
}

func runLarge(args []string) error {
	fs := flag.NewFlagSet("large", flag.ExitOnError)
	addr := fs.String("s", "127.0.0.1:11211", "server `host:port`")
	pid := fs.Int("pid", 0, "the server's process id")
	n := fs.Int("conns", 1024, "connections to open")
	size := fs.Int("value", 1<<20, "value size in bytes")
	idle := fs.String("idle", "10s,30s", "comma-separated `times` after the last get at which to read RSS")
	closed := fs.Duration("closed", 10*time.Second, "wait after closing the connections before the last measurement")
	settle := fs.Duration("settle", 10*time.Second, "wait after storing the items before measuring them: a garbage-collected server returns what storing them left behind")
	fs.Parse(args)
	var marks []time.Duration
	for f := range strings.SplitSeq(*idle, ",") {
		d, err := time.ParseDuration(f)
		if err != nil {
			return fmt.Errorf("-idle: %w", err)
		}
		if len(marks) > 0 && d < marks[len(marks)-1] {
			return fmt.Errorf("-idle: %v comes before %v", d, marks[len(marks)-1])
		}
		marks = append(marks, d)
	}
	s, err := newServer(*addr, *pid)
	if err != nil {
		return err
	}
	defer s.ctl.Close()
	if err := s.report("start"); err != nil {
		return err
	}
	value := bytes.Repeat([]byte{'v'}, *size)
	key := func(i int) string { return "mcconns:large:" + strconv.Itoa(i) }
	if err := storeItems(*addr, *n, key, value); err != nil {
		return err
	}
	time.Sleep(*settle)
	if err := s.report("items"); err != nil {
		return err
	}
	conns, err := openConns(*addr, *n)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	r := bufio.NewReaderSize(nil, 64<<10)
	for i, c := range conns {
		r.Reset(c)
		if err := setGet(c, r, key(i), value); err != nil {
			return err
		}
	}
	idleSince := time.Now()
	if err := s.checkConns(*n); err != nil {
		return err
	}
	for _, d := range marks {
		time.Sleep(time.Until(idleSince.Add(d)))
		if err := s.report("idle_" + d.String()); err != nil {
			return err
		}
	}
	closeAll(conns)
	time.Sleep(*closed)
	if err := s.report("closed"); err != nil {
		return err
	}
	fmt.Printf("conns %d\n", *n)
	return nil
}

// storeItems sets key(0) … key(n-1) to value over a connection of its own,
// and closes it.
func storeItems(addr string, n int, key func(int) string, value []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 64<<10)
	r := bufio.NewReader(c)
	for i := range n {
		fmt.Fprintf(w, "set %s 0 0 %d\r\n", key(i), len(value))
		w.Write(value)
		w.WriteString("\r\n")
		if err := w.Flush(); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
			return fmt.Errorf("set %s: reply %q (%v), want STORED", key(i), line, err)
		}
	}
	return nil
}

// setGet sets key to value over c and gets it back, checking the reply. The
// replies end where the requests' do, so r has read nothing beyond them.
func setGet(c net.Conn, r *bufio.Reader, key string, value []byte) error {
	req := make([]byte, 0, len(value)+2*len(key)+64)
	req = fmt.Appendf(req, "set %s 0 0 %d\r\n", key, len(value))
	req = append(req, value...)
	req = fmt.Appendf(req, "\r\nget %s\r\n", key)
	if _, err := c.Write(req); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	if line != "STORED\r\n" {
		return fmt.Errorf("set %s: unexpected reply %q", key, line)
	}
	want := fmt.Sprintf("VALUE %s 0 %d\r\n", key, len(value))
	if line, err = r.ReadString('\n'); err != nil || line != want {
		return fmt.Errorf("get %s: reply %q (%v), want %q", key, line, err, want)
	}
	got := make([]byte, len(value)+len("\r\nEND\r\n"))
	if _, err := io.ReadFull(r, got); err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if !bytes.Equal(got[:len(value)], value) || string(got[len(value):]) != "\r\nEND\r\n" {
		return fmt.Errorf("get %s: the value read back differs from the one set", key)
	}
	return nil
}
