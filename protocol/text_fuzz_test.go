package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// FuzzTextDecode checks that no input panics the text decoder or makes it
// return a request that breaks memcached's limits, and that input split at
// every byte boundary decodes as it does whole (see splitAgrees).
func FuzzTextDecode(f *testing.F) {
	for _, seed := range []string{
		"get a b c\r\n",
		"set k 0 0 5\r\nhello\r\n",
		"cas k 0 0 1 5 noreply\r\nx\r\n",
		"set k 0 0 -1\r\n",
		"set k 0 0 4294967297\r\nx\r\n",
		"set k 0 0 99999999999999999999999\r\n",
		"get a\nset b 0 0 1\nx\n",
		"GET / HTTP/1.0\r\n\r\n",
		"incr a 18446744073709551615\r\ndecr a 1\r\n",
		"delete a 0 noreply\r\nflush_all -1\r\nverbosity 99\r\n",
		"gat -1 a b\r\ngats 1 c\r\ntouch a 1\r\n",
		"stats items\r\nstats slabs\r\nstats detail dump\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := decodeChecked(t, bytes.NewReader(in), render)
		split := decodeChecked(t, iotest.OneByteReader(bytes.NewReader(in)), render)
		if !splitAgrees(in, whole, split) {
			t.Fatalf("whole input decoded %q, one byte at a time %q", whole, split)
		}
	})
}

// splitAgrees reports whether the decoding of in one byte at a time, split,
// agrees with its decoding whole. They must be the same unless in holds
// more than MaxUnterminatedLine bytes without a newline: then a line of
// that length, answered whole, closes the connection when its bytes arrive
// one at a time, as in memcached, and split must be whole up to that line,
// then the close.
func splitAgrees(in []byte, whole, split []string) bool {
	if reflect.DeepEqual(whole, split) {
		return true
	}
	// The close, as decodeChecked and decodeAuth render it.
	closed := func(s string) bool { return s == "end "+ErrClose.Error() || s == "end close" }
	if !hasLongRun(in) || len(split) == 0 || !closed(split[len(split)-1]) {
		return false
	}
	return len(split)-1 <= len(whole) && reflect.DeepEqual(split[:len(split)-1], whole[:len(split)-1])
}

// hasLongRun reports whether in holds more than MaxUnterminatedLine bytes
// in a row without a newline.
func hasLongRun(in []byte) bool {
	for len(in) > MaxUnterminatedLine {
		i := bytes.IndexByte(in, '\n')
		if i < 0 || i > MaxUnterminatedLine {
			return true
		}
		in = in[i+1:]
	}
	return false
}

// decodeChecked decodes all of r, checking every request against memcached's
// limits (a meta request's flags too), and renders what it decoded with
// render.
func decodeChecked(t *testing.T, r io.Reader, render func(*Request) string) []string {
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
			for _, k := range req.Keys {
				if len(k) == 0 || len(k) > MaxKeyLen {
					t.Fatalf("decoded a key of %d bytes", len(k))
				}
			}
			if len(req.Data) > tr.MaxValue {
				t.Fatalf("decoded %d bytes of data, limit %d", len(req.Data), tr.MaxValue)
			}
			checkMetaFlags(t, &req.Meta)
			out = append(out, render(req))
		case errors.As(err, &te):
			out = append(out, "error "+te.Line)
		default:
			return append(out, "end "+err.Error())
		}
	}
}

// checkMetaFlags checks a meta request's flags against memcached's limits:
// how many, none empty or repeated, an opaque of at most MaxOpaqueLen.
func checkMetaFlags(t *testing.T, m *MetaArgs) {
	if len(m.Flags) > maxMetaTokens-3 {
		t.Fatalf("decoded %d flags", len(m.Flags))
	}
	var seen [256]bool
	for _, fl := range m.Flags {
		if len(fl) == 0 || seen[fl[0]] {
			t.Fatalf("flag %q empty or repeated in %q", fl, m.Flags)
		}
		seen[fl[0]] = true
		if fl[0] == 'O' && len(fl) > MaxOpaqueLen {
			t.Fatalf("decoded an opaque of %d bytes", len(fl))
		}
	}
}
