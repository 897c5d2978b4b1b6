package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/config"
)

// options is the parsed command line: the node's configuration plus what only
// the daemon acts on.
type options struct {
	// cfg is the node's configuration, with memcached's default written
	// into every field the command line did not set. cfg.Logger is nil:
	// main builds the logger from cfg.Verbosity.
	cfg node.Config

	help    bool // -h: print the usage and exit
	version bool // -V: print the version and exit
	license bool // -i: print the license and exit

	pidFile   string // -P: file to write the process ID to
	daemonize bool   // -d: accepted; memcluster stays in the foreground
	user      string // -u: accepted; memcluster does not switch user

	// listeners are the -l entries as parsed, in order, without
	// duplicates. cfg.ListenAddrs holds their addresses (or nothing when
	// TCP is off).
	listeners []listenSpec

	tls tlsOptions // -Z and -o ssl_*

	// verifierUser is --sasl-verifier's user: print a credentials line
	// for the password on standard input, and exit.
	verifierUser string

	// ignored lists, as written, the options that were accepted but have
	// no effect in memcluster, each once, in command-line order.
	ignored []string

	// gossipChosen is set when the command line chose the gossip
	// address or seeds (--gossip-addr, --no-cluster, --join). When it did
	// not, and the default gossip address is taken, the node warns and
	// runs alone rather than fail.
	gossipChosen bool

	// args are the non-option arguments. memcached ignores them, and so do
	// we, with a warning.
	args []string
}

// listenSpec is one entry of -l: memcached's
// [notls:][proto[<name>]:][tag[<tag>]:]<host>[:<port>], with <host> an IPv6
// address in brackets when a port follows it.
type listenSpec struct {
	// Addr is "host" or, when the entry names a port, "host:port" as
	// net.JoinHostPort writes it. Host "" (memcached's "*") is every
	// interface.
	Addr string
	// NoTLS marks a plain-TCP listener when TLS (-Z) is on ("notls:").
	NoTLS bool
	// Proto is the protocol forced on this listener ("proto[...]:"):
	// "ascii", "binary" or "auto"; "" follows -B. Not used by the node yet.
	Proto string
	// Tag is the listener's tag ("tag[...]:"), 1 to 8 bytes. Not used by
	// the node yet.
	Tag string
}

// tlsOptions are the TLS settings of -Z and -o ssl_*, as given. finish
// turns them into cfg.TLS when -Z is on; without -Z they have no effect, as
// in memcached.
type tlsOptions struct {
	Enabled    bool               // -Z
	ChainCert  string             // ssl_chain_cert: certificate chain, PEM
	Key        string             // ssl_key: private key, if not in ChainCert
	KeyFormat  int                // ssl_keyformat: 1 PEM, 2 DER (memcached's SSL_FILETYPE_*); 0 means PEM
	ClientAuth tls.ClientAuthType // ssl_verify_mode 0..3, as crypto/tls names it
	Ciphers    string             // ssl_ciphers: OpenSSL cipher list
	CACert     string             // ssl_ca_cert: acceptable client CAs, PEM
	WBufSize   int                // ssl_wbuf_size in bytes; 0 means memcached's 16 KiB
	// SessionCache enables session resumption (ssl_session_cache).
	SessionCache bool
	KernelTLS    bool   // ssl_kernel_tls
	MinVersion   uint16 // ssl_min_version as a crypto/tls version; 0 means TLS 1.2
}

// Errors wrapped by the messages for values that do not parse.
var (
	errNotInteger = errors.New("not an integer")
	errNotNumber  = errors.New("not a number")
	errOutOfRange = errors.New("out of range")
)

// argKind says whether an option takes a value.
type argKind uint8

const (
	noArg       argKind = iota
	requiredArg         // -p 1, -p1, --port 1, --port=1
	optionalArg         // only --verbose=N: getopt_long never takes the next word
)

// flagDef is one command-line option.
type flagDef struct {
	short byte   // the letter after "-"; 0 for a long-only option
	long  string // the name after "--"; "" if there is none
	kind  argKind
	// set applies the option. opt is the option as written ("-c" or
	// "--conn-limit"), val its value ("" for noArg).
	set func(p *parser, opt, val string) error
}

// flagDefs holds every option: memcached's, then memcluster's own.
var flagDefs = slices.Concat(memcachedFlagDefs, clusterFlagDefs, authFlagDefs)

