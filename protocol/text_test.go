package protocol

import (
	"bufio"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// decodeAll decodes every request in input, rendering each as a string so
// that tables can state what they expect.
func decodeAll(t testing.TB, r io.Reader) []string {
	t.Helper()
	return decodeRendered(t, r, render)
}

// decodeRendered decodes every request in r (values up to 1 KiB), each
// rendered by render, and how the stream ended.
func decodeRendered(t testing.TB, r io.Reader, render func(*Request) string) []string {
	t.Helper()
	tr := NewTextReader(bufio.NewReaderSize(r, 16<<10))
	tr.MaxValue = 1 << 10
	var out []string
	for {
		req, err := tr.Next()
		if err == nil {
			err = gatherKeys(tr, req)
		}
		var te *TextError
		switch {
		case err == nil:
			out = append(out, render(req))
		case errors.As(err, &te):
			s := "error " + te.Line
			if req != nil && req.Noreply {
				s += " (noreply)"
			}
			out = append(out, s)
		case errors.Is(err, ErrClose):
			return append(out, "close")
		case err == io.EOF:
			return out
		default:
			return append(out, "io "+err.Error())
		}
	}
}

// gatherKeys reads the rest of a retrieval command's keys (see NextKeys)
// into req.Keys, each copied, as if the line had held them in one batch.
func gatherKeys(tr *TextReader, req *Request) error {
	if !req.MoreKeys {
		return nil
	}
	var all [][]byte
	for {
		for _, k := range req.Keys {
			all = append(all, append([]byte(nil), k...))
		}
		if !req.MoreKeys {
			req.Keys = all
			return nil
		}
		if err := tr.NextKeys(req); err != nil {
			return err
		}
	}
}

func render(r *Request) string {
	var b strings.Builder
	b.WriteString(r.Command.String())
	for _, k := range r.Keys {
		b.WriteString(" k=" + string(k))
	}
	if r.Command.IsStorage() {
		b.WriteString(" f=" + itoa(uint64(r.Flags)) + " e=" + itoa64(r.Exptime) + " d=" + string(r.Data))
	}
	if r.CAS != 0 {
		b.WriteString(" cas=" + itoa(r.CAS))
	}
	if r.Delta != 0 {
		b.WriteString(" delta=" + itoa(r.Delta))
	}
	if r.Command == CmdTouch || r.Command == CmdGat || r.Command == CmdGats || r.Command == CmdFlushAll {
		b.WriteString(" e=" + itoa64(r.Exptime))
	}
	if r.Command == CmdVerbosity {
		b.WriteString(" v=" + itoa(uint64(r.Verbosity)))
	}
	for _, a := range r.Args {
		b.WriteString(" a=" + string(a))
	}
	if r.Noreply {
		b.WriteString(" noreply")
	}
	return b.String()
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }

func TestTextDecode(t *testing.T) {
	long := strings.Repeat("k", 250)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"get one", "get a\r\n", []string{"get k=a"}},
		{"get many", "get a b  c\r\n", []string{"get k=a k=b k=c"}},
		{"gets", "gets a\r\n", []string{"gets k=a"}},
		{"bget", "bget a\r\n", []string{"get k=a"}},
		{"gat", "gat 10 a b\r\n", []string{"gat k=a k=b e=10"}},
		{"gats bad exptime", "gats x a\r\n", []string{"error CLIENT_ERROR invalid exptime argument"}},
		{"get no key", "get\r\n", []string{"error ERROR"}},
		{"get key 250", "get " + long + "\r\n", []string{"get k=" + long}},
		{"get key 251", "get a " + long + "k\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"bare newline", "get a\nget b\n", []string{"get k=a", "get k=b"}},
		{"set", "set k 5 10 3\r\nabc\r\n", []string{"set k=k f=5 e=10 d=abc"}},
		{"set noreply", "set k 0 0 1 noreply\r\nx\r\n", []string{"set k=k f=0 e=0 d=x noreply"}},
		{"add replace append prepend", "add a 0 0 1\r\n1\r\nreplace a 0 0 1\r\n2\r\nappend a 0 0 1\r\n3\r\nprepend a 0 0 1\r\n4\r\n",
			[]string{"add k=a f=0 e=0 d=1", "replace k=a f=0 e=0 d=2", "append k=a f=0 e=0 d=3", "prepend k=a f=0 e=0 d=4"}},
		{"cas", "cas k 1 2 1 99\r\nx\r\n", []string{"cas k=k f=1 e=2 d=x cas=99"}},
		{"cas missing unique", "cas k 1 2 1\r\nx\r\n", []string{"error ERROR", "error ERROR"}},
		{"flags max", "set k 4294967295 0 0\r\n\r\n", []string{"set k=k f=4294967295 e=0 d="}},
		{"flags truncated like memcached", "set k 4294967297 0 0\r\n\r\n", []string{"set k=k f=1 e=0 d="}},
		{"negative flags", "set k -1 0 1\r\nx\r\n", []string{"error CLIENT_ERROR bad command line format", "error ERROR"}},
		{"negative exptime", "set k 0 -1 1\r\nx\r\n", []string{"set k=k f=0 e=-1 d=x"}},
		{"negative length", "set k 0 0 -1\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"overflowing length", "set k 0 0 99999999999999999999\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"non-numeric length", "set k 0 0 x\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"missing length", "set k 0 0\r\n", []string{"error ERROR"}},
		{"too many tokens", "set k 0 0 1 noreply x\r\n", []string{"error ERROR"}},
		{"bad data chunk", "set k 0 0 3\r\nabcde\r\nget k\r\n", []string{"error CLIENT_ERROR bad data chunk", "error ERROR", "get k=k"}},
		{"bad data chunk noreply", "set k 0 0 1 noreply\r\nxyz\r\n", []string{"error CLIENT_ERROR bad data chunk (noreply)", "error ERROR"}},
		{"too large swallowed", "set k 0 0 2000\r\n" + strings.Repeat("x", 2000) + "\r\nget k\r\n",
			[]string{"error SERVER_ERROR object too large for cache", "get k=k"}},
		{"key 251 on set", "set " + long + "k 0 0 1\r\nx\r\n", []string{"error CLIENT_ERROR bad command line format", "error ERROR"}},
		{"delete", "delete a\r\n", []string{"delete k=a"}},
		{"delete noreply", "delete a noreply\r\n", []string{"delete k=a noreply"}},
		{"delete hold 0", "delete a 0\r\n", []string{"delete k=a"}},
		{"delete hold 5", "delete a 5\r\n", []string{"error CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}},
		{"delete 0 noreply", "delete a 0 noreply\r\n", []string{"delete k=a noreply"}},
		{"incr", "incr a 5\r\n", []string{"incr k=a delta=5"}},
		{"decr noreply", "decr a 5 noreply\r\n", []string{"decr k=a delta=5 noreply"}},
		{"incr bad delta", "incr a x\r\n", []string{"error CLIENT_ERROR invalid numeric delta argument"}},
		{"incr negative delta", "incr a -1\r\n", []string{"error CLIENT_ERROR invalid numeric delta argument"}},
		{"incr overflowing delta", "incr a 18446744073709551616\r\n", []string{"error CLIENT_ERROR invalid numeric delta argument"}},
		{"touch", "touch a 10\r\n", []string{"touch k=a e=10"}},
		{"touch bad", "touch a x\r\n", []string{"error CLIENT_ERROR invalid exptime argument"}},
		{"flush_all", "flush_all\r\nflush_all 10\r\nflush_all noreply\r\nflush_all 5 noreply\r\n",
			[]string{"flush_all e=0", "flush_all e=10", "flush_all e=0 noreply", "flush_all e=5 noreply"}},
		{"flush_all bad", "flush_all x\r\n", []string{"error CLIENT_ERROR invalid exptime argument"}},
		{"verbosity", "verbosity 1\r\nverbosity 1 noreply\r\n", []string{"verbosity v=1", "verbosity v=1 noreply"}},
		{"verbosity none", "verbosity\r\n", []string{"error ERROR"}},
		{"version quit", "version\r\nquit\r\n", []string{"version", "quit"}},
		{"refresh_certs", "refresh_certs\r\nrefresh_certs noreply\r\nrefresh_certs x y\r\nrefresh_certsx\r\n",
			[]string{"refresh_certs", "refresh_certs noreply", "refresh_certs", "error ERROR"}},
		{"stats", "stats\r\nstats settings\r\n", []string{"stats", "stats a=settings"}},
		{"shutdown", "shutdown graceful\r\n", []string{"shutdown a=graceful"}},
		{"unknown", "bogus\r\n", []string{"error ERROR"}},
		{"empty line", "\r\n", []string{"error ERROR"}},
		{"one letter", "g\r\n", []string{"error ERROR"}},
		{"nul ends the line", "set a\x00b 0 0 1\r\nx\r\n", []string{"error ERROR", "error ERROR"}},
		{"http", "GET / HTTP/1.0\r\n", []string{"close"}},
		{"long non-get line", strings.Repeat("x", 20000) + "\r\n", []string{"close"}},
		{"long line without newline", strings.Repeat("x", 20000), []string{"close"}},
		// A line whose newline arrives with its first 2049 bytes is
		// answered; one that has 2049 bytes buffered without it closes
		// the connection, unless it is a get or gets (see splitWant).
		{"3000-byte line", strings.Repeat("x", 3000) + "\r\nversion\r\n", []string{"error ERROR", "version"}},
		{"2048 bytes then a newline", strings.Repeat("x", 2048) + "\nversion\r\n", []string{"error ERROR", "version"}},
		{"2049 bytes without a newline", strings.Repeat("x", 2049), []string{"close"}},
		{"2048 bytes without a newline", strings.Repeat("x", 2048), []string{"io unexpected EOF"}},
		{"3000-byte get", "get " + strings.Repeat("k ", 1500) + "\r\n", []string{"get" + strings.Repeat(" k=k", 1500)}},
		{"3000-byte gets", "gets " + strings.Repeat("k ", 1500) + "\r\n", []string{"gets" + strings.Repeat(" k=k", 1500)}},
		{"3000-byte get after 101 spaces", strings.Repeat(" ", 101) + "get " + strings.Repeat("k ", 1500) + "\r\n",
			[]string{"get" + strings.Repeat(" k=k", 1500)}},
		{"3000-byte gat", "gat 0 " + strings.Repeat("k ", 1500) + "\r\n", []string{"gat" + strings.Repeat(" k=k", 1500) + " e=0"}},
		{"truncated data", "set k 0 0 10\r\nabc", []string{"io unexpected EOF"}},
	}
	// What the lines longer than MaxUnterminatedLine decode to when their
	// bytes arrive one at a time: the connection closes once 2049 are
	// buffered without a newline, unless the line is a get or gets.
	splitWant := map[string][]string{
		"3000-byte line":                 {"close"},
		"3000-byte get after 101 spaces": {"close"},
		"3000-byte gat":                  {"close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAll(t, strings.NewReader(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// The same bytes one at a time decode the same, but for
			// long lines.
			want := tt.want
			if w, ok := splitWant[tt.name]; ok {
				want = w
			}
			got = decodeAll(t, iotest.OneByteReader(strings.NewReader(tt.in)))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("one byte at a time: got %q, want %q", got, want)
			}
		})
	}
}

func TestTextDecodeLongGet(t *testing.T) {
	in := "get" + strings.Repeat(" foo", 100000) + "\r\nversion\r\n"
	got := decodeAll(t, strings.NewReader(in))
	if len(got) != 2 || got[1] != "version" {
		t.Fatalf("got %d requests ending %q, want 2 ending version", len(got), got[len(got)-1])
	}
	if n := strings.Count(got[0], " k=foo"); n != 100000 {
		t.Errorf("got %d keys, want 100000", n)
	}
}

func TestTextDecodeManyTokens(t *testing.T) {
	// memcached splits 23 tokens and leaves the rest: a get beyond that
	// still sees every key.
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = "k" + itoa(uint64(i))
	}
	got := decodeAll(t, strings.NewReader("get "+strings.Join(keys, " ")+"\r\n"))
	want := "get k=" + strings.Join(keys, " k=")
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseNumbers(t *testing.T) {
	u32 := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"0", 0, true}, {"4294967295", 4294967295, true}, {"4294967296", 0, true},
		{"+5", 5, true}, {"-0", 0, true}, {"-1", 0, false}, {"1x", 0, false}, {"", 0, false},
		{"18446744073709551616", 0, false}, {"5\t", 5, true},
	}
	for _, tt := range u32 {
		got, ok := parseUint32([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseUint32(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	i32 := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"-1", -1, true}, {"2147483647", 2147483647, true},
		{"2147483648", -2147483648, true}, {"-2147483649", 2147483647, true},
		{"9223372036854775808", 0, false}, {"x", 0, false},
	}
	for _, tt := range i32 {
		got, ok := parseInt32([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt32(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestParseDouble checks ParseDouble against glibc's strtod as memcached's
// safe_strtod uses it (the expectations were printed by a C program
// calling safe_strtod).
func TestParseDouble(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tt := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.5", 0.5, true}, {"1", 1, true}, {"-1", -1, true}, {"+2.5", 2.5, true}, {".5", 0.5, true},
		{"5.", 5, true}, {".", 0, false}, {"x", 0, false}, {"1e3", 1000, true}, {"1e", 0, false},
		{"1e+", 0, false}, {"1e400", 0, false}, {"-1e400", 0, false}, {"1e-400", 0, false},
		{"1e-310", 0, false}, {"0e-400", 0, true}, {"0x10", 16, true}, {"0X1.8p1", 3, true},
		{"0x", 0, false}, {"0x1p", 0, false}, {"0xg", 0, false}, {"inf", inf, true}, {"INF", inf, true},
		{"Infinity", inf, true}, {"infin", 0, false}, {"nan", nan, true}, {"NAN", nan, true},
		{"nan(123)", nan, true}, {"nan(", 0, false}, {"-nan", nan, true}, {"1.5x", 0, false},
		{"1.5 ", 1.5, true}, {"1_0", 0, false}, {"0x1_0", 0, false},
		{"2.2250738585072014e-308", 0x1p-1022, true}, {"4.9e-324", 0, false}, {"", 0, false},
		{" 1", 1, true}, {"00012", 12, true}, {"-0", 0, true}, {"1e308", 1e308, true}, {"1.8e308", 0, false},
	} {
		got, ok := ParseDouble([]byte(tt.in))
		same := got == tt.want || math.IsNaN(got) && math.IsNaN(tt.want)
		if ok != tt.ok || ok && !same {
			t.Errorf("ParseDouble(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if v, _ := ParseDouble([]byte("-nan")); !math.Signbit(v) {
		t.Errorf("ParseDouble(-nan): got %v without its sign, want printf's -nan", v)
	}
}

func BenchmarkTextDecodeGet(b *testing.B) {
	benchmarkDecode(b, "get some:key:123\r\n")
}

func BenchmarkTextDecodeSet(b *testing.B) {
	benchmarkDecode(b, "set some:key:123 0 0 100\r\n"+strings.Repeat("v", 100)+"\r\n")
}

// BenchmarkTextDecodeSetLarge decodes sets of 100 KiB through a 16 KiB
// read buffer: each data block is read past the buffer, into the
// reader's reused data buffer.
func BenchmarkTextDecodeSetLarge(b *testing.B) {
	benchmarkDecode(b, "set some:key:123 0 0 102400\r\n"+strings.Repeat("v", 100<<10)+"\r\n")
}

func benchmarkDecode(b *testing.B, one string) {
	in := strings.Repeat(one, 64)
	r := strings.NewReader(in)
	br := bufio.NewReaderSize(r, 16<<10)
	tr := NewTextReader(br)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	b.ResetTimer() // building in is not decoding
	for i := 0; i < b.N; i++ {
		if i%64 == 0 {
			r.Reset(in)
			br.Reset(r)
		}
		if _, err := tr.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

// A get line longer than the read buffer is read a batch of keys at a time:
// whatever the reads' sizes, and wherever the buffer's edges cut its keys,
// every key comes out whole and in order.
func TestTextDecodeStreamedGet(t *testing.T) {
	var line strings.Builder
	var want []string
	line.WriteString("gets")
	for i := 0; line.Len() < 100<<10; i++ {
		k := strings.Repeat(string(rune('a'+i%26)), 1+(i*37)%MaxKeyLen)
		want = append(want, "k="+k)
		line.WriteString(strings.Repeat(" ", 1+i%3) + k)
	}
	in := line.String() + "\r\nversion\r\n"
	wantOut := []string{"gets " + strings.Join(want, " "), "version"}
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
	}
	for name, r := range readers {
		if got := decodeAll(t, r()); !reflect.DeepEqual(got, wantOut) {
			t.Errorf("%s: the streamed line decoded differently (%d requests)", name, len(got))
		}
	}
}

// A long get line's errors: a key too long refuses the request once the
// line is read, a NUL ends the line's keys, and a line past maxGetLine
// closes the connection.
func TestTextDecodeStreamedGetErrors(t *testing.T) {
	long := strings.Repeat(" k", 10000)
	tests := []struct {
		name, in string
		want     []string
	}{
		{"key too long", "get" + long + " " + strings.Repeat("x", MaxKeyLen+1) + long + "\r\nversion\r\n",
			[]string{"error CLIENT_ERROR bad command line format", "version"}},
		{"NUL", "get" + long + " a\x00b c" + long + "\r\nversion\r\n",
			[]string{"get" + strings.Repeat(" k=k", 10000) + " k=a", "version"}},
		{"cut off", "get" + long, []string{"io unexpected EOF"}},
	}
	for _, tt := range tests {
		if got := decodeAll(t, strings.NewReader(tt.in)); !reflect.DeepEqual(got, tt.want) {
			for i := range got {
				if n := len(got[i]); n > 80 {
					got[i] = "…" + got[i][n-80:]
				}
			}
			t.Errorf("%s: got %q", tt.name, got)
		}
	}
	key := " " + strings.Repeat("k", MaxKeyLen)
	huge := io.MultiReader(strings.NewReader("get"), &repeatReader{pattern: key, n: maxGetLine/len(key) + 10})
	tr := NewTextReader(bufio.NewReaderSize(huge, 16<<10))
	req, err := tr.Next()
	for err == nil && req.MoreKeys {
		err = tr.NextKeys(req)
	}
	if err != ErrClose {
		t.Errorf("a get line past %d bytes: %v, want ErrClose", maxGetLine, err)
	}
}

// repeatReader reads pattern n times.
type repeatReader struct {
	pattern string
	n       int
	off     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	done := 0
	for done < len(p) && r.n > 0 {
		c := copy(p[done:], r.pattern[r.off:])
		done += c
		if r.off += c; r.off == len(r.pattern) {
			r.off = 0
			r.n--
		}
	}
	if done == 0 {
		return 0, io.EOF
	}
	return done, nil
}
