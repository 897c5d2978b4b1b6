package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/node"
)

// parse runs parseArgs and returns what it logged too.
func parse(args ...string) (options, string, error) {
	var stderr bytes.Buffer
	o, err := parseArgs(args, &stderr)
	return o, stderr.String(), err
}

func TestParseArgsDefaults(t *testing.T) {
	o, logged, err := parse()
	if err != nil {
		t.Fatalf("parseArgs() error: %v", err)
	}
	// memcached 1.6.18 without flags, as "stats settings" shows it.
	want := node.Config{
		Port:            11211,
		UnixMask:        0o700,
		MaxConns:        1024,
		Threads:         4,
		MaxReqsPerEvent: 20,
		Backlog:         1024,
		MemoryLimit:     64 << 20,
		ItemSizeMax:     1 << 20,
		Protocol:        "auto",
		// memcluster's own: without -l, gossip on port 7946 of every interface.
		Cluster: node.ClusterConfig{
			GossipAddr:              "0.0.0.0:7946",
			RejoinInterval:          3 * time.Second,
			ProbeInterval:           400 * time.Millisecond,
			ProbeTimeout:            250 * time.Millisecond,
			SuspicionMult:           4,
			SuspicionMaxTimeoutMult: 6,
			GossipInterval:          100 * time.Millisecond,
			PushPullInterval:        10 * time.Second,
			LeaveTimeout:            2 * time.Second,
			HandoffPush:             64 << 20,
		},
	}
	if !reflect.DeepEqual(o.cfg, want) {
		t.Errorf("config:\ngot  %+v\nwant %+v", o.cfg, want)
	}
	o.cfg = node.Config{}
	// memcluster's own: a member drains for 5 s after SIGTERM.
	if !reflect.DeepEqual(o, options{drain: 5 * time.Second}) {
		t.Errorf("daemon options: got %+v, want zero but for a 5 s drain", o)
	}
	if logged != "" {
		t.Errorf("logged %q, want nothing", logged)
	}
}

