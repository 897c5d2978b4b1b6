package e2e

import (
	"slices"
	"strings"
	"testing"

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
