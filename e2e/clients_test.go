package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/memcluster/memcluster/internal/servertest"
)

// Real clients against both servers. Each test runs against memcached first
// as the control: a check that fails there is a broken test, not a finding.

// ---- memccapable (libmemcached-tools)

const memccapablePath = "/usr/bin/memccapable"

// capableLine matches one test result of memccapable, "ascii set   [pass]".
var capableLine = regexp.MustCompile(`^((?:ascii|binary) [^\[]*?)\s+\[(\w+)\]\s*$`)

// runMemccapable runs every memccapable test against srv and returns the
// result of each test by name, with the full output.
func runMemccapable(t *testing.T, srv *servertest.Server) (map[string]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, memccapablePath, "-h", "127.0.0.1", "-p", strconv.Itoa(srv.Port), "-t", "5")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Errorf("memccapable did not finish within 60s")
	}
	results := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := capableLine.FindStringSubmatch(line); m != nil {
			results[m[1]] = m[2]
		}
	}
	if err != nil {
		t.Errorf("memccapable: %v", err)
	}
	return results, string(out)
}

func TestMemccapable(t *testing.T) {
	if _, err := os.Stat(memccapablePath); err != nil {
		t.Fatalf("memccapable is not installed (%v); install it with `apt-get install libmemcached-tools`", err)
	}
	t.Parallel()
	var control map[string]string
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name)
			results, out := runMemccapable(t, srv)
			var failed []string
			for test, res := range results {
				if res != "pass" {
					failed = append(failed, test+" ["+res+"]")
				}
			}
			slices.Sort(failed)
			if len(failed) > 0 {
				t.Errorf("memccapable tests not passed: %s", strings.Join(failed, ", "))
			}
			if len(results) < 50 {
				t.Errorf("memccapable reported %d tests, want at least 50", len(results))
			}
			if name == "memcached" {
				control = results
			} else if control != nil {
				for test := range control {
					if _, ok := results[test]; !ok {
						t.Errorf("memccapable test %q ran against memcached but not against %s", test, name)
					}
				}
			}
			if !strings.Contains(out, "All tests passed") {
				t.Errorf("memccapable did not say \"All tests passed\"")
			}
			if t.Failed() {
				t.Logf("memccapable output:\n%s", out)
			}
		})
	}
}

// ---- gomemcache

// listeners returns the ways to reach a server: over TCP, and over a unix
// socket (-s).
func listeners() []struct {
	name  string
	flags func(t *testing.T) []string
} {
	return []struct {
		name  string
		flags func(t *testing.T) []string
	}{
		{"tcp", func(t *testing.T) []string { return nil }},
		{"unix", func(t *testing.T) []string { return []string{"-s", servertest.SocketPath(t)} }},
	}
}

func TestGomemcache(t *testing.T) {
	for _, l := range listeners() {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			for _, name := range backends {
				t.Run(name, func(t *testing.T) {
					srv := servertest.Start(t, name, l.flags(t)...)
					c := memcache.New(srv.Addr)
					c.Timeout = 5 * time.Second
					defer c.Close()
					testGomemcache(t, c)
				})
			}
		})
	}
}

