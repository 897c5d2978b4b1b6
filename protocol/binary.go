package protocol

// The codec of memcached's binary protocol is in three files: this one
// holds what requests and replies share, the limits, the opcodes, the
// statuses and the 24-byte header; binarydecode.go the request decoder,
// which checks every length the way memcached 1.6 does; binaryencode.go
// the append-style encoders of replies (and of requests, for clients and
// tests). binary_notes.md records what memcached 1.6.18 answers to every
// opcode and every malformed request; the decoder's errors carry exactly
// the reply (or the absence of one) memcached gives.

import (
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

	// memcluster's own, for one node's hand-off to another after a
	// change of membership (node/handoff), on a node whose clients speak
	// only the binary protocol (SASL, -B binary). memcached answers them
	// StatusUnknownCommand; a memcluster node serves them, in a cluster
	// or not, to clients that have authenticated where it asks them to. OpHandoffGet is Get, answered with 8 bytes of
	// extras: the flags and the seconds the item has left (0: it never
	// expires). OpHandoffAdd is Add, which the node stores only if it
	// has not written the key lately.
	OpHandoffGet BinaryOpcode = 0xe0
	OpHandoffAdd BinaryOpcode = 0xe1
	// OpConfigGet is "config get <key>" for clients that speak only the
	// binary protocol, those of a SASL node above all (Auto Discovery
	// after logging in): its key is "cluster" or "ring", and its value
	// the whole reply the text command gets.
	OpConfigGet BinaryOpcode = 0xe2
	// OpPeer is memcluster's "peer" (protocol.CmdPeer): no extras, key or
	// value, answered StatusOK; the node then serves the connection's
	// requests from its own store and never forwards them.
	OpPeer BinaryOpcode = 0xe3
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
	switch op {
	case OpHandoffGet:
		return "HandoffGet"
	case OpHandoffAdd:
		return "HandoffAdd"
	case OpConfigGet:
		return "ConfigGet"
	case OpPeer:
		return "Peer"
	}
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
	// StatusInternalError is the protocol's "Internal error", which
	// memcached 1.6 never sends: a node answers it when it cannot reach
	// the node it forwards a request to.
	StatusInternalError BinaryStatus = 0x84
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
	case StatusInternalError:
		return "Internal error"
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
	case StatusInternalError:
		return "InternalError"
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
