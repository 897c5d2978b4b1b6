package protocol

// The decoder of binary requests: ReadBinaryRequest, or ReadBinaryHead and
// ReadBinaryBody in turn, into a reused BinaryRequest, with the errors
// (BinaryError) that say how memcached answers a malformed or refused
// request; and the accessors of a decoded request's extras. See binary.go
// for the header and binary_notes.md for memcached's behaviour.

import (
	"bufio"
	"encoding/binary"
	"io"
)

// BinaryError is a malformed or refused binary request. The decoder returns
// one of the sentinel values below, never a new one, so errors.Is and
// errors.As both work and returning an error does not allocate. When the
// error is returned, the request's Header (and, where they were read, its
// Extras and Key) are set, so the reply can carry the request's opcode and
// opaque:
//
//	var be *BinaryError
//	if errors.As(err, &be) {
//		if be.Reply {
//			out = AppendBinaryError(out, req.Header.Opcode, be.Status, req.Header.Opaque)
//		}
//		if be.Close {
//			// flush out, then close the connection
//		}
//	}
type BinaryError struct {
	// Status is the status memcached answers with; it is meaningful only
	// when Reply is set. The reply's body is Status.Message().
	Status BinaryStatus
	// Reply reports whether memcached answers at all.
	Reply bool
	// Close reports whether memcached closes the connection (after writing
	// the reply, if any).
	Close bool
	text  string
}

func (e *BinaryError) Error() string { return "protocol: binary: " + e.text }

// The decoder's errors. Any other error it returns comes from the reader:
// io.EOF when the stream ends cleanly between two requests,
// io.ErrUnexpectedEOF when it ends inside one, or the reader's own error;
// after any of those the connection is to be closed without a reply.
var (
	// ErrBinaryBadMagic: the first byte of the header is not 0x80.
	// memcached closes the connection without a reply. (It first waits for
	// all 24 header bytes, as ReadBinaryHead does.)
	ErrBinaryBadMagic = &BinaryError{Close: true, text: "bad magic"}

	// ErrBinaryHeadTooLarge: header, extras and key together exceed
	// memcached's 16384-byte read buffer. memcached closes the connection
	// without a reply once more than 16384 bytes of the request have
	// arrived; ReadBinaryHead reads (and drops) that many before returning.
	ErrBinaryHeadTooLarge = &BinaryError{Close: true, text: "header, extras and key exceed 16384 bytes"}

	// ErrBinaryBadLengths: KeyLen + ExtrasLen > BodyLen. memcached answers
	// StatusUnknownCommand and closes, after it has read the extras and key.
	ErrBinaryBadLengths = &BinaryError{Status: StatusUnknownCommand, Reply: true, Close: true,
		text: "key and extras longer than the body"}

	// ErrBinaryKeyTooLong: a key longer than 250 bytes, whatever the
	// opcode. memcached answers StatusInvalidArgs and closes.
	ErrBinaryKeyTooLong = &BinaryError{Status: StatusInvalidArgs, Reply: true, Close: true,
		text: "key longer than 250 bytes"}

	// ErrBinaryInvalidArgs: extras, key or body lengths that the opcode does
	// not allow. memcached answers StatusInvalidArgs and closes.
	ErrBinaryInvalidArgs = &BinaryError{Status: StatusInvalidArgs, Reply: true, Close: true,
		text: "invalid lengths for the opcode"}

	// ErrBinaryUnknownCommand: an opcode memcached does not serve
	// (including OpVerbosity). memcached answers StatusUnknownCommand and
	// keeps the connection, but first swallows BodyLen bytes counted from
	// the end of the key — that is, ExtrasLen+KeyLen bytes more than the
	// request has (a memcached bug, reproduced). ReadBinaryBody swallows
	// them before it returns this error.
	ErrBinaryUnknownCommand = &BinaryError{Status: StatusUnknownCommand, Reply: true,
		text: "unknown command"}

	// ErrBinaryValueTooLarge: the value of a Set, Add, Replace, Append or
	// Prepend (or quiet variant) is longer than the limit. memcached
	// answers StatusTooLarge after it has swallowed the value, and keeps the
	// connection; ReadBinaryBody swallows it before it returns this error.
	// (memcached also deletes the key on a failed Set: that is the node's
	// business.)
	ErrBinaryValueTooLarge = &BinaryError{Status: StatusTooLarge, Reply: true,
		text: "value too large"}

	// ErrBinarySASLValueTooLarge: the data of a SASLAuth or SASLStep is
	// longer than the limit. memcached answers StatusOutOfMemory ("Out of
	// memory") after it has swallowed the data, and keeps the connection.
	ErrBinarySASLValueTooLarge = &BinaryError{Status: StatusOutOfMemory, Reply: true,
		text: "SASL data too large"}
)

