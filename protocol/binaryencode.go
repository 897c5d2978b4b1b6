package protocol

// The encoders of binary packets: functions that append a reply (or, for
// clients and tests, a request) to a buffer, computing BodyLen. See
// binary.go for the header, the opcodes and the statuses.

import "encoding/binary"

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
	dst = AppendBinaryGetResponseHead(dst, op, opaque, cas, flags, key, len(value))
	return append(dst, value...)
}

// AppendBinaryGetResponseHead appends AppendBinaryGetResponse's reply up to
// its value, of valueLen bytes, which the caller sends next.
func AppendBinaryGetResponseHead(dst []byte, op BinaryOpcode, opaque uint32, cas uint64, flags uint32, key []byte, valueLen int) []byte {
	h := BinaryHeader{
		Magic:     BinaryMagicResponse,
		Opcode:    op,
		KeyLen:    uint16(len(key)),
		ExtrasLen: 4,
		BodyLen:   uint32(4 + len(key) + valueLen),
		Opaque:    opaque,
		CAS:       cas,
	}
	dst = h.Append(dst)
	dst = binary.BigEndian.AppendUint32(dst, flags)
	return append(dst, key...)
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
