package protocol

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

// errTripped is what a tripwire returns once its bytes are spent.
var errTripped = errors.New("read past the buffered bytes")

// tripwire gives its bytes in one read, then fails every later read with
// errTripped and counts it: a decoder told that a request is buffered must
// not trip it.
type tripwire struct {
	data  []byte
	trips int
}

func (r *tripwire) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.trips++
	return 0, errTripped
}

// bufferedReader returns a reader of the node's buffer size holding in.
func bufferedReader(in []byte) (*bufio.Reader, *tripwire) {
	tw := &tripwire{data: in}
	br := bufio.NewReaderSize(tw, 16<<10)
	_, _ = br.Peek(1)
	tw.trips = 0
	return br, tw
}

// checkTextNextBuffered decodes the requests NextBuffered says are buffered
// in in, failing if decoding one reads further, and returns how many it
// decoded.
func checkTextNextBuffered(t *testing.T, in []byte, maxValue int) int {
	t.Helper()
	br, tw := bufferedReader(in)
	tr := NewTextReader(br)
	tr.MaxValue = maxValue
	n := 0
	for ; n < 1000 && tr.NextBuffered(); n++ {
		_, err := tr.Next()
		if tw.trips > 0 || errors.Is(err, errTripped) {
			t.Fatalf("NextBuffered said request %d of %q was buffered, but Next read further", n, in)
		}
		if err == ErrClose {
			break
		}
	}
	return n
}

// checkBinaryNextBuffered is checkTextNextBuffered for the binary protocol.
func checkBinaryNextBuffered(t *testing.T, in []byte, maxValue int) int {
	t.Helper()
	br, tw := bufferedReader(in)
	var req BinaryRequest
	n := 0
	for ; n < 1000 && BinaryNextBuffered(br); n++ {
		err := ReadBinaryRequest(br, &req, maxValue)
		if tw.trips > 0 || errors.Is(err, errTripped) {
			t.Fatalf("BinaryNextBuffered said request %d of % x was buffered, but decoding it read further", n, in)
		}
		var be *BinaryError
		if errors.As(err, &be) && be.Close {
			break
		}
	}
	return n
}

func TestTextNextBuffered(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // requests NextBuffered finds buffered
	}{
		{"get a\r\n", 1},
		{"get a", 0},
		{"  get a b\r\nget c\n", 2},
		{"set k 0 0 5\r\nhello\r\n", 1},
		{"set k 0 0 5\r\nhello\r", 0},
		{"set k 0 0 5\r\nhel", 0},
		{"set k 0 0 5\r\n", 0},
		{" cas k 0 0 1 7\r\nx\r\nget k\r\n", 2},
		{"cas k 0 0 1 7\r\nx", 0},
		{"ms k 2 T0\r\nhi\r\nmg k v\r\n", 2},
		{"ms k 2 T0\r\nhi", 0},
		{"mg k v\r\nmn\r\n", 2},
		{"set k 0 0 -1\r\nget k\r\n", 2}, // refused before any data is read
		{"set k 0 0 x\r\nget k\r\n", 2},
		{"set k 0\r\nget k\r\n", 2},
		{"set k 0 0 100\r\n" + strings.Repeat("x", 100) + "\r\n", 1}, // too large: swallowed from the buffer
		{"set\x00 k 0 0 5\r\nget k\r\n", 2},
		{"\r\n\r\nget k\r\n", 3},
	} {
		if got := checkTextNextBuffered(t, []byte(tc.in), 64); got != tc.want {
			t.Errorf("%q: %d requests found buffered, want %d", tc.in, got, tc.want)
		}
	}
}

func TestBinaryNextBuffered(t *testing.T) {
	get := AppendBinaryRequest(nil, OpGet, 1, 0, nil, []byte("k"), nil)
	set := AppendBinaryRequest(nil, OpSet, 2, 0, make([]byte, 8), []byte("k"), []byte("hello"))
	big := AppendBinaryRequest(nil, OpSet, 2, 0, make([]byte, 8), []byte("k"), make([]byte, 100))
	unknown := AppendBinaryRequest(nil, 0x7f, 3, 0, nil, []byte("k"), nil)
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want int
	}{
		{"get", get, 1},
		{"get and set", cat(get, set), 2},
		{"set short of its value", set[:len(set)-1], 0},
		{"header alone", set[:BinaryHeaderLen], 0},
		{"part of a header", get[:10], 0},
		{"too large, swallowed from the buffer", cat(big, get), 2},
		{"unknown opcode", cat(unknown, get), 0},
	} {
		if got := checkBinaryNextBuffered(t, tc.in, 64); got != tc.want {
			t.Errorf("%s: %d requests found buffered, want %d", tc.name, got, tc.want)
		}
	}
}

// FuzzTextNextBuffered checks that Next never reads past what NextBuffered
// said was buffered, whatever the input and wherever it is cut off.
func FuzzTextNextBuffered(f *testing.F) {
	for _, seed := range []string{
		"get a\r\nset k 0 0 5\r\nhello\r\n",
		"ms k 2 T0\r\nhi\r\nmg k v\r\n",
		"cas k 0 0 1 7 noreply\r\nx\r\n",
		"set k 0 0 100\r\n" + strings.Repeat("x", 100) + "\r\n",
		"ms k 5 MX\r\nhello\r\n",
	} {
		f.Add([]byte(seed), uint16(len(seed)))
		f.Add([]byte(seed), uint16(len(seed)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		in = in[:int(cut)%(len(in)+1)]
		checkTextNextBuffered(t, in, 64)
		checkTextNextBuffered(t, in, 0)
	})
}

// FuzzBinaryNextBuffered is FuzzTextNextBuffered for the binary protocol.
func FuzzBinaryNextBuffered(f *testing.F) {
	for _, tc := range binaryValidRequests {
		b := AppendBinaryRequest(nil, tc.op, 1, 2, []byte(tc.extras), []byte(tc.key), []byte(tc.value))
		f.Add(b, uint16(len(b)))
		f.Add(b, uint16(len(b)-1))
	}
	s := binaryValidStream()
	f.Add(s, uint16(len(s)))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		in = in[:int(cut)%(len(in)+1)]
		checkBinaryNextBuffered(t, in, 64)
		checkBinaryNextBuffered(t, in, 0)
	})
}
