// Command mcforwardbench measures what forwarding costs: it starts three
// memcluster daemons with --forward, stores keys that one of them (the
// owner) owns, and then, in alternating rounds, reads them with the same
// load sent to the owner itself and to another node (the entry), which
// forwards each request to the owner. For each round it prints
// throughput, p50 and p99 latency, each daemon's CPU per request (from
// /proc/<pid>/stat) and the load generator's share of its core, which
// says whether the generator, not the servers, set the pace.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/memcluster/memcluster/ring"
)

func main() {
	bin := flag.String("bin", "bin/memcluster", "the memcluster daemon")
	rounds := flag.Int("rounds", 5, "rounds of each target, alternating")
	dur := flag.Duration("dur", 5*time.Second, "length of a round")
	conns := flag.Int("conns", 8, "concurrent connections, one request in flight each")
	nkeys := flag.Int("keys", 1000, "keys read, all owned by the owner")
	size := flag.Int("size", 100, "value size in bytes")
	flag.Parse()

	nodes := startNodes(*bin)
	defer func() {
		for _, n := range nodes {
			n.cmd.Process.Kill()
			n.cmd.Wait()
		}
	}()
	r, err := ring.New(waitAgree(nodes))
	if err != nil {
		log.Fatal(err)
	}
	entry, owner := nodes[0], nodes[1]
	var keys []string
	for i := 0; len(keys) < *nkeys; i++ {
		k := "fwd-" + strconv.Itoa(i)
		if r.OwnerString(k).Addr() == owner.addr {
			keys = append(keys, k)
		}
	}
	fill(owner.addr, keys, *size)

	fmt.Printf("%d connections, one get in flight each, %d-byte values, %v rounds; entry %s forwards to owner %s\n",
		*conns, *size, *dur, entry.addr, owner.addr)
	fmt.Printf("%-10s %5s %10s %8s %8s %14s %14s %10s\n", "target", "round", "gets/s", "p50_us", "p99_us", "entry_us/get", "owner_us/get", "loadgen%")
	type sum struct{ rate, p99, cpu []float64 }
	sums := map[string]*sum{"owner": {}, "forwarded": {}}
	for round := 1; round <= *rounds; round++ {
		for _, target := range []string{"owner", "forwarded"} {
			addr := owner.addr
			if target == "forwarded" {
				addr = entry.addr
			}
			e0, o0 := cpuTicks(entry.cmd.Process.Pid), cpuTicks(owner.cmd.Process.Pid)
			var ru0 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			n, lat := load(addr, keys, *conns, *dur)
			var ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			e1, o1 := cpuTicks(entry.cmd.Process.Pid), cpuTicks(owner.cmd.Process.Pid)
			tick := 1e6 / 100.0 // µs per clock tick (USER_HZ 100)
			genCPU := float64(tv(ru1.Utime)+tv(ru1.Stime)-tv(ru0.Utime)-tv(ru0.Stime)) / float64(dur.Microseconds()) * 100
			p50, p99 := pct(lat, 50), pct(lat, 99)
			eu, ou := float64(e1-e0)*tick/float64(n), float64(o1-o0)*tick/float64(n)
			fmt.Printf("%-10s %5d %10.0f %8.0f %8.0f %14.1f %14.1f %10.0f\n", target, round, float64(n)/dur.Seconds(), p50, p99, eu, ou, genCPU)
			s := sums[target]
			s.rate = append(s.rate, float64(n)/dur.Seconds())
			s.p99 = append(s.p99, p99)
			s.cpu = append(s.cpu, eu+ou)
		}
	}
	med := func(v []float64) float64 { v = slices.Clone(v); sort.Float64s(v); return v[len(v)/2] }
	o, f := sums["owner"], sums["forwarded"]
	fmt.Printf("\nmedians: owner %.0f gets/s, p99 %.0f us, %.1f us CPU/get (both nodes); forwarded %.0f gets/s, p99 %.0f us, %.1f us CPU/get\n",
		med(o.rate), med(o.p99), med(o.cpu), med(f.rate), med(f.p99), med(f.cpu))
	fmt.Printf("forwarded/owner: throughput %.2fx, p99 +%.0f us, CPU per get %.2fx\n",
		med(f.rate)/med(o.rate), med(f.p99)-med(o.p99), med(f.cpu)/med(o.cpu))
}

