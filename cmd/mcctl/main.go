// Command mcctl is the operator's CLI for a memcluster cluster: it finds the
// cluster from seed nodes with `config get cluster` (ElastiCache's Auto
// Discovery), lists its members by name, follows its changes of membership
// (watch), names the owner of a key, reads, writes and deletes keys through
// the consistent-hash ring, and tabulates per-node stats, once or live
// (top).
//
// Usage:
//
//	mcctl [-s host:port[,host:port...]] [-timeout 2s] COMMAND [ARGS]
//
// Exit status: 0 on success; 1 when `get` misses or `delete` finds no key;
// 2 for a usage error, a cluster that cannot be found or a node that cannot
// be reached.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/buildinfo"
	"github.com/memcluster/memcluster/ring"
)

// Exit statuses.
const (
	exitOK       = 0
	exitNotFound = 1 // get missed, delete found nothing
	exitError    = 2 // usage, discovery or connection error
)

// defaultTimeout is -timeout's default.
const defaultTimeout = 2 * time.Second

// defaultSeed is -s's default: a node on this host at memcached's port.
const defaultSeed = "127.0.0.1:11211"

// defaultInterval is -interval's default.
const defaultInterval = time.Second

// maxKeyLen is memcached's key length limit.
const maxKeyLen = 250