// BinaryRequest is one decoded binary request. Extras, Key and Value are
// slices of a buffer the request owns: they are valid until the request is
// read into again, and must be copied to be kept. A BinaryRequest is reused
// from request to request (its buffer grows to the largest body seen; see
// ReleaseBuffer) and must not be used by two goroutines at once.
type BinaryRequest struct {
	Header BinaryHeader
	Extras []byte
	Key    []byte
	// Value is the rest of the body: BodyLen - ExtrasLen - KeyLen bytes.
	// For OpStat, OpTouch and the GAT opcodes it is always empty: memcached
	// does not read past their key, and the remaining body bytes are read
	// as the next request. ReadBinaryBody does the same.
	Value []byte

	hdr [BinaryHeaderLen]byte
	buf []byte
}

// ReleaseBuffer drops the request's buffer if its capacity is over keep
// bytes, so that one large value does not stay allocated for the life of a
// connection. It invalidates Extras, Key and Value.
func (req *BinaryRequest) ReleaseBuffer(keep int) {
	if cap(req.buf) > keep {
		req.buf = nil
		req.Extras, req.Key, req.Value = nil, nil, nil
	}
}

// ReadBinaryRequest reads one request from r: ReadBinaryHead, then
// ReadBinaryBody with maxValue (if zero or less, BinaryDefaultMaxValue). A
// node with SASL on must instead call the two in turn and check
// authentication between them, as memcached does.
func ReadBinaryRequest(r *bufio.Reader, req *BinaryRequest, maxValue int) error {
	if err := ReadBinaryHead(r, req); err != nil {
		return err
	}
	return ReadBinaryBody(r, req, maxValue)
}

// BinaryNextBuffered reports whether r holds the whole of the next request,
// header and body, so that ReadBinaryHead and ReadBinaryBody decode it from
// the buffer without reading from the connection. It errs towards false: a
// header with a fault or an opcode memcached does not serve is left to a
// reader that may read.
func BinaryNextBuffered(r *bufio.Reader) bool {
	if r.Buffered() < BinaryHeaderLen {
		return false
	}
	b, _ := r.Peek(BinaryHeaderLen)
	var h BinaryHeader
	_ = h.Decode(b)
	head := int(h.ExtrasLen) + int(h.KeyLen)
	if h.Magic != BinaryMagicRequest || BinaryHeaderLen+head > binaryReadBufferSize || uint32(head) > h.BodyLen {
		return false
	}
	req := BinaryRequest{Header: h}
	if req.Validate() == ErrBinaryUnknownCommand {
		return false
	}
	return int64(r.Buffered()) >= BinaryHeaderLen+int64(h.BodyLen)
}

// ReadBinaryHead reads the header, the extras and the key of a request:
// what memcached reads before it looks at the request. It returns
// ErrBinaryBadMagic, ErrBinaryHeadTooLarge or ErrBinaryBadLengths for the
// faults memcached finds at that point, or the reader's error; nothing it
// reads is allocated before it has arrived.
//
// memcached with SASL on checks authentication right after this step: a
// request whose opcode is not AuthExempt on a connection that has not
// authenticated is answered StatusAuthError ("Auth failure.") and the
// connection closed — before the key length, the opcode's lengths or the
// value are looked at.
func ReadBinaryHead(r *bufio.Reader, req *BinaryRequest) error {
	req.Extras, req.Key, req.Value = nil, nil, nil
	if r.Buffered() >= BinaryHeaderLen {
		// The usual case: the header has arrived; take it from the
		// buffer without the calls of io.ReadFull.
		b, _ := r.Peek(BinaryHeaderLen)
		copy(req.hdr[:], b)
		_, _ = r.Discard(BinaryHeaderLen)
	} else if _, err := io.ReadFull(r, req.hdr[:]); err != nil {
		return err // io.EOF between requests, io.ErrUnexpectedEOF inside one
	}
	h := &req.Header
	_ = h.Decode(req.hdr[:])
	if h.Magic != BinaryMagicRequest {
		return ErrBinaryBadMagic
	}
	n := int(h.ExtrasLen) + int(h.KeyLen)
	if BinaryHeaderLen+n > binaryReadBufferSize {
		if _, err := binaryDiscard(r, binaryReadBufferSize-BinaryHeaderLen+1); err != nil {
			return binaryUnexpected(err)
		}
		return ErrBinaryHeadTooLarge
	}
	req.buf = req.buf[:0]
	if err := req.readBody(r, n); err != nil {
		return err
	}
	el := int(h.ExtrasLen)
	req.Extras = req.buf[:el:el]
	req.Key = req.buf[el:n:n]
	if uint32(n) > h.BodyLen {
		return ErrBinaryBadLengths
	}
	return nil
}

