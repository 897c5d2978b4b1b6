package protocol

import (
	"bufio"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// renderMeta renders a request with its decoded meta flags.
func renderMeta(r *Request) string {
	var b strings.Builder
	b.WriteString(r.Command.String())
	for _, k := range r.Keys {
		b.WriteString(" k=" + string(k))
	}
	m := &r.Meta
	for _, f := range m.Flags {
		b.WriteString(" [" + string(f) + "]")
	}
	flag := func(on bool, name string) {
		if on {
			b.WriteString(" " + name)
		}
	}
	flag(m.Base64, "b64")
	flag(m.Quiet, "quiet")
	flag(m.Value, "value")
	flag(m.NoBump, "nobump")
	flag(m.Invalidate, "inval")
	if m.HasTTL {
		b.WriteString(" ttl=" + itoa64(m.TTL))
	}
	if m.HasVivify {
		b.WriteString(" viv=" + itoa64(m.Vivify))
	}
	if m.HasRecache {
		b.WriteString(" recache=" + itoa64(m.Recache))
	}
	if m.ClientFlags != 0 {
		b.WriteString(" F=" + itoa(uint64(m.ClientFlags)))
	}
	if m.HasCAS {
		b.WriteString(" C=" + itoa(m.CAS))
	}
	if m.HasNewCAS {
		b.WriteString(" E=" + itoa(m.NewCAS))
	}
	flag(m.RemoveValue, "rmval")
	if m.Mode != 0 {
		b.WriteString(" M=" + string(m.Mode))
	}
	if r.Command == CmdMetaArith {
		b.WriteString(" D=" + itoa(m.Delta) + " J=" + itoa(m.Initial))
	}
	if r.Command == CmdMetaSet {
		b.WriteString(" d=" + string(r.Data))
	}
	return b.String()
}

func TestMetaDecode(t *testing.T) {
	k250 := strings.Repeat("k", 250)
	k251 := strings.Repeat("k", 251)
	op32 := "O" + strings.Repeat("o", 31)
	op33 := "O" + strings.Repeat("o", 32)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"noop", "mn\r\nmn x y\r\n", []string{"mn", "mn"}},
		{"get plain", "mg a\r\n", []string{"mg k=a"}},
		{"get flags", "mg a v k c f s t h l u q O99\r\n",
			[]string{"mg k=a [v] [k] [c] [f] [s] [t] [h] [l] [u] [q] [O99] quiet value nobump"}},
		{"get numbers", "mg a T-1 N30 R+5\r\n", []string{"mg k=a [T-1] [N30] [R+5] ttl=-1 viv=30 recache=5"}},
		{"get bare newline", "mg a v\n", []string{"mg k=a [v] value"}},
		{"get no key", "mg\r\n", []string{"error ERROR"}},
		{"get key 250", "mg " + k250 + "\r\n", []string{"mg k=" + k250}},
		{"get key 251", "mg " + k251 + " v\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"get unknown flag", "mg a z\r\n", []string{"error CLIENT_ERROR invalid flag"}},
		{"get E", "mg a N30 E5\r\n", []string{"mg k=a [N30] [E5] viv=30 E=5"}},
		{"get E zero and max", "mg a E0\r\nmg a E18446744073709551615\r\n",
			[]string{"mg k=a [E0] E=0", "mg k=a [E18446744073709551615] E=18446744073709551615"}},
		{"get E bad token", "mg a Ex\r\n", []string{"error CLIENT_ERROR bad token in command line format"}},
		{"get E empty", "mg a E\r\n", []string{"error CLIENT_ERROR bad token in command line format"}},
		{"get E overflow", "mg a E18446744073709551616\r\n", []string{"error CLIENT_ERROR bad token in command line format"}},
		{"get E negative", "mg a E-1\r\n", []string{"error CLIENT_ERROR bad token in command line format"}},
		{"get E duplicate", "mg a E1 E2\r\n", []string{"error CLIENT_ERROR duplicate flag"}},
		{"get E bad then unknown", "mg a Ex z\r\n", []string{"error CLIENT_ERROR invalid flag"}},
		{"get duplicate", "mg a v v\r\n", []string{"error CLIENT_ERROR duplicate flag"}},
		{"get high byte", "mg a \xff\r\n", []string{"error CLIENT_ERROR duplicate flag"}},
		{"get bad token", "mg a Tx\r\n", []string{"error CLIENT_ERROR bad token in command line format"}},
		{"get bad token then unknown", "mg a Tx z\r\n", []string{"error CLIENT_ERROR invalid flag"}},
		{"get opaque 32", "mg a " + op32 + "\r\n", []string{"mg k=a [" + op32 + "]"}},
		{"get opaque 33", "mg a " + op33 + "\r\n", []string{"error CLIENT_ERROR opaque token too long"}},
		{"get 17 flags", "mg a a b c d e f g h i j k l m n o p q\r\n", []string{"error CLIENT_ERROR invalid flag"}},
		{"get 18 flags", "mg a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n", []string{"error CLIENT_ERROR options flags are too long"}},
		{"get base64", "mg Zm9v b k\r\n", []string{"mg k=foo [b] [k] b64"}},
		{"get bad base64", "mg Zm9v= b\r\n", []string{"error CLIENT_ERROR error decoding key"}},
		{"get empty base64", "mg ==== b\r\n", []string{"error CLIENT_ERROR error decoding key"}},
		{"set", "ms a 3 T10 F5 c k\r\nabc\r\nmn\r\n", []string{"ms k=a [T10] [F5] [c] [k] ttl=10 F=5 d=abc", "mn"}},
		{"set modes", "ms a 1 ME\r\nx\r\nms a 1 MS C7 I q\r\ny\r\n",
			[]string{"ms k=a [ME] M=E d=x", "ms k=a [MS] [C7] [I] [q] quiet inval C=7 M=S d=y"}},
		{"set E", "ms a 1 E99 C7 c\r\nx\r\n", []string{"ms k=a [E99] [C7] [c] C=7 E=99 d=x"}},
		{"set E bad token swallows", "ms a 3 E5x\r\nbar\r\nmn\r\n", []string{"error CLIENT_ERROR bad token in command line format", "mn"}},
		{"set E duplicate swallows", "ms a 3 E5 E6\r\nbar\r\nmn\r\n", []string{"error CLIENT_ERROR duplicate flag", "mn"}},
		{"set no length", "ms a\r\nmn\r\n", []string{"error CLIENT_ERROR bad command line format", "mn"}},
		{"set bad length", "ms a x\r\nmn\r\n", []string{"error CLIENT_ERROR bad command line format", "mn"}},
		{"set negative length", "ms a -1\r\nmn\r\n", []string{"error CLIENT_ERROR bad command line format", "mn"}},
		{"set invalid flag swallows", "ms a 3 z\r\nbar\r\nmn\r\n", []string{"error CLIENT_ERROR invalid flag", "mn"}},
		{"set bad F swallows", "ms a 3 FX\r\nbar\r\nmn\r\n", []string{"error CLIENT_ERROR bad command line format", "mn"}},
		{"set bad mode", "ms a 1 MX\r\nx\r\nmn\r\n", []string{"error CLIENT_ERROR invalid mode for ms M token", "mn"}},
		{"set long mode", "ms a 1 MEE\r\nx\r\nmn\r\n", []string{"error CLIENT_ERROR incorrect length for M token", "mn"}},
		{"set bad chunk", "ms a 1\r\nxyz\r\n", []string{"error CLIENT_ERROR bad data chunk", "error ERROR"}},
		{"set too large", "ms a 2000\r\n" + strings.Repeat("x", 2000) + "\r\nmn\r\n", []string{"error SERVER_ERROR object too large for cache", "mn"}},
		{"set too many flags", "ms a 1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\nx\r\n", []string{"error CLIENT_ERROR options flags too long", "error ERROR"}},
		{"set truncated", "ms a 5\r\nab", []string{"io unexpected EOF"}},
		{"delete", "md a q I T30 C5 k O1\r\n", []string{"md k=a [q] [I] [T30] [C5] [k] [O1] quiet inval ttl=30 C=5"}},
		{"delete x", "md a x\r\n", []string{"md k=a [x] rmval"}},
		{"delete x I q E", "md a x I q E12 T5\r\n", []string{"md k=a [x] [I] [q] [E12] [T5] quiet inval ttl=5 E=12 rmval"}},
		{"delete x with token", "md a x1\r\n", []string{"md k=a [x1] rmval"}},
		{"delete x duplicate", "md a x x\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"delete E bad token", "md a Ex\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"delete E duplicate", "md a E1 E1\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"delete bad flag", "md a z\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"delete duplicate", "md a q q\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"delete too long", "md a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n", []string{"error CLIENT_ERROR options flags too long"}},
		{"arith defaults", "ma n\r\n", []string{"ma k=n D=1 J=0"}},
		{"arith flags", "ma n N0 J10 D5 MD v t c\r\n", []string{"ma k=n [N0] [J10] [D5] [MD] [v] [t] [c] value viv=0 M=D D=5 J=10"}},
		{"arith E", "ma n E7 N0 c\r\n", []string{"ma k=n [E7] [N0] [c] viv=0 E=7 D=1 J=0"}},
		{"arith E bad token", "ma n E-\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"arith bad delta", "ma n Dx\r\n", []string{"error CLIENT_ERROR invalid or duplicate flag"}},
		{"arith bad mode", "ma n MX\r\n", []string{"error CLIENT_ERROR invalid mode for ma M token"}},
		{"arith mode signs", "ma n M+\r\nma n M-\r\n", []string{"ma k=n [M+] M=+ D=1 J=0", "ma k=n [M-] M=- D=1 J=0"}},
		{"debug", "me a\r\nme Zm9v b\r\n", []string{"me k=a", "me k=foo b64"}},
		{"debug no key", "me\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"debug bad base64", "me !!!! b\r\n", []string{"error CLIENT_ERROR bad command line format"}},
		{"unknown m command", "mx a\r\nmgg a\r\n", []string{"error ERROR", "error ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeRendered(t, strings.NewReader(tt.in), renderMeta)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			split := decodeRendered(t, iotest.OneByteReader(strings.NewReader(tt.in)), renderMeta)
			if !reflect.DeepEqual(split, got) {
				t.Errorf("one byte at a time: got %q, whole %q", split, got)
			}
		})
	}
}

// TestMetaKeySurvivesData checks that an ms key and flags stay intact once
// the data block has been read over the read buffer.
func TestMetaKeySurvivesData(t *testing.T) {
	in := "ms key1 5 k O1\r\n" + strings.Repeat("z", 5) + "\r\n"
	tr := NewTextReader(bufio.NewReaderSize(strings.NewReader(in), 16))
	req, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if got := renderMeta(req); got != "ms k=key1 [k] [O1] d=zzzzz" {
		t.Errorf("got %q", got)
	}
}

func TestAppendMetaKey(t *testing.T) {
	if got := string(AppendMetaKey(nil, []byte("foo"), false)); got != " kfoo" {
		t.Errorf("plain: got %q", got)
	}
	if got := string(AppendMetaKey(nil, []byte("foo"), true)); got != " kZm9v b" {
		t.Errorf("base64: got %q", got)
	}
}

// BenchmarkMetaDecode measures decoding a pipeline of mg and ms requests.
func BenchmarkMetaDecode(b *testing.B) {
	one := "mg some:key:123 v c f t k O42\r\nms some:key:123 5 T60 F3 c\r\nhello\r\nmd some:key:123 q\r\nma ctr N0 J1 v\r\n"
	in := strings.Repeat(one, 64)
	r := strings.NewReader(in)
	br := bufio.NewReaderSize(r, 16<<10)
	tr := NewTextReader(br)
	b.ReportAllocs()
	b.SetBytes(int64(len(one)))
	for b.Loop() {
		for range 4 {
			if _, err := tr.Next(); err != nil {
				r.Reset(in)
				br.Reset(r)
				if _, err := tr.Next(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