// memcachedFlagDefs holds memcached 1.6's options, in the order of
// memcached's own table, which is the order getopt_long lists ambiguous
// abbreviations in.
var memcachedFlagDefs = []flagDef{
	{'a', "unix-mask", requiredArg, setUnixMask},
	{'A', "enable-shutdown", noArg, func(p *parser, _, _ string) error { p.o.cfg.EnableShutdown = true; return nil }},
	{'Z', "enable-ssl", noArg, func(p *parser, _, _ string) error { p.o.tls.Enabled = true; return nil }},
	{'p', "port", requiredArg, setPort},
	{'s', "unix-socket", requiredArg, setUnixSocket},
	{'U', "udp-port", requiredArg, setUDPPort},
	{'m', "memory-limit", requiredArg, setMemoryLimit},
	{'M', "disable-evictions", noArg, func(p *parser, _, _ string) error { p.o.cfg.NoEvictions = true; return nil }},
	{'c', "conn-limit", requiredArg, setPositive("Maximum connections must be greater than 0", func(c *node.Config) *int { return &c.MaxConns })},
	{'k', "lock-memory", noArg, ignore("memcluster does not lock its memory")},
	{'h', "help", noArg, func(p *parser, _, _ string) error { p.o.help = true; return nil }},
	{'i', "license", noArg, func(p *parser, _, _ string) error { p.o.license = true; return nil }},
	{'V', "version", noArg, func(p *parser, _, _ string) error { p.o.version = true; return nil }},
	{'r', "enable-coredumps", noArg, ignore("memcluster does not change the core file limit")},
	{'v', "verbose", optionalArg, setVerbose},
	{'d', "daemon", noArg, setDaemon},
	{'l', "listen", requiredArg, addListen},
	{'u', "user", requiredArg, setUser},
	{'P', "pidfile", requiredArg, setPIDFile},
	{'f', "slab-growth-factor", requiredArg, setGrowthFactor},
	{'n', "slab-min-size", requiredArg, setSlabMinSize},
	{'t', "threads", requiredArg, setThreads},
	{'L', "enable-largepages", noArg, ignore("memcluster does not preallocate its memory in large pages")},
	{'R', "max-reqs-per-event", requiredArg, setPositive("Number of requests per event must be greater than 0", func(c *node.Config) *int { return &c.MaxReqsPerEvent })},
	{'C', "disable-cas", noArg, func(p *parser, _, _ string) error { p.o.cfg.NoCAS = true; return nil }},
	{'b', "listen-backlog", requiredArg, setPositive("Listen backlog must be greater than 0", func(c *node.Config) *int { return &c.Backlog })},
	{'B', "protocol", requiredArg, setProtocol},
	{'I', "max-item-size", requiredArg, setItemSizeMax},
	{'S', "enable-sasl", noArg, func(p *parser, _, _ string) error { p.o.cfg.SASL = true; return nil }},
	{'F', "disable-flush-all", noArg, func(p *parser, _, _ string) error { p.o.cfg.DisableFlushAll = true; return nil }},
	{'X', "disable-dumping", noArg, func(p *parser, _, _ string) error { p.o.cfg.DisableDumping = true; return nil }},
	{'W', "disable-watch", noArg, func(p *parser, _, _ string) error { p.o.cfg.DisableWatch = true; return nil }},
	{'Y', "auth-file", requiredArg, setAuthFile},
	{'e', "memory-file", requiredArg, ignore("memcluster keeps items in its own memory and cannot restart from a file")},
	{'o', "extended", requiredArg, setExtended},
	{'N', "napi-ids", requiredArg, setNAPIIDs},
	{'D', "", requiredArg, setDelimiter},
}

// Reasons given when an accepted option has no effect.
const (
	whySlabs    = "it tunes memcached's slab allocator, LRU or hash table, which memcluster does not have"
	whyExtstore = "memcluster has no external storage (extstore)"
	whyLogger   = "memcluster's watch streams have no per-thread log buffer"
)

// parser holds the state of one parseArgs call.
type parser struct {
	o        *options
	warnings []warning       // logged once the command line is known good
	warned   map[string]bool // canonical names of the options warned about
	cur      byte            // the letter of the option being applied

	protocolSet bool  // -B was given
	portSet     bool  // -p was given
	itemSize    int64 // -I in bytes; checked once -m is known
	napiIDs     int   // -N, checked against -t at the end
	gossipSet   bool  // --gossip-addr or --no-cluster was given
	noCluster   bool  // --no-cluster was given
}