// ReadBinaryBody finishes a request whose head ReadBinaryHead has read: it
// validates it (see Validate) and reads its value. A value longer than
// maxValue (if zero or less, BinaryDefaultMaxValue) is never buffered: it is
// swallowed in bounded chunks and ErrBinaryValueTooLarge (or
// ErrBinarySASLValueTooLarge) returned. The value buffer grows only as the
// value's bytes arrive.
//
// memcached's exact limit on a value depends on the key and the flags (see
// binary_notes.md); a node that wants it exactly computes maxValue from the
// head before calling ReadBinaryBody.
func ReadBinaryBody(r *bufio.Reader, req *BinaryRequest, maxValue int) error {
	if maxValue <= 0 {
		maxValue = BinaryDefaultMaxValue
	}
	h := &req.Header
	if err := req.Validate(); err != nil {
		if err == ErrBinaryUnknownCommand {
			if _, derr := binaryDiscard(r, int64(h.BodyLen)); derr != nil {
				return binaryUnexpected(derr)
			}
		}
		return err
	}
	head := int(h.ExtrasLen) + int(h.KeyLen)
	vlen := int64(h.BodyLen) - int64(head)
	if vlen == 0 {
		return nil
	}
	switch h.Opcode {
	case OpStat, OpTouch, OpGAT, OpGATQ, OpGATK, OpGATKQ:
		// memcached reads no further than the key: the rest of the body
		// is parsed as the next request.
		return nil
	}
	if vlen > int64(maxValue) {
		if _, err := binaryDiscard(r, vlen); err != nil {
			return binaryUnexpected(err)
		}
		if h.Opcode == OpSASLAuth || h.Opcode == OpSASLStep {
			return ErrBinarySASLValueTooLarge
		}
		return ErrBinaryValueTooLarge
	}
	if err := req.readBody(r, int(vlen)); err != nil {
		return err
	}
	el := int(h.ExtrasLen)
	req.Extras = req.buf[:el:el]
	req.Key = req.buf[el:head:head]
	req.Value = req.buf[head:len(req.buf):len(req.buf)]
	return nil
}

