package protocol

// This file is the codec of memcached's binary protocol: the 24-byte header,
// a request decoder that checks every length the way memcached 1.6 does, and
// append-style encoders for replies. binary_notes.md records what memcached
// 1.6.18 answers to every opcode and every malformed request; the decoder's
// errors carry exactly the reply (or the absence of one) memcached gives.

import (
	"bufio"
	"encoding/binary"
	"io"
	"strconv"
)

// Magic bytes: the first byte of every binary packet.
const (
	BinaryMagicRequest  = 0x80
	BinaryMagicResponse = 0x81
)

// BinaryHeaderLen is the length of a binary request or response header.
const BinaryHeaderLen = 24

// BinaryDefaultMaxValue is the value limit ReadBinaryRequest and
// ReadBinaryBody use when given a limit of zero or less: memcached's default
// item size limit (-I 1m).
const BinaryDefaultMaxValue = 1 << 20

// binaryMaxKeyLen is memcached's KEY_MAX_LENGTH; longer binary keys are a
// protocol error.
const binaryMaxKeyLen = 250

// binaryReadBufferSize is the size of memcached's per-connection read buffer
// (READ_BUFFER_SIZE). memcached buffers the header, extras and key of a
// request before it looks at them; when they cannot fit, it closes the
// connection without a reply as soon as more than this many bytes of the
// request have arrived.
const binaryReadBufferSize = 16384

// binaryMinGrow is the smallest step by which a request buffer grows while
// the bytes of a body arrive.
const binaryMinGrow = 4096

// BinaryOpcode is the command byte of a binary packet.
type BinaryOpcode uint8

// The opcodes memcached 1.6 serves, plus OpVerbosity, which it answers with
// StatusUnknownCommand. Names ending in Q are the quiet variants.
const (
	OpGet           BinaryOpcode = 0x00
	OpSet           BinaryOpcode = 0x01
	OpAdd           BinaryOpcode = 0x02
	OpReplace       BinaryOpcode = 0x03
	OpDelete        BinaryOpcode = 0x04
	OpIncrement     BinaryOpcode = 0x05
	OpDecrement     BinaryOpcode = 0x06
	OpQuit          BinaryOpcode = 0x07
	OpFlush         BinaryOpcode = 0x08
	OpGetQ          BinaryOpcode = 0x09
	OpNoop          BinaryOpcode = 0x0a
	OpVersion       BinaryOpcode = 0x0b
	OpGetK          BinaryOpcode = 0x0c
	OpGetKQ         BinaryOpcode = 0x0d
	OpAppend        BinaryOpcode = 0x0e
	OpPrepend       BinaryOpcode = 0x0f
	OpStat          BinaryOpcode = 0x10
	OpSetQ          BinaryOpcode = 0x11
	OpAddQ          BinaryOpcode = 0x12
	OpReplaceQ      BinaryOpcode = 0x13
	OpDeleteQ       BinaryOpcode = 0x14
	OpIncrementQ    BinaryOpcode = 0x15
	OpDecrementQ    BinaryOpcode = 0x16
	OpQuitQ         BinaryOpcode = 0x17
	OpFlushQ        BinaryOpcode = 0x18
	OpAppendQ       BinaryOpcode = 0x19
	OpPrependQ      BinaryOpcode = 0x1a
	OpVerbosity     BinaryOpcode = 0x1b
	OpTouch         BinaryOpcode = 0x1c
	OpGAT           BinaryOpcode = 0x1d
	OpGATQ          BinaryOpcode = 0x1e
	OpSASLListMechs BinaryOpcode = 0x20
	OpSASLAuth      BinaryOpcode = 0x21
	OpSASLStep      BinaryOpcode = 0x22
	OpGATK          BinaryOpcode = 0x23
	OpGATKQ         BinaryOpcode = 0x24
)

