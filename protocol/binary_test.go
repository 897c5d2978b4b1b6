package protocol

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/memcluster/memcluster/internal/testutil"
)

// binaryCountingReader counts the bytes read through it.
type binaryCountingReader struct {
	r io.Reader
	n int64
}

func (c *binaryCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// binaryResult is what one call of ReadBinaryRequest produced, in a form
// that compares with ==.
type binaryResult struct {
	hdr                BinaryHeader
	extras, key, value string
	err                error
	consumed           int64 // bytes taken from the stream by this call
}

func (r binaryResult) String() string {
	return fmt.Sprintf("{%s ext=%q key=%q value=%.40q err=%v consumed=%d}",
		r.hdr.Opcode, r.extras, r.key, r.value, r.err, r.consumed)
}

// binaryDecodeAll reads requests from src until the first error that ends
// the stream (any error but the ones memcached survives) and returns every
// result.
func binaryDecodeAll(src io.Reader, bufSize, maxValue int) []binaryResult {
	cr := &binaryCountingReader{r: src}
	br := bufio.NewReaderSize(cr, bufSize)
	var req BinaryRequest
	var out []binaryResult
	var prev int64
	for {
		err := ReadBinaryRequest(br, &req, maxValue)
		pos := cr.n - int64(br.Buffered())
		res := binaryResult{hdr: req.Header, extras: string(req.Extras), key: string(req.Key),
			value: string(req.Value), err: err, consumed: pos - prev}
		prev = pos
		if err == io.EOF {
			return out
		}
		out = append(out, res)
		var be *BinaryError
		if err != nil && (!errors.As(err, &be) || be.Close) {
			return out
		}
	}
}

func binaryReq(op BinaryOpcode, extras, key, value string) []byte {
	return AppendBinaryRequest(nil, op, 0xdeadbeef, 0, []byte(extras), []byte(key), []byte(value))
}

// binaryRaw builds a request header with arbitrary lengths, followed by tail.
func binaryRaw(op BinaryOpcode, keyLen uint16, extrasLen uint8, bodyLen uint32, tail string) []byte {
	h := BinaryHeader{Magic: BinaryMagicRequest, Opcode: op, KeyLen: keyLen, ExtrasLen: extrasLen,
		BodyLen: bodyLen, Opaque: 0xdeadbeef}
	return append(h.Append(nil), tail...)
}

func binaryCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	binaryExtStorage = string(AppendBinaryStorageExtras(nil, 0xdeadbeef, 7200))
	binaryExtCounter = string(AppendBinaryCounterExtras(nil, 1, 10, 0xffffffff))
	binaryExtExptime = string(AppendBinaryExptimeExtras(nil, 100))
)

// binaryValidRequests has one well-formed request of every opcode memcached
// serves, in the shapes memcached accepts.
var binaryValidRequests = []struct {
	name               string
	op                 BinaryOpcode
	extras, key, value string
}{
	{"get", OpGet, "", "k", ""},
	{"getq", OpGetQ, "", "k", ""},
	{"handoff get", OpHandoffGet, "", "k", ""},
	{"config get", OpConfigGet, "", "cluster", ""},
	{"handoff add", OpHandoffAdd, binaryExtStorage, "k", "v"},
	{"getk", OpGetK, "", "k", ""},
	{"getkq", OpGetKQ, "", "k", ""},
	{"get key 250", OpGet, "", strings.Repeat("a", 250), ""},
	{"set", OpSet, binaryExtStorage, "k", "hello"},
	{"set empty value", OpSet, binaryExtStorage, "k", ""},
	{"setq", OpSetQ, binaryExtStorage, "k", "v"},
	{"add", OpAdd, binaryExtStorage, "k", "v"},
	{"addq", OpAddQ, binaryExtStorage, "k", "v"},
	{"replace", OpReplace, binaryExtStorage, "k", "v"},
	{"replaceq", OpReplaceQ, binaryExtStorage, "k", "v"},
	{"delete", OpDelete, "", "k", ""},
	{"deleteq", OpDeleteQ, "", "k", ""},
	{"increment", OpIncrement, binaryExtCounter, "c", ""},
	{"incrementq", OpIncrementQ, binaryExtCounter, "c", ""},
	{"decrement", OpDecrement, binaryExtCounter, "c", ""},
	{"decrementq", OpDecrementQ, binaryExtCounter, "c", ""},
	{"quit", OpQuit, "", "", ""},
	{"quitq", OpQuitQ, "", "", ""},
	{"flush", OpFlush, "", "", ""},
	{"flush delay", OpFlush, binaryExtExptime, "", ""},
	{"flushq", OpFlushQ, "", "", ""},
	{"flushq delay", OpFlushQ, binaryExtExptime, "", ""},
	{"noop", OpNoop, "", "", ""},
	{"version", OpVersion, "", "", ""},
	{"append", OpAppend, "", "k", "tail"},
	{"append empty value", OpAppend, "", "k", ""},
	{"appendq", OpAppendQ, "", "k", "tail"},
	{"prepend", OpPrepend, "", "k", "head"},
	{"prependq", OpPrependQ, "", "k", "head"},
	{"stat", OpStat, "", "", ""},
	{"stat group", OpStat, "", "settings", ""},
	{"touch", OpTouch, binaryExtExptime, "k", ""},
	{"gat", OpGAT, binaryExtExptime, "k", ""},
	{"gatq", OpGATQ, binaryExtExptime, "k", ""},
	{"gatk", OpGATK, binaryExtExptime, "k", ""},
	{"gatkq", OpGATKQ, binaryExtExptime, "k", ""},
	{"sasl list mechs", OpSASLListMechs, "", "", ""},
	{"sasl auth", OpSASLAuth, "", "PLAIN", "\x00alice\x00secret"},
	{"sasl step", OpSASLStep, "", "CRAM-MD5", "alice 0123456789abcdef"},
}