// Validate checks the request's lengths the way memcached 1.6.18 does once
// the head is read: KeyLen + ExtrasLen ≤ BodyLen (ErrBinaryBadLengths), a
// key of at most 250 bytes (ErrBinaryKeyTooLong), then the lengths each
// opcode allows (ErrBinaryInvalidArgs), and that the opcode is one memcached
// serves (ErrBinaryUnknownCommand). It looks at the header only.
//
//	opcode                      extras  key        body
//	Get GetQ GetK GetKQ         0       > 0        = key
//	Delete DeleteQ              0       > 0        = key
//	HandoffGet ConfigGet        0       > 0        = key
//	Set Add Replace (+Q)        8       > 0        any value
//	HandoffAdd                  8       > 0        any value
//	Append Prepend (+Q)         0       > 0        any value
//	Increment Decrement (+Q)    20      > 0        = key + 20
//	Touch GAT GATQ GATK GATKQ   4       > 0        not checked
//	Stat                        0       any        not checked
//	Flush FlushQ                0 or 4  0          = extras
//	Noop Version Quit QuitQ     0       0          0
//	SASLListMechs Peer          0       0          0
//	SASLAuth SASLStep           0       > 0        any value
func (req *BinaryRequest) Validate() error {
	h := &req.Header
	el, kl, bl := uint32(h.ExtrasLen), uint32(h.KeyLen), h.BodyLen
	if el+kl > bl {
		return ErrBinaryBadLengths
	}
	if kl > binaryMaxKeyLen {
		return ErrBinaryKeyTooLong
	}
	ok := false
	switch h.Opcode {
	case OpGet, OpGetQ, OpGetK, OpGetKQ, OpDelete, OpDeleteQ, OpHandoffGet, OpConfigGet:
		ok = el == 0 && kl > 0 && bl == kl
	case OpSet, OpSetQ, OpAdd, OpAddQ, OpReplace, OpReplaceQ, OpHandoffAdd:
		ok = el == 8 && kl > 0
	case OpAppend, OpAppendQ, OpPrepend, OpPrependQ:
		ok = el == 0 && kl > 0
	case OpIncrement, OpIncrementQ, OpDecrement, OpDecrementQ:
		ok = el == 20 && kl > 0 && bl == kl+20
	case OpTouch, OpGAT, OpGATQ, OpGATK, OpGATKQ:
		ok = el == 4 && kl > 0
	case OpStat:
		ok = el == 0
	case OpFlush, OpFlushQ:
		ok = kl == 0 && bl == el && (el == 0 || el == 4)
	case OpNoop, OpVersion, OpQuit, OpQuitQ, OpSASLListMechs, OpPeer:
		ok = el == 0 && kl == 0 && bl == 0
	case OpSASLAuth, OpSASLStep:
		ok = el == 0 && kl > 0
	default:
		return ErrBinaryUnknownCommand
	}
	if !ok {
		return ErrBinaryInvalidArgs
	}
	return nil
}

// StorageExtras returns the flags and expiration of a Set, Add or Replace
// (8 bytes of extras), or zeros if the extras are not 8 bytes long.
func (req *BinaryRequest) StorageExtras() (flags, exptime uint32) {
	if len(req.Extras) != 8 {
		return 0, 0
	}
	return binary.BigEndian.Uint32(req.Extras), binary.BigEndian.Uint32(req.Extras[4:])
}

// CounterExtras returns the delta, initial value and expiration of an
// Increment or Decrement (20 bytes of extras), or zeros if the extras are
// not 20 bytes long. An expiration of 0xffffffff means: fail with
// StatusKeyNotFound on a miss instead of creating the counter.
func (req *BinaryRequest) CounterExtras() (delta, initial uint64, exptime uint32) {
	if len(req.Extras) != 20 {
		return 0, 0, 0
	}
	e := req.Extras
	return binary.BigEndian.Uint64(e), binary.BigEndian.Uint64(e[8:]), binary.BigEndian.Uint32(e[16:])
}

// Exptime returns the expiration of a Touch or GAT (4 bytes of extras), or
// the delay of a Flush: 0 when the Flush has no extras, as memcached reads
// it.
func (req *BinaryRequest) Exptime() uint32 {
	if len(req.Extras) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(req.Extras)
}

// VerbosityLevel returns the level of a Verbosity request (4 bytes of
// extras), or 0. memcached 1.6.18 does not serve OpVerbosity: it answers
// StatusUnknownCommand.
func (req *BinaryRequest) VerbosityLevel() uint32 { return req.Exptime() }

// Append appends the request as it was read: its header field for field
// (BodyLen included), then Extras, Key and Value. For a request read with
// ReadBinaryRequest these are exactly the bytes consumed from the reader.
func (req *BinaryRequest) Append(dst []byte) []byte {
	dst = req.Header.Append(dst)
	dst = append(dst, req.Extras...)
	dst = append(dst, req.Key...)
	return append(dst, req.Value...)
}

// readBody appends the next n bytes of r to req.buf, growing the buffer no
// faster than the bytes arrive (see appendArrived), so that a length
// promised by a header is never allocated before it is delivered.
func (req *BinaryRequest) readBody(r *bufio.Reader, n int) error {
	var err error
	req.buf, err = appendArrived(r, req.buf, n)
	return err
}

// binaryDiscard drops n bytes of r in bounded chunks, without allocating.
func binaryDiscard(r *bufio.Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		chunk := min(n-done, 1<<30)
		m, err := r.Discard(int(chunk))
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// binaryUnexpected turns io.EOF inside a request into io.ErrUnexpectedEOF.
func binaryUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
