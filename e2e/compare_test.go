package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// The comparison suite: each case is a sequence of raw requests sent to a
// fresh memcached and to a fresh memcluster started with the same flags; the
// replies must be the same bytes (after the normalizer hides run-dependent
// values: CAS uniques, stats values, the version string). Expected replies
// are not written down: memcached's are the expectation. A few steps carry a
// golden reply as well, checked against memcached, so that the suite cannot
// pass by both servers failing the same way.

// step is one request of a case.
type step struct {
	// conn is the connection (0, 1, …) the request is sent on; each is
	// dialled on first use.
	conn int
	// send is the request. {cas:KEY} is replaced by the last CAS unique
	// this connection saw for KEY in a VALUE line or a meta reply;
	// {cas:@} by the last one any meta reply showed.
	send string
	// want, if hasWant, is the exact reply memcached gives (golden).
	want    string
	hasWant bool
	// closes says the server closes the connection after the reply
	// (golden; checked with hasWant).
	closes bool
	// until, if non-zero, repeats send until the reply is want or until
	// passes (for effects that memcached's one-second clock delays).
	until time.Duration
}

// Step constructors.

// s sends req; the reply is whatever memcached's is.
func s(req string) step { return step{send: req} }

// g sends req and requires memcached's reply to be want.
func g(req, want string) step { return step{send: req, want: want, hasWant: true} }

// gc sends req and requires memcached to reply want and close the
// connection.
func gc(req, want string) step { return step{send: req, want: want, hasWant: true, closes: true} }

// on moves a step to connection n.
func on(n int, st step) step { st.conn = n; return st }

// until repeats req until the reply is want, for at most d.
func until(req, want string, d time.Duration) step {
	return step{send: req, want: want, hasWant: true, until: d}
}

type compareCase struct {
	name  string
	flags []string // server flags beyond -U 0 -l 127.0.0.1 -p PORT
	steps []step
}

// value returns a storage command with a data block of n bytes of 'x'.
func value(cmd, key string, flags, n int, extra string) string {
	if extra != "" {
		extra = " " + extra
	}
	return fmt.Sprintf("%s %s %d 0 %d%s\r\n%s\r\n", cmd, key, flags, n, extra, strings.Repeat("x", n))
}

const (
	maxValue1M = 1048516 // largest value memcached's default -I 1m takes for key "a", flags 0
	maxValue1K = 964     // the same for -I 1k
)

// Flags for a 1 KiB item size limit; memcached needs its slab chunk size
// lowered to match.
var tinyItems = []string{"-I", "1k", "-o", "slab_chunk_max=512"}

