package e2e

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// Tests of the comparison machinery itself, so that the suite cannot pass
// because the normalizer hides a difference.

func TestNormalize(t *testing.T) {
	n := newNormalizer(11211)
	got := n.normalize([]byte("VALUE a 0 1 77\r\nx\r\nVALUE b 5 13 78\r\nSTAT x\r\nEND\r\n\r\nVALUE a 0 1 77\r\ny\r\nEND\r\n"))
	want := []string{
		"VALUE a 0 1 <cas#1>\r\n", "x\r\n",
		"VALUE b 5 13 <cas#2>\r\n", "STAT x\r\nEND\r\n\r\n", // a data block is kept whole
		"VALUE a 0 1 <cas#1>\r\n", "y\r\n",
		"END\r\n",
	}
	if !slices.Equal(got, want) {
		t.Errorf("normalize(gets) =\n%q\nwant\n%q", got, want)
	}
	if req, ok := n.expand("cas a 0 0 1 {cas:a}\r\n"); !ok || req != "cas a 0 0 1 77\r\n" {
		t.Errorf("expand = %q, %v", req, ok)
	}
	if req, ok := n.expand("cas zz 0 0 1 {cas:zz}\r\n"); ok || req != "cas zz 0 0 1 0\r\n" {
		t.Errorf("expand(unknown key) = %q, %v", req, ok)
	}

	got = n.normalize([]byte("STAT pid 42\r\nSTAT cmd_get 3\r\nSTAT tcpport 11211\r\nSTAT evictions on\r\nSTAT 17:addr tcp:1\r\nSTAT 18:addr tcp:2\r\nEND\r\n"))
	want = []string{"STAT <fd>:addr\r\n", "STAT cmd_get 3\r\n", "STAT evictions on\r\n", "STAT pid\r\n", "STAT tcpport <port>\r\n", "END\r\n"}
	if !slices.Equal(got, want) {
		t.Errorf("normalize(stats) =\n%q\nwant\n%q", got, want)
	}

	for in, want := range map[string][]string{
		"VERSION 1.6.18\r\n":      {"VERSION <version>\r\n"},
		"VERSION 1.6.18 x\r\n":    {"VERSION 1.6.18 x\r\n"},
		"VERSION\r\n":             {"VERSION\r\n"},
		"ERROR\r\nEND":            {"ERROR\r\n", "END"},
		"END\n":                   {"END\n"},
		"VALUE a 0 5\r\nab\r\n":   {"VALUE a 0 5\r\n", "ab\r\n"}, // short data block
		"VALUE a 0 x 1\r\nab\r\n": {"VALUE a 0 x 1\r\n", "ab\r\n"},
	} {
		if got := newNormalizer(1).normalize([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeDumps(t *testing.T) {
	for in, want := range map[string][]string{
		// cachedump: sorted, times hidden, sizes and keys kept.
		"ITEM b [2 b; 1796625083 s]\r\nITEM a [1 b; 0 s]\r\nEND\r\n": {
			"ITEM a [1 b; 0 s]\r\n", "ITEM b [2 b; <time> s]\r\n", "END\r\n"},
		"ITEM a [1 b; 0 s]\r\nVERSION 1\r\n": {"ITEM a [1 b; 0 s]\r\n", "VERSION <version>\r\n"},
		"ITEM a [12 b; 0 s]\r\n":             {"ITEM a [12 b; 0 s]\r\n"},
		// metadump: lines ended by "\n", sorted; exp, la, cas hidden
		// unless -1, 0.
		"key=b exp=1796625083 la=1796624983 cas=2 fetch=no cls=1 size=70\nkey=a exp=-1 la=1796624983 cas=0 fetch=yes cls=3 size=65\nEND\r\n": {
			"key=a exp=-1 la=<time> cas=0 fetch=yes cls=3 size=65\n",
			"key=b exp=<time> la=<time> cas=<cas> fetch=no cls=1 size=70\n",
			"END\r\n"},
		"key=a%20b exp=-1 la=1 cas=1 fetch=no cls=1 size=65\nEND\r\nOK\r\n": {
			"key=a%20b exp=-1 la=<time> cas=<cas> fetch=no cls=1 size=65\n", "END\r\n", "OK\r\n"},
	} {
		if got := newNormalizer(1).normalize([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("normalize(%q) =\n%q\nwant\n%q", in, got, want)
		}
	}
}

func TestDiffLines(t *testing.T) {
	d := diffLines([]string{"a", "b", "c"}, []string{"a", "x", "c"}, "")
	want := "  \"a\"\n- \"b\"\n+ \"x\"\n  \"c\"\n"
	if d != want {
		t.Errorf("diffLines =\n%s\nwant\n%s", d, want)
	}
	big := make([]string, 3000)
	for i := range big {
		big[i] = "l"
	}
	other := slices.Clone(big)
	other[2000] = "m"
	if d := diffLines(big, other, ""); !strings.Contains(d, "first difference at line 2001") {
		t.Errorf("diffLines(big) = %s", d)
	}
}

// TestCompareHarnessSeesDifferences plays cases against two memcached
// servers that behave differently (-C turns CAS off; -F refuses
// flush_all; an early close) and requires the comparison to report each.
func TestCompareHarnessSeesDifferences(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c      compareCase
		flags  []string
		expect string
	}{
		{compareCase{name: "cas", steps: []step{s("set a 0 0 1\r\nx\r\n"), s("gets a\r\n")}}, []string{"-C"}, "<cas#1>"},
		{compareCase{name: "flush", steps: []step{s("flush_all\r\n")}}, []string{"-F"}, "CLIENT_ERROR flush_all not allowed"},
		{compareCase{name: "stats", steps: []step{s("stats settings\r\n")}}, []string{"-m", "32"}, "STAT maxbytes 33554432"},
		{compareCase{name: "silence", steps: []step{s("set a 0 0 1 noreply\r\nx\r\n"), s("version\r\n")}}, []string{"-F"}, ""},
		{compareCase{name: "close", steps: []step{s("shutdown\r\n"), s("version\r\n")}}, []string{"-A"}, "connection closed: memcached false, memcluster true"},
	} {
		t.Run(tc.c.name, func(t *testing.T) {
			t.Parallel()
			ref := play(t, servertest.StartMemcached(t), tc.c, nil)
			got := play(t, servertest.StartMemcached(t, tc.flags...), tc.c, ref)
			d := diffTranscripts(tc.c, ref, got)
			if tc.expect == "" {
				if d != "" {
					t.Errorf("same behaviour reported as different:\n%s", d)
				}
				return
			}
			if !strings.Contains(d, tc.expect) {
				t.Errorf("diff does not mention %q:\n%s", tc.expect, d)
			}
		})
	}
}

// TestFramer checks where the framer puts request boundaries, so that no
// sentinel is sent where memcached would read it as part of a request.
func TestFramer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string
		steps    []string
		boundary []bool // after each step
		lost     bool   // after the last
	}{
		{"lines", nil, []string{"get a\r\n", "version\n", "mn\r\nmg a v\r\n"}, []bool{true, true, true}, false},
		{"partial line", nil, []string{"get a", "\r\n"}, []bool{false, true}, false},
		{"data block", nil, []string{"set a 0 0 5\r\nab", "cde\r\n", "ms a 2\r\nhi\r\n"}, []bool{false, true, true}, false},
		{"block one byte short", nil, []string{"set a 0 0 1\r\nx\n", "\r\n"}, []bool{false, true}, false},
		{"block holds a line end", nil, []string{"set a 0 0 4\r\nx\r\ny\r\n"}, []bool{true}, false},
		{"block too long: the rest is a line", nil, []string{"set a 0 0 1\r\nabc\r\n"}, []bool{true}, false},
		{"byte count cut to 32 bits", nil, []string{"set a 0 0 4294967296\r\n", "\r\n"}, []bool{false, true}, false},
		{"byte count refused: no block", nil, []string{"set a 0 0 2147483647\r\n", "set a 0 0 -1\r\n", "set a 0 0 1x\r\n", "ms a 2147483648\r\n"}, []bool{true, true, true, true}, false},
		{"cas", nil, []string{"cas a 0 0 1 5\r\n", "x\r\n"}, []bool{false, true}, false},
		{"watch", nil, []string{"watch\r\n", "mn\r\n"}, []bool{false, false}, true},
		{"binary", nil, []string{"\x80\x0a\x00\x00"}, []bool{false}, true},
		{"auth: set reads a block", []string{"-Y", "f"}, []string{"set a 0 0 12\r\nalice", " secret\r\n", "get a\r\n"}, []bool{false, true, true}, false},
		{"auth: block length in 32 bits", []string{"-Y", "f"}, []string{"set a 0 0 4294967295\r\n", "x"}, []bool{false, true}, false},
		{"auth: too few tokens, no block", []string{"-Y", "f"}, []string{"set a 0 12\r\n"}, []bool{true}, false},
		{"auth: block larger than the read buffer", []string{"-Y", "f"}, []string{"set a 0 0 20000\r\n"}, []bool{false}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFramer(tc.flags)
			for i, req := range tc.steps {
				if got := f.feed(req).boundary; got != tc.boundary[i] {
					t.Errorf("after step %d %q: boundary %v, want %v", i+1, req, got, tc.boundary[i])
				}
			}
			if f.lost != tc.lost {
				t.Errorf("lost %v, want %v", f.lost, tc.lost)
			}
		})
	}
	if fr := newFramer(nil).feed("set a 0 0 1\r\nx\r\nlru_crawler metadump all\r\n"); fr.requests != 2 || !fr.dumpLast {
		t.Errorf("a set and a metadump: %+v, want 2 requests, the last a metadump", fr)
	}
	if fr := newFramer([]string{"-A"}).feed("shutdown graceful\r\n"); !fr.mayClose {
		t.Errorf("shutdown with -A: %+v, want mayClose", fr)
	}
	if fr := newFramer(nil).feed("shutdown\r\n"); fr.mayClose {
		t.Errorf("shutdown without -A: %+v, want no mayClose", fr)
	}
}

func TestSentinelCut(t *testing.T) {
	mn, version := sentinels[0], sentinels[1]
	for _, tc := range []struct {
		s    sentinel
		in   string
		n    int
		rest string
		cut  int
	}{
		{mn, "END\r\nMN\r\n", 1, "END\r\n", 1},
		{mn, "MN\r\n", 1, "", 1},
		{mn, "MN\r\nMN\r\n", 2, "", 2},
		{mn, "MN\r\nMN\r\n", 1, "MN\r\n", 1},
		{mn, "VA 2\r\nMN\r\n", 1, "VA 2\r\n", 1},
		{mn, "XMN\r\n", 1, "XMN\r\n", 0},
		{mn, "END\r\nMN", 1, "END\r\nMN", 0},
		{mn, "key=a\nMN\r\n", 1, "key=a\n", 1},
		{version, "STORED\r\nVERSION 1.6.18\r\n", 1, "STORED\r\n", 1},
		{version, "VERSION 1.6.18 x\r\n", 1, "VERSION 1.6.18 x\r\n", 0},
		{version, "STAT version 1.6.18\r\n", 1, "STAT version 1.6.18\r\n", 0},
		{version, "VERSION \r\n", 1, "VERSION \r\n", 0},
	} {
		rest, cut := tc.s.cut([]byte(tc.in), tc.n)
		if string(rest) != tc.rest || cut != tc.cut {
			t.Errorf("%s.cut(%q, %d) = %q, %d; want %q, %d", tc.s.cmd, tc.in, tc.n, rest, cut, tc.rest, tc.cut)
		}
	}
	// A step that sends a sentinel's command, or a case whose data holds
	// its reply, gets the other.
	tc := compareCase{steps: []step{s("ms a 2\r\nMN\r\n")}}
	if got := pickSentinel(tc, "mg a v\r\n"); got == nil || got.cmd != "version" {
		t.Errorf("pickSentinel with MN as data: %v, want version", got)
	}
	if got := pickSentinel(compareCase{}, "mn\r\n"); got == nil || got.cmd != "version" {
		t.Errorf("pickSentinel after mn: %v, want version", got)
	}
	if got := pickSentinel(compareCase{}, "mn\r\nversion\r\n"); got != nil {
		t.Errorf("pickSentinel after mn and version: %v, want none", got)
	}
}

// TestSentinelReadsWholeReplies plays steps against memcached whose replies
// are known and requires each step's reply whole, the sentinel's cut off:
// a step that sends the sentinel's own command, a metadump (after which
// memcached leaves a sentinel in the same read unanswered), a reply of a
// megabyte, a quiet meta command with nothing to say, a noreply.
func TestSentinelReadsWholeReplies(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 1<<20)
	tc := compareCase{name: "sentinel", steps: []step{
		g("mn\r\n", "MN\r\n"),
		g("version\r\n", "VERSION 1.6.18\r\n"),
		g("set a 0 0 1 noreply\r\nx\r\n", ""),
		g("lru_crawler metadump 2\r\n", "END\r\n"),
		g("mg a v q\r\nmg b v q\r\n", "VA 1\r\nx\r\n"),
		g("set big 0 0 1048576\r\n"+big+"\r\n", "STORED\r\n"),
		g("get big\r\n", "VALUE big 0 1048576\r\n"+big+"\r\nEND\r\n"),
		g("mg miss q\r\n", ""),
	}}
	got := play(t, servertest.StartMemcached(t, "-I", "2m"), tc, nil)
	checkGolden(t, tc, got)
	if end := got[len(got)-1]; len(end.raw) != 0 || end.closed {
		t.Errorf("end of case: %q, closed %v; want nothing, open", end.raw, end.closed)
	}
}