type daemon struct {
	cmd    *exec.Cmd
	addr   string
	gossip string
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startNodes(bin string) []*daemon {
	var nodes []*daemon
	var seeds []string
	for i := range 3 {
		d := &daemon{addr: "127.0.0.1:" + strconv.Itoa(freePort()), gossip: "127.0.0.1:" + strconv.Itoa(freePort())}
		_, port, _ := net.SplitHostPort(d.addr)
		args := []string{"-l", "127.0.0.1", "-p", port, "--name", "n" + strconv.Itoa(i), "--gossip-addr", d.gossip, "--forward"}
		if len(seeds) > 0 {
			args = append(args, "--join", strings.Join(seeds, ","))
		}
		d.cmd = exec.Command(bin, args...)
		d.cmd.Stderr = os.Stderr
		if err := d.cmd.Start(); err != nil {
			log.Fatal(err)
		}
		nodes = append(nodes, d)
		seeds = append(seeds, d.gossip)
	}
	return nodes
}

// waitAgree waits until every node lists all three, and returns them.
func waitAgree(nodes []*daemon) []ring.Member {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var first []ring.Member
		agree := true
		for _, n := range nodes {
			ms := clusterMembers(n.addr)
			if len(ms) != len(nodes) || (first != nil && !slices.Equal(ms, first)) {
				agree = false
				break
			}
			first = ms
		}
		if agree {
			return first
		}
		time.Sleep(200 * time.Millisecond)
	}
	log.Fatal("the nodes did not agree within 20 s")
	return nil
}

func clusterMembers(addr string) []ring.Member {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "config get cluster\r\n")
	_, members, err := ring.ParseClusterConfig(bufio.NewReader(c))
	if err != nil {
		return nil
	}
	slices.SortFunc(members, func(a, b ring.Member) int { return strings.Compare(a.Entry(), b.Entry()) })
	return members
}

func fill(addr string, keys []string, size int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	w, r := bufio.NewWriter(c), bufio.NewReader(c)
	val := strings.Repeat("x", size)
	for _, k := range keys {
		fmt.Fprintf(w, "set %s 0 0 %d noreply\r\n%s\r\n", k, size, val)
	}
	w.WriteString("mn\r\n")
	w.Flush()
	if line, err := r.ReadString('\n'); err != nil || line != "MN\r\n" {
		log.Fatalf("filling %s: %q %v", addr, line, err)
	}
}

// load runs conns connections getting keys from addr, one request in flight
// each, for d, and returns the gets answered and their latencies in µs.
func load(addr string, keys []string, conns int, d time.Duration) (int, []float64) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []float64
		total atomic.Int64
	)
	end := time.Now().Add(d)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				log.Fatal(err)
			}
			defer c.Close()
			w, r := bufio.NewWriter(c), bufio.NewReader(c)
			lat := make([]float64, 0, 1<<16)
			for j := i; time.Now().Before(end); j++ {
				k := keys[j%len(keys)]
				t0 := time.Now()
				w.WriteString("get " + k + "\r\n")
				w.Flush()
				line, err := r.ReadSlice('\n')
				if err != nil {
					log.Fatal(err)
				}
				f := strings.Fields(string(line))
				if len(f) != 4 || f[0] != "VALUE" {
					log.Fatalf("get %s: %q", k, line)
				}
				n, _ := strconv.Atoi(f[3])
				if _, err := r.Discard(n + 2); err != nil {
					log.Fatal(err)
				}
				if line, err := r.ReadSlice('\n'); err != nil || string(line) != "END\r\n" {
					log.Fatalf("get %s: %q after the value (%v)", k, line, err)
				}
				lat = append(lat, float64(time.Since(t0).Microseconds()))
			}
			total.Add(int64(len(lat)))
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return int(total.Load()), all
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[min(len(v)-1, int(float64(len(v))*p/100))]
}

func tv(t syscall.Timeval) int64 { return t.Sec*1e6 + t.Usec }

// cpuTicks returns the user and system clock ticks of pid, from
// /proc/<pid>/stat.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		log.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