func compareCases() []compareCase {
	k250 := strings.Repeat("k", 250)
	k251 := strings.Repeat("k", 251)
	future := strconv.FormatInt(time.Now().Unix()+3600, 10)
	many := func(key string, n int) string {
		return strings.TrimSuffix(strings.Repeat(key+" ", n), " ")
	}
	var keys30 []string
	for i := range 30 {
		keys30 = append(keys30, "k"+strconv.Itoa(i))
	}

	cases := []compareCase{
		// ---- storage commands
		{name: "set_get", steps: []step{
			g("set a 0 0 1\r\nx\r\n", "STORED\r\n"),
			g("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"),
			g("set a 0 0 5\r\nhello\r\n", "STORED\r\n"),
			g("get a\r\n", "VALUE a 0 5\r\nhello\r\nEND\r\n"),
			g("set empty 0 0 0\r\n\r\n", "STORED\r\n"),
			g("get empty\r\n", "VALUE empty 0 0\r\n\r\nEND\r\n"),
			s("set bin 0 0 8\r\n\r\n\x00\xff\r\nEN\r\n"),
			s("get bin\r\n"),
			g("get missing\r\n", "END\r\n"),
		}},
		{name: "flags", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("get a\r\n"),
			g("set b 4294967295 0 1\r\nx\r\n", "STORED\r\n"),
			g("get b\r\n", "VALUE b 4294967295 1\r\nx\r\nEND\r\n"),
			s("set c 65536 0 1\r\nx\r\n"),
			s("get c\r\n"),
			s("set d 4294967296 0 1\r\nx\r\n"),
			s("get d\r\n"),
			s("set e 00 00 01\r\nx\r\n"),
			s("set f +1 +5 +1\r\nx\r\n"),
			s("get e f\r\n"),
		}},
		{name: "add", steps: []step{
			g("add a 0 0 1\r\nx\r\n", "STORED\r\n"),
			g("add a 0 0 1\r\ny\r\n", "NOT_STORED\r\n"),
			s("get a\r\n"),
			s("add b 4294967295 0 2\r\nbb\r\n"),
			s("get b\r\n"),
		}},
		{name: "replace", steps: []step{
			g("replace a 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
			s("get a\r\n"),
			s("set a 1 0 1\r\nx\r\n"),
			s("replace a 7 0 2\r\nzz\r\n"),
			s("get a\r\n"),
		}},
		{name: "append_prepend", steps: []step{
			g("append a 0 0 1\r\nA\r\n", "NOT_STORED\r\n"),
			s("prepend a 0 0 1\r\nP\r\n"),
			s("get a\r\n"),
			s("set a 5 0 2\r\nmm\r\n"),
			s("append a 9 100 1\r\nA\r\n"),
			s("prepend a 9 -1 1\r\nP\r\n"),
			g("get a\r\n", "VALUE a 5 4\r\nPmmA\r\nEND\r\n"),
			s("append a 0 0 0\r\n\r\n"),
			s("gets a\r\n"),
			s("append a 0 0 1\r\nB\r\n"),
			s("gets a\r\n"),
		}},
		{name: "cas", steps: []step{
			g("cas a 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("gets a\r\n"),
			g("cas a 3 0 1 {cas:a}\r\ny\r\n", "STORED\r\n"),
			g("cas a 0 0 1 {cas:a}\r\nz\r\n", "EXISTS\r\n"),
			s("gets a\r\n"),
			s("cas a 0 0 1 {cas:a}\r\nw\r\n"),
			s("gets a\r\n"),
			s("set b 0 0 1\r\nb\r\n"),
			s("gets a b\r\n"),
			s("set b 0 0 1\r\nc\r\n"),
			s("gets a b\r\n"),
		}},
		{name: "cas_bad_args", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("cas a 0 0 1\r\nz\r\n", "ERROR\r\nERROR\r\n"),
			g("cas a 0 0 1 abc\r\nz\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"),
			s("cas a 0 0 1 -1\r\nz\r\n"),
			s("cas a 0 0 1 18446744073709551616\r\nz\r\n"),
			s("cas a 0 0 1 1x\r\nz\r\n"),
			s("get a\r\n"),
		}},
		{name: "cas_after_other_commands", steps: []step{
			s("set a 0 0 1\r\n1\r\n"),
			s("gets a\r\n"),
			s("touch a 100\r\n"),
			s("gets a\r\n"),
			s("cas a 0 0 1 {cas:a}\r\n2\r\n"),
			s("gets a\r\n"),
			s("incr a 1\r\n"),
			s("cas a 0 0 1 {cas:a}\r\n5\r\n"),
			s("gets a\r\n"),
			s("gat 100 a\r\n"),
			s("cas a 0 0 1 {cas:a}\r\n6\r\n"),
			s("gets a\r\n"),
		}},
		{name: "cas_two_connections", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			on(1, s("gets a\r\n")),
			s("gets a\r\n"),
			s("set a 0 0 1\r\ny\r\n"),
			on(1, g("cas a 0 0 1 {cas:a}\r\nz\r\n", "EXISTS\r\n")),
			s("cas a 0 0 1 {cas:a}\r\nz\r\n"),
			s("gets a\r\n"),
			on(1, s("gets a\r\n")),
		}},
		{name: "no_cas_flag", flags: []string{"-C"}, steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("gets a\r\n", "VALUE a 0 1 0\r\nx\r\nEND\r\n"),
			s("cas a 0 0 1 0\r\ny\r\n"),
			s("cas a 0 0 1 1\r\ny\r\n"),
			s("gets a\r\n"),
		}},

		// ---- expiration
		{name: "exptime", steps: []step{
			s("set zero 0 0 1\r\nx\r\n"),
			s("set rel 0 100 1\r\nx\r\n"),
			s("set month 0 2592000 1\r\nx\r\n"),
			s("set monthplus 0 2592001 1\r\nx\r\n"),
			s("set past 0 1000000000 1\r\nx\r\n"),
			s("set future 0 " + future + " 1\r\nx\r\n"),
			s("set neg 0 -1 1\r\nx\r\n"),
			s("set bigneg 0 -9999999999 1\r\nx\r\n"),
			s("set huge 0 9999999999 1\r\nx\r\n"),
			s("get zero rel month monthplus past future neg bigneg huge\r\n"),
			g("get past\r\n", "END\r\n"),
			g("get neg\r\n", "END\r\n"),
			s("set a 0 abc 1\r\nx\r\n"),
			s("set a 0 1x 1\r\nx\r\n"),
		}},
		{name: "exptime_negative_replaces", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("set a 0 -1 1\r\ny\r\n"),
			g("get a\r\n", "END\r\n"),
			s("add a 0 0 1\r\nz\r\n"),
			s("get a\r\n"),
		}},
		{name: "exptime_relative_expires", steps: []step{
			g("set a 0 1 1\r\nx\r\n", "STORED\r\n"),
			until("get a\r\n", "END\r\n", 5*time.Second),
		}},

		// ---- noreply
		{name: "noreply_storage", steps: []step{
			g("set a 0 0 1 noreply\r\nx\r\n", ""),
			g("add a 0 0 1 noreply\r\ny\r\n", ""),
			g("add b 0 0 1 noreply\r\nb\r\n", ""),
			g("replace a 0 0 1 noreply\r\nz\r\n", ""),
			g("replace c 0 0 1 noreply\r\nz\r\n", ""),
			g("append a 0 0 1 noreply\r\nA\r\n", ""),
			g("prepend a 0 0 1 noreply\r\nP\r\n", ""),
			g("append c 0 0 1 noreply\r\nA\r\n", ""),
			s("gets a b c\r\n"),
			g("cas a 0 0 1 {cas:a} noreply\r\nC\r\n", ""),
			g("cas a 0 0 1 {cas:a} noreply\r\nD\r\n", ""),
			g("cas c 0 0 1 1 noreply\r\nD\r\n", ""),
			s("get a b c\r\n"),
			s("set a 0 0 1 garbage\r\nx\r\n"),
			s("set a 0 0 1 noreply extra\r\nx\r\n"),
			s("set a 0 0 1 NOREPLY\r\nx\r\n"),
		}},
		{name: "noreply_other", steps: []step{
			s("set n 0 0 2\r\n10\r\n"),
			g("incr n 5 noreply\r\n", ""),
			g("decr n 2 noreply\r\n", ""),
			g("incr missing 1 noreply\r\n", ""),
			s("get n\r\n"),
			g("touch n 100 noreply\r\n", ""),
			g("touch missing 100 noreply\r\n", ""),
			g("delete n noreply\r\n", ""),
			g("delete n noreply\r\n", ""),
			g("get n\r\n", "END\r\n"),
			s("incr n 1 noreply extra\r\n"),
			g("verbosity 1 noreply\r\n", ""),
			s("set a 0 0 1\r\nx\r\n"),
			g("flush_all noreply\r\n", ""),
			g("get a\r\n", "END\r\n"),
			g("flush_all 0 noreply\r\n", ""),
			s("version\r\n"),
		}},

		// ---- retrieval
		{name: "get_many_keys_duplicates", steps: []step{
			s("set a 1 0 1\r\nA\r\n"),
			s("set b 2 0 2\r\nBB\r\n"),
			s("set c 3 0 3\r\nCCC\r\n"),
			g("get a b c a missing b a\r\n",
				"VALUE a 1 1\r\nA\r\nVALUE b 2 2\r\nBB\r\nVALUE c 3 3\r\nCCC\r\nVALUE a 1 1\r\nA\r\nVALUE b 2 2\r\nBB\r\nVALUE a 1 1\r\nA\r\nEND\r\n"),
			s("gets a b c a missing b a\r\n"),
			s("get " + strings.Join(keys30, " ") + " a b c\r\n"),
			s("get  a   b  \r\n"),
			s("get a\tb\r\n"),
			g("get\r\n", "ERROR\r\n"),
			s("gets\r\n"),
			s("get \r\n"),
		}},
		{name: "gat_gats", steps: []step{
			g("gat 100 a\r\n", "END\r\n"),
			s("set a 5 0 1\r\nx\r\n"),
			s("set b 6 0 2\r\nyy\r\n"),
			s("gat 100 a b missing a\r\n"),
			s("gats 100 a b\r\n"),
			s("gets a b\r\n"),
			s("gat 0 a\r\n"),
			s("gat -1 a\r\n"),
			g("get a\r\n", "END\r\n"),
			s("gats " + future + " b\r\n"),
			s("gat 1000000000 b\r\n"),
			s("get b\r\n"),
			g("gat\r\n", "ERROR\r\n"),
			s("gats\r\n"),
			s("gat 10\r\n"),
			g("gat abc a\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
			s("gat 1x a\r\n"),
			s("gat 100 " + k251 + "\r\n"),
		}},
		{name: "touch", steps: []step{
			g("touch a 10\r\n", "NOT_FOUND\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			g("touch a 10\r\n", "TOUCHED\r\n"),
			s("touch a 0\r\n"),
			s("touch a " + future + "\r\n"),
			s("get a\r\n"),
			s("touch a -1\r\n"),
			g("get a\r\n", "END\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("touch a 1000000000\r\n"),
			s("get a\r\n"),
			g("touch a\r\n", "ERROR\r\n"),
			g("touch a abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
			s("touch a 1 extra\r\n"),
			s("touch\r\n"),
		}},

		// ---- delete
		{name: "delete", steps: []step{
			g("delete a\r\n", "NOT_FOUND\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			g("delete a\r\n", "DELETED\r\n"),
			s("get a\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			g("delete a noreply\r\n", ""),
			s("get a\r\n"),
			g("delete\r\n", "ERROR\r\n"),
			s("delete a b c d\r\n"),
			s("delete a noreply extra\r\n"),
			s("delete " + k251 + "\r\n"),
		}},
		{name: "delete_legacy_time", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("delete a 0\r\n", "DELETED\r\n"),
			s("delete a 0\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			g("delete a 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
			s("get a\r\n"),
			g("delete a 0 noreply\r\n", ""),
			s("get a\r\n"),
			s("delete a x\r\n"),
			s("delete a 5 noreply\r\n"),
			s("delete a -1\r\n"),
		}},

		// ---- incr / decr
		{name: "incr_decr", steps: []step{
			g("incr a 1\r\n", "NOT_FOUND\r\n"),
			s("decr a 1\r\n"),
			s("set a 0 0 2\r\n10\r\n"),
			g("incr a 5\r\n", "15\r\n"),
			g("decr a 3\r\n", "12\r\n"),
			s("decr a 0\r\n"),
			s("incr a 0\r\n"),
			s("incr a 01\r\n"),
			s("incr a +1\r\n"),
			s("incr a 00000000000000000000001\r\n"),
			s("get a\r\n"),
			s("set b 7 100 1\r\n1\r\n"),
			s("incr b 1\r\n"),
			s("get b\r\n"),
		}},
		{name: "incr_wrap", steps: []step{
			s("set a 0 0 20\r\n18446744073709551615\r\n"),
			g("incr a 1\r\n", "0\r\n"),
			s("get a\r\n"),
			s("set a 0 0 20\r\n18446744073709551610\r\n"),
			s("incr a 10\r\n"),
			s("incr a 18446744073709551615\r\n"),
			s("get a\r\n"),
		}},
		{name: "decr_floor_and_padding", steps: []step{
			s("set a 0 0 2\r\n10\r\n"),
			g("decr a 100\r\n", "0\r\n"),
			s("get a\r\n"),
			s("set a 0 0 3\r\n100\r\n"),
			g("decr a 1\r\n", "99\r\n"),
			g("get a\r\n", "VALUE a 0 3\r\n99 \r\nEND\r\n"),
			s("incr a 1\r\n"),
			s("get a\r\n"),
			s("set a 0 0 5\r\n10000\r\n"),
			s("decr a 9999\r\n"),
			s("get a\r\n"),
			s("incr a 99\r\n"),
			s("get a\r\n"),
			s("incr a 99999\r\n"),
			s("get a\r\n"),
			s("append a 0 0 1\r\n0\r\n"),
			s("get a\r\n"),
		}},
		{name: "incr_non_numeric", steps: []step{
			s("set a 0 0 3\r\nabc\r\n"),
			g("incr a 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
			s("decr a 1\r\n"),
			s("set a 0 0 2\r\n 5\r\n"),
			s("incr a 1\r\n"),
			s("set a 0 0 2\r\n5 \r\n"),
			s("incr a 1\r\n"),
			s("set a 0 0 21\r\n111111111111111111111\r\n"),
			s("incr a 1\r\n"),
			s("set a 0 0 20\r\n99999999999999999999\r\n"),
			s("incr a 1\r\n"),
			s("set a 0 0 0\r\n\r\n"),
			s("incr a 1\r\n"),
			s("set a 0 0 2\r\n-1\r\n"),
			s("decr a 1\r\n"),
			s("set a 0 0 3\r\n1.5\r\n"),
			s("incr a 1\r\n"),
		}},
		{name: "incr_invalid_delta", steps: []step{
			s("set a 0 0 1\r\n5\r\n"),
			g("incr a abc\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n"),
			s("incr a -1\r\n"),
			s("decr a -1\r\n"),
			s("incr a 18446744073709551616\r\n"),
			s("incr a 1x\r\n"),
			g("incr a\r\n", "ERROR\r\n"),
			s("decr a\r\n"),
			s("incr\r\n"),
			s("incr a 1 extra\r\n"),
			s("incr a  1\r\n"),
			s("incr " + k251 + " 1\r\n"),
			s("get a\r\n"),
		}},

		// ---- flush_all
		{name: "flush_all", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("flush_all\r\n", "OK\r\n"),
			g("get a\r\n", "END\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("get a\r\n"),
			s("flush_all 0\r\n"),
			s("get a\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("flush_all -1\r\n"),
			s("get a\r\n"),
			g("flush_all abc\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
			s("flush_all 1 2 3\r\n"),
			s("flush_all 0 0\r\n"),
			s("flush_all noreply extra\r\n"),
		}},
		{name: "flush_all_delayed", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("flush_all 100\r\n", "OK\r\n"),
			g("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"),
			s("flush_all 100 noreply\r\n"),
			s("get a\r\n"),
			g("flush_all 1\r\n", "OK\r\n"),
			until("get a\r\n", "END\r\n", 5*time.Second),
		}},
		{name: "flush_all_disabled", flags: []string{"-F"}, steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			g("flush_all\r\n", "CLIENT_ERROR flush_all not allowed\r\n"),
			s("flush_all 10\r\n"),
			s("flush_all noreply\r\n"),
			g("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"),
		}},

		// ---- version, verbosity, quit, unknown
		{name: "version", steps: []step{
			s("version\r\n"),
			s("version x\r\n"),
			s("VERSION\r\n"),
		}},
		// Without -Z memcached refuses refresh_certs, noreply or not.
		{name: "refresh_certs_without_tls", steps: []step{
			g("refresh_certs\r\n", "Error TLS not enabled\r\n"),
			s("refresh_certs noreply\r\n"),
			s("refresh_certs a b c\r\n"),
			s("refresh_certsx\r\n"),
			s("version\r\n"),
		}},
		{name: "verbosity", steps: []step{
			g("verbosity\r\n", "ERROR\r\n"),
			g("verbosity 1\r\n", "OK\r\n"),
			s("verbosity 0\r\n"),
			g("verbosity 1 noreply\r\n", ""),
			s("verbosity noreply\r\n"),
			g("verbosity abc\r\n", "CLIENT_ERROR bad command line format\r\n"),
			s("verbosity 1 2 3\r\n"),
			s("verbosity -1\r\n"),
			s("version\r\n"),
		}},
		{name: "quit", steps: []step{
			gc("quit\r\n", ""),
		}},
		{name: "quit_with_argument", steps: []step{
			s("quit extra\r\n"),
		}},
		{name: "quit_pipelined", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			gc("get a\r\nquit\r\nget a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"),
		}},
		{name: "unknown_commands", steps: []step{
			g("foo\r\n", "ERROR\r\n"),
			s("SET a 0 0 1\r\n"),
			s("GETX\r\n"),
			s("Get a\r\n"),
			s("foo bar baz qux quux corge grault garply waldo fred plugh xyzzy thud a b c d e f g h i j k l m n o p\r\n"),
			s("set\r\n"),
			s("version\r\n"),
		}},
		{name: "empty_lines", steps: []step{
			g("\r\n", "ERROR\r\n"),
			s("\n"),
			s(" \r\n"),
			s("\r\n\r\n"),
			s("\x00\r\n"),
			s("version\r\n"),
		}},

		// ---- malformed command lines
		{name: "missing_args", steps: []step{
			g("set a 0 0\r\n", "ERROR\r\n"),
			s("set a\r\n"),
			s("set\r\n"),
			s("add a 0\r\n"),
			s("replace a\r\n"),
			s("append a 0 0\r\n"),
			s("prepend\r\n"),
			s("cas a 0 0 1\r\n"),
			s("version\r\n"),
		}},
		{name: "bad_flags", steps: []step{
			g("set a abc 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"),
			s("set a -1 0 1\r\nx\r\n"),
			s("set a 1x 0 1\r\nx\r\n"),
			s("set a 18446744073709551616 0 1\r\nx\r\n"),
			s("get a\r\n"),
		}},
		{name: "bad_exptime", steps: []step{
			g("set a 0 abc 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"),
			s("add a 0 1.5 1\r\nx\r\n"),
			s("get a\r\n"),
		}},
		{name: "bad_bytes", steps: []step{
			g("set a 0 0 abc\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"),
			g("set a 0 0 -1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"),
			s("set a 0 0 1x\r\nx\r\n"),
			s("set a 0 0 -1 noreply\r\nx\r\n"),
			s("get a\r\n"),
		}},
		{name: "bytes_overflow_2to32", steps: []step{
			s("set a 0 0 4294967296\r\n"),
			s("\r\n"),
			s("get a\r\n"),
		}},
		{name: "bytes_overflow_20_digits", steps: []step{
			s("set a 0 0 99999999999999999999\r\n"),
			s("version\r\n"),
			s("get a\r\n"),
		}},
		{name: "bytes_overflow_int32", steps: []step{
			s("set a 0 0 2147483647\r\n"),
			s("version\r\n"),
		}},

		// ---- keys
		{name: "key_250_vs_251", steps: []step{
			g("set "+k250+" 0 0 1\r\nx\r\n", "STORED\r\n"),
			g("get "+k250+"\r\n", "VALUE "+k250+" 0 1\r\nx\r\nEND\r\n"),
			g("set "+k251+" 0 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n"),
			g("get "+k251+"\r\n", "CLIENT_ERROR bad command line format\r\n"),
			s("get a " + k251 + " b\r\n"),
			s("get " + k250 + " " + k251 + "\r\n"),
			s("gets " + k250 + " " + k251 + "\r\n"),
			s("add " + k251 + " 0 0 1 noreply\r\nx\r\n"),
			s("touch " + k251 + " 1\r\n"),
			s("delete " + k250 + "\r\n"),
			s("version\r\n"),
		}},
		{name: "keys_control_characters", steps: []step{
			s("set a\x01b 0 0 1\r\nx\r\n"),
			s("get a\x01b\r\n"),
			s("set a\x7fb 0 0 1\r\nx\r\n"),
			s("get a\x7fb\r\n"),
			s("set a\tb 0 0 1\r\nx\r\n"),
			s("get a\tb\r\n"),
			s("set a\x1bb 0 0 1\r\nx\r\n"),
			s("get a\x1bb\r\n"),
			s("set \xc3\xa9\xff\x80 0 0 1\r\nx\r\n"),
			s("get \xc3\xa9\xff\x80\r\n"),
			s("set a\rb 0 0 1\r\nx\r\n"),
			s("get a\rb\r\n"),
			s("version\r\n"),
		}},
		{name: "keys_nul_byte", steps: []step{
			s("set a\x00b 0 0 1\r\nx\r\n"),
			s("get a\x00b\r\n"),
			s("get a\r\n"),
			s("version\r\n"),
		}},

		// ---- data blocks
		{name: "data_block_too_long", steps: []step{
			s("set a 0 0 1\r\nold\r\n"),
			g("set a 0 0 1\r\nab\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
			s("get a\r\n"),
			s("set a 0 0 3\r\nabcdefgh\r\n"),
			s("get a\r\n"),
		}},
		{name: "data_block_replaces_old_value_on_error", steps: []step{
			g("set a 0 0 1\r\nx\r\n", "STORED\r\n"),
			s("set a 0 0 1\r\nyz\r\n"),
			s("get a\r\n"),
		}},
		{name: "data_block_no_crlf", steps: []step{
			g("set a 0 0 1\r\nxyz", "CLIENT_ERROR bad data chunk\r\n"),
			s("get a\r\n"),
			s("version\r\n"),
		}},
		{name: "data_block_short_then_command", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("set a 0 0 1\r\nyZ"),
			s("get a\r\n"),
			s("get a\r\n"),
		}},
		{name: "data_block_pipelined", steps: []step{
			s("set a 0 0 1\r\nxy\r\nget a\r\n"),
			s("version\r\n"),
		}},
		{name: "data_block_cr_cr_lf", steps: []step{
			s("set a 0 0 1\r\nx\r\r\n"),
			s("get a\r\n"),
		}},
		{name: "data_block_noreply_bad", steps: []step{
			s("set a 0 0 3 noreply\r\nabcdefgh\r\n"),
			s("get a\r\n"),
		}},
		{name: "data_block_bare_lf", steps: []step{
			s("set c 0 0 1\r\nx\n"),
			s("get c\r\n"),
			s("get c\r\n"),
		}},

		// ---- line endings
		{name: "bare_lf_lines", steps: []step{
			s("get a\n"),
			s("set b 0 0 1\nx\r\n"),
			s("get b\n"),
			s("gets b\n"),
			s("delete b\n"),
			s("incr b 1\n"),
			s("version\n"),
			s("set d 0 0 1\nx\n"),
			s("get d\n"),
			s("get d\r\n"),
		}},
		{name: "bare_lf_quit", steps: []step{
			s("quit\n"),
		}},
		{name: "cr_inside_line", steps: []step{
			s("get a\rb\r\n"),
			s("version\r\r\n"),
			s("version\r\n"),
		}},

		// ---- item size limits
		{name: "too_large_1k", flags: tinyItems, steps: []step{
			g(value("set", "a", 0, maxValue1K, ""), "STORED\r\n"),
			s("get a\r\n"),
			g(value("set", "a", 0, maxValue1K+1, ""), "SERVER_ERROR object too large for cache\r\n"),
			g("get a\r\n", "END\r\n"),
			s(value("set", "b", 1, maxValue1K-4, "")),
			s(value("set", "b", 1, maxValue1K-3, "")),
			s(value("set", "k123456789", 0, maxValue1K-9, "")),
			s(value("set", "k123456789", 0, maxValue1K-8, "")),
			s(value("set", "c", 0, 2000, "")),
			s("version\r\n"),
			s(value("set", "c", 0, 3000, "noreply")),
			s(value("add", "c", 0, 3000, "")),
			s(value("replace", "c", 0, 3000, "")),
			s("set c 0 0 1\r\nx\r\n"),
			s(value("append", "c", 0, 2000, "")),
			s(value("append", "c", 0, maxValue1K-1, "")),
			s(value("append", "c", 0, 1, "")),
			s("get c\r\n"),
			s("version\r\n"),
		}},
		{name: "too_large_1k_no_cas", flags: append([]string{"-C"}, tinyItems...), steps: []step{
			s(value("set", "a", 0, maxValue1K+8, "")),
			s(value("set", "a", 0, maxValue1K+9, "")),
		}},
		{name: "max_item_default", steps: []step{
			g(value("set", "a", 0, maxValue1M, ""), "STORED\r\n"),
			s("get a\r\n"),
			g(value("set", "b", 0, maxValue1M+1, ""), "SERVER_ERROR object too large for cache\r\n"),
			s("get b\r\n"),
			s(value("set", "c", 0, 2<<20, "")),
			s("version\r\n"),
			s(value("set", "a", 0, 1<<20, "")),
			s("get a\r\n"),
		}},

		// ---- odd and oversized lines
		{name: "http_request", steps: []step{
			gc("GET / HTTP/1.0\r\n", ""),
		}},
		{name: "http_request_after_command", steps: []step{
			s("version\r\n"),
			gc("POST / HTTP/1.1\r\nHost: x\r\n\r\n", ""),
		}},
		{name: "http_like_lowercase", steps: []step{
			s("get / HTTP/1.0\r\n"),
			s("foo bar HTTP/1.1\r\n"),
		}},
		{name: "long_line_3000", steps: []step{
			g(strings.Repeat("x", 3000)+"\r\n", "ERROR\r\n"),
			s("version\r\n"),
			s(strings.Repeat("x ", 1500) + "\r\n"),
			s("set " + strings.Repeat("k", 2990) + " 0 0 1\r\nx\r\n"),
			s("get " + strings.Repeat("k", 3000) + "\r\n"),
			s("version\r\n"),
		}},
		// Once more than 2048 bytes of a line have arrived without its
		// newline, the connection is closed, unless the line is a get or
		// gets, whose key lists may be long.
		{name: "long_line_unterminated", steps: []step{
			gc(strings.Repeat("x", 20000), ""),
		}},
		{name: "line_2049_unterminated", steps: []step{
			gc(strings.Repeat("x", 2049), ""),
		}},
		{name: "line_2048_unterminated", steps: []step{
			g(strings.Repeat("x", 2048), ""),
			g("\r\nversion\r\n", "ERROR\r\nVERSION 1.6.18\r\n"),
		}},
		{name: "set_line_3000_unterminated", steps: []step{
			gc("set "+strings.Repeat("k", 2990)+" 0 0 1", ""),
		}},
		{name: "get_line_3000_unterminated", steps: []step{
			g("get "+strings.Repeat("k ", 1500), ""),
			g("\r\n", "END\r\n"),
			g("gets "+strings.Repeat("k ", 1500), ""),
			g("\r\n", "END\r\n"),
		}},
		{name: "gat_line_3000_unterminated", steps: []step{
			gc("gat 0 "+strings.Repeat("k ", 1500), ""),
		}},
		// Replies owed are written before the node waits for the rest of
		// a request, so a client waiting for them is not left waiting.
		{name: "replies_before_partial_request", steps: []step{
			g("get x\r\nset k 0 0 5\r\nab", "END\r\n"),
			g("cde\r\n", "STORED\r\n"),
			g("get x\r\nget y", "END\r\n"),
			g("\r\n", "END\r\n"),
			g("get x\r\nset k 0 0 2147483647", "END\r\n"),
			g("\r\n", "CLIENT_ERROR bad command line format\r\n"),
			g("get x\r\nset k 0 0 2147483647\r\nab", "END\r\nCLIENT_ERROR bad command line format\r\n"),
			g("\r\n", "ERROR\r\n"),
		}},
		// memcached answers at most 59,999 hits of one item in one
		// response (each holds a reference to the item, and its 16-bit
		// reference count saturates); memcluster need not copy that, so
		// the 100,000 keys cycle over ten items.
		{name: "get_100000_keys_hit", steps: []step{
			s("set k0 0 0 2\r\nv0\r\nset k1 1 0 2\r\nv1\r\nset k2 2 0 2\r\nv2\r\nset k3 3 0 2\r\nv3\r\nset k4 4 0 2\r\nv4\r\n" +
				"set k5 5 0 2\r\nv5\r\nset k6 6 0 2\r\nv6\r\nset k7 7 0 2\r\nv7\r\nset k8 8 0 2\r\nv8\r\nset k9 9 0 2\r\nv9\r\n"),
			s("get " + many("k0 k1 k2 k3 k4 k5 k6 k7 k8 k9", 10000) + "\r\n"),
			s("gets " + many("k0 k1 k2 k3 k4 k5 k6 k7 k8 k9 missing", 9091) + "\r\n"),
			s("version\r\n"),
		}},
		{name: "get_100000_keys_miss", steps: []step{
			g("get "+many("b", 100000)+"\r\n", "END\r\n"),
			s("gets " + many("b", 100000) + "\r\n"),
			s("version\r\n"),
		}},

		// ---- stats
		{name: "stats", steps: []step{
			s("set a 0 0 1\r\n1\r\n"),
			s("get a b\r\n"),
			s("gets a\r\n"),
			s("incr a 1\r\n"),
			s("incr b 1\r\n"),
			s("decr a 1\r\n"),
			s("touch a 100\r\n"),
			s("touch b 100\r\n"),
			s("cas a 0 0 1 {cas:a}\r\n5\r\n"),
			s("cas b 0 0 1 1\r\n5\r\n"),
			s("delete b\r\n"),
			s("set c 0 0 1\r\nx\r\n"),
			s("delete c\r\n"),
			s("stats\r\n"),
			s("stats\r\n"),
		}},
		{name: "stats_settings", steps: []step{s("stats settings\r\n")}},
		{name: "stats_settings_flags", flags: []string{"-m", "32", "-c", "100", "-t", "2", "-R", "7", "-b", "128", "-C", "-F", "-A", "-M", "-I", "2m", "-o", "idle_timeout=600"},
			steps: []step{s("stats settings\r\n"), s("stats\r\n")}},
		{name: "stats_items", steps: []step{
			s("stats items\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("set b 0 0 1000\r\n" + strings.Repeat("y", 1000) + "\r\n"),
			s("stats items\r\n"),
		}},
		// memcached files an item by its size with the CAS unique (8
		// bytes unless -C) and non-zero flags (4 bytes): key "a" with 36
		// bytes of value is 96 bytes, the last of class 1.
		{name: "stats_items_class_edges", steps: []step{
			s(value("set", "a", 0, 36, "")),
			s(value("set", "b", 0, 37, "")),
			s(value("set", "c", 1, 32, "")),
			s(value("set", "d", 1, 33, "")),
			s(value("set", "e", 0, 944-60, "")),
			s(value("set", "f", 0, 944-59, "")),
			s(value("set", "g", 0, 600<<10, "")),
			s("stats items\r\n"),
			s("append a 0 0 1\r\nx\r\n"),
			s("set c 0 0 32\r\n" + strings.Repeat("y", 32) + "\r\n"),
			s("delete e\r\n"),
			s("stats items\r\n"),
		}},
		{name: "stats_items_class_edges_no_cas", flags: []string{"-C"}, steps: []step{
			s(value("set", "a", 0, 44, "")),
			s(value("set", "b", 0, 45, "")),
			s(value("set", "c", 7, 40, "")),
			s(value("set", "d", 7, 41, "")),
			s("stats items\r\n"),
			s("stats slabs\r\n"),
		}},
		{name: "stats_slabs", steps: []step{
			s("stats slabs\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("stats slabs\r\n"),
			s("set b 0 0 1000\r\n" + strings.Repeat("y", 1000) + "\r\n"),
			s("set c 0 0 5000\r\n" + strings.Repeat("y", 5000) + "\r\n"),
			s("set d 0 0 2\r\nxy\r\n"),
			s("stats slabs\r\n"),
			s("delete b\r\n"),
			s("stats slabs\r\nstats items\r\n"),
		}},
		{name: "stats_conns", steps: []step{
			s("stats conns\r\n"),
			on(1, s("version\r\n")),
			s("stats conns\r\n"),
		}},
		{name: "stats_reset", steps: []step{
			s("set a 0 0 1\r\nx\r\n"),
			s("get a\r\n"),
			g("stats reset\r\n", "RESET\r\n"),
			s("stats\r\n"),
			s("stats reset extra\r\n"),
		}},
		// stats reset zeroes the counters and total_items, keeps the
		// gauges (curr_items), and forgets the per-prefix stats.
		{name: "stats_reset_counters", steps: []step{
			s("stats detail on\r\n"),
			s("set a:1 0 0 1\r\n1\r\n"),
			s("set b 0 0 1\r\nx\r\n"),
			s("add b 0 0 1\r\nx\r\n"),
			s("get a:1 b c\r\n"),
			s("gets a:1\r\n"),
			s("incr a:1 5\r\n"),
			s("decr a:1 1\r\n"),
			s("incr c 1\r\n"),
			s("touch b 100\r\n"),
			s("touch c 100\r\n"),
			s("gat 100 b\r\n"),
			s("cas b 0 0 1 1\r\ny\r\n"),
			s("cas c 0 0 1 1\r\ny\r\n"),
			s("delete c\r\n"),
			s("set e 0 0 1\r\nx\r\n"),
			s("get a:1\r\n"),
			s("stats\r\n"),
			s("stats items\r\n"),
			g("stats reset\r\n", "RESET\r\n"),
			s("stats\r\n"),
			s("stats items\r\n"),
			g("stats detail dump\r\n", "END\r\n"),
			s("stats settings\r\n"),
			s("get e\r\n"),
			s("stats\r\n"),
		}},
		// stats detail: per-prefix counts of keys with the ':' delimiter,
		// listed in memcached's (hash) order.
		{name: "stats_detail", steps: []step{
			g("stats detail dump\r\n", "END\r\n"),
			g("stats detail on\r\n", "OK\r\n"),
			s("stats settings\r\n"),
			s("set a:1 0 0 1\r\nx\r\n"),
			s("set b 0 0 1\r\nx\r\n"),
			s("get a:1 a:2 b c:d:e\r\n"),
			s("gets a:1\r\n"),
			s("gat 10 q:1\r\n"),
			s("delete a:1\r\n"),
			s("delete a:9\r\n"),
			s("add a:3 0 0 1\r\nx\r\n"),
			s("add a:3 0 0 1\r\nx\r\n"),
			s("append a:3 0 0 1\r\ny\r\n"),
			s("cas t:9 0 0 1 1\r\nx\r\n"),
			s("set :e 0 0 1\r\nx\r\n"),
			s("get :e\r\n"),
			s("incr x:1 1\r\n"),
			s("touch a:3 10\r\n"),
			s(value("set", "big:1", 0, 1<<20+100, "")),
			s("set t:2 0 0 -1\r\n"),
			g("stats detail dump\r\n", "PREFIX  get 1 hit 1 set 1 del 0\r\n"+
				"PREFIX t get 0 hit 0 set 1 del 0\r\n"+
				"PREFIX c get 1 hit 0 set 0 del 0\r\n"+
				"PREFIX a get 3 hit 2 set 4 del 2\r\n"+
				"PREFIX big get 0 hit 0 set 1 del 0\r\n"+
				"PREFIX q get 1 hit 0 set 0 del 0\r\n"+
				"END\r\n"),
			g("stats detail off\r\n", "OK\r\n"),
			s("get a:3 c:1\r\n"),
			s("set c:1 0 0 1\r\nx\r\n"),
			s("stats detail dump\r\n"),
			s("stats settings\r\n"),
			s("stats detail on extra\r\n"),
			s("get c:1\r\n"),
			s("stats detail dump extra\r\n"),
			s("stats detail bogus\r\n"),
			s("stats detail\r\n"),
		}},
		{name: "stats_other", steps: []step{
			s("stats sizes\r\n"),
			g("stats detail\r\n", "CLIENT_ERROR usage: stats detail on|off|dump\r\n"),
			s("stats detail on\r\n"),
			s("stats detail dump\r\n"),
			s("stats detail off\r\n"),
			g("stats bogus\r\n", "ERROR\r\n"),
			s("stats a b c\r\n"),
			s("STATS\r\n"),
		}},

		{name: "stats_extstore", steps: []step{
			g("stats extstore\r\n", "END\r\n"),
			g("stats extstore foo\r\n", "END\r\n"),
		}},
		// The command counters memcached keeps per class, compared by
		// value (statValuePattern): each counts in the class of the item
		// it read or would store.
		{name: "stats_slabs_counters", steps: []step{
			s("set a 0 0 1\r\n1\r\n"),
			s(value("set", "b", 0, 500, "")),
			s("get a b c\r\n"),
			s("gets a b\r\n"),
			s("gat 100 a\r\n"),
			s("touch b 100\r\n"),
			s("incr a 5\r\n"),
			s("decr a 1\r\n"),
			s("cas a 0 0 1 {cas:a}\r\n7\r\n"),
			s("cas b 0 0 1 1\r\n7\r\n"),
			s("cas z 0 0 1 1\r\n7\r\n"),
			s("add a 0 0 1\r\n1\r\n"),
			s("replace z 0 0 500\r\n" + strings.Repeat("r", 500) + "\r\n"),
			s("append b 0 0 1\r\nx\r\n"),
			s("mg a v\r\n"),
			s("mg b v T30\r\n"),
			s("ms m 2\r\nhi\r\n"),
			s("md m\r\n"),
			s("ma a\r\n"),
			s("delete b\r\n"),
			s("stats slabs\r\n"),
			s("stats\r\n"),
		}},

		// ---- cache_memlimit, slabs, lru: the memory commands
		{name: "cache_memlimit", steps: []step{
			g("cache_memlimit 128\r\n", "OK\r\n"),
			s("stats\r\n"),
			s("stats settings\r\n"),
			g("cache_memlimit 7\r\n", "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"),
			s("cache_memlimit 0\r\n"),
			s("cache_memlimit -0\r\n"),
			s("cache_memlimit 4294967296\r\n"),
			g("cache_memlimit 8\r\n", "OK\r\n"),
			g("cache_memlimit abc\r\n", "ERROR\r\n"),
			s("cache_memlimit -1\r\n"),
			s("cache_memlimit 64m\r\n"),
			s("cache_memlimit +64\r\n"),
			s("cache_memlimit 99999999999999999999\r\n"),
			g("cache_memlimit 1000000001\r\n", "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"),
			s("cache_memlimit 18446744073709551615\r\n"),
			s("cache_memlimit 4294967304\r\n"),
			s("cache_memlimit 1000000000\r\n"),
			s("cache_memlimit 32 noreply\r\n"),
			s("cache_memlimit 7 noreply\r\n"),
			s("cache_memlimit x noreply\r\n"),
			s("cache_memlimit noreply\r\n"),
			s("cache_memlimit 64 foo\r\n"),
			s("cache_memlimit\r\n"),
			s("cache_memlimit 1 2 3\r\n"),
			s("stats\r\n"),
			s("stats settings\r\n"),
			s("version\r\n"),
		}},
		// A smaller limit evicts down to it: the items stored before it
		// may go, the node stays within it, and stores go on.
		{name: "cache_memlimit_shrinks", flags: []string{"-m", "64"}, steps: []step{
			s(value("set", "a", 0, 1000, "")),
			g("cache_memlimit 8\r\n", "OK\r\n"),
			s(value("set", "b", 0, 1000, "")),
			s("get b\r\n"),
			s("stats settings\r\n"),
		}},
		{name: "slabs_automove", steps: []step{
			g("slabs automove 0\r\n", "OK\r\n"),
			s("stats settings\r\n"),
			g("slabs automove 2\r\n", "OK\r\n"),
			s("stats settings\r\n"),
			g("slabs automove 1\r\n", "OK\r\n"),
			g("slabs automove 3\r\n", "ERROR\r\n"),
			g("slabs automove invalid\r\n", "CLIENT_ERROR bad command line format\r\n"),
			s("slabs automove -1\r\n"),
			s("slabs automove 4294967298\r\n"),
			s("slabs automove 2 noreply\r\n"),
			s("slabs automove 9 noreply\r\n"),
			s("slabs automove invalid noreply\r\n"),
			s("slabs automove\r\n"),
			g("slabs automove ratio 0.5\r\n", "OK\r\n"),
			s("slabs automove ratio\r\n"),
			s("slabs automove ratio x\r\n"),
			s("slabs automove ratio 0.3 noreply\r\n"),
			s("slabs automove ratio 1e400\r\n"),
			s("stats settings\r\n"),
			g("slabs\r\n", "ERROR\r\n"),
			s("slabs foo\r\n"),
			s("version\r\n"),
		}},
		{name: "slabs_reassign", steps: []step{
			s("set a 0 0 1\r\n1\r\n"),
			g("slabs reassign 1 2\r\n", "NOSPARE source class has no spare pages\r\n"),
			g("slabs reassign 1 1\r\n", "SAME src and dst class are identical\r\n"),
			s("slabs reassign 0 1\r\n"),
			s("slabs reassign 1 0\r\n"),
			g("slabs reassign -1 1\r\n", "BADCLASS invalid src or dst class id\r\n"),
			s("slabs reassign -2 3\r\n"),
			s("slabs reassign 1 39\r\n"),
			s("slabs reassign 1 40\r\n"),
			s("slabs reassign 1 64\r\n"),
			s("slabs reassign 99 1\r\n"),
			g("slabs reassign x 1\r\n", "CLIENT_ERROR bad command line format\r\n"),
			s("slabs reassign 1 y\r\n"),
			s("slabs reassign 1\r\n"),
			s("slabs reassign 1 2 noreply\r\n"),
			s("slabs reassign 1 2 3\r\n"),
			s("version\r\n"),
		}},
		{name: "slabs_reassign_small_items", flags: tinyItems, steps: []step{
			s("slabs reassign 1 8\r\n"),
			s("slabs reassign 1 9\r\n"),
			s("stats settings\r\n"),
		}},
		{name: "lru", steps: []step{
			g("lru\r\n", "ERROR\r\n"),
			s("lru foo\r\n"),
			s("lru mode\r\n"),
			g("lru mode flat\r\n", "OK\r\n"),
			s("stats settings\r\n"),
			g("lru mode segmented\r\n", "OK\r\n"),
			s("lru mode foo\r\n"),
			s("lru mode flat noreply\r\n"),
			s("lru mode foo noreply\r\n"),
			s("stats settings\r\n"),
			s("lru temp_ttl\r\n"),
			g("lru temp_ttl 10\r\n", "OK\r\n"),
			s("set a 0 0 1\r\nx\r\n"),
			s("stats settings\r\n"),
			s("stats items\r\n"),
			s("lru temp_ttl -1\r\n"),
			s("stats settings\r\n"),
			s("stats items\r\n"),
			s("lru temp_ttl x\r\n"),
			s("lru temp_ttl 4294967296\r\n"),
			s("stats settings\r\n"),
			s("lru temp_ttl 2147483648\r\n"),
			s("lru temp_ttl 9223372036854775808\r\n"),
			s("stats settings\r\n"),
			g("lru tune 10 20 0.5 3\r\n", "OK\r\n"),
			s("stats settings\r\n"),
			g("lru tune 50 40 0.5 3\r\n", "ERROR hot and warm pcts must not exceed 80\r\n"),
			g("lru tune 10 20 0 3\r\n", "ERROR hot/warm age factors must be greater than 0\r\n"),
			s("lru tune 10 20 0.5 -1\r\n"),
			s("lru tune 10 20 x 3\r\n"),
			s("lru tune 10 20 0.5\r\n"),
			s("lru tune -1 20 0.5 3\r\n"),
			s("lru tune 4294967295 1 0.5 3\r\n"),
			s("stats settings\r\n"),
			s("lru tune 10 20 0x10 1e1\r\n"),
			s("stats settings\r\n"),
			s("lru tune 10 20 nan inf\r\n"),
			s("stats settings\r\n"),
			s("lru tune 10 20 1e400 3\r\n"),
			s("lru tune 10 20 1e-400 3\r\n"),
			s("lru tune 10 20 0.25 3 noreply\r\n"),
			s("lru tune 10 20 0.75 3 extra\r\n"),
			s("lru tune 90 20 0.75 3 noreply\r\n"),
			s("stats settings\r\n"),
			s("version\r\n"),
		}},

		// ---- shutdown
		{name: "shutdown_not_enabled", steps: []step{
			g("shutdown\r\n", "ERROR: shutdown not enabled\r\n"),
			s("shutdown graceful\r\n"),
			s("shutdown noreply\r\n"),
			s("version\r\n"),
		}},
		{name: "shutdown_bad_mode", flags: []string{"-A"}, steps: []step{
			g("shutdown x\r\n", "CLIENT_ERROR invalid shutdown mode\r\n"),
			s("shutdown 1 2\r\n"),
			s("version\r\n"),
		}},
		{name: "shutdown", flags: []string{"-A"}, steps: []step{
			gc("shutdown\r\n", ""),
		}},
		{name: "shutdown_graceful", flags: []string{"-A"}, steps: []step{
			gc("shutdown graceful\r\n", ""),
		}},
	}
	cases = append(cases, metaCases()...)
	cases = append(cases, dumpCases()...)
	return append(cases, asciiAuthCases()...)
}

// reply is what one step got back.
type reply struct {
	send   string   // the request as sent (after expansion)
	raw    []byte   // the reply bytes
	lines  []string // the reply normalized
	closed bool     // the server closed the connection by the end of the step
	skip   bool     // not sent: the connection was already closed
}

// Timing of replies read without a sentinel (see sentinel_test.go).
// memcached answers a request on loopback within a millisecond, so a pause
// this long means it has nothing more to say.
const (
	silentWait = 250 * time.Millisecond // wait for a reply that may never come
	idleGap    = 60 * time.Millisecond  // silence that ends memcached's reply
	replyWait  = 5 * time.Second        // wait for a reply that is due
	closeWait  = 2 * time.Second        // wait for a due close

	bigRequest = 64 << 10 // a request that may keep memcached busy past silentWait

	// refPause is the pause before each step of the reference run.
	// memcached does some work in background threads, and its replies
	// depend on whether that work is done: a fetch of an item in its
	// cold LRU leaves a reference to the item with the LRU maintainer
	// until it moves the item, and an incr or decr of an item
	// referenced elsewhere stores a new item rather than changing it in
	// place (total_items counts it); "lru_crawler enable" starts the
	// crawler's thread, which answers BUSY until it runs. A client
	// leaves it that time, as the suite did when it waited for silence
	// after each reply.
	refPause = 100 * time.Millisecond
)

// wire is one connection of a case being played.
type wire struct {
	c     *servertest.Conn
	norm  *normalizer
	frame *framer
}

// play runs a case's steps against srv. Each step that leaves the server
// between two requests is followed by a sentinel and read up to its reply
// (see sentinel_test.go); the others are read, with ref nil (the reference
// run), up to the golden reply or until the server falls silent, and
// otherwise until the reply matches ref's or the server falls silent.
// Both runs send the same bytes: what decides where a sentinel goes is the
// case, never a reply.
func play(t *testing.T, srv *servertest.Server, tc compareCase, ref []reply) []reply {
	t.Helper()
	wires := map[int]*wire{}
	var out []reply
	for i, st := range tc.steps {
		w := wires[st.conn]
		if w == nil {
			w = &wire{c: srv.Raw(t), norm: newNormalizer(srv.Port), frame: newFramer(tc.flags)}
			wires[st.conn] = w
		}
		c, n := w.c, w.norm
		req, ok := n.expand(st.send)
		if !ok && ref == nil {
			t.Fatalf("step %d: %q: no CAS unique seen for the key on this connection", i+1, st.send)
		}
		r := reply{send: req}
		if c.Closed() {
			r.skip, r.closed = true, true
			out = append(out, r)
			continue
		}
		var want *reply
		if ref != nil && i < len(ref) {
			want = &ref[i]
		}
		if ref == nil && i > 0 {
			time.Sleep(refPause)
		}
		sent, fr := w.stepSentinel(tc, st)
		answered := false
		deadline := time.Now().Add(st.until)
		for {
			c.SendString(req)
			if sent != nil {
				r.raw, answered = readToSentinel(c, *sent, fr.dumpLast)
			} else {
				r.raw = readReply(c, n, st, fr, want)
			}
			if st.until == 0 || string(r.raw) == st.want || time.Now().After(deadline) || c.Closed() {
				break
			}
			time.Sleep(50 * time.Millisecond) // poll interval of an until step
		}
		r.lines = n.normalize(r.raw)
		if sent != nil && !answered && !c.Closed() {
			if ref == nil {
				t.Fatalf("step %d %s: memcached did not answer the sentinel %q after it within %v (the framer put it inside a request?); so far:\n%s",
					i+1, quote(req), sent.req, sentinelWait, render(tc, append(out, r)))
			}
			r.lines = append(r.lines, fmt.Sprintf("(no reply to the sentinel %q sent after the step)", sent.req))
		}
		if sent == nil && (st.closes || want != nil && want.closed) && !c.Closed() {
			extra, _ := c.WaitClosed(closeWait)
			r.raw = append(r.raw, extra...)
			r.lines = append(r.lines, n.normalize(extra)...)
		}
		if st.hasWant && strings.Contains(st.want, "STORED\r\n") {
			w.frame.unauth = false // -Y: the connection has authenticated
		}
		r.closed = c.Closed()
		out = append(out, r)
	}
	// Whatever else arrives after the last step, and whether the
	// connections end up closed.
	ids := slices.Sorted(maps.Keys(wires))
	for _, i := range ids {
		w := wires[i]
		c, n := w.c, w.norm
		r := reply{send: fmt.Sprintf("(end of case, connection %d)", i)}
		if !c.Closed() {
			if sent, _ := w.stepSentinel(tc, step{}); sent != nil {
				var answered bool
				r.raw, answered = readToSentinel(c, *sent, false)
				r.lines = n.normalize(r.raw)
				if !answered && !c.Closed() {
					if ref == nil {
						t.Fatalf("end of case, connection %d: memcached did not answer the sentinel %q within %v", i, sent.req, sentinelWait)
					}
					r.lines = append(r.lines, fmt.Sprintf("(no reply to the sentinel %q sent at the end)", sent.req))
				}
			} else {
				r.raw = c.Read(servertest.ReadOptions{First: 100 * time.Millisecond, Idle: idleGap})
				r.lines = n.normalize(r.raw)
			}
		}
		r.closed = c.Closed()
		out = append(out, r)
	}
	return out
}

// stepSentinel follows st's request on the wire's framer and returns the
// sentinel to send after it, or nil if none can follow it, with what the
// framer told of the step.
func (w *wire) stepSentinel(tc compareCase, st step) (*sentinel, framing) {
	unauth := w.frame.unauth
	fr := w.frame.feed(st.send)
	fr.oneLine = unauth && !w.frame.lost && fr.requests > 0
	if !fr.boundary || w.frame.lost || w.frame.unauth || fr.mayClose || st.closes {
		return nil, fr
	}
	return pickSentinel(tc, st.send), fr
}

// readReply reads one step's reply where no sentinel could follow it.
func readReply(c *servertest.Conn, n *normalizer, st step, fr framing, want *reply) []byte {
	switch {
	case want == nil && st.hasWant && st.want != "":
		// The reference run with a golden reply: read until it is
		// complete (or the server closes the connection, or is late).
		return c.Read(servertest.ReadOptions{First: replyWait, Max: replyWait,
			Done: func(b []byte) bool { return len(b) >= len(st.want) }})
	case want == nil && fr.oneLine:
		// Before ASCII authentication memcached answers a read's
		// requests with one line.
		return c.Read(servertest.ReadOptions{First: replyWait, Max: replyWait, Done: oneLine})
	case want == nil && len(st.send) >= bigRequest:
		// A request this large takes memcached a while to parse and
		// answer on a loaded machine: a quarter second of silence does
		// not yet mean it has nothing to say.
		return c.Read(servertest.ReadOptions{First: replyWait, Idle: 4 * idleGap})
	case want == nil:
		return c.Read(servertest.ReadOptions{First: silentWait, Idle: idleGap})
	case len(want.raw) == 0:
		return c.Read(servertest.ReadOptions{First: silentWait, Idle: idleGap})
	default:
		// The reference's last line, or for short replies any line end
		// (the last line may hold a value the normalizer hides), says
		// when normalizing the bytes so far is worth trying.
		last := want.raw[bytes.LastIndex(want.raw[:len(want.raw)-1], []byte("\n"))+1:]
		small := len(want.raw) < 64<<10
		return c.Read(servertest.ReadOptions{First: replyWait, Idle: 5 * idleGap,
			Done: func(b []byte) bool {
				if !bytes.HasSuffix(b, last) && !(small && bytes.HasSuffix(b, []byte("\n"))) {
					return false
				}
				// Normalize a copy: the normalizer records CAS uniques.
				cp := *n
				cp.casIDs, cp.lastCAS = maps.Clone(n.casIDs), maps.Clone(n.lastCAS)
				got := cp.normalize(b)
				return slices.Equal(statsView(want.lines, got), got)
			}})
	}
}

// render shows a transcript for logs.
func render(tc compareCase, rs []reply) string {
	var b strings.Builder
	for i, r := range rs {
		conn := 0
		if i < len(tc.steps) {
			conn = tc.steps[i].conn
		}
		fmt.Fprintf(&b, "step %d (conn %d) >> %s\n", i+1, conn, quote(r.send))
		switch {
		case r.skip:
			b.WriteString("    (not sent: connection closed)\n")
		default:
			b.WriteString(quoteLines(r.lines, "    << "))
			if r.closed {
				b.WriteString("    [connection closed]\n")
			}
		}
	}
	return b.String()
}

// checkGolden checks the golden replies of a case against a transcript.
func checkGolden(t *testing.T, tc compareCase, rs []reply) {
	t.Helper()
	for i, st := range tc.steps {
		if !st.hasWant || i >= len(rs) {
			continue
		}
		r := rs[i]
		if r.skip {
			t.Errorf("step %d %s: not sent, the connection was closed; want reply %q", i+1, quote(st.send), st.want)
			continue
		}
		if string(r.raw) != st.want {
			t.Errorf("step %d %s:\n got %s\nwant %s", i+1, quote(st.send), quote(string(r.raw)), quote(st.want))
		}
		if st.closes != r.closed {
			t.Errorf("step %d %s: connection closed %v, want %v", i+1, quote(st.send), r.closed, st.closes)
		}
	}
}

// compareTranscripts fails t with a readable diff if got differs from want.
func compareTranscripts(t *testing.T, tc compareCase, want, got []reply) {
	t.Helper()
	if d := diffTranscripts(tc, want, got); d != "" {
		t.Errorf("memcluster's replies differ from memcached's:\n%s", d)
	}
}

// diffTranscripts describes the steps whose replies or connection state
// differ, or returns "".
func diffTranscripts(tc compareCase, want, got []reply) string {
	var b strings.Builder
	for i := 0; i < max(len(want), len(got)); i++ {
		if i >= len(want) || i >= len(got) {
			fmt.Fprintf(&b, "step %d: present in only one transcript\n", i+1)
			continue
		}
		w, g := want[i], got[i]
		// memcached's STAT blocks as the stats policy holds memcluster's
		// to (see statsView).
		wl := statsView(w.lines, g.lines)
		if slices.Equal(wl, g.lines) && w.closed == g.closed && w.skip == g.skip {
			continue
		}
		conn := 0
		if i < len(tc.steps) {
			conn = tc.steps[i].conn
		}
		fmt.Fprintf(&b, "step %d (conn %d) >> %s\n", i+1, conn, quote(g.send))
		if !slices.Equal(wl, g.lines) {
			for _, p := range statsProblems(w.lines, g.lines) {
				b.WriteString("  stats policy: " + p + "\n")
			}
			b.WriteString("  reply (- memcached, + memcluster):\n")
			b.WriteString(diffLines(wl, g.lines, "    "))
		}
		if w.closed != g.closed || w.skip != g.skip {
			fmt.Fprintf(&b, "  connection closed: memcached %v, memcluster %v\n", w.closed, g.closed)
		}
	}
	return b.String()
}

func TestCompare(t *testing.T) {
	for _, tc := range compareCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := play(t, servertest.StartMemcached(t, tc.flags...), tc, nil)
			if dump() {
				t.Logf("memcached transcript:\n%s", render(tc, ref))
			}
			t.Run("memcached", func(t *testing.T) {
				checkGolden(t, tc, ref)
				if t.Failed() {
					t.Logf("memcached transcript:\n%s", render(tc, ref))
				}
			})
			t.Run("memcluster", func(t *testing.T) {
				if !enabled("memcluster") {
					t.Skip("memcluster not in $E2E_BACKENDS")
				}
				got := play(t, servertest.StartMemcluster(t, tc.flags...), tc, ref)
				if dump() {
					t.Logf("memcluster transcript:\n%s", render(tc, got))
				}
				compareTranscripts(t, tc, ref, got)
			})
		})
	}
}

// TestShutdown checks that the shutdown command (with -A) and SIGTERM end
// the server process with memcached's exit status, after closing the
// client's connection without a reply.
func TestShutdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, how string }{
		{"command", "shutdown\r\n"},
		{"command_graceful", "shutdown graceful\r\n"},
		{"SIGTERM", "SIGTERM"},
	} {
		how := tc.how
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := -1
			for _, name := range backends {
				t.Run(name, func(t *testing.T) {
					srv := servertest.Start(t, name, "-A")
					c := srv.Raw(t)
					c.RoundTrip(t, "set a 0 0 1\r\nx\r\n", "STORED\r\n")
					var code int
					if how == "SIGTERM" {
						code = srv.Stop().ExitCode()
					} else {
						c.SendString(how)
						extra, closed := c.WaitClosed(5 * time.Second)
						if !closed || len(extra) != 0 {
							t.Errorf("after %q: reply %q, connection closed %v; want no reply and closed", how, extra, closed)
						}
						st := srv.Wait(10 * time.Second)
						if st == nil {
							t.Fatalf("%s still running 10s after %q", name, how)
						}
						code = st.ExitCode()
					}
					switch {
					case name == "memcached" && code != 0:
						t.Errorf("memcached exit status %d after %q, want 0", code, how)
					case name == "memcached":
						want = code
					case want >= 0 && code != want:
						t.Errorf("exit status %d after %q, memcached's is %d", code, how, want)
					}
				})
			}
		})
	}
}

