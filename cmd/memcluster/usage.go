package main

import (
	"fmt"
	"io"

	"github.com/memcluster/memcluster/internal/buildinfo"
	"github.com/memcluster/memcluster/node/config"
)

// usageText is the -h output, laid out as memcached's: one option a line,
// its long form, its default. Options memcluster accepts without effect say
// so. The %[1]s verb is the version; the others are node's defaults.
const usageText = `memcluster %[1]s, a memcached-compatible cache node
Usage: memcluster [options]
Options are memcached 1.6's. Those marked "ignored" are accepted, so that
memcached's command lines keep working, but have no effect (a warning says so).

-p, --port=<num>          TCP port to listen on (default: %[2]d); 0 turns TCP off
-U, --udp-port=<num>      UDP port: only 0 (off, the default) is accepted,
                          memcluster does not serve UDP
-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)
-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: %[3]o)
-A, --enable-shutdown     enable ascii "shutdown" command
-l, --listen=<addr>       interface to listen on (default: all interfaces); may
                          repeat and hold a list separated by ',' or ';', each
                          <host>[:<port>], an IPv6 address in brackets when a
                          port follows it ([::1]:11211), '*' for all interfaces;
                          with -Z, notls: serves the entry without TLS;
                          memcached's proto[<name>]: and tag[<tag>]: prefixes
                          are read but not acted on yet. Gossip binds to the
                          first entry's host too, unless --gossip-addr is given
-d, --daemon              ignored: memcluster runs in the foreground
-r, --enable-coredumps    ignored
-u, --user=<user>         ignored: memcluster does not switch user; start it as
                          the user it should run as
-m, --memory-limit=<num>  item memory in megabytes (default: %[4]d)
-M, --disable-evictions   return error on memory exhausted instead of evicting
-c, --conn-limit=<num>    max simultaneous connections (default: %[5]d)
-k, --lock-memory         ignored
-v, --verbose             verbose: also log gossip's own warnings and failed TLS
                          handshakes (the default logs start-up, members joining,
                          leaving and failing, seeds not reached, reloads, the
                          drain, dropped gossip and every warning)
-vv                       very verbose: also log connections as they open and
                          close, and every command, as memcached -vv
-vvv                      same as -vv
    --verbose=<num>       set the verbosity to <num>, as that many -v
    --log-format=<fmt>    log as text (the default) or json, on stderr
-h, --help                print this help and exit
-i, --license             print license information and exit
-V, --version             print version and exit
-P, --pidfile=<file>      save PID in <file>, with or without -d; removed at exit
-f, --slab-growth-factor=<num> ignored (memcached's slab allocator)
-n, --slab-min-size=<bytes> ignored (memcached's slab allocator)
-L, --enable-largepages   ignored
-D <char>                 use <char> as the delimiter between key prefixes and
                          IDs in per-prefix stats (stats detail), and turn them
                          on (default delimiter: ':', stats detail off)
-t, --threads=<num>       number of threads to use, as GOMAXPROCS (default: %[6]d)
-R, --max-reqs-per-event  maximum number of requests a connection is served in
                          a row before the others are (default: %[7]d)
-C, --disable-cas         disable use of CAS
-b, --listen-backlog=<num> set the listen backlog (default: %[8]d)
-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: auto-negotiate)
-I, --max-item-size=<num> adjusts max item size, in bytes or with a k or m suffix
                          (default: 1m, min: 1k, max: 1024m and half of -m)
-S, --enable-sasl         turn on SASL authentication (binary protocol only);
                          users from --sasl-pwdb or $MEMCACHED_SASL_PWDB
-F, --disable-flush-all   disable flush_all command
-X, --disable-dumping     disable stats cachedump and lru_crawler metadump
-W, --disable-watch       disable watch commands (live logging)
-Y, --auth-file=<file>    ASCII protocol authentication with the user:password
                          lines of <file>; forces the ascii protocol; SIGHUP
                          reloads it
-e, --memory-file=<file>  ignored
-Z, --enable-ssl          enable TLS on every TCP listener (but notls: ones); the
                          unix socket stays plain; SIGHUP reloads the files
-N, --napi-ids=<num>      ignored
-o, --extended            comma separated list of extended options; may repeat
   - idle_timeout:        timeout in seconds for idle connections (default: 0, no timeout)
   - maxconns_fast:       close new connections over the limit at once; always on
   - watcher_logbuf_size: size in kilobytes of per-watcher write buffer (default: 256)
   - ssl_chain_cert:      server's certificate chain, PEM (required with -Z)
   - ssl_key:             server's private key (default: read from ssl_chain_cert)
   - ssl_keyformat:       key format: 1 PEM (default), 2 DER
   - ssl_verify_mode:     client certificates: 0 not asked (default), 1 verified
                          if sent, 2 required, 3 required (as 2)
   - ssl_ca_cert:         CA certificates, PEM, that client certificates chain to
   - ssl_min_version:     oldest TLS version: 0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2
                          (default), 3 TLS 1.3
   - ssl_session_cache:   let clients resume TLS sessions (session tickets)
   - ssl_ciphers, ssl_wbuf_size, ssl_kernel_tls: ignored (Go's crypto/tls)
   - lru_crawler:         the LRU crawler (the reclaimer of expired items) on;
                          the default
   - no_lru_crawler:      the LRU crawler off until "lru_crawler enable"
   - lru_crawler_sleep:   microseconds a crawl or metadump rests every 1000
                          items (default: 100)
   - lru_crawler_tocrawl: most items of a class one crawl examines (default:
                          0, no limit)
   - ignored, as they tune memcached's own slab allocator, LRU, hash table,
     logger or external storage: hashpower, no_hashexpand, slab_reassign,
     slab_automove, slab_automove_ratio, slab_automove_window,
     tail_repair_time, hash_algorithm, lru_maintainer, hot_lru_pct,
     warm_lru_pct, hot_max_factor, warm_max_factor, temporary_ttl, slab_sizes,
     slab_chunk_max, track_sizes, no_chunked_items, modern, no_modern,
     inline_ascii_resp, resp_obj_mem_limit, read_buf_mem_limit,
     worker_logbuf_size, no_maxconns_fast,
     drop_privileges, sock_cookie_id, slab_automove_freeratio, ext_path,
     ext_page_size, ext_wbuf_size, ext_threads, ext_io_depth, ext_item_size,
     ext_item_age, ext_low_ttl, ext_recache_rate, ext_compact_under,
     ext_drop_under, ext_max_sleep, ext_max_frag, ext_drop_unread
     (and the no_ forms memcached has)
`

// writeUsage writes the -h text to w.
func writeUsage(w io.Writer) {
	fmt.Fprintf(w, usageText, version, config.DefaultPort, config.DefaultUnixMask,
		config.DefaultMemoryLimit>>20, config.DefaultMaxConns, config.DefaultThreads,
		config.DefaultMaxReqsPerEvent, config.DefaultBacklog)
	io.WriteString(w, clusterUsageText())
	io.WriteString(w, authUsage)
}

// writeVersion writes the -V line to w (see buildinfo.Line).
func writeVersion(w io.Writer) {
	fmt.Fprintln(w, buildinfo.Line("memcluster", buildinfo.Read()))
}

// writeLicense writes the -i text to w.
func writeLicense(w io.Writer) {
	fmt.Fprintf(w, `memcluster %s

memcluster is a memcached-compatible cache written in Go. It contains no code
from memcached or libevent. It is released under the BSD 3-Clause license,
in the LICENSE file of its source distribution:

%s`, version, licenseText)
}

// licenseText is the LICENSE file at the root of the source, which -i
// prints (TestLicenseText keeps the two the same).
const licenseText = `BSD 3-Clause License

Copyright (c) 2026, The memcluster authors

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
`