// defaultConfig returns the configuration of a memcached started without
// flags, with every default written out.
func defaultConfig() node.Config {
	return node.Config{
		Port:            config.DefaultPort,
		UnixMask:        config.DefaultUnixMask,
		MaxConns:        config.DefaultMaxConns,
		Threads:         config.DefaultThreads,
		MaxReqsPerEvent: config.DefaultMaxReqsPerEvent,
		Backlog:         config.DefaultBacklog,
		MemoryLimit:     config.DefaultMemoryLimit,
		ItemSizeMax:     config.DefaultItemSizeMax,
		Protocol:        "auto",
		Cluster:         defaultClusterConfig(),
	}
}

// parseArgs parses memcached's command line (without the program name) the
// way memcached's getopt_long does: short options may be grouped and take
// their value attached or as the next word (-vv, -p11211, -m 64); long
// options take theirs after "=" or as the next word and may be abbreviated
// to any unambiguous prefix; "--" ends the options; other words are ignored
// with a warning. Options are applied in order, and -h, -V and -i stop the
// parsing where they stand, as in memcached.
//
// Warnings (options accepted without effect, values memcached frowns upon)
// are logged to stderr, in order, once the whole command line has parsed
// without error and without -h, -V or -i. A returned error is a bad command
// line; its message names the option and does not end with a newline. Where
// memcached detects the same fault, the message is memcached's, word for
// word, capitals and full stops included, so that operators and scripts
// recognise it.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	o := options{cfg: defaultConfig()}
	p := &parser{
		o:        &o,
		warned:   make(map[string]bool),
		itemSize: config.DefaultItemSizeMax,
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		switch {
		case a == "--":
			o.args = append(o.args, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			i, err = p.long(args, i)
		case len(a) > 1 && a[0] == '-':
			i, err = p.shorts(args, i)
		default:
			o.args = append(o.args, a)
		}
		if err != nil {
			return options{}, err
		}
		if o.help || o.version || o.license {
			return o, nil
		}
	}
	if err := p.finish(); err != nil {
		return options{}, err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	for _, w := range p.warnings {
		log.Warn(w.msg, w.args...)
	}
	return o, nil
}

// warning is a message for slog.Logger.Warn.
type warning struct {
	msg  string
	args []any
}

// warn records a warning, logged if the whole command line is good.
func (p *parser) warn(msg string, args ...any) {
	p.warnings = append(p.warnings, warning{msg, args})
}

// long parses the long option args[i] and returns the index of the last
// word it used.
func (p *parser) long(args []string, i int) (int, error) {
	a := args[i]
	name, val, hasVal := strings.Cut(a[2:], "=")
	def, err := lookupLong(name, a)
	if err != nil {
		return i, err
	}
	opt := "--" + def.long
	p.cur = def.short
	switch def.kind {
	case noArg:
		if hasVal {
			return i, fmt.Errorf("option '%s' doesn't allow an argument", opt)
		}
	case requiredArg:
		if !hasVal {
			if i+1 >= len(args) {
				return i, fmt.Errorf("option '%s' requires an argument", opt)
			}
			i++
			val = args[i]
		}
	}
	return i, def.set(p, opt, val)
}

// lookupLong finds the long option name (arg is the word it came from) as
// getopt_long does: an exact match, or the only option it abbreviates.
func lookupLong(name, arg string) (*flagDef, error) {
	var found []*flagDef
	for i := range flagDefs {
		d := &flagDefs[i]
		if d.long == "" {
			continue
		}
		if d.long == name {
			return d, nil
		}
		if strings.HasPrefix(d.long, name) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("unrecognized option '%s'", arg)
	case 1:
		return found[0], nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "option '%s' is ambiguous; possibilities:", arg)
	for _, d := range found {
		fmt.Fprintf(&b, " '--%s'", d.long)
	}
	return nil, errors.New(b.String())
}

// shorts parses the group of short options args[i] and returns the index of
// the last word it used.
func (p *parser) shorts(args []string, i int) (int, error) {
	a := args[i]
	for j := 1; j < len(a); j++ {
		def := lookupShort(a[j])
		if def == nil {
			r, _ := utf8.DecodeRuneInString(a[j:])
			return i, fmt.Errorf("invalid option -- '%c'", r)
		}
		opt := "-" + string(def.short)
		p.cur = def.short
		if def.kind != requiredArg {
			if err := def.set(p, opt, ""); err != nil {
				return i, err
			}
			if p.o.help || p.o.version || p.o.license {
				return i, nil
			}
			continue
		}
		val := a[j+1:]
		if val == "" {
			if i+1 >= len(args) {
				return i, fmt.Errorf("option requires an argument -- '%c'", def.short)
			}
			i++
			val = args[i]
		}
		return i, def.set(p, opt, val)
	}
	return i, nil
}

func lookupShort(c byte) *flagDef {
	if c == 0 {
		return nil
	}
	for i := range flagDefs {
		if flagDefs[i].short == c {
			return &flagDefs[i]
		}
	}
	return nil
}

// finish checks what depends on several options, as memcached does once it
// has read them all, and completes the configuration.
func (p *parser) finish() error {
	o, cfg := p.o, &p.o.cfg
	if p.napiIDs > cfg.Threads {
		return fmt.Errorf("Number of napi_ids(%d) cannot be greater than number of threads(%d)", p.napiIDs, cfg.Threads)
	}

	// -I, in memcached's order of checks.
	switch {
	case p.itemSize < config.MinItemSizeMax:
		return errors.New("Item max size cannot be less than 1024 bytes.")
	case p.itemSize > cfg.MemoryLimit/2:
		return errors.New("Cannot set item size limit higher than 1/2 of memory max.")
	case p.itemSize > config.MaxItemSizeMax:
		return errors.New("Cannot set item size limit higher than a gigabyte.")
	}
	cfg.ItemSizeMax = int(p.itemSize)

	// memcached's SASL is binary-only and its ASCII authentication
	// ASCII-only: each picks the protocol unless -B did, and refuses
	// another.
	if cfg.SASL {
		if !p.protocolSet {
			cfg.Protocol = "binary"
		} else if cfg.Protocol != "binary" {
			return errors.New("You cannot allow the ASCII protocol while using SASL.")
		}
	}
	if cfg.AuthFile != "" {
		if !p.protocolSet {
			cfg.Protocol = "ascii"
		} else if cfg.Protocol != "ascii" {
			return errors.New("You cannot allow the BINARY protocol while using ascii authentication tokens.")
		}
	}

	tcpOff := cfg.Port < 0 || cfg.UnixSocket != ""
	if cfg.Port < 0 && cfg.UnixSocket == "" {
		return errors.New("nothing to listen on: -p 0 turns TCP off and no unix socket (-s) is given")
	}
	if o.tls.Enabled && cfg.Port < 0 {
		return errors.New("You cannot enable SSL without a TCP port.")
	}
	for _, l := range o.listeners {
		if l.NoTLS && !o.tls.Enabled {
			return errors.New("'notls' option is valid only when SSL is enabled")
		}
	}
	cfg.ListenAddrs = nil
	if len(o.listeners) > 0 {
		if tcpOff {
			p.warn("option has no effect: TCP is off (-s or -p 0); ignored", "option", "-l")
		} else {
			for _, l := range o.listeners {
				cfg.ListenAddrs = append(cfg.ListenAddrs, l.Addr)
			}
		}
	}
	if o.tls.Enabled {
		if err := p.finishTLS(tcpOff); err != nil {
			return err
		}
	}

	if err := p.finishCluster(tcpOff); err != nil {
		return err
	}

	for _, a := range o.args {
		p.warn("ignoring an argument that is not an option, as memcached does", "arg", a)
	}
	return nil
}

// ignore returns the setter of an option that is accepted without effect.
func ignore(why string) func(p *parser, opt, val string) error {
	return func(p *parser, opt, _ string) error {
		p.ignore(opt, why)
		return nil
	}
}

// ignore records that the option opt (the one being applied, or an -o key
// as "-o key") has no effect, and warns once per option however often and
// under whichever name it is given.
func (p *parser) ignore(opt, why string) {
	key := opt
	if !strings.HasPrefix(opt, "-o ") {
		key = "-" + string(p.cur)
	}
	if p.warned[key] {
		return
	}
	p.warned[key] = true
	p.o.ignored = append(p.o.ignored, opt)
	p.warn("option has no effect in memcluster; ignored", "option", opt, "reason", why)
}

// atoi parses an integer value of the option opt.
func atoi(opt, val string) (int, error) {
	n, err := strconv.Atoi(val)
	if err != nil {
		return 0, valueError(opt, val, err)
	}
	return n, nil
}

// valueError is the error for a value of opt that strconv refused.
func valueError(opt, val string, err error) error {
	why := errNotInteger
	switch {
	case errors.Is(err, strconv.ErrRange):
		why = errOutOfRange
	case errors.Is(err, strconv.ErrSyntax) && strings.Contains(err.Error(), "ParseFloat"):
		why = errNotNumber
	}
	return fmt.Errorf("invalid value %q for %s: %w", val, opt, why)
}

// setPositive returns the setter of an integer option that must be above 0,
// with memcached's message for values that are not.
func setPositive(msg string, field func(*node.Config) *int) func(p *parser, opt, val string) error {
	return func(p *parser, opt, val string) error {
		n, err := atoi(opt, val)
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New(msg)
		}
		*field(&p.o.cfg) = n
		return nil
	}
}