// TestMaxConns opens connections to a server started with -c 30 until it
// turns one away, which must get memcached's exact error line and then be
// closed; after one connection closes, a new one must be accepted.
//
// memcached counts file descriptors against -c (its listeners and internal
// pipes included), so it accepts fewer clients than -c; the test requires
// memcluster to accept at least one and at most -c clients, and logs how
// many each accepted.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	const limit = 30
	const rejection = "ERROR Too many open connections\r\n"
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name, "-c", strconv.Itoa(limit))
			var open []*servertest.Conn
			rejected := false
			for len(open) <= 2*limit && !rejected {
				c := srv.Raw(t)
				c.SendString("version\r\n")
				line, err := c.ReadLine(5 * time.Second)
				switch {
				case strings.HasPrefix(line, "VERSION "):
					open = append(open, c)
				case line == rejection:
					rejected = true
					if extra, closed := c.WaitClosed(5 * time.Second); !closed || len(extra) != 0 {
						t.Errorf("after %q: further reply %q, connection closed %v; want none and closed", rejection, extra, closed)
					}
				default:
					t.Fatalf("connection %d: got %q (%v), want a VERSION line or %q", len(open)+1, line, err, rejection)
				}
			}
			t.Logf("%s -c %d accepted %d client connections", name, limit, len(open))
			if !rejected {
				t.Fatalf("%d connections accepted with -c %d; none turned away", len(open), limit)
			}
			if len(open) == 0 || len(open) > limit {
				t.Errorf("accepted %d connections with -c %d, want 1 to %d", len(open), limit, limit)
			}
			// Free a slot; the server notices the close asynchronously.
			open[0].Close()
			deadline := time.Now().Add(5 * time.Second)
			for {
				c := srv.Raw(t)
				c.SendString("version\r\n")
				line, _ := c.ReadLine(5 * time.Second)
				if strings.HasPrefix(line, "VERSION ") {
					break
				}
				c.Close()
				if line != rejection || time.Now().After(deadline) {
					t.Fatalf("after closing a connection, a new one got %q; want a VERSION line", line)
				}
				time.Sleep(20 * time.Millisecond) // poll interval
			}
		})
	}
}
