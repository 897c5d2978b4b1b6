// Package servertest starts memcached and memcluster processes for tests and
// talks to them byte by byte.
//
// Every server started here belongs to one test: it listens on a port (or a
// unix socket) of its own, the helper waits until it accepts connections
// (polling, with a deadline), and t.Cleanup kills it. When the test failed, the
// server's stdout and stderr are copied into the test log.
//
// Missing tools are failures, not skips: a test that needs memcached on a
// machine without it fails with a message saying what to install.
package servertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
)

// MemcachedPath is the memcached binary StartMemcached runs.
const MemcachedPath = "/usr/bin/memcached"

// StartTimeout bounds how long a server may take to accept its first
// connection.
var StartTimeout = 15 * time.Second

// StopTimeout bounds how long Stop waits for a server to exit after SIGTERM
// before it kills it.
var StopTimeout = 10 * time.Second

// Server is a server process started for one test.
type Server struct {
	// Name is "memcached" or "memcluster".
	Name string
	// Network is "tcp" or "unix".
	Network string
	// Addr is "127.0.0.1:port" for TCP, or the socket path for a unix
	// socket; it is what gomemcache's memcache.New takes.
	Addr string
	// Port is the TCP port, or 0 for a unix socket.
	Port int
	// SocketPath is the unix socket path (-s), or "" for TCP.
	SocketPath string
	// Args is the full command line the server was started with, without
	// the program name.
	Args []string

	t   testing.TB
	bin string
	// fileLimit, if positive, is the limit on open files (soft and hard)
	// the process starts under.
	fileLimit int
	cmd       *exec.Cmd
	out       *testutil.LockedBuffer
	done      chan struct{} // closed when the process has exited
	// state and waitErr are set before done is closed.
	state   *os.ProcessState
	waitErr error
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the caller binds it; the Start
// functions retry with a new port when that happens.
//
// Ports come from below the kernel's ephemeral range (where clients'
// connections take their local ports, which would collide with a server
// binding one later), and none is handed out twice by one test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := portRange()
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if ports.used[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		ports.used[p] = true
		return p
	}
	// Fall back on a port the kernel chooses.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: finding a free port: %v", err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	ports.used[p] = true
	return p
}

var ports struct {
	mu   sync.Mutex // guards used
	used map[int]bool
}

// portRange returns the range FreePort draws from, [lo, hi): up to 12768
// ports just below the kernel's ephemeral range.
func portRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if first, err := strconv.Atoi(f[0]); err == nil && first > 2048 {
				hi = first
			}
		}
	}
	lo = max(1024, hi-12768)
	return lo, hi
}

// SocketPath returns a fresh path for a unix socket, in a short temporary
// directory removed when the test ends (t.TempDir's paths can exceed the
// 108-byte limit of a socket address).
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mcsock")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir + "/s.sock"
}

// StartMemcached runs /usr/bin/memcached -U 0 -l 127.0.0.1 -p PORT plus args
// (and -u root when running as root, which memcached requires), waits until
// it accepts connections and stops it when the test ends. If args hold
// "-s PATH", memcached listens on that unix socket instead of TCP (-p and -l
// are then not passed).
func StartMemcached(t testing.TB, args ...string) *Server {
	t.Helper()
	return StartWithFileLimit(t, "memcached", 0, args...)
}

// StartMemcluster runs the memcluster daemon with the same arguments as
// StartMemcached gives memcached (-U 0 -l 127.0.0.1 -p PORT plus args; no
// -u), waits until it accepts connections and stops it when the test ends.
// The binary is $MEMCLUSTER_BIN if set, otherwise ./cmd/memcluster built once
// per test binary with `go build`.
func StartMemcluster(t testing.TB, args ...string) *Server {
	t.Helper()
	return StartWithFileLimit(t, "memcluster", 0, args...)
}

// StartMemclusterBinary is StartMemcluster with the daemon at bin, for a
// test that built the daemon itself (with other link-time defaults, say)
// rather than take MemclusterBinary's.
func StartMemclusterBinary(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	return startLimited(t, "memcluster", bin, nil, args, 0)
}

// Start starts the named server, "memcached" or "memcluster".
func Start(t testing.TB, name string, args ...string) *Server {
	t.Helper()
	return StartWithFileLimit(t, name, 0, args...)
}

// StartWithFileLimit is Start with the process's limit on open files, soft
// and hard, set to n first (as `ulimit -n n` does), unless n is 0.
func StartWithFileLimit(t testing.TB, name string, n int, args ...string) *Server {
	t.Helper()
	var bin string
	var base []string
	switch name {
	case "memcached":
		if _, err := os.Stat(MemcachedPath); err != nil {
			t.Fatalf("servertest: memcached is not installed (%v); install it with `apt-get install memcached`", err)
		}
		bin = MemcachedPath
		if os.Geteuid() == 0 {
			base = append(base, "-u", "root")
		}
	case "memcluster":
		var err error
		if bin, err = MemclusterBinary(); err != nil {
			t.Fatalf("servertest: %v", err)
		}
	default:
		t.Fatalf("servertest: unknown server %q", name)
	}
	return startLimited(t, name, bin, base, args, n)
}

// unixSocketArg returns the path given with -s or --unix-socket, if any.
func unixSocketArg(args []string) string {
	for i, a := range args {
		switch {
		case (a == "-s" || a == "--unix-socket") && i+1 < len(args):
			return args[i+1]
		case strings.HasPrefix(a, "--unix-socket="):
			return strings.TrimPrefix(a, "--unix-socket=")
		case strings.HasPrefix(a, "-s") && len(a) > 2 && !strings.HasPrefix(a, "--"):
			return a[2:]
		}
	}
	return ""
}

const maxStartAttempts = 5

