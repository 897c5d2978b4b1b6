package protocol

import (
	"bufio"
	"io"
)

// minGrow is the smallest step by which a buffer for a promised length
// grows while its bytes arrive.
const minGrow = 4096

// appendArrived appends the next n bytes of r to buf and returns buf. The n
// bytes are a length a request promised, which the client may never send:
// buf grows no faster than they arrive, so that a client that promises a
// gigabyte and sends a few bytes reserves a few kilobytes.
//
// If r holds all n bytes already, they are copied from its buffer at once,
// after buf has grown (if it must) to exactly what they need. Otherwise buf
// is filled to its capacity, then grows to twice that (at least minGrow and
// at least what r holds by then, never more than the n bytes need, and all
// they need if that is less than minGrow more) each time it is full: it
// never holds more than twice what has arrived, or minGrow, plus minGrow.
//
// On an error, buf holds the bytes that did arrive; io.EOF, which comes
// inside the n bytes, is returned as io.ErrUnexpectedEOF.
func appendArrived(r *bufio.Reader, buf []byte, n int) ([]byte, error) {
	need := len(buf) + n
	if n <= r.Buffered() {
		if cap(buf) < need {
			buf = growTo(buf, need)
		}
		b, _ := r.Peek(n)
		buf = append(buf, b...)
		_, _ = r.Discard(n)
		return buf, nil
	}
	for len(buf) < need {
		if len(buf) == cap(buf) {
			c := min(max(2*cap(buf), minGrow, len(buf)+r.Buffered()), need)
			if need-c < minGrow {
				// Within a step of the end (a value a few bytes over
				// a power of two): not one more copy for the last bytes.
				c = need
			}
			buf = growTo(buf, c)
		}
		m, err := io.ReadFull(r, buf[len(buf):min(cap(buf), need)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, eofUnexpected(err)
		}
	}
	return buf, nil
}

// growTo returns buf's bytes in a new buffer of capacity c.
func growTo(buf []byte, c int) []byte {
	nb := make([]byte, len(buf), c)
	copy(nb, buf)
	return nb
}