var binaryOpcodeNames = [...]string{
	OpGet: "Get", OpSet: "Set", OpAdd: "Add", OpReplace: "Replace",
	OpDelete: "Delete", OpIncrement: "Increment", OpDecrement: "Decrement",
	OpQuit: "Quit", OpFlush: "Flush", OpGetQ: "GetQ", OpNoop: "Noop",
	OpVersion: "Version", OpGetK: "GetK", OpGetKQ: "GetKQ", OpAppend: "Append",
	OpPrepend: "Prepend", OpStat: "Stat", OpSetQ: "SetQ", OpAddQ: "AddQ",
	OpReplaceQ: "ReplaceQ", OpDeleteQ: "DeleteQ", OpIncrementQ: "IncrementQ",
	OpDecrementQ: "DecrementQ", OpQuitQ: "QuitQ", OpFlushQ: "FlushQ",
	OpAppendQ: "AppendQ", OpPrependQ: "PrependQ", OpVerbosity: "Verbosity",
	OpTouch: "Touch", OpGAT: "GAT", OpGATQ: "GATQ",
	OpSASLListMechs: "SASLListMechs", OpSASLAuth: "SASLAuth",
	OpSASLStep: "SASLStep", OpGATK: "GATK", OpGATKQ: "GATKQ",
}

// String returns the opcode's name, such as "GetKQ", or "Opcode(0x50)".
func (op BinaryOpcode) String() string {
	if int(op) < len(binaryOpcodeNames) && binaryOpcodeNames[op] != "" {
		return binaryOpcodeNames[op]
	}
	return "Opcode(0x" + strconv.FormatUint(uint64(op), 16) + ")"
}

// Quiet reports whether op is a quiet variant (GetQ, SetQ, …, GATKQ).
func (op BinaryOpcode) Quiet() bool { return op.Loud() != op }

// Loud returns the non-quiet variant of a quiet opcode (GetQ → Get,
// GetKQ → GetK, GATKQ → GATK, …) and any other opcode unchanged.
// memcached serves a quiet opcode as its loud variant, suppresses the replies
// binary_notes.md lists, and answers with the opcode of the request.
func (op BinaryOpcode) Loud() BinaryOpcode {
	switch op {
	case OpGetQ:
		return OpGet
	case OpGetKQ:
		return OpGetK
	case OpSetQ:
		return OpSet
	case OpAddQ:
		return OpAdd
	case OpReplaceQ:
		return OpReplace
	case OpDeleteQ:
		return OpDelete
	case OpIncrementQ:
		return OpIncrement
	case OpDecrementQ:
		return OpDecrement
	case OpQuitQ:
		return OpQuit
	case OpFlushQ:
		return OpFlush
	case OpAppendQ:
		return OpAppend
	case OpPrependQ:
		return OpPrepend
	case OpGATQ:
		return OpGAT
	case OpGATKQ:
		return OpGATK
	}
	return op
}

// AuthExempt reports whether memcached serves op on a connection that has
// not authenticated yet when SASL is on (-S): the SASL opcodes and Version.
// Any other opcode is answered with StatusAuthError and the connection is
// closed; see ReadBinaryHead for where this check belongs.
func (op BinaryOpcode) AuthExempt() bool {
	switch op {
	case OpSASLListMechs, OpSASLAuth, OpSASLStep, OpVersion:
		return true
	}
	return false
}

// BinaryStatus is the status field of a binary response.
type BinaryStatus uint16

// The statuses memcached 1.6 sends.
const (
	StatusOK             BinaryStatus = 0x00
	StatusKeyNotFound    BinaryStatus = 0x01
	StatusKeyExists      BinaryStatus = 0x02
	StatusTooLarge       BinaryStatus = 0x03
	StatusInvalidArgs    BinaryStatus = 0x04
	StatusNotStored      BinaryStatus = 0x05
	StatusNonNumeric     BinaryStatus = 0x06
	StatusAuthError      BinaryStatus = 0x20
	StatusAuthContinue   BinaryStatus = 0x21
	StatusUnknownCommand BinaryStatus = 0x81
	StatusOutOfMemory    BinaryStatus = 0x82
)