func startLimited(t testing.TB, name, bin string, base, args []string, fileLimit int) *Server {
	t.Helper()
	sock := unixSocketArg(args)
	var lastErr error
	for attempt := 1; attempt <= maxStartAttempts; attempt++ {
		s := &Server{Name: name, t: t, bin: bin, fileLimit: fileLimit}
		full := []string{"-U", "0"}
		full = append(full, base...)
		if sock != "" {
			s.Network, s.Addr, s.SocketPath = "unix", sock, sock
		} else {
			s.Port = FreePort(t)
			s.Network = "tcp"
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
			full = append(full, "-l", "127.0.0.1", "-p", strconv.Itoa(s.Port))
		}
		s.Args = append(full, args...)
		retry, err := s.launch()
		if err == nil {
			t.Cleanup(s.cleanup)
			return s
		}
		lastErr = err
		if !retry || sock != "" {
			break
		}
		t.Logf("servertest: %s did not get port %d (attempt %d): %v; retrying", name, s.Port, attempt, err)
	}
	t.Fatalf("servertest: %v", lastErr)
	return nil
}

// launch starts the process and waits until it accepts connections. It
// reports whether a failure may be a lost race for the port.
func (s *Server) launch() (retry bool, err error) {
	s.out = &testutil.LockedBuffer{}
	s.cmd = exec.Command(s.bin, s.Args...)
	if s.fileLimit > 0 {
		// The shell sets the limit and becomes the server (exec), which
		// keeps its process ID.
		script := "ulimit -n " + strconv.Itoa(s.fileLimit) + ` && exec "$0" "$@"`
		s.cmd = exec.Command("/bin/sh", append([]string{"-c", script, s.bin}, s.Args...)...)
	}
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return false, fmt.Errorf("starting %s: %v", s.bin, err)
	}
	s.done = make(chan struct{})
	go func() {
		s.waitErr = s.cmd.Wait()
		s.state = s.cmd.ProcessState
		close(s.done)
	}()

	deadline := time.Now().Add(StartTimeout)
	pause := 2 * time.Millisecond
	for {
		select {
		case <-s.done:
			out := s.out.String()
			return portInUse(out), fmt.Errorf("%s exited before accepting connections (%v); command: %s %s\noutput:\n%s",
				s.Name, s.waitErr, s.bin, strings.Join(s.Args, " "), out)
		default:
		}
		if s.accepting() {
			return false, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return false, fmt.Errorf("%s did not accept connections on %s within %v; command: %s %s\noutput:\n%s",
				s.Name, s.Addr, StartTimeout, s.bin, strings.Join(s.Args, " "), s.out.String())
		}
		select {
		case <-s.done:
		case <-time.After(pause):
		}
		if pause < 50*time.Millisecond {
			pause *= 2
		}
	}
}

// accepting reports whether this process accepts connections at s.Addr.
// For TCP it also checks, where /proc allows, that the listening socket is
// this process's and not another's that took the port.
func (s *Server) accepting() bool {
	c, err := net.DialTimeout(s.Network, s.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	if s.Network == "tcp" {
		if owns, known := ownsTCPListener(s.cmd.Process.Pid, s.Port); known && !owns {
			return false
		}
	}
	// A process that exited answers nothing: whoever did is another.
	return !s.Exited()
}

func portInUse(out string) bool {
	out = strings.ToLower(out)
	return strings.Contains(out, "address already in use") || strings.Contains(out, "bind")
}

// PID returns the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Socket is one of a process's IP sockets, as /proc/net lists it.
type Socket struct {
	// Proto is the /proc/net file that lists it: "tcp", "tcp6", "udp" or
	// "udp6".
	Proto string
	// Local is the address the socket is bound to, IPv4 unmapped.
	Local netip.AddrPort
	// Listening is set for a TCP socket in the LISTEN state.
	Listening bool
}

// Sockets returns the TCP and UDP sockets, IPv4 and IPv6, the server's
// process holds open. Only Linux, whose /proc lists them, can tell; other
// systems return an error.
func (s *Server) Sockets() ([]Socket, error) { return processSockets(s.PID()) }

// Output returns what the server has written to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// Exited reports whether the process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit by itself (for example
// after a shutdown command) and returns its state, or nil if it is still
// running.
func (s *Server) Wait(timeout time.Duration) *os.ProcessState {
	select {
	case <-s.done:
		return s.state
	case <-time.After(timeout):
		return nil
	}
}

// Stop sends SIGTERM and waits for the process to exit, returning its exit
// status. A process still running after StopTimeout is killed and the test
// marked failed.
func (s *Server) Stop() *os.ProcessState {
	s.t.Helper()
	if s.Exited() {
		return s.state
	}
	if err := s.cmd.Process.Signal(termSignal); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("servertest: SIGTERM to %s: %v", s.Name, err)
	}
	if st := s.Wait(StopTimeout); st != nil {
		return st
	}
	s.t.Errorf("servertest: %s did not exit within %v of SIGTERM; killing it", s.Name, StopTimeout)
	return s.kill()
}

// Kill kills the process (SIGKILL) and waits for it to exit.
func (s *Server) Kill() *os.ProcessState { return s.kill() }

func (s *Server) kill() *os.ProcessState {
	if s.Exited() {
		return s.state
	}
	s.cmd.Process.Kill()
	<-s.done
	return s.state
}

func (s *Server) cleanup() {
	s.kill()
	if s.t.Failed() {
		s.t.Logf("servertest: %s %s output:\n%s", s.bin, strings.Join(s.Args, " "), s.out.String())
	}
}

// Dial opens a connection to the server, failing the test if it cannot.
func (s *Server) Dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(s.Network, s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("servertest: dialing %s at %s: %v", s.Name, s.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