func TestParseArgsConfig(t *testing.T) {
	tests := []struct {
		args []string
		want func(c *node.Config) // applied to the defaults
	}{
		// -p and the forms every option with a value takes.
		{[]string{"-p", "11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"-p11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"--port=11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"--port", "11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"--po=11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"-p", "1", "-p", "2"}, func(c *node.Config) { c.Port = 2 }},
		{[]string{"-p", "65535"}, func(c *node.Config) { c.Port = 65535 }},
		{[]string{"-p", "0", "-s", "/tmp/mc.sock"}, func(c *node.Config) { c.Port, c.UnixSocket, c.Cluster.GossipAddr = -1, "/tmp/mc.sock", "" }},
		{[]string{"-p0", "--unix-socket=/tmp/mc.sock"}, func(c *node.Config) { c.Port, c.UnixSocket, c.Cluster.GossipAddr = -1, "/tmp/mc.sock", "" }},

		{[]string{"-U", "0"}, func(c *node.Config) {}},
		{[]string{"--udp-port=0"}, func(c *node.Config) {}},
		{[]string{"-s", "/tmp/mc.sock"}, func(c *node.Config) { c.UnixSocket, c.Cluster.GossipAddr = "/tmp/mc.sock", "" }},
		{[]string{"-s/tmp/mc.sock", "-a", "755"}, func(c *node.Config) { c.UnixSocket, c.UnixMask, c.Cluster.GossipAddr = "/tmp/mc.sock", 0o755, "" }},
		{[]string{"-a", "0777"}, func(c *node.Config) { c.UnixMask = 0o777 }},
		{[]string{"--unix-mask", "0"}, func(c *node.Config) { c.UnixMask = 0 }},
		{[]string{"-A"}, func(c *node.Config) { c.EnableShutdown = true }},
		{[]string{"-X"}, func(c *node.Config) { c.DisableDumping = true }},
		{[]string{"--disable-dumping"}, func(c *node.Config) { c.DisableDumping = true }},

		// -o lru_crawler*: memcached reads the sleep with atoi.
		{[]string{"-o", "no_lru_crawler"}, func(c *node.Config) { c.NoLRUCrawler = true }},
		{[]string{"-o", "no_lru_crawler,lru_crawler"}, func(c *node.Config) {}},
		{[]string{"-o", "lru_crawler_sleep=250"}, func(c *node.Config) { c.LRUCrawlerSleep = 250 }},
		{[]string{"-o", "lru_crawler_sleep=1000000"}, func(c *node.Config) { c.LRUCrawlerSleep = 1000000 }},
		{[]string{"-o", "lru_crawler_sleep=0"}, func(c *node.Config) { c.LRUCrawlerSleep = -1 }},
		{[]string{"-o", "lru_crawler_sleep=x"}, func(c *node.Config) { c.LRUCrawlerSleep = -1 }},
		{[]string{"-o", "lru_crawler_sleep=12ms"}, func(c *node.Config) { c.LRUCrawlerSleep = 12 }},
		{[]string{"-o", "lru_crawler_tocrawl=1000"}, func(c *node.Config) { c.LRUCrawlerToCrawl = 1000 }},
		{[]string{"-o", "lru_crawler_tocrawl=4294967297"}, func(c *node.Config) { c.LRUCrawlerToCrawl = 1 }},
		{[]string{"--enable-shutdown"}, func(c *node.Config) { c.EnableShutdown = true }},

		// -l: repeats, lists, ports, IPv6. Gossip follows the first
		// address's host.
		{[]string{"-l", "127.0.0.1"}, func(c *node.Config) {
			c.ListenAddrs, c.Cluster.GossipAddr = []string{"127.0.0.1"}, "127.0.0.1:7946"
		}},
		{[]string{"-l127.0.0.1:11311"}, func(c *node.Config) {
			c.ListenAddrs, c.Cluster.GossipAddr = []string{"127.0.0.1:11311"}, "127.0.0.1:7946"
		}},
		{[]string{"--listen=127.0.0.1,::1"}, func(c *node.Config) {
			c.ListenAddrs, c.Cluster.GossipAddr = []string{"127.0.0.1", "::1"}, "127.0.0.1:7946"
		}},
		{[]string{"-l", "127.0.0.1;[::1]:11311", "-l", "localhost:1"}, func(c *node.Config) {
			c.ListenAddrs = []string{"127.0.0.1", "[::1]:11311", "localhost:1"}
			c.Cluster.GossipAddr = "127.0.0.1:7946"
		}},
		{[]string{"-l", "127.0.0.1", "-l", "127.0.0.1"}, func(c *node.Config) {
			c.ListenAddrs, c.Cluster.GossipAddr = []string{"127.0.0.1"}, "127.0.0.1:7946"
		}},
		{[]string{"-l", "*:11311", "-l", "*"}, func(c *node.Config) { c.ListenAddrs = []string{":11311", ""} }},
		{[]string{"-l", ",127.0.0.1,"}, func(c *node.Config) {
			c.ListenAddrs, c.Cluster.GossipAddr = []string{"127.0.0.1"}, "127.0.0.1:7946"
		}},

		// -m, -M, -c.
		{[]string{"-m", "128"}, func(c *node.Config) { c.MemoryLimit = 128 << 20 }},
		{[]string{"-m1024"}, func(c *node.Config) { c.MemoryLimit = 1 << 30 }},
		{[]string{"--memory-limit=2", "-I", "1m"}, func(c *node.Config) { c.MemoryLimit = 2 << 20 }},
		{[]string{"-m", "1", "-I", "512k"}, func(c *node.Config) { c.MemoryLimit, c.ItemSizeMax = 1<<20, 512<<10 }},
		{[]string{"-M"}, func(c *node.Config) { c.NoEvictions = true }},
		{[]string{"--disable-evictions"}, func(c *node.Config) { c.NoEvictions = true }},
		{[]string{"-c", "10"}, func(c *node.Config) { c.MaxConns = 10 }},
		{[]string{"-c10"}, func(c *node.Config) { c.MaxConns = 10 }},
		{[]string{"--conn-limit", "10"}, func(c *node.Config) { c.MaxConns = 10 }},

		// -v counts.
		{[]string{"-v"}, func(c *node.Config) { c.Verbosity = 1 }},
		{[]string{"-vv"}, func(c *node.Config) { c.Verbosity = 2 }},
		{[]string{"-vvv"}, func(c *node.Config) { c.Verbosity = 3 }},
		{[]string{"-v", "-v"}, func(c *node.Config) { c.Verbosity = 2 }},
		{[]string{"--verbose", "-v"}, func(c *node.Config) { c.Verbosity = 2 }},
		{[]string{"--verbose=2"}, func(c *node.Config) { c.Verbosity = 2 }},
		{[]string{"-vv", "--verbose=0"}, func(c *node.Config) { c.Verbosity = 0 }},

		// -t, -R, -C, -b, -B.
		{[]string{"-t", "8"}, func(c *node.Config) { c.Threads = 8 }},
		{[]string{"--threads=1"}, func(c *node.Config) { c.Threads = 1 }},
		{[]string{"-R", "5"}, func(c *node.Config) { c.MaxReqsPerEvent = 5 }},
		{[]string{"--max-reqs-per-event=100"}, func(c *node.Config) { c.MaxReqsPerEvent = 100 }},
		{[]string{"-C"}, func(c *node.Config) { c.NoCAS = true }},
		{[]string{"--disable-cas"}, func(c *node.Config) { c.NoCAS = true }},
		{[]string{"-b", "128"}, func(c *node.Config) { c.Backlog = 128 }},
		{[]string{"--listen-backlog=4096"}, func(c *node.Config) { c.Backlog = 4096 }},
		{[]string{"-B", "ascii"}, func(c *node.Config) { c.Protocol = "ascii" }},
		{[]string{"-Bbinary"}, func(c *node.Config) { c.Protocol = "binary" }},
		{[]string{"--protocol=auto"}, func(c *node.Config) { c.Protocol = "auto" }},

		// -I: bytes, k, m, either case; bounds included.
		{[]string{"-I", "2m"}, func(c *node.Config) { c.ItemSizeMax = 2 << 20 }},
		{[]string{"-I", "2M"}, func(c *node.Config) { c.ItemSizeMax = 2 << 20 }},
		{[]string{"-I512k"}, func(c *node.Config) { c.ItemSizeMax = 512 << 10 }},
		{[]string{"-I", "1K"}, func(c *node.Config) { c.ItemSizeMax = 1 << 10 }},
		{[]string{"-I", "1024"}, func(c *node.Config) { c.ItemSizeMax = 1024 }},
		{[]string{"--max-item-size=5000"}, func(c *node.Config) { c.ItemSizeMax = 5000 }},
		{[]string{"-I", "32m"}, func(c *node.Config) { c.ItemSizeMax = 32 << 20 }},
		{[]string{"-m", "2048", "-I", "1024m"}, func(c *node.Config) { c.MemoryLimit, c.ItemSizeMax = 2<<30, 1<<30 }},
		{[]string{"-I", "1024m", "-m", "2048"}, func(c *node.Config) { c.MemoryLimit, c.ItemSizeMax = 2<<30, 1<<30 }},

		// -S picks the binary protocol, as memcached's SASL is binary-only.
		{[]string{"-S"}, func(c *node.Config) { c.SASL, c.Protocol = true, "binary" }},
		{[]string{"--enable-sasl", "-B", "binary"}, func(c *node.Config) { c.SASL, c.Protocol = true, "binary" }},
		// -Y picks the ASCII protocol, and wins over -S: memcached checks
		// -Y's choice after -S's.
		{[]string{"-Y", "/x"}, func(c *node.Config) { c.AuthFile, c.Protocol = "/x", "ascii" }},
		{[]string{"--auth-file=/x", "-B", "ascii"}, func(c *node.Config) { c.AuthFile, c.Protocol = "/x", "ascii" }},
		{[]string{"-S", "-Y", "/x"}, func(c *node.Config) { c.SASL, c.AuthFile, c.Protocol = true, "/x", "ascii" }},
		{[]string{"-Y", "/x", "-S"}, func(c *node.Config) { c.SASL, c.AuthFile, c.Protocol = true, "/x", "ascii" }},
		{[]string{"-F"}, func(c *node.Config) { c.DisableFlushAll = true }},
		{[]string{"--disable-flush-all"}, func(c *node.Config) { c.DisableFlushAll = true }},
		{[]string{"-W"}, func(c *node.Config) { c.DisableWatch = true }},
		{[]string{"--disable-watch"}, func(c *node.Config) { c.DisableWatch = true }},

		// -o.
		{[]string{"-o", "idle_timeout=30"}, func(c *node.Config) { c.IdleTimeout = 30 * time.Second }},
		{[]string{"-oidle_timeout=0"}, func(c *node.Config) {}},
		{[]string{"--extended=idle_timeout=5"}, func(c *node.Config) { c.IdleTimeout = 5 * time.Second }},
		{[]string{"-o", "idle_timeout=5", "-o", "idle_timeout=10"}, func(c *node.Config) { c.IdleTimeout = 10 * time.Second }},
		{[]string{"-o", "maxconns_fast,idle_timeout=7,hashpower=20"}, func(c *node.Config) { c.IdleTimeout = 7 * time.Second }},
		{[]string{"-o", "maxconns_fast=1"}, func(c *node.Config) {}},
		{[]string{"-o", "watcher_logbuf_size=64"}, func(c *node.Config) { c.WatcherBufSize = 64 << 10 }},
		{[]string{"-o", "watcher_logbuf_size=0"}, func(c *node.Config) { c.WatcherBufSize = 1 }},
		{[]string{"-o", ""}, func(c *node.Config) {}},

		// Groups of short options, the last of which may take a value.
		{[]string{"-vMCp11311"}, func(c *node.Config) {
			c.Verbosity, c.NoEvictions, c.NoCAS, c.Port = 1, true, true, 11311
		}},
		{[]string{"-vvc", "10"}, func(c *node.Config) { c.Verbosity, c.MaxConns = 2, 10 }},
		{[]string{"-AFMS"}, func(c *node.Config) {
			c.EnableShutdown, c.DisableFlushAll, c.NoEvictions, c.SASL, c.Protocol = true, true, true, true, "binary"
		}},
		// A value may start with '-' when it is the next word.
		{[]string{"-D", "-"}, func(c *node.Config) { c.PrefixDelimiter = '-' }},

		// Arguments that are not options are skipped, and options after
		// them still count; "--" ends the options.
		{[]string{"extra", "-p", "11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"-", "-p", "11311"}, func(c *node.Config) { c.Port = 11311 }},
		{[]string{"--", "-p", "11311"}, func(c *node.Config) {}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, _, err := parse(tt.args...)
			if err != nil {
				t.Fatalf("parseArgs(%q) error: %v", tt.args, err)
			}
			want := defaultConfig()
			tt.want(&want)
			if !reflect.DeepEqual(o.cfg, want) {
				t.Errorf("parseArgs(%q):\ngot  %+v\nwant %+v", tt.args, o.cfg, want)
			}
		})
	}
}

func TestParseArgsDaemonOptions(t *testing.T) {
	tests := []struct {
		args []string
		want options // cfg is not compared
	}{
		{[]string{"-h"}, options{help: true}},
		{[]string{"--help"}, options{help: true}},
		{[]string{"--he"}, options{help: true}},
		{[]string{"-V"}, options{version: true}},
		{[]string{"--version"}, options{version: true}},
		{[]string{"-i"}, options{license: true}},
		{[]string{"--license"}, options{license: true}},
		// -h, -V and -i act where they stand: later words are not read.
		{[]string{"-h", "--bogus", "-c", "0"}, options{help: true}},
		{[]string{"-vh"}, options{help: true}},
		{[]string{"-Vh"}, options{version: true}},
		{[]string{"-P", "/run/mc.pid"}, options{pidFile: "/run/mc.pid"}},
		{[]string{"--pidfile=/run/mc.pid"}, options{pidFile: "/run/mc.pid"}},
		{[]string{"-d"}, options{daemonize: true, ignored: []string{"-d"}}},
		{[]string{"--daemon"}, options{daemonize: true, ignored: []string{"--daemon"}}},
		{[]string{"-u", "memcache"}, options{user: "memcache", ignored: []string{"-u"}}},
		{[]string{"--user=memcache"}, options{user: "memcache", ignored: []string{"--user"}}},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem"}, options{tls: tlsOptions{Enabled: true, ChainCert: "/c.pem"}}},
		{[]string{"--enable-ssl", "-o", "ssl_chain_cert=/c.pem"}, options{tls: tlsOptions{Enabled: true, ChainCert: "/c.pem"}}},
		{[]string{"--sasl-verifier", "alice"}, options{verifierUser: "alice"}},
		{[]string{"--sasl-verifier=bob smith"}, options{verifierUser: "bob smith"}},
		{[]string{"a", "--", "-b", "c"}, options{args: []string{"a", "-b", "c"}}},
		{[]string{"-l", "notls:127.0.0.1:11311", "-Z", "-o", "ssl_chain_cert=/c.pem"}, options{
			tls:       tlsOptions{Enabled: true, ChainCert: "/c.pem"},
			listeners: []listenSpec{{Addr: "127.0.0.1:11311", NoTLS: true}},
		}},
		{[]string{"-o", "ssl_chain_cert=/c.pem,ssl_key=/k.pem,ssl_keyformat=1,ssl_verify_mode=2", "-o",
			"ssl_ciphers=HIGH:!aNULL,ssl_ca_cert=/ca.pem,ssl_wbuf_size=32,ssl_session_cache,ssl_kernel_tls,ssl_min_version=3"},
			options{tls: tlsOptions{
				ChainCert: "/c.pem", Key: "/k.pem", KeyFormat: 1, ClientAuth: tls.RequireAndVerifyClientCert,
				Ciphers: "HIGH:!aNULL", CACert: "/ca.pem", WBufSize: 32 << 10, SessionCache: true,
				KernelTLS: true, MinVersion: tls.VersionTLS13,
			}}},
		{[]string{"-o", "ssl_verify_mode=1,ssl_min_version=0"}, options{tls: tlsOptions{
			ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS10,
		}}},
		{[]string{"--drain=30s"}, options{drain: 30 * time.Second}},
		{[]string{"--drain", "0"}, options{drain: 0}},
		{[]string{"--log-format=json"}, options{logFormat: "json"}},
		{[]string{"--log-format", "text"}, options{logFormat: "text"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, _, err := parse(tt.args...)
			if err != nil {
				t.Fatalf("parseArgs(%q) error: %v", tt.args, err)
			}
			o.cfg = node.Config{}
			if tt.args[0] != "--drain" && !strings.HasPrefix(tt.args[0], "--drain=") {
				tt.want.drain = defaultDrain
			}
			if !reflect.DeepEqual(o, tt.want) {
				t.Errorf("parseArgs(%q):\ngot  %+v\nwant %+v", tt.args, o, tt.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		// getopt_long's messages, as memcached prints them.
		{[]string{"--bogus"}, "unrecognized option '--bogus'"},
		{[]string{"--bogus=1"}, "unrecognized option '--bogus=1'"},
		{[]string{"-j"}, "invalid option -- 'j'"},
		{[]string{"-vj"}, "invalid option -- 'j'"},
		{[]string{"-E"}, "invalid option -- 'E'"},
		{[]string{"-é"}, "invalid option -- 'é'"},
		{[]string{"-p"}, "option requires an argument -- 'p'"},
		{[]string{"-vvp"}, "option requires an argument -- 'p'"},
		{[]string{"-o"}, "option requires an argument -- 'o'"},
		{[]string{"--port"}, "option '--port' requires an argument"},
		{[]string{"--listen"}, "option '--listen' requires an argument"},
		{[]string{"--help=x"}, "option '--help' doesn't allow an argument"},
		{[]string{"--daemon=yes"}, "option '--daemon' doesn't allow an argument"},
		{[]string{"--drain=-1s"}, `invalid value "-1s" for --drain: want a duration such as 5s, or 0 for none`},
		{[]string{"--drain=soon"}, `invalid value "soon" for --drain: want a duration such as 5s, or 0 for none`},
		{[]string{"--log-format=logfmt"}, `invalid value "logfmt" for --log-format: want text or json`},
		{[]string{"--log-format"}, "option '--log-format' requires an argument"},
		{[]string{"--ver"}, "option '--ver' is ambiguous; possibilities: '--version' '--verbose'"},
		{[]string{"--disable-"}, "option '--disable-' is ambiguous; possibilities: '--disable-evictions' '--disable-cas' '--disable-flush-all' '--disable-dumping' '--disable-watch'"},
		// Errors stop the parsing before a later -h.
		{[]string{"--bogus", "-h"}, "unrecognized option '--bogus'"},
		{[]string{"-c", "0", "-h"}, "Maximum connections must be greater than 0"},

		// Bad numbers.
		{[]string{"-p", "abc"}, `invalid value "abc" for -p: not an integer`},
		{[]string{"--port=11211x"}, `invalid value "11211x" for --port: not an integer`},
		{[]string{"-p", "70000"}, "Invalid port number 70000."},
		{[]string{"-p", "-1"}, "Invalid port number -1."},
		{[]string{"-vp", "-1"}, "Invalid port number -1."},
		{[]string{"-p", "0"}, "nothing to listen on: -p 0 turns TCP off and no unix socket (-s) is given"},
		{[]string{"-c", "abc"}, `invalid value "abc" for -c: not an integer`},
		{[]string{"-c", "0"}, "Maximum connections must be greater than 0"},
		{[]string{"--conn-limit=-5"}, "Maximum connections must be greater than 0"},
		{[]string{"-c", "99999999999999999999"}, `invalid value "99999999999999999999" for -c: out of range`},
		{[]string{"-t", "0"}, "Number of threads must be greater than 0"},
		{[]string{"-t", "four"}, `invalid value "four" for -t: not an integer`},
		{[]string{"-R", "0"}, "Number of requests per event must be greater than 0"},
		{[]string{"-R", "-3"}, "Number of requests per event must be greater than 0"},
		{[]string{"-b", "0"}, "Listen backlog must be greater than 0"},
		{[]string{"-b", "x"}, `invalid value "x" for -b: not an integer`},
		{[]string{"-m", "0"}, "Memory limit must be greater than 0"},
		{[]string{"-m", "64m"}, `invalid value "64m" for -m: not an integer`},
		{[]string{"-m", "9000000000000"}, `invalid value "9000000000000" for -m: out of range`},
		{[]string{"-a", "999"}, `invalid value "999" for -a: not an octal access mask (0 to 777)`},
		{[]string{"-a", "1777"}, `invalid value "1777" for -a: not an octal access mask (0 to 777)`},
		{[]string{"-B", "foo"}, "Invalid value for binding protocol: foo -- should be one of auto, binary, or ascii"},
		{[]string{"-B", "ASCII"}, "Invalid value for binding protocol: ASCII -- should be one of auto, binary, or ascii"},
		{[]string{"-s", ""}, "option '-s' needs a file name"},
		{[]string{"-P", ""}, "option '-P' needs a file name"},
		{[]string{"--verbose=x"}, `invalid value "x" for --verbose: not an integer`},
		{[]string{"--verbose=-1"}, `invalid value "-1" for --verbose: out of range`},

		// -U: only 0.
		{[]string{"-U", "1"}, "-U 1: memcluster does not serve UDP; leave -U out or give -U 0"},
		{[]string{"--udp-port=11211"}, "--udp-port 11211: memcluster does not serve UDP; leave -U out or give -U 0"},
		{[]string{"-U", "x"}, `invalid value "x" for -U: not an integer`},

		// -I: memcached's messages, checked in memcached's order.
		{[]string{"-I", "2000m"}, "Cannot set item size limit higher than 1/2 of memory max."},
		{[]string{"-I", "33m"}, "Cannot set item size limit higher than 1/2 of memory max."},
		{[]string{"-m", "1"}, "Cannot set item size limit higher than 1/2 of memory max."},
		{[]string{"-m", "8192", "-I", "1025m"}, "Cannot set item size limit higher than a gigabyte."},
		{[]string{"-m", "8192", "-I", "2000m"}, "Cannot set item size limit higher than a gigabyte."},
		{[]string{"-m", "8192", "-I", "99999999999999999999"}, "Cannot set item size limit higher than 1/2 of memory max."},
		{[]string{"-m", "8192", "-I", "99999999999999m"}, "Cannot set item size limit higher than 1/2 of memory max."},
		{[]string{"-I", "0"}, "Item max size cannot be less than 1024 bytes."},
		{[]string{"-I", "1023"}, "Item max size cannot be less than 1024 bytes."},
		{[]string{"-I", "-1m"}, "Item max size cannot be less than 1024 bytes."},
		{[]string{"-I", "-99999999999999999999"}, "Item max size cannot be less than 1024 bytes."},
		{[]string{"-I", "abc"}, `invalid value "abc" for -I: want a number of bytes, optionally with a k or m suffix`},
		{[]string{"-I", "2g"}, `invalid value "2g" for -I: want a number of bytes, optionally with a k or m suffix`},
		{[]string{"-I", "m"}, `invalid value "m" for -I: want a number of bytes, optionally with a k or m suffix`},
		{[]string{"-I", ""}, `invalid value "" for -I: want a number of bytes, optionally with a k or m suffix`},

		// -S and -Y choose a protocol, as in memcached.
		{[]string{"-S", "-B", "ascii"}, "You cannot allow the ASCII protocol while using SASL."},
		{[]string{"-B", "auto", "-S"}, "You cannot allow the ASCII protocol while using SASL."},
		{[]string{"-Y", "/x", "-B", "binary"}, "You cannot allow the BINARY protocol while using ascii authentication tokens."},
		{[]string{"-S", "-Y", "/x", "-B", "binary"}, "You cannot allow the BINARY protocol while using ascii authentication tokens."},
		{[]string{"-S", "-Y", "/x", "-B", "ascii"}, "You cannot allow the ASCII protocol while using SASL."},
		{[]string{"-B", "auto", "-S", "-Y", "/x"}, "You cannot allow the ASCII protocol while using SASL."},
		{[]string{"-B", "auto", "-Y", "/x"}, "You cannot allow the BINARY protocol while using ascii authentication tokens."},
		{[]string{"-Z", "-p", "0", "-s", "/x"}, "You cannot enable SSL without a TCP port."},

		// -l: memcached's messages.
		{[]string{"-l", "[::1"}, `Invalid IPV6 address: "[::1"`},
		{[]string{"-l", "[::1]x"}, `Invalid IPV6 address: "[::1]x"`},
		{[]string{"-l", "127.0.0.1:abc"}, `Invalid port number: "abc"`},
		{[]string{"-l", "127.0.0.1:"}, `Invalid port number: ""`},
		{[]string{"-l", "127.0.0.1:99999"}, `Invalid port number: "99999"`},
		{[]string{"-l", "[::1]:1:2"}, `Invalid port number: "1:2"`},
		{[]string{"-l", "ok,bad:x"}, `Invalid port number: "x"`},
		{[]string{"-l", "notls:127.0.0.1"}, "'notls' option is valid only when SSL is enabled"},
		{[]string{"-l", "proto[ascii:127.0.0.1"}, `Invalid protocol spec: "[ascii:127.0.0.1"`},
		{[]string{"-l", "proto[foo]:127.0.0.1"}, `Invalid protocol spec: "[foo]"`},
		{[]string{"-l", "proto[proxy]:127.0.0.1"}, `memcluster has no proxy mode: "proto[proxy]:127.0.0.1"`},
		{[]string{"-l", "tag[ab:127.0.0.1"}, `Invalid tag in socket config: "[ab:127.0.0.1"`},
		{[]string{"-l", "tag[abcdefghi]:127.0.0.1"}, `Listener tags must be between 1 and 8 characters: "abcdefghi"`},
		{[]string{"-l", "tag[]:127.0.0.1"}, `Listener tags must be between 1 and 8 characters: ""`},
		{[]string{"-l", ""}, "option '-l' needs an address"},
		{[]string{"--listen=,;"}, "option '--listen' needs an address"},

		// -o: memcached's messages.
		{[]string{"-o", "bogus"}, `Illegal suboption "bogus"`},
		{[]string{"-o", "bogus=1"}, `Illegal suboption "bogus=1"`},
		{[]string{"-o", "Modern"}, `Illegal suboption "Modern"`},
		{[]string{"-o", "modern,,track_sizes"}, `Illegal suboption ""`},
		{[]string{"-o", "proxy_config=/x"}, `Illegal suboption "proxy_config=/x"`},
		{[]string{"-o", "ext_bogus=1"}, `Illegal suboption "ext_bogus=1"`},
		{[]string{"-o", "idle_timeout"}, "Missing numeric argument for idle_timeout"},
		{[]string{"-o", "idle_timeout="}, "could not parse argument to idle_timeout"},
		{[]string{"-o", "idle_timeout=abc"}, "could not parse argument to idle_timeout"},
		{[]string{"-o", "idle_timeout=-5"}, "could not parse argument to idle_timeout"},
		{[]string{"-o", "watcher_logbuf_size"}, "Missing watcher_logbuf_size argument"},
		{[]string{"-o", "watcher_logbuf_size=x"}, "could not parse argument to watcher_logbuf_size"},
		{[]string{"-o", "watcher_logbuf_size=-1"}, "could not parse argument to watcher_logbuf_size"},
		{[]string{"-o", "hashpower"}, "Missing numeric argument for hashpower"},
		{[]string{"-o", "hashpower=x"}, "could not parse argument to hashpower"},
		{[]string{"-o", "tail_repair_time"}, "Missing numeric argument for tail_repair_time"},
		{[]string{"-o", "lru_crawler_sleep"}, "Missing lru_crawler_sleep value"},
		{[]string{"-o", "lru_crawler_sleep=1000001"}, "LRU crawler sleep must be between 0 and 1 second"},
		{[]string{"-o", "lru_crawler_sleep=-1"}, "LRU crawler sleep must be between 0 and 1 second"},
		{[]string{"-o", "lru_crawler_tocrawl"}, "Missing lru_crawler_tocrawl value"},
		{[]string{"-o", "lru_crawler_tocrawl=x"}, "lru_crawler_tocrawl takes a numeric 32bit value"},
		{[]string{"-o", "lru_crawler_tocrawl=-1"}, "lru_crawler_tocrawl takes a numeric 32bit value"},
		{[]string{"-o", "hot_lru_pct"}, "Missing hot_lru_pct argument"},
		{[]string{"-o", "hot_max_factor=x"}, "could not parse argument to hot_max_factor"},
		{[]string{"-o", "hash_algorithm"}, "Missing hash_algorithm argument"},
		{[]string{"-o", "hash_algorithm=md5"}, "Unknown hash_algorithm option (jenkins, murmur3, xxh3)"},
		{[]string{"-o", "slab_automove=x"}, "could not parse argument to slab_automove"},
		{[]string{"-o", "read_buf_mem_limit=x"}, "could not parse argument to read_buf_mem_limit"},
		{[]string{"-o", "ext_path"}, "Missing ext_path argument"},
		{[]string{"-o", "ssl_chain_cert"}, "Missing ssl_chain_cert argument"},
		{[]string{"-o", "ssl_key="}, "Missing ssl_key argument"},
		{[]string{"-o", "ssl_verify_mode"}, "Missing ssl_verify_mode argument"},
		{[]string{"-o", "ssl_verify_mode=x"}, "could not parse argument to ssl_verify_mode"},
		{[]string{"-o", "ssl_verify_mode=4"}, "Invalid ssl_verify_mode. Use help to see valid options."},
		{[]string{"-o", "ssl_min_version=4"}, "Invalid ssl_min_version. Use help to see valid options."},
		{[]string{"-o", "ssl_wbuf_size=-1"}, "could not parse argument to ssl_wbuf_size"},
		{[]string{"-o", "ssl_keyformat=pem"}, "could not parse argument to ssl_keyformat"},

		// Options without effect still have their values checked.
		{[]string{"-f", "1"}, "Factor must be greater than 1"},
		{[]string{"-f", "x"}, `invalid value "x" for -f: not a number`},
		{[]string{"-n", "0"}, "Chunk size must be greater than 0"},
		{[]string{"-N", "0"}, "Maximum number of NAPI IDs must be greater than 0"},
		{[]string{"-N", "5"}, "Number of napi_ids(5) cannot be greater than number of threads(4)"},
		{[]string{"-D", ""}, "No delimiter specified"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, logged, err := parse(tt.args...)
			if err == nil {
				t.Fatalf("parseArgs(%q) = %+v, want error %q", tt.args, o, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("parseArgs(%q) error:\ngot  %s\nwant %s", tt.args, got, tt.want)
			}
			if logged != "" {
				t.Errorf("parseArgs(%q) logged %q before failing, want nothing", tt.args, logged)
			}
		})
	}
}

func TestParseArgsWrapsValueErrors(t *testing.T) {
	tests := []struct {
		args []string
		want error
	}{
		{[]string{"-c", "x"}, errNotInteger},
		{[]string{"-c", "99999999999999999999"}, errOutOfRange},
		{[]string{"-f", "x"}, errNotNumber},
		{[]string{"-m", "9000000000000"}, errOutOfRange},
	}
	for _, tt := range tests {
		_, _, err := parse(tt.args...)
		if !errors.Is(err, tt.want) {
			t.Errorf("parseArgs(%q) error %v: want one wrapping %v", tt.args, err, tt.want)
		}
	}
}

func TestParseArgsIgnored(t *testing.T) {
	tests := []struct {
		args []string
		want []string // options.ignored
	}{
		{[]string{"-d"}, []string{"-d"}},
		{[]string{"-r"}, []string{"-r"}},
		{[]string{"-u", "nobody"}, []string{"-u"}},
		{[]string{"-k"}, []string{"-k"}},
		{[]string{"-f", "1.25"}, []string{"-f"}},
		{[]string{"--slab-growth-factor=1.08"}, []string{"--slab-growth-factor"}},
		{[]string{"-n", "48"}, []string{"-n"}},
		{[]string{"--slab-min-size", "48"}, []string{"--slab-min-size"}},
		{[]string{"-L"}, []string{"-L"}},
		{[]string{"-e", "/dev/shm/mc"}, []string{"-e"}},
		{[]string{"-N", "2"}, []string{"-N"}},
		{[]string{"--napi-ids=2"}, []string{"--napi-ids"}},
		{[]string{"--enable-coredumps", "--lock-memory", "--enable-largepages", "--memory-file=/x"},
			[]string{"--enable-coredumps", "--lock-memory", "--enable-largepages", "--memory-file"}},
		// Once per option, whatever its spelling.
		{[]string{"-f", "1.5", "--slab-growth-factor=2", "-f2"}, []string{"-f"}},
		{[]string{"-dkrL"}, []string{"-d", "-k", "-r", "-L"}},
		{[]string{"-o", "hashpower=20,slab_reassign,slab_automove=2,lru_crawler,lru_maintainer"},
			[]string{"-o hashpower", "-o slab_reassign", "-o slab_automove", "-o lru_maintainer"}},
		{[]string{"-X", "-o", "no_lru_crawler,lru_crawler_sleep=5,lru_crawler_tocrawl=7"}, nil},
		{[]string{"-o", "slab_automove", "-o", "slab_automove=1"}, []string{"-o slab_automove"}},
		{[]string{"-o", "hot_lru_pct=20,warm_lru_pct=40,temporary_ttl=61,modern,no_modern,tail_repair_time=10"},
			[]string{"-o hot_lru_pct", "-o warm_lru_pct", "-o temporary_ttl", "-o modern", "-o no_modern", "-o tail_repair_time"}},
		{[]string{"-o", "hash_algorithm=xxh3,slab_chunk_max=16,track_sizes,no_hashexpand,hot_max_factor=0.2"},
			[]string{"-o hash_algorithm", "-o slab_chunk_max", "-o track_sizes", "-o no_hashexpand", "-o hot_max_factor"}},
		{[]string{"-o", "ext_path=/mnt/ext:1G,ext_threads=2,ext_max_frag=0.8,ext_drop_unread"},
			[]string{"-o ext_path", "-o ext_threads", "-o ext_max_frag", "-o ext_drop_unread"}},
		{[]string{"-o", "no_maxconns_fast"}, []string{"-o no_maxconns_fast"}},
		{[]string{"-o", "maxconns_fast,idle_timeout=5"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, logged, err := parse(tt.args...)
			if err != nil {
				t.Fatalf("parseArgs(%q) error: %v", tt.args, err)
			}
			if !slices.Equal(o.ignored, tt.want) {
				t.Errorf("parseArgs(%q) ignored %q, want %q", tt.args, o.ignored, tt.want)
			}
			lines := strings.Split(strings.TrimSuffix(logged, "\n"), "\n")
			if logged == "" {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("parseArgs(%q) logged %d lines, want %d:\n%s", tt.args, len(lines), len(tt.want), logged)
			}
			for i, line := range lines {
				if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "has no effect") ||
					!strings.Contains(line, tt.want[i]) || !strings.Contains(line, "reason=") {
					t.Errorf("warning %d = %q: want a WARN line naming %s and why", i, line, tt.want[i])
				}
			}
		})
	}
}

func TestParseArgsWarnings(t *testing.T) {
	tests := []struct {
		args []string
		want []string // substrings of the log, in order
	}{
		{[]string{"-t", "65"}, []string{"level=WARN", "high number of worker threads", "threads=65"}},
		{[]string{"-s", "/x", "-l", "127.0.0.1"}, []string{"level=WARN", "TCP is off", "option=-l"}},
		{[]string{"-p", "0", "-s", "/x", "-l", "127.0.0.1"}, []string{"level=WARN", "TCP is off", "option=-l"}},
		{[]string{"-l", "proto[ascii]:127.0.0.1"}, []string{"level=WARN", "not supported yet", "proto[ascii]:127.0.0.1"}},
		{[]string{"extra", "-v"}, []string{"level=WARN", "not an option", "arg=extra"}},
		{[]string{"-d", "x"}, []string{"option=-d", "arg=x"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, logged, err := parse(tt.args...)
			if err != nil {
				t.Fatalf("parseArgs(%q) error: %v", tt.args, err)
			}
			rest := logged
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("parseArgs(%q) logged %q: want %q (in order)", tt.args, logged, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	// -l is dropped when TCP is off.
	o, _, _ := parse("-s", "/x", "-l", "127.0.0.1")
	if o.cfg.ListenAddrs != nil {
		t.Errorf("-s /x -l 127.0.0.1: ListenAddrs = %q, want none", o.cfg.ListenAddrs)
	}
	// No warnings for -h, -V, -i: nothing is started.
	for _, args := range [][]string{{"-d", "-h"}, {"-d", "-V"}, {"-d", "-i"}} {
		if _, logged, _ := parse(args...); logged != "" {
			t.Errorf("parseArgs(%q) logged %q, want nothing", args, logged)
		}
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in   string
		want listenSpec
	}{
		{"127.0.0.1", listenSpec{Addr: "127.0.0.1"}},
		{"127.0.0.1:11311", listenSpec{Addr: "127.0.0.1:11311"}},
		{"localhost:0", listenSpec{Addr: "localhost:0"}},
		{"example.com", listenSpec{Addr: "example.com"}},
		{"::1", listenSpec{Addr: "::1"}},
		{"fe80::1%eth0", listenSpec{Addr: "fe80::1%eth0"}},
		{"[::1]", listenSpec{Addr: "::1"}},
		{"[::1]:11311", listenSpec{Addr: "[::1]:11311"}},
		{"[::]:11311", listenSpec{Addr: "[::]:11311"}},
		{"*", listenSpec{Addr: ""}},
		{"*:11311", listenSpec{Addr: ":11311"}},
		{":11311", listenSpec{Addr: ":11311"}},
		{"127.0.0.1:011311", listenSpec{Addr: "127.0.0.1:11311"}},
		{"notls:127.0.0.1:11311", listenSpec{Addr: "127.0.0.1:11311", NoTLS: true}},
		{"proto[ascii]:127.0.0.1", listenSpec{Addr: "127.0.0.1", Proto: "ascii"}},
		{"proto[binary]:[::1]:1", listenSpec{Addr: "[::1]:1", Proto: "binary"}},
		{"proto[negotiating]:127.0.0.1", listenSpec{Addr: "127.0.0.1", Proto: "auto"}},
		{"tag[abc]:127.0.0.1:1", listenSpec{Addr: "127.0.0.1:1", Tag: "abc"}},
		{"notls:proto[ascii]:tag[12345678]:*:1", listenSpec{Addr: ":1", NoTLS: true, Proto: "ascii", Tag: "12345678"}},
	}
	for _, tt := range tests {
		got, err := parseListen(tt.in)
		if err != nil {
			t.Errorf("parseListen(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("parseListen(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseArgsDoesNotKeepState(t *testing.T) {
	if _, _, err := parse("-l", "127.0.0.1", "-o", "idle_timeout=5", "-vv"); err != nil {
		t.Fatal(err)
	}
	o, _, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.cfg, defaultConfig()) {
		t.Errorf("second parseArgs() config %+v, want the defaults", o.cfg)
	}
}

// TestUsageNamesEveryOption checks that -h documents every option and every
// -o key, so the table and the text do not drift apart.
func TestUsageNamesEveryOption(t *testing.T) {
	var b bytes.Buffer
	writeUsage(&b)
	usage := b.String()
	for _, d := range flagDefs {
		if d.short != 0 && !strings.Contains(usage, "\n-"+string(d.short)) {
			t.Errorf("usage does not list -%c", d.short)
		}
		if d.long != "" && !strings.Contains(usage, "--"+d.long) {
			t.Errorf("usage does not list --%s", d.long)
		}
	}
	keys := []string{"idle_timeout", "maxconns_fast", "ssl_chain_cert", "ssl_key", "ssl_keyformat",
		"ssl_verify_mode", "ssl_ciphers", "ssl_ca_cert", "ssl_wbuf_size", "ssl_session_cache",
		"ssl_kernel_tls", "ssl_min_version"}
	for k := range ignoredSubopts {
		keys = append(keys, strings.TrimPrefix(k, "no_"))
	}
	for _, k := range keys {
		if !strings.Contains(usage, k) {
			t.Errorf("usage does not list -o %s", k)
		}
	}
	for _, line := range strings.Split(usage, "\n") {
		if len(line) > 100 {
			t.Errorf("usage line too long (%d): %q", len(line), line)
		}
	}
}