// Message returns the body memcached sends with an error status when the
// code path gives no text of its own, such as "Not found" or "Too large.".
// It returns "" for StatusOK, StatusAuthContinue (whose body is the SASL
// challenge) and statuses memcached never sends.
func (s BinaryStatus) Message() string {
	switch s {
	case StatusKeyNotFound:
		return "Not found"
	case StatusKeyExists:
		return "Data exists for key."
	case StatusTooLarge:
		return "Too large."
	case StatusInvalidArgs:
		return "Invalid arguments"
	case StatusNotStored:
		return "Not stored."
	case StatusNonNumeric:
		return "Non-numeric server-side value for incr or decr"
	case StatusAuthError:
		return "Auth failure."
	case StatusUnknownCommand:
		return "Unknown command"
	case StatusOutOfMemory:
		return "Out of memory"
	}
	return ""
}

// String returns a name for the status, such as "KeyNotFound".
func (s BinaryStatus) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusKeyNotFound:
		return "KeyNotFound"
	case StatusKeyExists:
		return "KeyExists"
	case StatusTooLarge:
		return "TooLarge"
	case StatusInvalidArgs:
		return "InvalidArgs"
	case StatusNotStored:
		return "NotStored"
	case StatusNonNumeric:
		return "NonNumeric"
	case StatusAuthError:
		return "AuthError"
	case StatusAuthContinue:
		return "AuthContinue"
	case StatusUnknownCommand:
		return "UnknownCommand"
	case StatusOutOfMemory:
		return "OutOfMemory"
	}
	return "Status(0x" + strconv.FormatUint(uint64(s), 16) + ")"
}

// BinaryHeader is the 24-byte header of a binary request or response. All
// multi-byte fields are big-endian on the wire.
type BinaryHeader struct {
	Magic     uint8 // BinaryMagicRequest or BinaryMagicResponse
	Opcode    BinaryOpcode
	KeyLen    uint16
	ExtrasLen uint8
	DataType  uint8 // memcached ignores it in requests and sends 0
	// Status is bytes 6-7: the status of a response. In a request the same
	// bytes are "reserved" (the vbucket id); memcached ignores them.
	Status  BinaryStatus
	BodyLen uint32 // extras + key + value
	Opaque  uint32 // copied into every reply to the request
	CAS     uint64
}

// Decode sets h from the first BinaryHeaderLen bytes of b. It returns
// io.ErrUnexpectedEOF if b is shorter. It checks nothing else: the magic byte
// and the lengths are the reader's business.
func (h *BinaryHeader) Decode(b []byte) error {
	if len(b) < BinaryHeaderLen {
		return io.ErrUnexpectedEOF
	}
	h.Magic = b[0]
	h.Opcode = BinaryOpcode(b[1])
	h.KeyLen = binary.BigEndian.Uint16(b[2:])
	h.ExtrasLen = b[4]
	h.DataType = b[5]
	h.Status = BinaryStatus(binary.BigEndian.Uint16(b[6:]))
	h.BodyLen = binary.BigEndian.Uint32(b[8:])
	h.Opaque = binary.BigEndian.Uint32(b[12:])
	h.CAS = binary.BigEndian.Uint64(b[16:])
	return nil
}