func testGomemcache(t *testing.T, c *memcache.Client) {
	mustGet := func(key string, want string, wantFlags uint32) *memcache.Item {
		t.Helper()
		it, err := c.Get(key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if string(it.Value) != want || it.Flags != wantFlags || it.Key != key {
			t.Fatalf("Get(%q) = key %q value %q flags %d, want value %q flags %d", key, it.Key, it.Value, it.Flags, want, wantFlags)
		}
		return it
	}
	mustMiss := func(key string) {
		t.Helper()
		if it, err := c.Get(key); err != memcache.ErrCacheMiss {
			t.Fatalf("Get(%q) = %+v, %v; want ErrCacheMiss", key, it, err)
		}
	}
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: error %v, want %v", what, err, want)
		}
	}

	check("Ping", c.Ping(), nil)

	// Set, Get
	check("Set foo", c.Set(&memcache.Item{Key: "foo", Value: []byte("fooval"), Flags: 123}), nil)
	mustGet("foo", "fooval", 123)
	check("Set max flags", c.Set(&memcache.Item{Key: "flags", Value: []byte("x"), Flags: 1<<32 - 1}), nil)
	mustGet("flags", "x", 1<<32-1)
	bin := []byte("\x00\r\n\xffEND\r\nVALUE x 0 1\r\n")
	check("Set binary", c.Set(&memcache.Item{Key: "bin", Value: bin}), nil)
	mustGet("bin", string(bin), 0)
	big := bytes.Repeat([]byte("0123456789"), 100_000) // 1,000,000 bytes
	check("Set 1MB", c.Set(&memcache.Item{Key: "big", Value: big}), nil)
	if it, err := c.Get("big"); err != nil || !bytes.Equal(it.Value, big) {
		t.Fatalf("Get(big): %v", err)
	}
	// A large value between small ones in one reply: the node writes it
	// from the item, apart from the reply around it.
	if m, err := c.GetMulti([]string{"foo", "big", "bin", "big"}); err != nil || len(m) != 3 ||
		!bytes.Equal(m["big"].Value, big) || string(m["foo"].Value) != "fooval" || !bytes.Equal(m["bin"].Value, bin) {
		t.Fatalf("GetMulti(foo, big, bin, big): %d items, %v", len(m), err)
	}
	tooBig := bytes.Repeat([]byte("x"), 2<<20)
	if err := c.Set(&memcache.Item{Key: "toobig", Value: tooBig}); err == nil || !strings.Contains(err.Error(), "SERVER_ERROR object too large for cache") {
		t.Fatalf("Set 2MB: error %v, want one quoting SERVER_ERROR object too large for cache", err)
	}
	mustMiss("toobig")
	mustMiss("missing")
	check("Set malformed key", c.Set(&memcache.Item{Key: "has space", Value: []byte("x")}), memcache.ErrMalformedKey)

	// Add
	check("Add existing", c.Add(&memcache.Item{Key: "foo", Value: []byte("x")}), memcache.ErrNotStored)
	check("Add new", c.Add(&memcache.Item{Key: "add", Value: []byte("addval")}), nil)
	mustGet("add", "addval", 0)

	// Replace
	check("Replace missing", c.Replace(&memcache.Item{Key: "repl", Value: []byte("x")}), memcache.ErrNotStored)
	check("Replace existing", c.Replace(&memcache.Item{Key: "foo", Value: []byte("replaced"), Flags: 7}), nil)
	mustGet("foo", "replaced", 7)

	// Append, Prepend
	check("Append", c.Append(&memcache.Item{Key: "foo", Value: []byte(">")}), nil)
	check("Prepend", c.Prepend(&memcache.Item{Key: "foo", Value: []byte("<")}), nil)
	mustGet("foo", "<replaced>", 7)
	check("Append missing", c.Append(&memcache.Item{Key: "nope", Value: []byte("x")}), memcache.ErrNotStored)

	// GetMulti
	m, err := c.GetMulti([]string{"foo", "add", "missing", "flags", "foo"})
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	if len(m) != 3 || m["foo"] == nil || m["add"] == nil || m["flags"] == nil ||
		string(m["foo"].Value) != "<replaced>" || string(m["add"].Value) != "addval" || m["flags"].Flags != 1<<32-1 {
		t.Fatalf("GetMulti = %v", m)
	}
	var keys []string
	for i := range 200 {
		k := fmt.Sprintf("multi%03d", i)
		keys = append(keys, k)
		check("Set "+k, c.Set(&memcache.Item{Key: k, Value: []byte(k)}), nil)
	}
	m, err = c.GetMulti(keys)
	if err != nil || len(m) != len(keys) {
		t.Fatalf("GetMulti(200 keys): %d items, %v", len(m), err)
	}
	for _, k := range keys {
		if m[k] == nil || string(m[k].Value) != k {
			t.Fatalf("GetMulti[%q] = %+v", k, m[k])
		}
	}

	// CompareAndSwap
	it := mustGet("foo", "<replaced>", 7)
	if it.CasID == 0 {
		t.Fatalf("Get(foo) CasID = 0")
	}
	it.Value = []byte("swapped")
	check("CompareAndSwap", c.CompareAndSwap(it), nil)
	mustGet("foo", "swapped", 7)
	it.Value = []byte("stale")
	check("CompareAndSwap stale", c.CompareAndSwap(it), memcache.ErrCASConflict)
	check("Delete foo", c.Delete("foo"), nil)
	check("CompareAndSwap deleted", c.CompareAndSwap(it), memcache.ErrCacheMiss) // NOT_FOUND

	// Delete
	check("Delete missing", c.Delete("foo"), memcache.ErrCacheMiss)
	mustMiss("foo")

	// Increment, Decrement
	check("Set num", c.Set(&memcache.Item{Key: "num", Value: []byte("42")}), nil)
	if v, err := c.Increment("num", 8); err != nil || v != 50 {
		t.Fatalf("Increment = %d, %v; want 50", v, err)
	}
	if v, err := c.Decrement("num", 49); err != nil || v != 1 {
		t.Fatalf("Decrement = %d, %v; want 1", v, err)
	}
	if v, err := c.Decrement("num", 10); err != nil || v != 0 {
		t.Fatalf("Decrement below zero = %d, %v; want 0", v, err)
	}
	check("Set max", c.Set(&memcache.Item{Key: "num", Value: []byte("18446744073709551615")}), nil)
	if v, err := c.Increment("num", 2); err != nil || v != 1 {
		t.Fatalf("Increment wrap = %d, %v; want 1", v, err)
	}
	if _, err := c.Increment("nonum", 1); err != memcache.ErrCacheMiss {
		t.Fatalf("Increment missing: %v, want ErrCacheMiss", err)
	}
	if _, err := c.Increment("add", 1); err == nil || !strings.Contains(err.Error(), "non-numeric value") {
		t.Fatalf("Increment non-numeric: %v, want client error about a non-numeric value", err)
	}

	// Touch, GetAndTouch
	check("Touch", c.Touch("add", 3600), nil)
	mustGet("add", "addval", 0)
	check("Touch missing", c.Touch("nope", 10), memcache.ErrCacheMiss)
	if it, err := c.GetAndTouch("add", 3600); err != nil || string(it.Value) != "addval" {
		t.Fatalf("GetAndTouch = %+v, %v", it, err)
	}
	if _, err := c.GetAndTouch("nope", 10); err != memcache.ErrCacheMiss {
		t.Fatalf("GetAndTouch missing: %v, want ErrCacheMiss", err)
	}
	check("Touch expire", c.Touch("add", -1), nil)
	mustMiss("add")

	// FlushAll
	check("FlushAll", c.FlushAll(), nil)
	mustMiss("flags")
	mustMiss("multi000")
	check("Set after flush", c.Set(&memcache.Item{Key: "after", Value: []byte("y")}), nil)
	mustGet("after", "y", 0)
	check("Ping", c.Ping(), nil)
}