func setUnixMask(p *parser, opt, val string) error {
	n, err := strconv.ParseUint(val, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("invalid value %q for %s: not an octal access mask (0 to 777)", val, opt)
	}
	p.o.cfg.UnixMask = os.FileMode(n)
	return nil
}

// setPort sets -p. memcached's -p 0 turns TCP off (the way to run on a unix
// socket alone); Config says so with a negative port.
func setPort(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("Invalid port number %d.", n)
	}
	if n == 0 {
		n = -1
	}
	p.o.cfg.Port = n
	p.portSet = true
	return nil
}

func setUnixSocket(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("option '%s' needs a file name", opt)
	}
	p.o.cfg.UnixSocket = val
	return nil
}

// setUDPPort accepts -U 0 (memcached's default since 1.5.6) and nothing
// else: memcluster does not serve UDP.
func setUDPPort(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%s %d: memcluster does not serve UDP; leave -U out or give -U 0", opt, n)
	}
	return nil
}

// setMemoryLimit sets -m, given in megabytes.
func setMemoryLimit(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Memory limit must be greater than 0")
	}
	if int64(n) > math.MaxInt64>>20 {
		return fmt.Errorf("invalid value %q for %s: %w", val, opt, errOutOfRange)
	}
	p.o.cfg.MemoryLimit = int64(n) << 20
	return nil
}