// Append appends the 24 bytes of h to dst, fields as they are.
func (h *BinaryHeader) Append(dst []byte) []byte {
	dst = append(dst, h.Magic, byte(h.Opcode))
	dst = binary.BigEndian.AppendUint16(dst, h.KeyLen)
	dst = append(dst, h.ExtrasLen, h.DataType)
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.Status))
	dst = binary.BigEndian.AppendUint32(dst, h.BodyLen)
	dst = binary.BigEndian.AppendUint32(dst, h.Opaque)
	return binary.BigEndian.AppendUint64(dst, h.CAS)
}

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
//	Set Add Replace (+Q)        8       > 0        any value
//	Append Prepend (+Q)         0       > 0        any value
//	Increment Decrement (+Q)    20      > 0        = key + 20
//	Touch GAT GATQ GATK GATKQ   4       > 0        not checked
//	Stat                        0       any        not checked
//	Flush FlushQ                0 or 4  0          = extras
//	Noop Version Quit QuitQ     0       0          0
//	SASLListMechs               0       0          0
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
	case OpGet, OpGetQ, OpGetK, OpGetKQ, OpDelete, OpDeleteQ:
		ok = el == 0 && kl > 0 && bl == kl
	case OpSet, OpSetQ, OpAdd, OpAddQ, OpReplace, OpReplaceQ:
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
	case OpNoop, OpVersion, OpQuit, OpQuitQ, OpSASLListMechs:
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
// faster than the bytes arrive (by doubling, from binaryMinGrow), so that a
// length promised by a header is never allocated before it is delivered.
func (req *BinaryRequest) readBody(r *bufio.Reader, n int) error {
	need := len(req.buf) + n
	if n <= r.Buffered() {
		// The bytes have arrived: copy them from the buffer at once.
		for cap(req.buf) < need {
			req.growBuf(need)
		}
		b, _ := r.Peek(n)
		req.buf = append(req.buf, b...)
		_, _ = r.Discard(n)
		return nil
	}
	for len(req.buf) < need {
		if len(req.buf) == cap(req.buf) {
			req.growBuf(need)
		}
		end := min(cap(req.buf), need)
		m, err := io.ReadFull(r, req.buf[len(req.buf):end])
		req.buf = req.buf[:len(req.buf)+m]
		if err != nil {
			return binaryUnexpected(err)
		}
	}
	return nil
}

