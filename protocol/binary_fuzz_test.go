package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// binaryFuzzMaxValue is small so that the fuzzer reaches the value limit.
const binaryFuzzMaxValue = 64

// binaryFuzzDecode reads requests from src until the stream ends or an error
// closes the connection, checking after every call that the request buffer
// stays within what the input could justify, and that every decoded request
// re-encodes to exactly the bytes it was read from.
func binaryFuzzDecode(t *testing.T, data []byte, src io.Reader, bufSize int) []binaryResult {
	cr := &binaryCountingReader{r: src}
	br := bufio.NewReaderSize(cr, bufSize)
	var req BinaryRequest
	var out []binaryResult
	var prev int64
	for {
		err := ReadBinaryRequest(br, &req, binaryFuzzMaxValue)
		pos := cr.n - int64(br.Buffered())
		if pos < prev || pos > int64(len(data)) {
			t.Fatalf("position %d after %d, input of %d bytes", pos, prev, len(data))
		}
		// The buffer grows by doubling from 4 KiB as bytes arrive: it can
		// never be more than twice the input, or 4 KiB, plus the last
		// step of less than 4 KiB that appendArrived takes at once.
		if limit := max(2*len(data), minGrow) + minGrow; cap(req.buf) > limit {
			t.Fatalf("request buffer of %d bytes for %d bytes of input", cap(req.buf), len(data))
		}
		res := binaryResult{hdr: req.Header, extras: string(req.Extras), key: string(req.Key),
			value: string(req.Value), err: err, consumed: pos - prev}
		if err == nil {
			if got, want := req.Append(nil), data[prev:pos]; !bytes.Equal(got, want) {
				t.Fatalf("re-encoded request: got % x, want % x", got, want)
			}
			if verr := req.Validate(); verr != nil {
				t.Fatalf("decoded request fails Validate: %v", verr)
			}
		}
		prev = pos
		if err == io.EOF {
			if pos != int64(len(data)) {
				t.Fatalf("io.EOF at %d of %d bytes", pos, len(data))
			}
			return out
		}
		out = append(out, res)
		if err == nil {
			continue
		}
		var be *BinaryError
		switch {
		case errors.As(err, &be):
			if be.Close {
				return out
			}
		case err == io.ErrUnexpectedEOF:
			return out
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
}

func FuzzBinaryRequest(f *testing.F) {
	for _, tc := range binaryValidRequests {
		f.Add(AppendBinaryRequest(nil, tc.op, 1, 2, []byte(tc.extras), []byte(tc.key), []byte(tc.value)))
	}
	f.Add(binaryValidStream())
	f.Fuzz(func(t *testing.T, data []byte) {
		want := binaryFuzzDecode(t, data, bytes.NewReader(data), 4096)
		// The same input read one byte at a time, through the smallest
		// bufio.Reader, decodes the same.
		got := binaryFuzzDecode(t, data, iotest.OneByteReader(bytes.NewReader(data)), 16)
		if len(got) != len(want) {
			t.Fatalf("one byte at a time: got %d results %v, want %d %v", len(got), got, len(want), want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("one byte at a time: result %d: got %v, want %v", i, got[i], want[i])
			}
		}
	})
}

func FuzzBinaryHeader(f *testing.F) {
	f.Add(binaryReq(OpGet, "", "k", "")[:BinaryHeaderLen])
	f.Add(AppendBinaryError(nil, OpGet, StatusKeyNotFound, 0xdeadbeef)[:BinaryHeaderLen])
	f.Fuzz(func(t *testing.T, data []byte) {
		var h BinaryHeader
		err := h.Decode(data)
		if len(data) < BinaryHeaderLen {
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("got %v, want %v", err, io.ErrUnexpectedEOF)
			}
			return
		}
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if got := h.Append(nil); !bytes.Equal(got, data[:BinaryHeaderLen]) {
			t.Fatalf("got % x, want % x", got, data[:BinaryHeaderLen])
		}
	})
}

// FuzzBinaryResponse feeds arbitrary bytes to ReadBinaryResponse, the
// reader of the module's clients: no panic, and a body within the bound and
// the input, split as its header says.
func FuzzBinaryResponse(f *testing.F) {
	f.Add(AppendBinaryResponse(nil, OpGet, StatusOK, 1, 2, []byte{0, 0, 0, 7}, nil, []byte("value")))
	f.Add(AppendBinaryResponse(nil, OpStat, StatusOK, 0, 0, nil, []byte("pid"), []byte("1")))
	f.Add(AppendBinaryError(nil, OpSASLAuth, StatusAuthError, 0))
	f.Add([]byte("\x81\x00\x00\x05\x04\x00\x00\x00\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, extras, key, value, err := ReadBinaryResponse(bufio.NewReader(bytes.NewReader(data)), 64)
		if err != nil {
			return
		}
		n := len(extras) + len(key) + len(value)
		if n > 64 || n+BinaryHeaderLen > len(data) || n != int(h.BodyLen) || len(extras) != int(h.ExtrasLen) || len(key) != int(h.KeyLen) {
			t.Fatalf("body of %d bytes (extras %d, key %d, value %d) for header %+v and %d bytes of input", n, len(extras), len(key), len(value), h, len(data))
		}
	})
}