// setVerbose counts -v. --verbose=N sets the count to N (memcached ignores
// the N and counts one).
func setVerbose(p *parser, opt, val string) error {
	if val == "" {
		p.o.cfg.Verbosity++
		return nil
	}
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("invalid value %q for %s: %w", val, opt, errOutOfRange)
	}
	p.o.cfg.Verbosity = n
	return nil
}

func setDaemon(p *parser, opt, _ string) error {
	p.o.daemonize = true
	p.ignore(opt, "memcluster runs in the foreground; let the service manager run it in the background")
	return nil
}

func setUser(p *parser, opt, val string) error {
	p.o.user = val
	p.ignore(opt, "memcluster does not switch users; start it as the user it should run as")
	return nil
}

func setPIDFile(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("option '%s' needs a file name", opt)
	}
	p.o.pidFile = val
	return nil
}

func setGrowthFactor(p *parser, opt, val string) error {
	f, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return valueError(opt, val, err)
	}
	if f <= 1 {
		return errors.New("Factor must be greater than 1")
	}
	p.ignore(opt, whySlabs)
	return nil
}

func setSlabMinSize(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Chunk size must be greater than 0")
	}
	p.ignore(opt, whySlabs)
	return nil
}

// setThreads sets -t, which the daemon makes GOMAXPROCS.
func setThreads(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Number of threads must be greater than 0")
	}
	if n > 64 {
		p.warn("Setting a high number of worker threads is not recommended. Set this value to the number of cores in your machine or less.", "option", opt, "threads", n)
	}
	p.o.cfg.Threads = n
	return nil
}

func setProtocol(p *parser, _, val string) error {
	switch val {
	case "auto", "ascii", "binary":
	default:
		return fmt.Errorf("Invalid value for binding protocol: %s -- should be one of auto, binary, or ascii", val)
	}
	p.o.cfg.Protocol = val
	p.protocolSet = true
	return nil
}

