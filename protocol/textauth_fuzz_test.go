package protocol

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"testing/iotest"
)

// FuzzTextAuth checks that no input panics NextAuth, that input split at
// every byte boundary decodes as it does whole, that both decode as
// authModel does, and that no user or password is longer than the data
// block it came from.
func FuzzTextAuth(f *testing.F) {
	// More seeds, written by hand, are in testdata/fuzz/FuzzTextAuth; these
	// are generated: data blocks at the read buffer's size and one over it,
	// and a line that never ends.
	for _, seed := range [][]byte{
		[]byte(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", 16<<10-2, bytes.Repeat([]byte("a "), 8<<10-1))),
		[]byte(fmt.Sprintf("set k 0 0 %d\r\n%s", 16<<10-1, bytes.Repeat([]byte("b"), 16<<10+1))),
		bytes.Repeat([]byte("x"), 1<<20), // 1 MB line without a newline
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, creds := decodeAuthCreds(bytes.NewReader(in))
		split, _ := decodeAuthCreds(iotest.OneByteReader(bytes.NewReader(in)))
		if !splitAgrees(in, whole, split) {
			t.Fatalf("whole input decoded %q, one byte at a time %q", whole, split)
		}
		model, blocks := authModel(in, 16<<10)
		// The model reads a line from the start of a fresh buffer; the
		// decoder, as memcached, may find the start of a long line at
		// the end of a buffer it has partly consumed, and close.
		if !reflect.DeepEqual(whole, model) && !(hasLongRun(in) && len(in) > 16<<10) {
			t.Fatalf("decoded %q, memcached's way %q", whole, model)
		}
		for i, c := range creds {
			user, password := c[0], c[1]
			if len(user) == 0 || len(password) == 0 || len(user)+1+len(password) > blocks[i] {
				t.Fatalf("attempt %d: user %q and password %q from a data block of %d bytes", i, user, password, blocks[i])
			}
		}
	})
}

// authModel decodes in, all of it at once, as memcached 1.6.18's
// try_read_command_asciiauth does with a read buffer of bufSize bytes,
// written as plainly as can be to hold NextAuth to it. It renders results
// as decodeAuth does, and returns the length of the data block (without
// its "\r\n") of each success. Where memcached is undefined (a byte count
// that makes its length negative) or not copied on purpose it does what
// NextAuth does: a lone "\n" is answered at once (memcached waits for a
// second byte first). A line must end within the buffer, and within
// MaxUnterminatedLine bytes if the buffer holds more than that.
func authModel(in []byte, bufSize int) (out []string, blocks []int) {
	const (
		unauth = "error CLIENT_ERROR unauthenticated"
		term   = "error CLIENT_ERROR bad command line termination"
		format = "error CLIENT_ERROR bad authentication token format"
	)
	for {
		if len(in) == 0 {
			return append(out, "end EOF"), blocks
		}
		// A line must end within the buffer.
		el := bytes.IndexByte(in[:min(len(in), bufSize)], '\n')
		if el < 0 {
			if min(len(in), bufSize) > MaxUnterminatedLine {
				return append(out, "end close"), blocks
			}
			return append(out, "end unexpected EOF"), blocks
		}
		// memcached puts a NUL at the '\n' and tokenizes the C string
		// (its '\r', if any, stays on the last token, where strtoul
		// stops at it).
		line := cString(in[:el])
		in = in[el+1:]
		tokens := spaceTokens(line)
		if len(tokens) < 5 || string(tokens[0]) != "set" {
			out = append(out, unauth)
			continue
		}
		size, ok := parseUint32(tokens[4])
		if !ok {
			out = append(out, unauth)
			continue
		}
		rlbytes := size + 2 // uint32_t + 2, kept in an int
		switch {
		case int32(rlbytes) < 0:
			return append(out, "end close"), blocks
		case int(rlbytes) > bufSize:
			if len(in) < bufSize {
				return append(out, "end unexpected EOF"), blocks
			}
			return append(out, "end close"), blocks
		case len(in) < int(rlbytes):
			return append(out, "end unexpected EOF"), blocks
		}
		cont := in[:rlbytes]
		in = in[rlbytes:]
		// strncmp(cont + rlbytes - 2, "\r\n", 2): for a block of 0 or 1
		// bytes, the bytes compared are the NUL at the line's end and
		// what precedes or follows it.
		if rlbytes < 2 || !bytes.HasSuffix(cont, []byte("\r\n")) {
			out = append(out, term)
			continue
		}
		tokens = spaceTokens(cString(cont[:rlbytes-2]))
		if len(tokens) < 2 {
			out = append(out, format)
			continue
		}
		out = append(out, "user="+string(tokens[0])+" password="+string(tokens[1]))
		blocks = append(blocks, int(rlbytes)-2)
	}
}

// cString returns b up to its first NUL.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// spaceTokens splits b at runs of spaces, as memcached's tokenize_command.
func spaceTokens(b []byte) [][]byte {
	var out [][]byte
	for _, t := range bytes.Split(b, []byte(" ")) {
		if len(t) > 0 {
			out = append(out, t)
		}
	}
	return out
}
