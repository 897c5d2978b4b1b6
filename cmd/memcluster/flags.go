package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/memcluster/memcluster/node"
)

// The command line's vocabulary: what a parse produces (options), how an
// option is declared (flagDef), and the table of memcached's options, each
// with its setter. memcluster's own options are declared in cluster.go and
// auth.go, the -o keys in extended.go. parse.go reads the command line
// with these tables, as getopt_long does; setters.go holds the setters of
// memcached's options, which parse and check each value.

// options is the parsed command line: the node's configuration plus what only
// the daemon acts on.
type options struct {
	// cfg is the node's configuration, with memcached's default written
	// into every field the command line did not set. cfg.Logger is nil:
	// main builds the logger from cfg.Verbosity.
	cfg node.Config

	// logFormat is --log-format: "text" (slog's text handler, the
	// default) or "json".
	logFormat string

	help    bool // -h: print the usage and exit
	version bool // -V: print the version and exit
	license bool // -i: print the license and exit

	// drain is how long a member of a cluster serves on after SIGTERM,
	// out of the cluster's view, for its clients to move away (--drain).
	drain time.Duration

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
var flagDefs = slices.Concat(memcachedFlagDefs, clusterFlagDefs, authFlagDefs, daemonFlagDefs)

// daemonFlagDefs are memcluster's own options about the daemon itself.
var daemonFlagDefs = []flagDef{
	{0, "log-format", requiredArg, setLogFormat},
}

// setLogFormat sets --log-format: text or json.
func setLogFormat(p *parser, opt, val string) error {
	switch val {
	case "text", "json":
		p.o.logFormat = val
		return nil
	}
	return fmt.Errorf("invalid value %q for %s: want text or json", val, opt)
}

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
