package protocol

import (
	"bufio"
	"fmt"
	"io"
)

// ReadBinaryResponse reads one binary response from r, for the clients in
// this module (a node's peer client, ring.Selector's SASL login, mcctl): its
// header, and its extras, key and value, which share one new buffer. A
// response that is not one (magic), or whose body is longer than maxBody
// or shorter than its extras and key, is an error, read no further.
func ReadBinaryResponse(r *bufio.Reader, maxBody int) (h BinaryHeader, extras, key, value []byte, err error) {
	var head [BinaryHeaderLen]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return h, nil, nil, nil, err
	}
	_ = h.Decode(head[:])
	el, kl := int64(h.ExtrasLen), int64(h.KeyLen)
	switch {
	case h.Magic != BinaryMagicResponse:
		return h, nil, nil, nil, fmt.Errorf("protocol: not a binary response (magic %#x)", h.Magic)
	case int64(h.BodyLen) > int64(maxBody) || el+kl > int64(h.BodyLen):
		return h, nil, nil, nil, fmt.Errorf("protocol: a binary response body of %d bytes (extras %d, key %d, limit %d)", h.BodyLen, el, kl, maxBody)
	}
	body := make([]byte, h.BodyLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return h, nil, nil, nil, eofUnexpected(err)
	}
	return h, body[:el:el], body[el : el+kl : el+kl], body[el+kl:], nil
}