func TestBinaryHeaderRoundTrip(t *testing.T) {
	in := []byte{0x80, 0x02, 0x00, 0x05, 0x08, 0x01, 0x12, 0x34, 0x00, 0x00, 0x00, 0x12,
		0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0x1c, 0x20}
	var h BinaryHeader
	if err := h.Decode(in); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := BinaryHeader{Magic: 0x80, Opcode: OpAdd, KeyLen: 5, ExtrasLen: 8, DataType: 1,
		Status: 0x1234, BodyLen: 0x12, Opaque: 0xdeadbeef, CAS: 0x1c20}
	if h != want {
		t.Fatalf("got %+v, want %+v", h, want)
	}
	if got := h.Append(nil); !bytes.Equal(got, in) {
		t.Fatalf("got % x, want % x", got, in)
	}
	if err := h.Decode(in[:23]); err != io.ErrUnexpectedEOF {
		t.Fatalf("Decode of 23 bytes: got %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

func TestBinaryRequestRoundTrip(t *testing.T) {
	for _, tc := range binaryValidRequests {
		t.Run(tc.name, func(t *testing.T) {
			in := AppendBinaryRequest(nil, tc.op, 0x01020304, 0x0a0b0c0d0e0f1011,
				[]byte(tc.extras), []byte(tc.key), []byte(tc.value))
			var req BinaryRequest
			err := ReadBinaryRequest(bufio.NewReader(bytes.NewReader(in)), &req, 0)
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if req.Header.Opcode != tc.op || req.Header.Opaque != 0x01020304 || req.Header.CAS != 0x0a0b0c0d0e0f1011 {
				t.Fatalf("got header %+v", req.Header)
			}
			if string(req.Extras) != tc.extras || string(req.Key) != tc.key || string(req.Value) != tc.value {
				t.Fatalf("got extras %q key %q value %q, want %q %q %q",
					req.Extras, req.Key, req.Value, tc.extras, tc.key, tc.value)
			}
			if got := req.Append(nil); !bytes.Equal(got, in) {
				t.Fatalf("re-encoded: got % x, want % x", got, in)
			}
		})
	}
}

func TestBinaryRequestDataTypeAndReservedIgnored(t *testing.T) {
	// memcached 1.6.18 answers a Noop with data type 1 and reserved 0x1234.
	in := binaryReq(OpNoop, "", "", "")
	in[5], in[6], in[7] = 1, 0x12, 0x34
	var req BinaryRequest
	if err := ReadBinaryRequest(bufio.NewReader(bytes.NewReader(in)), &req, 0); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if req.Header.DataType != 1 || req.Header.Status != 0x1234 {
		t.Fatalf("got %+v", req.Header)
	}
	if got := req.Append(nil); !bytes.Equal(got, in) {
		t.Fatalf("got % x, want % x", got, in)
	}
}

func TestBinaryMalformed(t *testing.T) {
	noop := binaryReq(OpNoop, "", "", "")
	badMagic := func(m byte) []byte { b := binaryReq(OpGet, "", "k", ""); b[0] = m; return b }
	tests := []struct {
		name     string
		in       []byte
		maxValue int
		want     error
		consumed int64 // bytes consumed by the failing call
		next     BinaryOpcode
		hasNext  bool // a Noop follows and must decode
	}{
		{"empty stream", nil, 0, io.EOF, 0, 0, false},
		{"truncated header", binaryReq(OpGet, "", "k", "")[:10], 0, io.ErrUnexpectedEOF, 10, 0, false},
		{"GET / HTTP/1.0 short of a header", []byte("GET / HTTP/1.0\r\n"), 0, io.ErrUnexpectedEOF, 16, 0, false},
		{"GET / HTTP/1.0 with 24 bytes", []byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n"), 0, ErrBinaryBadMagic, 24, 0, false},
		{"magic 0x81", badMagic(0x81), 0, ErrBinaryBadMagic, 24, 0, false},
		{"magic 0x00", badMagic(0x00), 0, ErrBinaryBadMagic, 24, 0, false},
		{"truncated key", binaryReq(OpGet, "", "key", "")[:25], 0, io.ErrUnexpectedEOF, 25, 0, false},
		{"truncated value", binaryReq(OpSet, binaryExtStorage, "k", "value")[:36], 0, io.ErrUnexpectedEOF, 36, 0, false},
		{"key longer than body", binaryRaw(OpGet, 5, 0, 3, "abcde"), 0, ErrBinaryBadLengths, 29, 0, false},
		{"key longer than body, key missing", binaryRaw(OpGet, 5, 0, 3, "abc"), 0, io.ErrUnexpectedEOF, 27, 0, false},
		{"extras longer than body", binaryRaw(OpNoop, 0, 4, 0, "abcd"), 0, ErrBinaryBadLengths, 28, 0, false},
		{"extras 255 body 0", binaryCat(binaryRaw(OpNoop, 0, 255, 0, ""), make([]byte, 255)), 0, ErrBinaryBadLengths, 279, 0, false},
		{"unknown opcode, key longer than body", binaryRaw(0x50, 5, 0, 3, "abcde"), 0, ErrBinaryBadLengths, 29, 0, false},
		{"get extras 255", binaryCat(binaryRaw(OpGet, 1, 255, 256, ""), make([]byte, 256)), 0, ErrBinaryInvalidArgs, 280, 0, false},
		{"set extras 255", binaryCat(binaryRaw(OpSet, 1, 255, 300, ""), make([]byte, 256)), 0, ErrBinaryInvalidArgs, 280, 0, false},
		{"key 251", binaryReq(OpGet, "", strings.Repeat("a", 251), ""), 0, ErrBinaryKeyTooLong, 275, 0, false},
		{"set key 251", binaryReq(OpSet, binaryExtStorage, strings.Repeat("a", 251), "v"), 0, ErrBinaryKeyTooLong, 283, 0, false},
		{"unknown opcode key 251", binaryReq(0x50, "", strings.Repeat("a", 251), ""), 0, ErrBinaryKeyTooLong, 275, 0, false},
		{"noop key 251", binaryReq(OpNoop, "", strings.Repeat("a", 251), ""), 0, ErrBinaryKeyTooLong, 275, 0, false},
		{"head of 16384 bytes", binaryReq(OpGet, strings.Repeat("e", 255), strings.Repeat("a", 16105), ""), 0, ErrBinaryKeyTooLong, 16384, 0, false},
		{"head of 16385 bytes", binaryReq(OpGet, strings.Repeat("e", 255), strings.Repeat("a", 16106), ""), 0, ErrBinaryHeadTooLarge, 16385, 0, false},
		{"key 20000, 16360 bytes sent", binaryCat(binaryRaw(OpGet, 20000, 0, 20000, ""), make([]byte, 16360)), 0, io.ErrUnexpectedEOF, 16384, 0, false},
		{"key 20000, 16361 bytes sent", binaryCat(binaryRaw(OpGet, 20000, 0, 20000, ""), make([]byte, 16361)), 0, ErrBinaryHeadTooLarge, 16385, 0, false},
		{"key 65535, extras 255, body 1 GiB", binaryCat(binaryRaw(OpSet, 65535, 255, 1<<30, ""), make([]byte, 20000)), 0, ErrBinaryHeadTooLarge, 16385, 0, false},

		{"get with extras", binaryReq(OpGet, "xxxx", "k", ""), 0, ErrBinaryInvalidArgs, 29, 0, false},
		{"getq with extras", binaryReq(OpGetQ, "xxxx", "k", ""), 0, ErrBinaryInvalidArgs, 29, 0, false},
		{"get with value", binaryReq(OpGet, "", "k", "v"), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"get without key", binaryReq(OpGet, "", "", ""), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"getk without key", binaryReq(OpGetK, "", "", ""), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"get body 1 GiB", binaryCat(binaryRaw(OpGet, 1, 0, 1<<30+1, "k"), noop), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"set extras 0", binaryReq(OpSet, "", "k", "v"), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"set extras 4", binaryReq(OpSet, "xxxx", "k", "v"), 0, ErrBinaryInvalidArgs, 29, 0, false},
		{"set extras 12", binaryReq(OpSet, "xxxxxxxxxxxx", "k", "v"), 0, ErrBinaryInvalidArgs, 37, 0, false},
		{"set without key", binaryReq(OpSet, binaryExtStorage, "", "v"), 0, ErrBinaryInvalidArgs, 32, 0, false},
		{"add extras 0", binaryReq(OpAdd, "", "k", "v"), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"replaceq extras 0", binaryReq(OpReplaceQ, "", "k", "v"), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"setq extras 0", binaryReq(OpSetQ, "", "k", "v"), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"delete with extras", binaryReq(OpDelete, "xxxx", "k", ""), 0, ErrBinaryInvalidArgs, 29, 0, false},
		{"delete with value", binaryReq(OpDelete, "", "k", "v"), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"delete without key", binaryReq(OpDelete, "", "", ""), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"increment extras 0", binaryReq(OpIncrement, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"increment extras 8", binaryReq(OpIncrement, "xxxxxxxx", "k", ""), 0, ErrBinaryInvalidArgs, 33, 0, false},
		{"increment with value", binaryReq(OpIncrement, binaryExtCounter, "k", "v"), 0, ErrBinaryInvalidArgs, 45, 0, false},
		{"increment without key", binaryReq(OpIncrement, binaryExtCounter, "", ""), 0, ErrBinaryInvalidArgs, 44, 0, false},
		{"decrementq extras 0", binaryReq(OpDecrementQ, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"append with extras", binaryReq(OpAppend, "xxxxxxxx", "k", "v"), 0, ErrBinaryInvalidArgs, 33, 0, false},
		{"append without key", binaryReq(OpAppend, "", "", "v"), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"stat with extras", binaryReq(OpStat, "xxxx", "", ""), 0, ErrBinaryInvalidArgs, 28, 0, false},
		{"touch extras 0", binaryReq(OpTouch, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"touch extras 8", binaryReq(OpTouch, "xxxxxxxx", "k", ""), 0, ErrBinaryInvalidArgs, 33, 0, false},
		{"touch without key", binaryReq(OpTouch, "xxxx", "", ""), 0, ErrBinaryInvalidArgs, 28, 0, false},
		{"gat extras 0", binaryReq(OpGAT, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"flush with key", binaryReq(OpFlush, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"flush extras 8", binaryReq(OpFlush, "xxxxxxxx", "", ""), 0, ErrBinaryInvalidArgs, 32, 0, false},
		{"flush extras 4 and value", binaryReq(OpFlush, "xxxx", "", "v"), 0, ErrBinaryInvalidArgs, 28, 0, false},
		{"flush value only", binaryReq(OpFlush, "", "", "vvvv"), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"flushq extras 8", binaryReq(OpFlushQ, "xxxxxxxx", "", ""), 0, ErrBinaryInvalidArgs, 32, 0, false},
		{"noop with value", binaryReq(OpNoop, "", "", "v"), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"noop with extras", binaryReq(OpNoop, "xxxx", "", ""), 0, ErrBinaryInvalidArgs, 28, 0, false},
		{"version with key", binaryReq(OpVersion, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"quit with value", binaryReq(OpQuit, "", "", "v"), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"quitq with extras", binaryReq(OpQuitQ, "xxxx", "", ""), 0, ErrBinaryInvalidArgs, 28, 0, false},
		{"sasl list mechs with value", binaryReq(OpSASLListMechs, "", "", "v"), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"sasl list mechs with key", binaryReq(OpSASLListMechs, "", "k", ""), 0, ErrBinaryInvalidArgs, 25, 0, false},
		{"sasl auth without key", binaryReq(OpSASLAuth, "", "", "v"), 0, ErrBinaryInvalidArgs, 24, 0, false},
		{"sasl auth with extras", binaryReq(OpSASLAuth, "xxxx", "PLAIN", "v"), 0, ErrBinaryInvalidArgs, 33, 0, false},

		// memcached survives these: the next request decodes.
		{"unknown opcode", binaryCat(binaryReq(0x50, "", "", ""), noop), 0, ErrBinaryUnknownCommand, 24, OpNoop, true},
		{"unknown opcode with value", binaryCat(binaryReq(0x50, "", "", "0123456789"), noop), 0, ErrBinaryUnknownCommand, 34, OpNoop, true},
		// memcached swallows BodyLen bytes after the key: 3 bytes too many.
		{"unknown opcode with key", binaryCat(binaryReq(0x50, "", "abc", ""), []byte("xyz"), noop), 0, ErrBinaryUnknownCommand, 30, OpNoop, true},
		{"unknown opcode with extras key value", binaryCat(binaryReq(0x50, "xxxx", "kk", "vvv"), []byte("123456"), noop), 0, ErrBinaryUnknownCommand, 39, OpNoop, true},
		{"verbosity", binaryCat(binaryReq(OpVerbosity, "\x00\x00\x00\x01", "", ""), []byte("1234"), noop), 0, ErrBinaryUnknownCommand, 32, OpNoop, true},
		{"unknown opcode body 1 GiB, body missing", binaryRaw(0x50, 0, 0, 1<<30, ""), 0, io.ErrUnexpectedEOF, 24, 0, false},
		{"set value over limit", binaryCat(binaryReq(OpSet, binaryExtStorage, "big", strings.Repeat("v", 101)), noop), 100, ErrBinaryValueTooLarge, 24 + 8 + 3 + 101, OpNoop, true},
		{"setq value over limit", binaryCat(binaryReq(OpSetQ, binaryExtStorage, "big", strings.Repeat("v", 101)), noop), 100, ErrBinaryValueTooLarge, 24 + 8 + 3 + 101, OpNoop, true},
		{"append value over limit", binaryCat(binaryReq(OpAppend, "", "big", strings.Repeat("v", 101)), noop), 100, ErrBinaryValueTooLarge, 24 + 3 + 101, OpNoop, true},
		{"set value 2 MiB default limit", binaryCat(binaryReq(OpSet, binaryExtStorage, "big", strings.Repeat("v", 2<<20)), noop), 0, ErrBinaryValueTooLarge, 24 + 8 + 3 + 2<<20, OpNoop, true},
		{"set body 4 GiB, value missing", binaryRaw(OpSet, 3, 8, 0xffffffff, binaryExtStorage+"big"), 0, io.ErrUnexpectedEOF, 35, 0, false},
		{"sasl auth data over limit", binaryCat(binaryReq(OpSASLAuth, "", "PLAIN", strings.Repeat("v", 101)), noop), 100, ErrBinarySASLValueTooLarge, 24 + 5 + 101, OpNoop, true},
		// memcached reads Stat, Touch and GAT no further than the key.
		{"stat with value", binaryCat(binaryRaw(OpStat, 0, 0, 24, ""), noop), 0, nil, 24, OpNoop, true},
		{"stat group with value", binaryCat(binaryRaw(OpStat, 9, 0, 9+24, "detail on"), noop), 0, nil, 33, OpNoop, true},
		{"touch with value", binaryCat(binaryRaw(OpTouch, 1, 4, 4+1+24, binaryExtExptime+"k"), noop), 0, nil, 29, OpNoop, true},
		{"gatkq with value", binaryCat(binaryRaw(OpGATKQ, 1, 4, 4+1+24, binaryExtExptime+"k"), noop), 0, nil, 29, OpNoop, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := &binaryCountingReader{r: bytes.NewReader(tc.in)}
			br := bufio.NewReader(cr)
			var req BinaryRequest
			err := ReadBinaryRequest(br, &req, tc.maxValue)
			if err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := cr.n - int64(br.Buffered()); got != tc.consumed {
				t.Fatalf("consumed: got %d, want %d", got, tc.consumed)
			}
			if err == nil && len(req.Value) != 0 {
				t.Fatalf("value: got %q, want empty", req.Value)
			}
			if tc.hasNext {
				err := ReadBinaryRequest(br, &req, tc.maxValue)
				if err != nil || req.Header.Opcode != tc.next {
					t.Fatalf("next request: got %v %v, want %v <nil>", req.Header.Opcode, err, tc.next)
				}
			}
		})
	}
}

func TestBinaryErrorFields(t *testing.T) {
	tests := []struct {
		err          *BinaryError
		status       BinaryStatus
		reply, close bool
	}{
		{ErrBinaryBadMagic, 0, false, true},
		{ErrBinaryHeadTooLarge, 0, false, true},
		{ErrBinaryBadLengths, StatusUnknownCommand, true, true},
		{ErrBinaryKeyTooLong, StatusInvalidArgs, true, true},
		{ErrBinaryInvalidArgs, StatusInvalidArgs, true, true},
		{ErrBinaryUnknownCommand, StatusUnknownCommand, true, false},
		{ErrBinaryValueTooLarge, StatusTooLarge, true, false},
		{ErrBinarySASLValueTooLarge, StatusOutOfMemory, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			var wrapped error = fmt.Errorf("conn 7: %w", tc.err)
			var be *BinaryError
			if !errors.As(wrapped, &be) || be != tc.err || !errors.Is(wrapped, tc.err) {
				t.Fatalf("errors.As/Is failed on %v", wrapped)
			}
			if be.Status != tc.status || be.Reply != tc.reply || be.Close != tc.close {
				t.Fatalf("got %v/%v/%v, want %v/%v/%v", be.Status, be.Reply, be.Close, tc.status, tc.reply, tc.close)
			}
			if !strings.HasPrefix(be.Error(), "protocol: binary: ") {
				t.Fatalf("got %q", be.Error())
			}
		})
	}
}

// binarySplitReader returns a's bytes, then b's, never both in one Read.
func binarySplitReader(data []byte, at int) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:at]), bytes.NewReader(data[at:]))
}

func binaryValidStream() []byte {
	var stream []byte
	for i, tc := range binaryValidRequests {
		stream = AppendBinaryRequest(stream, tc.op, uint32(i), uint64(i)<<32|7,
			[]byte(tc.extras), []byte(tc.key), []byte(tc.value))
	}
	return stream
}

func TestBinarySplitAtEveryByte(t *testing.T) {
	streams := map[string][]byte{
		"valid": binaryValidStream(),
		"survivable errors": binaryCat(
			binaryReq(OpGet, "", "k", ""),
			binaryReq(0x50, "", "abc", ""), []byte("xyz"),
			binaryReq(OpSet, binaryExtStorage, "big", strings.Repeat("v", 300)),
			binaryRaw(OpStat, 0, 0, 24, ""),
			binaryReq(OpNoop, "", "", ""),
			binaryReq(OpGAT, binaryExtExptime, "k", ""),
		),
		"fatal error": binaryCat(binaryReq(OpSet, binaryExtStorage, "k", "v"), binaryRaw(OpGet, 5, 0, 3, "abcde")),
		"truncated":   binaryReq(OpSet, binaryExtStorage, "k", "value")[:40],
	}
	for name, data := range streams {
		t.Run(name, func(t *testing.T) {
			want := binaryDecodeAll(bytes.NewReader(data), 4096, 256)
			check := func(how string, got []binaryResult) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: got %d results %v, want %d %v", how, len(got), got, len(want), want)
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s: result %d: got %v, want %v", how, i, got[i], want[i])
					}
				}
			}
			check("one byte at a time", binaryDecodeAll(iotest.OneByteReader(bytes.NewReader(data)), 4096, 256))
			check("bufio of 16 bytes", binaryDecodeAll(bytes.NewReader(data), 16, 256))
			check("one byte at a time, bufio of 16 bytes", binaryDecodeAll(iotest.OneByteReader(bytes.NewReader(data)), 16, 256))
			check("half reads", binaryDecodeAll(iotest.HalfReader(bytes.NewReader(data)), 4096, 256))
			for at := 0; at <= len(data); at++ {
				check(fmt.Sprintf("split at %d", at), binaryDecodeAll(binarySplitReader(data, at), 4096, 256))
			}
		})
	}
}

func TestBinaryValidStreamDecodes(t *testing.T) {
	data := binaryValidStream()
	got := binaryDecodeAll(bytes.NewReader(data), 4096, 0)
	if len(got) != len(binaryValidRequests) {
		t.Fatalf("got %d requests, want %d", len(got), len(binaryValidRequests))
	}
	for i, tc := range binaryValidRequests {
		g := got[i]
		if g.err != nil || g.hdr.Opcode != tc.op || g.hdr.Opaque != uint32(i) || g.hdr.CAS != uint64(i)<<32|7 ||
			g.extras != tc.extras || g.key != tc.key || g.value != tc.value {
			t.Fatalf("request %d (%s): got %v", i, tc.name, g)
		}
	}
}

func TestBinaryExtrasAccessors(t *testing.T) {
	read := func(in []byte) *BinaryRequest {
		t.Helper()
		var req BinaryRequest
		if err := ReadBinaryRequest(bufio.NewReader(bytes.NewReader(in)), &req, 0); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		return &req
	}
	req := read(binaryReq(OpSet, string(AppendBinaryStorageExtras(nil, 0xdeadbeef, 0x1c20)), "k", "v"))
	if f, e := req.StorageExtras(); f != 0xdeadbeef || e != 0x1c20 {
		t.Fatalf("StorageExtras: got %#x %#x, want 0xdeadbeef 0x1c20", f, e)
	}
	req = read(binaryReq(OpIncrement, string(AppendBinaryCounterExtras(nil, 5, 10, 0xffffffff)), "c", ""))
	if d, i, e := req.CounterExtras(); d != 5 || i != 10 || e != 0xffffffff {
		t.Fatalf("CounterExtras: got %d %d %#x, want 5 10 0xffffffff", d, i, e)
	}
	req = read(binaryReq(OpGATK, string(AppendBinaryExptimeExtras(nil, 3600)), "k", ""))
	if e := req.Exptime(); e != 3600 {
		t.Fatalf("Exptime: got %d, want 3600", e)
	}
	req = read(binaryReq(OpFlush, string(AppendBinaryExptimeExtras(nil, 2)), "", ""))
	if e := req.Exptime(); e != 2 {
		t.Fatalf("Flush Exptime: got %d, want 2", e)
	}
	req = read(binaryReq(OpFlush, "", "", ""))
	if e := req.Exptime(); e != 0 {
		t.Fatalf("Flush without extras: got %d, want 0", e)
	}
	req = &BinaryRequest{Extras: []byte{0, 0, 0, 3}}
	if v := req.VerbosityLevel(); v != 3 {
		t.Fatalf("VerbosityLevel: got %d, want 3", v)
	}
	// Wrong lengths give zeros.
	req = &BinaryRequest{Extras: []byte{1, 2, 3}}
	if f, e := req.StorageExtras(); f != 0 || e != 0 {
		t.Fatalf("got %d %d, want 0 0", f, e)
	}
	if d, i, e := req.CounterExtras(); d != 0 || i != 0 || e != 0 {
		t.Fatalf("got %d %d %d, want 0 0 0", d, i, e)
	}
	if e := req.Exptime(); e != 0 {
		t.Fatalf("got %d, want 0", e)
	}
}

func TestBinaryOpcodes(t *testing.T) {
	quiet := map[BinaryOpcode]BinaryOpcode{
		OpGetQ: OpGet, OpGetKQ: OpGetK, OpSetQ: OpSet, OpAddQ: OpAdd, OpReplaceQ: OpReplace,
		OpDeleteQ: OpDelete, OpIncrementQ: OpIncrement, OpDecrementQ: OpDecrement,
		OpQuitQ: OpQuit, OpFlushQ: OpFlush, OpAppendQ: OpAppend, OpPrependQ: OpPrepend,
		OpGATQ: OpGAT, OpGATKQ: OpGATK,
	}
	for op := 0; op < 256; op++ {
		o := BinaryOpcode(op)
		want, isQuiet := quiet[o]
		if !isQuiet {
			want = o
		}
		if got := o.Loud(); got != want {
			t.Fatalf("%v.Loud(): got %v, want %v", o, got, want)
		}
		if got := o.Quiet(); got != isQuiet {
			t.Fatalf("%v.Quiet(): got %v, want %v", o, got, isQuiet)
		}
		wantExempt := o == OpSASLListMechs || o == OpSASLAuth || o == OpSASLStep || o == OpVersion
		if got := o.AuthExempt(); got != wantExempt {
			t.Fatalf("%v.AuthExempt(): got %v, want %v", o, got, wantExempt)
		}
	}
	for _, tc := range []struct {
		op   BinaryOpcode
		want string
	}{{OpGet, "Get"}, {OpGATKQ, "GATKQ"}, {OpSASLStep, "SASLStep"}, {0x1f, "Opcode(0x1f)"}, {0x50, "Opcode(0x50)"}, {0xff, "Opcode(0xff)"}} {
		if got := tc.op.String(); got != tc.want {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
}

func TestBinaryStatusMessages(t *testing.T) {
	// Each text is what memcached 1.6.18 sent (see binary_notes.md).
	tests := []struct {
		s          BinaryStatus
		msg, label string
	}{
		{StatusOK, "", "OK"},
		{StatusKeyNotFound, "Not found", "KeyNotFound"},
		{StatusKeyExists, "Data exists for key.", "KeyExists"},
		{StatusTooLarge, "Too large.", "TooLarge"},
		{StatusInvalidArgs, "Invalid arguments", "InvalidArgs"},
		{StatusNotStored, "Not stored.", "NotStored"},
		{StatusNonNumeric, "Non-numeric server-side value for incr or decr", "NonNumeric"},
		{StatusAuthError, "Auth failure.", "AuthError"},
		{StatusAuthContinue, "", "AuthContinue"},
		{StatusUnknownCommand, "Unknown command", "UnknownCommand"},
		{StatusOutOfMemory, "Out of memory", "OutOfMemory"},
		{0x83, "", "Status(0x83)"},
	}
	for _, tc := range tests {
		if got := tc.s.Message(); got != tc.msg {
			t.Fatalf("%v.Message(): got %q, want %q", tc.s, got, tc.msg)
		}
		if got := tc.s.String(); got != tc.label {
			t.Fatalf("String(): got %q, want %q", got, tc.label)
		}
	}
}

// binaryGolden decodes a header written as hex (spaces allowed) and appends
// body.
func binaryGolden(t *testing.T, hdr, body string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(hdr, " ", ""))
	if err != nil || len(b) != BinaryHeaderLen {
		t.Fatalf("bad golden header %q: %v", hdr, err)
	}
	return append(b, body...)
}

// TestBinaryResponsesMatchMemcached compares the encoders with replies
// recorded byte for byte from memcached 1.6.18 (opaque 0xdeadbeef).
func TestBinaryResponsesMatchMemcached(t *testing.T) {
	const op = 0xdeadbeef
	tests := []struct {
		name      string
		got       []byte
		hdr, body string
	}{
		{"get miss", AppendBinaryError(nil, OpGet, StatusKeyNotFound, op),
			"81 00 0000 00 00 0001 00000009 deadbeef 0000000000000000", "Not found"},
		{"getk miss", AppendBinaryResponse(nil, OpGetK, StatusKeyNotFound, op, 0, nil, []byte("nokey"), nil),
			"81 0c 0005 00 00 0001 00000005 deadbeef 0000000000000000", "nokey"},
		{"get hit", AppendBinaryGetResponse(nil, OpGet, op, 1, 0xdeadbeef, nil, []byte("hello")),
			"81 00 0000 04 00 0000 00000009 deadbeef 0000000000000001", "\xde\xad\xbe\xefhello"},
		{"getq hit", AppendBinaryGetResponse(nil, OpGetQ, op, 1, 0xdeadbeef, nil, []byte("hello")),
			"81 09 0000 04 00 0000 00000009 deadbeef 0000000000000001", "\xde\xad\xbe\xefhello"},
		{"getk hit", AppendBinaryGetResponse(nil, OpGetK, op, 1, 0xdeadbeef, []byte("k1"), []byte("hello")),
			"81 0c 0002 04 00 0000 0000000b deadbeef 0000000000000001", "\xde\xad\xbe\xefk1hello"},
		{"touch hit", AppendBinaryGetResponse(nil, OpTouch, op, 23, 0xabcd, nil, nil),
			"81 1c 0000 04 00 0000 00000004 deadbeef 0000000000000017", "\x00\x00\xab\xcd"},
		{"gatk hit", AppendBinaryGetResponse(nil, OpGATK, op, 23, 0xabcd, []byte("t1"), []byte("tv")),
			"81 23 0002 04 00 0000 00000008 deadbeef 0000000000000017", "\x00\x00\xab\xcdt1tv"},
		{"set stored", AppendBinaryResponse(nil, OpSet, StatusOK, op, 1, nil, nil, nil),
			"81 01 0000 00 00 0000 00000000 deadbeef 0000000000000001", ""},
		{"delete hit", AppendBinaryResponse(nil, OpDelete, StatusOK, op, 0, nil, nil, nil),
			"81 04 0000 00 00 0000 00000000 deadbeef 0000000000000000", ""},
		{"add exists", AppendBinaryError(nil, OpAdd, StatusKeyExists, op),
			"81 02 0000 00 00 0002 00000014 deadbeef 0000000000000000", "Data exists for key."},
		{"addq exists", AppendBinaryError(nil, OpAddQ, StatusKeyExists, op),
			"81 12 0000 00 00 0002 00000014 deadbeef 0000000000000000", "Data exists for key."},
		{"set too large", AppendBinaryError(nil, OpSet, StatusTooLarge, op),
			"81 01 0000 00 00 0003 0000000a deadbeef 0000000000000000", "Too large."},
		{"get invalid", AppendBinaryError(nil, OpGet, StatusInvalidArgs, op),
			"81 00 0000 00 00 0004 00000011 deadbeef 0000000000000000", "Invalid arguments"},
		{"append not stored", AppendBinaryError(nil, OpAppend, StatusNotStored, op),
			"81 0e 0000 00 00 0005 0000000b deadbeef 0000000000000000", "Not stored."},
		{"incr non-numeric", AppendBinaryError(nil, OpIncrement, StatusNonNumeric, op),
			"81 05 0000 00 00 0006 0000002e deadbeef 0000000000000000", "Non-numeric server-side value for incr or decr"},
		{"auth failure", AppendBinaryError(nil, OpGet, StatusAuthError, op),
			"81 00 0000 00 00 0020 0000000d deadbeef 0000000000000000", "Auth failure."},
		{"auth continue", AppendBinaryResponse(nil, OpSASLAuth, StatusAuthContinue, op, 0, nil, nil, []byte("<1341116418.420422@vm>")),
			"81 21 0000 00 00 0021 00000016 deadbeef 0000000000000000", "<1341116418.420422@vm>"},
		{"authenticated", AppendBinaryText(nil, OpSASLAuth, op, "Authenticated"),
			"81 21 0000 00 00 0000 0000000d deadbeef 0000000000000000", "Authenticated"},
		{"sasl list mechs", AppendBinaryText(nil, OpSASLListMechs, op, "PLAIN CRAM-MD5"),
			"81 20 0000 00 00 0000 0000000e deadbeef 0000000000000000", "PLAIN CRAM-MD5"},
		{"unknown command", AppendBinaryError(nil, 0x50, StatusUnknownCommand, op),
			"81 50 0000 00 00 0081 0000000f deadbeef 0000000000000000", "Unknown command"},
		{"sasl out of memory", AppendBinaryError(nil, OpSASLAuth, StatusOutOfMemory, op),
			"81 21 0000 00 00 0082 0000000d deadbeef 0000000000000000", "Out of memory"},
		{"set out of memory", AppendBinaryErrorMessage(nil, OpSet, StatusOutOfMemory, op, "Out of memory allocating item"),
			"81 01 0000 00 00 0082 0000001d deadbeef 0000000000000000", "Out of memory allocating item"},
		{"incr", AppendBinaryCounterResponse(nil, OpIncrement, op, 10, 10),
			"81 05 0000 00 00 0000 00000008 deadbeef 000000000000000a", "\x00\x00\x00\x00\x00\x00\x00\x0a"},
		{"version", AppendBinaryText(nil, OpVersion, op, "1.6.18"),
			"81 0b 0000 00 00 0000 00000006 deadbeef 0000000000000000", "1.6.18"},
		{"noop", AppendBinaryResponse(nil, OpNoop, StatusOK, op, 0, nil, nil, nil),
			"81 0a 0000 00 00 0000 00000000 deadbeef 0000000000000000", ""},
		{"stat", AppendBinaryStat(nil, op, "pid", "7153"),
			"81 10 0003 00 00 0000 00000007 deadbeef 0000000000000000", "pid7153"},
		{"stat end", AppendBinaryStatEnd(nil, op),
			"81 10 0000 00 00 0000 00000000 deadbeef 0000000000000000", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := binaryGolden(t, tc.hdr, tc.body)
			if !bytes.Equal(tc.got, want) {
				t.Fatalf("got % x, want % x", tc.got, want)
			}
		})
	}
}

func TestBinaryAppendExtends(t *testing.T) {
	dst := []byte("prefix")
	dst = AppendBinaryError(dst, OpGet, StatusKeyNotFound, 1)
	dst = AppendBinaryStat(dst, 1, "a", "b")
	if !bytes.HasPrefix(dst, []byte("prefix\x81")) || len(dst) != 6+24+9+24+2 {
		t.Fatalf("got %q", dst)
	}
}

func TestBinaryRequestReuseAndRelease(t *testing.T) {
	stream := binaryCat(
		binaryReq(OpSet, binaryExtStorage, "key1", strings.Repeat("x", 10000)),
		binaryReq(OpGet, "", "key2", ""),
	)
	br := bufio.NewReader(bytes.NewReader(stream))
	var req BinaryRequest
	if err := ReadBinaryRequest(br, &req, 0); err != nil {
		t.Fatalf("got %v", err)
	}
	if len(req.Value) != 10000 {
		t.Fatalf("got value of %d bytes, want 10000", len(req.Value))
	}
	req.ReleaseBuffer(1 << 20)
	if req.buf == nil {
		t.Fatalf("ReleaseBuffer(1 MiB) dropped a buffer of %d bytes", cap(req.buf))
	}
	req.ReleaseBuffer(4096)
	if req.buf != nil || req.Value != nil {
		t.Fatalf("ReleaseBuffer(4096) kept the buffer")
	}
	if err := ReadBinaryRequest(br, &req, 0); err != nil || string(req.Key) != "key2" || len(req.Value) != 0 {
		t.Fatalf("got %v key %q value %d bytes", err, req.Key, len(req.Value))
	}
}

// binaryTotalAlloc reports how many bytes f allocates.
func binaryTotalAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBinaryNoAllocationOnPromise checks that lengths promised by a header
// are not allocated before the bytes arrive.
func TestBinaryNoAllocationOnPromise(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		maxValue int
	}{
		{"set body 4 GiB, limit 1 GiB", binaryRaw(OpSet, 3, 8, 0xffffffff, binaryExtStorage+"big"+strings.Repeat("v", 100)), 1 << 30},
		{"set body 1 GiB within limit", binaryRaw(OpSet, 3, 8, 1<<30, binaryExtStorage+"big"+strings.Repeat("v", 100)), 1 << 31},
		{"sasl data 1 GiB", binaryRaw(OpSASLAuth, 5, 0, 1<<30, "PLAIN"), 1 << 31},
		{"unknown opcode body 4 GiB", binaryRaw(0x50, 0, 0, 0xffffffff, ""), 0},
		{"key 65535 extras 255", binaryRaw(OpGet, 65535, 255, 65535+255, "abc"), 0},
		{"get extras 255 body 1 GiB", binaryRaw(OpGet, 1, 255, 1<<30, "x"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := binaryTotalAlloc(func() {
				var req BinaryRequest
				err = ReadBinaryRequest(bufio.NewReader(bytes.NewReader(tc.in)), &req, tc.maxValue)
			})
			if err == nil {
				t.Fatalf("got nil error")
			}
			// bufio's 4 KiB buffer, the request and at most a 4 KiB step.
			if alloc > 32<<10 {
				t.Fatalf("allocated %d bytes for %d bytes of input", alloc, len(tc.in))
			}
		})
	}
}

func TestBinarySteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"get", binaryReq(OpGet, "", "some:key:1234", "")},
		{"set", binaryReq(OpSet, binaryExtStorage, "some:key:1234", strings.Repeat("v", 1000))},
		{"incr", binaryReq(OpIncrement, binaryExtCounter, "counter", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(&testutil.ReplayConn{Requests: [][]byte{tc.in}, Pipelined: true, Rounds: -1})
			var req BinaryRequest
			if err := ReadBinaryRequest(br, &req, 0); err != nil {
				t.Fatalf("got %v", err)
			}
			testutil.NoAllocs(t, "decoding a request", 1000, func() {
				if err := ReadBinaryRequest(br, &req, 0); err != nil {
					t.Fatalf("got %v", err)
				}
			})
			var out []byte
			testutil.NoAllocs(t, "encoders", 1000, func() {
				out = AppendBinaryGetResponse(out[:0], OpGet, 1, 2, 3, req.Key, req.Value)
				out = AppendBinaryError(out, OpGet, StatusKeyNotFound, 1)
				out = AppendBinaryStat(out, 1, "pid", "1")
			})
		})
	}
}

func BenchmarkBinaryReadGet(b *testing.B) {
	benchmarkBinaryRead(b, binaryReq(OpGet, "", "some:key:1234", ""))
}

func BenchmarkBinaryReadSet(b *testing.B) {
	benchmarkBinaryRead(b, binaryReq(OpSet, binaryExtStorage, "some:key:1234", strings.Repeat("v", 100)))
}

func benchmarkBinaryRead(b *testing.B, in []byte) {
	br := bufio.NewReader(&testutil.ReplayConn{Requests: [][]byte{in}, Pipelined: true, Rounds: -1})
	var req BinaryRequest
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := ReadBinaryRequest(br, &req, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBinaryAppendGetResponse(b *testing.B) {
	key, value := []byte("some:key:1234"), []byte(strings.Repeat("v", 100))
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		out = AppendBinaryGetResponse(out[:0], OpGetK, 1, 2, 3, key, value)
	}
}