// setItemSizeMax reads -I: bytes, or kilobytes or megabytes with a k or m
// suffix (either case). The range is checked at the end, against -m.
func setItemSizeMax(p *parser, opt, val string) error {
	s, mult := val, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			s, mult = s[:n-1], 1<<10
		case 'm', 'M':
			s, mult = s[:n-1], 1<<20
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(s, "-"):
		n, mult = math.MinInt64, 1 // too small: said so at the end
	case errors.Is(err, strconv.ErrRange):
		n, mult = math.MaxInt64, 1 // too large: said so at the end
	case err != nil:
		return fmt.Errorf("invalid value %q for %s: want a number of bytes, optionally with a k or m suffix", val, opt)
	}
	switch {
	case n > math.MaxInt64/mult:
		p.itemSize = math.MaxInt64
	case n < math.MinInt64/mult:
		p.itemSize = math.MinInt64
	default:
		p.itemSize = n * mult
	}
	return nil
}

func setAuthFile(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("option '%s' needs a file name", opt)
	}
	p.o.cfg.AuthFile = val
	return nil
}

func setNAPIIDs(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Maximum number of NAPI IDs must be greater than 0")
	}
	p.napiIDs = n
	p.ignore(opt, "memcluster does not pick a connection's thread by NAPI ID")
	return nil
}

func setDelimiter(p *parser, opt, val string) error {
	if val == "" {
		return errors.New("No delimiter specified")
	}
	p.o.cfg.PrefixDelimiter = val[0]
	return nil
}

// addListen parses one -l value: a list of entries separated by commas or
// semicolons, as memcached takes them.
func addListen(p *parser, opt, val string) error {
	added := false
	for _, e := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ';' }) {
		spec, err := parseListen(e)
		if err != nil {
			return err
		}
		added = true
		if spec.Proto != "" || spec.Tag != "" {
			p.warn("per-listener protocol and tag are not supported yet; the listener follows -B", "option", opt, "entry", e)
		}
		dup := false
		for _, l := range p.o.listeners {
			dup = dup || l == spec
		}
		if !dup {
			p.o.listeners = append(p.o.listeners, spec)
		}
	}
	if !added {
		return fmt.Errorf("option '%s' needs an address", opt)
	}
	return nil
}

// parseListen parses one -l entry with memcached's rules and messages: a
// host with one colon is host:port; an IPv6 address needs brackets to carry
// a port ("[::1]:11211"), and without a port may go bare ("::1"); "*" is
// every interface.
func parseListen(e string) (listenSpec, error) {
	var spec listenSpec
	p := e
	if rest, ok := strings.CutPrefix(p, "notls:"); ok {
		spec.NoTLS, p = true, rest
	}
	if rest, ok := strings.CutPrefix(p, "proto["); ok {
		name, rest, ok := strings.Cut(rest, "]")
		if !ok {
			return spec, fmt.Errorf("Invalid protocol spec: %q", p[len("proto"):])
		}
		switch name {
		case "ascii", "binary":
			spec.Proto = name
		case "negotiating", "auto":
			spec.Proto = "auto"
		case "proxy":
			return spec, fmt.Errorf("memcluster has no proxy mode: %q", e)
		default:
			return spec, fmt.Errorf("Invalid protocol spec: %q", "["+name+"]")
		}
		p = strings.TrimPrefix(rest, ":")
	}
	if rest, ok := strings.CutPrefix(p, "tag["); ok {
		tag, rest, ok := strings.Cut(rest, "]")
		if !ok {
			return spec, fmt.Errorf("Invalid tag in socket config: %q", p[len("tag"):])
		}
		if len(tag) < 1 || len(tag) > 8 {
			return spec, fmt.Errorf("Listener tags must be between 1 and 8 characters: %q", tag)
		}
		spec.Tag = tag
		p = strings.TrimPrefix(rest, ":")
	}

	host, port, hasPort := p, "", false
	if strings.HasPrefix(p, "[") {
		end := strings.IndexByte(p, ']')
		if end < 0 {
			return spec, fmt.Errorf("Invalid IPV6 address: %q", p)
		}
		host = p[1:end]
		switch rest := p[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return spec, fmt.Errorf("Invalid IPV6 address: %q", p)
		}
	} else if h, rest, ok := strings.Cut(p, ":"); ok && !strings.Contains(rest, ":") {
		host, port, hasPort = h, rest, true
	}
	if host == "*" {
		host = ""
	}
	spec.Addr = host
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return spec, fmt.Errorf("Invalid port number: %q", port)
		}
		spec.Addr = net.JoinHostPort(host, strconv.Itoa(n))
	}
	return spec, nil
}