const usageText = `usage: mcctl [-s host:port[,host:port...]] [-timeout 2s] COMMAND [ARGS]

The nodes given with -s are seeds: mcctl asks them for the cluster with
'config get cluster' and places keys on the ring built from its members,
in the ring mode the cluster announces ('config get ring').

Commands:
  members                        list the cluster's nodes, by name, its version
                                 and ring mode
  watch                          follow the cluster: each new version, with the
                                 members that joined (+) and went (-)
  top                            per-node ops/s, get hit ratio, memory and
                                 connections, refreshed every -interval
  owner KEY                      print the owning node's host|ip|port
  get KEY                        print the value and a newline (exit 1 on a miss)
  set KEY VALUE [--ttl SECONDS]  store the value on the key's owner
  delete KEY                     delete the key (exit 1 if not found)
  stats                          per-node stats table with totals

Flags:
  -s host:port[,...]   seed nodes (default 127.0.0.1:11211)
  -timeout duration    timeout of each network operation (default 2s)
  -interval duration   top's refresh, and watch's poll where it cannot watch
                       (SASL) (default 1s)
  -n count             stop after count views (watch) or refreshes (top);
                       0, the default, runs until interrupted
  -version             print mcctl's version and exit
  -tls                 connect with TLS, verifying the nodes against the
                       system's roots or -tls-ca
  -tls-ca file         CA certificates to verify the nodes with (PEM); implies -tls
  -tls-cert file, -tls-key file
                       client certificate and key, for nodes that ask for
                       one (ssl_verify_mode); imply -tls
  -sasl-user name      log in with SASL PLAIN, for nodes with -S: the
                       commands then speak the binary protocol
  -sasl-password pw    its password (default: $MCCTL_SASL_PASSWORD)

Exit status: 0 ok; 1 miss or not found; 2 usage or connection error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is an error in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errNotFound makes run exit with exitNotFound and no message.
var errNotFound = errors.New("not found")

// run is mcctl with its arguments (without the program name), its output
// streams and ctx, which ends the work early when canceled. It returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mcctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	servers := fs.String("s", defaultSeed, "seed nodes, host:port[,host:port...]")
	timeout := fs.Duration("timeout", defaultTimeout, "timeout of each network operation")
	var lo loopOptions
	fs.DurationVar(&lo.interval, "interval", defaultInterval, "top's refresh")
	fs.IntVar(&lo.count, "n", 0, "views (watch) or refreshes (top) before exiting; 0: until interrupted")
	showVersion := fs.Bool("version", false, "print the version and exit")
	var tlsOpts tlsOptions
	fs.BoolVar(&tlsOpts.on, "tls", false, "connect with TLS")
	fs.StringVar(&tlsOpts.caFile, "tls-ca", "", "CA certificates to verify the nodes with (PEM)")
	fs.StringVar(&tlsOpts.certFile, "tls-cert", "", "client certificate (PEM)")
	fs.StringVar(&tlsOpts.keyFile, "tls-key", "", "client certificate's key (PEM)")
	saslUser := fs.String("sasl-user", "", "log in with SASL PLAIN as this user (nodes with -S)")
	saslPassword := fs.String("sasl-password", "", "the -sasl-user's password (default $MCCTL_SASL_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, usageText)
			return exitOK
		}
		return fail(stderr, usagef("%v", err))
	}
	if *showVersion {
		fmt.Fprintln(stdout, buildinfo.Line("mcctl", buildinfo.Read()))
		return exitOK
	}
	tc, err := tlsOpts.config()
	if err != nil {
		return fail(stderr, err)
	}
	var login *ring.SASLLogin
	if *saslUser != "" {
		login = &ring.SASLLogin{User: *saslUser, Password: *saslPassword}
		if login.Password == "" {
			login.Password = os.Getenv("MCCTL_SASL_PASSWORD")
		}
	} else if *saslPassword != "" {
		return fail(stderr, usagef("-sasl-password needs -sasl-user"))
	}
	err = dispatch(ctx, *servers, *timeout, lo, dialer{tls: tc}, login, fs.Args(), stdout)
	return fail(stderr, err)
}

// fail reports err on stderr and returns the exit status for it.
func fail(stderr io.Writer, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNotFound):
		return exitNotFound
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mcctl: %v\n\n%s", err, usageText)
	default:
		fmt.Fprintf(stderr, "mcctl: %v\n", err)
	}
	return exitError
}

// loopOptions are the flags of the commands that go on: watch and top.
type loopOptions struct {
	interval time.Duration // -interval
	count    int           // -n; 0 for no end
}

// dispatch checks the command line and runs the command.
func dispatch(ctx context.Context, servers string, timeout time.Duration, lo loopOptions, d dialer, login *ring.SASLLogin, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	if timeout <= 0 {
		return usagef("-timeout must be positive, got %v", timeout)
	}
	if lo.interval <= 0 {
		return usagef("-interval must be positive, got %v", lo.interval)
	}
	if lo.count < 0 {
		return usagef("-n must be 0 or more, got %d", lo.count)
	}
	seeds, err := parseSeeds(servers)
	if err != nil {
		return err
	}
	cmd, rest := args[0], args[1:]
	var (
		key, value string
		ttl        int32
	)
	switch cmd {
	case "members", "stats", "watch", "top":
		if len(rest) != 0 {
			return usagef("%s takes no arguments", cmd)
		}
	case "owner", "get", "delete":
		if len(rest) != 1 {
			return usagef("%s takes one argument, KEY", cmd)
		}
		key = rest[0]
	case "set":
		if key, value, ttl, err = parseSet(rest); err != nil {
			return err
		}
	default:
		return usagef("unknown command %q", cmd)
	}
	switch cmd {
	case "owner", "get", "set", "delete":
		if err := checkKey(key); err != nil {
			return err
		}
	}

	poll := time.Duration(-1) // one Refresh, no polling
	if cmd == "watch" || cmd == "top" {
		poll = lo.interval // and the watch where the nodes answer it
	}
	c, err := discover(ctx, seeds, timeout, poll, d, login)
	if err != nil {
		return err
	}
	defer c.Close()
	switch cmd {
	case "members":
		return c.members(ctx, stdout)
	case "watch":
		return c.watch(ctx, stdout, lo.count)
	case "top":
		return c.top(ctx, stdout, lo)
	case "owner":
		return c.owner(stdout, key)
	case "get":
		return c.get(ctx, stdout, key)
	case "set":
		return c.set(ctx, key, value, ttl)
	case "delete":
		return c.delete(ctx, key)
	default: // "stats"
		return c.stats(ctx, stdout)
	}
}

// parseSeeds splits -s's value into host:port addresses.
func parseSeeds(s string) ([]string, error) {
	if s == "" {
		return nil, usagef("-s host:port[,host:port...] is empty")
	}
	var seeds []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return nil, usagef("bad seed address %q: want host:port", a)
		}
		seeds = append(seeds, a)
	}
	if len(seeds) == 0 {
		return nil, usagef("-s host:port[,host:port...] names no seed")
	}
	return seeds, nil
}

// parseSet parses set's arguments: KEY VALUE and --ttl SECONDS (or
// -ttl, --ttl=SECONDS) anywhere among them; "--" ends the flags, so that a
// value may begin with '-'.
func parseSet(args []string) (key, value string, ttl int32, err error) {
	var pos []string
	flags := true
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !flags || a == "-" || !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		if a == "--" {
			flags = false
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "ttl" {
			return "", "", 0, usagef("set: unknown flag %q", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return "", "", 0, usagef("set: --ttl needs a value in seconds")
			}
			i++
			val = args[i]
		}
		n, perr := strconv.ParseInt(val, 10, 32)
		if perr != nil || n < 0 {
			return "", "", 0, usagef("set: bad --ttl %q: want seconds, 0 or more", val)
		}
		ttl = int32(n)
	}
	if len(pos) != 2 {
		return "", "", 0, usagef("set takes KEY VALUE [--ttl SECONDS]")
	}
	return pos[0], pos[1], ttl, nil
}

// checkKey reports whether key is a legal memcached key: 1 to 250 bytes, no
// spaces or control characters.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return usagef("bad key: want 1 to %d bytes, got %d", maxKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return usagef("bad key %q: no spaces or control characters", key)
		}
	}
	return nil
}

// cluster is the cluster as discovered from the seeds, and a client that
// places keys on its ring.
type cluster struct {
	sel     *ring.Selector
	version uint64
	ring    *ring.Ring
	mc      *memcache.Client
	timeout time.Duration
	dial    dialer
	sasl    *ring.SASLLogin // nil: no login; else get, set, delete and stats speak binary
}

// discover asks the seeds for the cluster config and, if poll is positive,
// follows the cluster: it watches it with "config watch cluster" where the
// nodes answer that, and polls it every poll elsewhere (see
// ring.Selector).
func discover(ctx context.Context, seeds []string, timeout, poll time.Duration, d dialer, login *ring.SASLLogin) (*cluster, error) {
	sel, err := ring.NewSelector(seeds, ring.Config{
		PollInterval: poll,
		Timeout:      timeout,
		Logger:       slog.New(slog.DiscardHandler),
		Dialer:       d,
		SASL:         login,
	})
	if err != nil {
		return nil, usagef("%v", err)
	}
	if err := sel.Refresh(ctx); err != nil {
		sel.Close()
		return nil, fmt.Errorf("cannot find the cluster from %s: %w", strings.Join(seeds, ","), err)
	}
	version, r := sel.Current()
	if r.Len() == 0 {
		sel.Close()
		return nil, fmt.Errorf("cluster (version %d) has no members", version)
	}
	mc := memcache.NewFromSelector(sel)
	mc.Timeout = timeout
	mc.DialContext = func(dctx context.Context, network, addr string) (net.Conn, error) {
		// Bound by both gomemcache's dial timeout and run's ctx.
		dctx, cancel := context.WithCancel(dctx)
		defer cancel()
		defer context.AfterFunc(ctx, cancel)()
		return d.DialContext(dctx, network, addr)
	}
	return &cluster{sel: sel, version: version, ring: r, mc: mc, timeout: timeout, dial: d, sasl: login}, nil
}

// Close closes the selector and the client's idle connections.
func (c *cluster) Close() {
	c.mc.Close()
	c.sel.Close()
}

// members prints the version (and the ring mode, unless it is the
// default) and one line per member, in ring order: its name in the cluster
// (its entry where the nodes do not say), its address and its entry.
func (c *cluster) members(ctx context.Context, w io.Writer) error {
	names := fetchNames(ctx, c.ring, c.timeout, c.dial, c.sasl)
	mode := ""
	if m := c.ring.Mode(); m != ring.ModeMemcluster {
		mode = ", ring " + m.String()
	}
	fmt.Fprintf(w, "cluster version %d, %d members%s\n", c.version, c.ring.Len(), mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tENTRY")
	for _, m := range c.ring.Members() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", names.name(m), m.Addr(), m.Entry())
	}
	return tw.Flush()
}

// owner prints the Auto Discovery entry of key's owner.
func (c *cluster) owner(w io.Writer, key string) error {
	_, err := fmt.Fprintln(w, c.ring.OwnerString(key).Entry())
	return err
}

// get prints key's value, as stored, and a newline, as a shell expects of
// a command's output.
func (c *cluster) get(ctx context.Context, w io.Writer, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.sasl != nil {
		return c.saslGet(ctx, w, key)
	}
	it, err := c.mc.Get(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return errNotFound
	}
	if err != nil {
		return c.nodeErr(key, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", it.Value)
	return err
}

// set stores value under key on its owner, expiring after ttl seconds (0:
// never).
func (c *cluster) set(ctx context.Context, key, value string, ttl int32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.sasl != nil {
		return c.saslSet(ctx, key, value, ttl)
	}
	err := c.mc.Set(&memcache.Item{Key: key, Value: []byte(value), Expiration: ttl})
	if err != nil {
		return c.nodeErr(key, err)
	}
	return nil
}

// delete deletes key from its owner.
func (c *cluster) delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.sasl != nil {
		return c.saslDelete(ctx, key)
	}
	err := c.mc.Delete(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return errNotFound
	}
	if err != nil {
		return c.nodeErr(key, err)
	}
	return nil
}

// nodeErr names the node a key's command failed on.
func (c *cluster) nodeErr(key string, err error) error {
	return fmt.Errorf("node %s: %w", c.ring.OwnerString(key).Addr(), err)
}

// statFields are the stats columns, in order; all are summed into totals.
var statFields = []string{
	"curr_items", "bytes", "limit_maxbytes", "get_hits", "get_misses",
	"cmd_set", "curr_connections", "evictions",
}

// nodeStats is one node's stats, or the error that kept them from us.
type nodeStats struct {
	stats map[string]string
	err   error
}

// stats prints a table of every member's stats, in ring order, and their
// totals over the nodes that answered. A node that does not answer gets a row
// saying so, and makes stats fail once the table is printed.
func (c *cluster) stats(ctx context.Context, w io.Writer) error {
	members := c.ring.Members()
	res := make([]nodeStats, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			s, err := c.nodeStats(ctx, m.Addr())
			res[i] = nodeStats{s, err}
		})
	}
	wg.Wait()

	// The node column is padded here to align left; tabwriter aligns the
	// figures right.
	width := len("TOTAL")
	for _, m := range members {
		width = max(width, len(m.Entry()))
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(node string, cells []string) {
		fmt.Fprintf(tw, "%-*s\t%s\t\n", width, node, strings.Join(cells, "\t"))
	}
	row("NODE", statFields)
	totals := make([]uint64, len(statFields))
	var errs []error
	for i, m := range members {
		r := res[i]
		cells := make([]string, len(statFields))
		if r.err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", m.Addr(), r.err))
			for j := range cells {
				cells[j] = "-"
			}
			cells[0] = "unreachable"
			row(m.Entry(), cells)
			continue
		}
		for j, f := range statFields {
			v, ok := r.stats[f]
			if !ok {
				cells[j] = "-"
				continue
			}
			cells[j] = v
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				totals[j] += n
			}
		}
		row(m.Entry(), cells)
	}
	cells := make([]string, len(totals))
	for j, n := range totals {
		cells[j] = strconv.FormatUint(n, 10)
	}
	row("TOTAL", cells)
	tw.Flush()
	// Right alignment pads the first column too: take that back.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimPrefix(line, "  ")); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// maxStatsLines bounds a stats reply.
const maxStatsLines = 10000

// fetchStats sends `stats` to the node at addr and returns its STAT lines as
// name → value.
func fetchStats(ctx context.Context, addr string, timeout time.Duration, d dialer) (map[string]string, error) {
	return textExchange(ctx, addr, timeout, d, "stats\r\n", parseStats)
}

// textExchange sends cmd, one text request, to the node at addr on a new
// connection and reads its reply with parse, all within timeout.
func textExchange[T any](ctx context.Context, addr string, timeout time.Duration, d dialer, cmd string, parse func(*bufio.Reader) (T, error)) (T, error) {
	var zero T
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return zero, err
	}
	defer nc.Close()
	dl, _ := ctx.Deadline()
	nc.SetDeadline(dl)
	defer context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })()
	if _, err := io.WriteString(nc, cmd); err != nil {
		return zero, err
	}
	return parse(bufio.NewReader(nc))
}

// nodeStats fetches the stats of the node at addr, over SASL when the
// cluster asks for it.
func (c *cluster) nodeStats(ctx context.Context, addr string) (map[string]string, error) {
	if c.sasl != nil {
		return fetchStatsSASL(ctx, addr, c.timeout, c.dial, c.sasl)
	}
	return fetchStats(ctx, addr, c.timeout, c.dial)
}

// parseStats reads a `stats` reply: STAT name value lines up to END.
func parseStats(r *bufio.Reader) (map[string]string, error) {
	stats := map[string]string{}
	for range maxStatsLines {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return stats, nil
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("unexpected stats reply %q", line)
		}
		stats[f[1]] = f[2]
	}
	return nil, fmt.Errorf("stats reply longer than %d lines", maxStatsLines)
}