// ---- pymemcache (Debian's python3-pymemcache, with the system python)

const systemPython = "/usr/bin/python3"

// pymemcacheScript exercises pymemcache against the server named in argv[1]
// ("host:port" or a unix socket path) and prints PYMEMCACHE OK.
const pymemcacheScript = `
import sys
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

c = Client(sys.argv[1], connect_timeout=5, timeout=5, default_noreply=False)

def eq(what, got, want):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))

if not c.version():
    raise AssertionError("empty version")
eq("set", c.set("a", b"hello"), True)
eq("get", c.get("a"), b"hello")
eq("get missing", c.get("missing"), None)
eq("set flags", c.set("f", b"x", flags=4294967295), True)
eq("get flags", c.get("f", default=None), b"x")
eq("set expire", c.set("e", b"x", expire=-1), True)
eq("get expired", c.get("e"), None)
eq("set noreply", c.set("n", b"quiet", noreply=True), True)
eq("get noreply", c.get("n"), b"quiet")
eq("get_many", c.get_many(["a", "n", "missing"]), {"a": b"hello", "n": b"quiet"})
eq("set_many", c.set_many({"m1": b"1", "m2": b"2", "m3": b"3"}), [])
eq("get_many 3", c.get_many(["m1", "m2", "m3"]), {"m1": b"1", "m2": b"2", "m3": b"3"})
eq("add existing", c.add("a", b"x"), False)
eq("add new", c.add("b", b"bee"), True)
eq("replace missing", c.replace("r", b"x"), False)
eq("replace", c.replace("b", b"bee2"), True)
eq("append", c.append("b", b">"), True)
eq("prepend", c.prepend("b", b"<"), True)
eq("get b", c.get("b"), b"<bee2>")

value, cas = c.gets("a")
eq("gets value", value, b"hello")
eq("cas ok", c.cas("a", b"world", cas), True)
eq("cas stale", c.cas("a", b"stale", cas), False)
eq("cas missing", c.cas("missing", b"x", cas), None)
eq("get after cas", c.get("a"), b"world")
got = c.gets_many(["a", "b"])
eq("gets_many keys", sorted(got), ["a", "b"])

eq("set num", c.set("num", b"10"), True)
eq("incr", c.incr("num", 5), 15)
eq("decr", c.decr("num", 20), 0)
eq("incr missing", c.incr("nonum", 1), None)
eq("set wrap", c.set("num", b"18446744073709551615"), True)
eq("incr wrap", c.incr("num", 1), 0)
try:
    c.incr("a", 1)
    raise AssertionError("incr of non-numeric value did not fail")
except MemcacheClientError as e:
    eq("incr non-numeric", "non-numeric" in str(e), True)

eq("touch", c.touch("b", 3600), True)
eq("touch missing", c.touch("missing", 10), False)
eq("delete", c.delete("b"), True)
eq("delete missing", c.delete("b"), False)
eq("get deleted", c.get("b"), None)

big = b"z" * 500000
eq("set big", c.set("big", big), True)
eq("get big", c.get("big"), big)

stats = c.stats()
for name in (b"curr_items", b"cmd_get", b"get_hits", b"uptime", b"version"):
    if name not in stats:
        raise AssertionError("stats lacks %r" % name)

eq("flush_all", c.flush_all(), True)
eq("get flushed", c.get("a"), None)
c.close()
print("PYMEMCACHE OK")
`

func TestPymemcache(t *testing.T) {
	if _, err := os.Stat(systemPython); err != nil {
		t.Fatalf("%s is not installed (%v); install python3 and python3-pymemcache", systemPython, err)
	}
	if out, err := exec.Command(systemPython, "-c", "import pymemcache").CombinedOutput(); err != nil {
		t.Fatalf("pymemcache is not importable by %s (%v): %s; install it with `apt-get install python3-pymemcache`", systemPython, err, out)
	}
	for _, l := range listeners() {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			for _, name := range backends {
				t.Run(name, func(t *testing.T) {
					srv := servertest.Start(t, name, l.flags(t)...)
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					out, err := exec.CommandContext(ctx, systemPython, "-c", pymemcacheScript, srv.Addr).CombinedOutput()
					if err != nil || !strings.Contains(string(out), "PYMEMCACHE OK") {
						t.Fatalf("pymemcache script against %s at %s: %v\n%s", name, srv.Addr, err, out)
					}
				})
			}
		})
	}
}