// TestLateRepliesAreNotDifferences plays a case against a reference that
// answers each request late, in two parts with a pause between them, and
// against one that answers at once: the transcripts must be the same. (A
// reference read until it fell silent read such replies as empty, or cut
// them, and the next step's reply as this one's.)
func TestLateRepliesAreNotDifferences(t *testing.T) {
	t.Parallel()
	tc := compareCase{name: "late", steps: []step{
		s("get a\r\n"), s("version\r\n"), s("get b\r\n"), s("mn\r\n"),
	}}
	late := play(t, fakeServer(t, 300*time.Millisecond), tc, nil)
	prompt := play(t, fakeServer(t, 0), tc, late)
	if d := diffTranscripts(tc, late, prompt); d != "" {
		t.Errorf("late replies read as differences:\n%s", d)
	}
	if got := string(late[0].raw); got != "VALUE a 0 1\r\nx\r\nEND\r\n" {
		t.Errorf("a late reply in two parts: %q, want it whole", got)
	}
}

// fakeServer serves a few commands as memcached answers them ("get a"
// hits, other gets miss), each reply in two parts, delay before each part.
func fakeServer(t *testing.T, delay time.Duration) *servertest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	replies := map[string][2]string{
		"get a":   {"VALUE a 0 1\r\nx\r\n", "END\r\n"},
		"get b":   {"", "END\r\n"},
		"version": {"VERSION ", "1.6.18\r\n"},
		"mn":      {"M", "N\r\n"},
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					parts, ok := replies[strings.TrimSuffix(line, "\r\n")]
					if !ok {
						parts = [2]string{"", "ERROR\r\n"}
					}
					for _, p := range parts {
						time.Sleep(delay)
						if _, err := io.WriteString(c, p); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	addr := l.Addr().(*net.TCPAddr)
	return &servertest.Server{Name: "fake", Network: "tcp", Addr: addr.String(), Port: addr.Port}
}