// growBuf doubles req.buf's capacity (to at least binaryMinGrow), but not
// past need bytes.
func (req *BinaryRequest) growBuf(need int) {
	nb := make([]byte, len(req.buf), min(max(2*cap(req.buf), binaryMinGrow), need))
	copy(nb, req.buf)
	req.buf = nb
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

// AppendBinaryRequest appends a request packet (magic 0x80, data type 0,
// reserved 0, BodyLen computed) to dst. Extras, key and value are copied.
func AppendBinaryRequest(dst []byte, op BinaryOpcode, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	return appendBinaryPacket(dst, BinaryMagicRequest, op, 0, opaque, cas, extras, key, value)
}

// AppendBinaryResponse appends a response packet (magic 0x81, data type 0,
// BodyLen computed) to dst. Extras, key and value are copied.
func AppendBinaryResponse(dst []byte, op BinaryOpcode, status BinaryStatus, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	return appendBinaryPacket(dst, BinaryMagicResponse, op, status, opaque, cas, extras, key, value)
}

func appendBinaryPacket(dst []byte, magic uint8, op BinaryOpcode, status BinaryStatus, opaque uint32, cas uint64, extras, key, value []byte) []byte {
	h := BinaryHeader{
		Magic:     magic,
		Opcode:    op,
		KeyLen:    uint16(len(key)),
		ExtrasLen: uint8(len(extras)),
		Status:    status,
		BodyLen:   uint32(len(extras) + len(key) + len(value)),
		Opaque:    opaque,
		CAS:       cas,
	}
	dst = h.Append(dst)
	dst = append(dst, extras...)
	dst = append(dst, key...)
	return append(dst, value...)
}

// appendBinaryTextResponse is AppendBinaryResponse with a string body and
// no extras, key or CAS.
func appendBinaryTextResponse(dst []byte, op BinaryOpcode, status BinaryStatus, opaque uint32, body string) []byte {
	h := BinaryHeader{
		Magic:   BinaryMagicResponse,
		Opcode:  op,
		Status:  status,
		BodyLen: uint32(len(body)),
		Opaque:  opaque,
	}
	return append(h.Append(dst), body...)
}

// AppendBinaryError appends memcached's reply for an error status: no
// extras, no key, CAS 0, and status.Message() as the body, such as
// "Not found" for StatusKeyNotFound. (A miss of GetK or GATK is not
// answered this way: see AppendBinaryResponse and binary_notes.md.)
func AppendBinaryError(dst []byte, op BinaryOpcode, status BinaryStatus, opaque uint32) []byte {
	return appendBinaryTextResponse(dst, op, status, opaque, status.Message())
}

// AppendBinaryErrorMessage is AppendBinaryError with a body of the caller's
// choosing. memcached uses it for StatusOutOfMemory, whose text names what
// failed, such as "Out of memory allocating item".
func AppendBinaryErrorMessage(dst []byte, op BinaryOpcode, status BinaryStatus, opaque uint32, msg string) []byte {
	return appendBinaryTextResponse(dst, op, status, opaque, msg)
}

// AppendBinaryText appends a successful reply whose body is text: the
// version for OpVersion ("1.6.18"), the mechanisms for OpSASLListMechs
// ("PLAIN CRAM-MD5"), "Authenticated" for a successful SASL step. CAS is 0.
func AppendBinaryText(dst []byte, op BinaryOpcode, opaque uint32, text string) []byte {
	return appendBinaryTextResponse(dst, op, StatusOK, opaque, text)
}

// AppendBinaryGetResponse appends the reply to a hit of a Get, GAT or Touch
// (or their K and Q variants): 4 bytes of extras holding flags, then key
// (pass it for GetK, GetKQ, GATK and GATKQ only), then value (pass nil for
// Touch). cas is the item's CAS.
func AppendBinaryGetResponse(dst []byte, op BinaryOpcode, opaque uint32, cas uint64, flags uint32, key, value []byte) []byte {
	h := BinaryHeader{
		Magic:     BinaryMagicResponse,
		Opcode:    op,
		KeyLen:    uint16(len(key)),
		ExtrasLen: 4,
		BodyLen:   uint32(4 + len(key) + len(value)),
		Opaque:    opaque,
		CAS:       cas,
	}
	dst = h.Append(dst)
	dst = binary.BigEndian.AppendUint32(dst, flags)
	dst = append(dst, key...)
	return append(dst, value...)
}

// AppendBinaryCounterResponse appends the reply to a successful Increment
// or Decrement: no extras, no key, an 8-byte big-endian body holding the
// new value, and the item's new CAS.
func AppendBinaryCounterResponse(dst []byte, op BinaryOpcode, opaque uint32, cas uint64, value uint64) []byte {
	h := BinaryHeader{
		Magic:   BinaryMagicResponse,
		Opcode:  op,
		BodyLen: 8,
		Opaque:  opaque,
		CAS:     cas,
	}
	return binary.BigEndian.AppendUint64(h.Append(dst), value)
}

// AppendBinaryStat appends one packet of a Stat reply: opcode Stat, status
// OK, the stat's name as key and its value as body, CAS 0. A Stat reply is
// a sequence of these ended by AppendBinaryStatEnd.
func AppendBinaryStat(dst []byte, opaque uint32, name, value string) []byte {
	h := BinaryHeader{
		Magic:   BinaryMagicResponse,
		Opcode:  OpStat,
		KeyLen:  uint16(len(name)),
		BodyLen: uint32(len(name) + len(value)),
		Opaque:  opaque,
	}
	dst = h.Append(dst)
	dst = append(dst, name...)
	return append(dst, value...)
}

// AppendBinaryStatEnd appends the packet that ends a Stat reply: opcode
// Stat, status OK, no key, no body.
func AppendBinaryStatEnd(dst []byte, opaque uint32) []byte {
	return appendBinaryTextResponse(dst, OpStat, StatusOK, opaque, "")
}

// AppendBinaryStorageExtras appends the 8 bytes of extras of a Set, Add or
// Replace request.
func AppendBinaryStorageExtras(dst []byte, flags, exptime uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, flags)
	return binary.BigEndian.AppendUint32(dst, exptime)
}

// AppendBinaryCounterExtras appends the 20 bytes of extras of an Increment
// or Decrement request.
func AppendBinaryCounterExtras(dst []byte, delta, initial uint64, exptime uint32) []byte {
	dst = binary.BigEndian.AppendUint64(dst, delta)
	dst = binary.BigEndian.AppendUint64(dst, initial)
	return binary.BigEndian.AppendUint32(dst, exptime)
}

// AppendBinaryExptimeExtras appends the 4 bytes of extras of a Touch, GAT
// or Flush request (or the level of a Verbosity request).
func AppendBinaryExptimeExtras(dst []byte, exptime uint32) []byte {
	return binary.BigEndian.AppendUint32(dst, exptime)
}
