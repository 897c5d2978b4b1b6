package store

import "encoding/binary"

// An item is a record in one of its shard's pages: a header, the key, then
// the value, packed without padding:
//
//	off size
//	  0    1  key length
//	  1    1  bits (bitDead … and the S3-FIFO frequency in the top two)
//	  2    2  value length (of an external value: see below)
//	  4    4  client flags
//	  8    4  deadline, a unix second as secs; 0 never
//	 12    4  last access, a unix second as secs
//	 16    8  sequence number of the last mutation, for flush_all; the CAS
//	          unique too, unless bitExplicitCAS
//	 24   (8) the CAS unique, present only with bitExplicitCAS
//
// A value too long for a page (an external record, bitExternal) lives in a
// buffer of its own; the record then holds, where the value would be, the
// buffer's 4-byte index in the shard's table of them and the value's 4-byte
// length. Records hold no Go pointers, so the collector never looks inside
// a page.
const (
	offKeyLen   = 0
	offBits     = 1
	offValueLen = 2
	offFlags    = 4
	offDeadline = 8
	offAccess   = 12
	offSeq      = 16
	hdrSize     = 24
	casSize     = 8
	externSize  = 8

	// maxInlineValue bounds the value of a record kept in a page: its
	// length must fit the header's two bytes.
	maxInlineValue = 1<<16 - 1
)

// Bits of a record's bits byte.
const (
	bitDead        = 1 << iota // deleted or replaced: its bytes wait for the page's turn
	bitFetched                 // read since stored
	bitStale                   // invalidated by a meta I flag: served marked stale
	bitTokenSent               // a meta win token (W) has been handed out
	bitExplicitCAS             // the CAS unique follows the header
	bitExternal                // the value lives in an external buffer

	freqShift = 6 // the top two bits: reads since the last eviction pass, 0…3
	freqMax   = 3
	freqMask  = freqMax << freqShift
)

var le = binary.LittleEndian

// secs is a unix second in 32 bits (good until 2106).
type secs uint32

// toSecs converts a unix second to secs, clamped to its range.
func toSecs(t int64) secs {
	switch {
	case t < 0:
		return 0
	case t > 1<<32-1:
		return 1<<32 - 1
	}
	return secs(t)
}

// toDeadline converts a deadline (0 never, else a unix second, possibly
// already past) to the secs a record keeps: 0 stays 0, and any other
// second is at least 1, so that a deadline in the past stays in the past.
func toDeadline(t int64) secs {
	if t == 0 {
		return 0
	}
	return max(toSecs(t), 1)
}

// hdr is a record's header, decoded.
type hdr struct {
	keyLen   int
	bits     uint8
	flags    uint32
	valueLen int
	deadline secs
	access   secs
	seq      uint64
	cas      uint64 // seq unless bitExplicitCAS
}

// readHdr decodes the header of the record at the start of b.
func readHdr(b []byte) hdr {
	f := b[:hdrSize]
	h := hdr{
		keyLen:   int(f[offKeyLen]),
		bits:     f[offBits],
		flags:    le.Uint32(f[offFlags:]),
		valueLen: int(le.Uint16(f[offValueLen:])),
		deadline: secs(le.Uint32(f[offDeadline:])),
		access:   secs(le.Uint32(f[offAccess:])),
		seq:      le.Uint64(f[offSeq:]),
	}
	h.cas = h.seq
	if h.bits&bitExternal != 0 {
		h.valueLen = int(le.Uint32(b[headLen(h.bits)+h.keyLen+4:]))
	}
	return h
}

// readHdrCAS is readHdr that also reads an explicit CAS unique.
func readHdrCAS(b []byte) hdr {
	h := readHdr(b)
	if h.bits&bitExplicitCAS != 0 {
		h.cas = le.Uint64(b[hdrSize:])
	}
	return h
}

// headLen is the length of a record's header with its optional CAS unique.
func headLen(bits uint8) int {
	if bits&bitExplicitCAS != 0 {
		return hdrSize + casSize
	}
	return hdrSize
}

// recordLen is the length of a record with these sizes: the value's bytes,
// or the external index in their place.
func recordLen(keyLen, valueLen int, bits uint8) int {
	if bits&bitExternal != 0 {
		valueLen = externSize
	}
	return headLen(bits) + keyLen + valueLen
}

// lenOf is the length of the record at the start of b.
func lenOf(b []byte) int {
	return recordLen(int(b[offKeyLen]), int(le.Uint16(b[offValueLen:])), b[offBits])
}

// keyOf is the key of the record at the start of b.
func keyOf(b []byte) []byte {
	n := headLen(b[offBits])
	return b[n : n+int(b[offKeyLen])]
}

// writeHdr encodes h (and its CAS unique if bitExplicitCAS) at the start of
// b and returns where the key goes. An external record's value length is
// written with its index, by writeExtern.
func writeHdr(b []byte, h *hdr) int {
	b[offKeyLen] = byte(h.keyLen)
	b[offBits] = h.bits
	le.PutUint32(b[offFlags:], h.flags)
	if h.bits&bitExternal == 0 {
		le.PutUint16(b[offValueLen:], uint16(h.valueLen))
	} else {
		le.PutUint16(b[offValueLen:], 0)
	}
	le.PutUint32(b[offDeadline:], uint32(h.deadline))
	le.PutUint32(b[offAccess:], uint32(h.access))
	le.PutUint64(b[offSeq:], h.seq)
	if h.bits&bitExplicitCAS != 0 {
		le.PutUint64(b[hdrSize:], h.cas)
		return hdrSize + casSize
	}
	return hdrSize
}

// setDeadline rewrites the deadline of the record at the start of b.
func setDeadline(b []byte, d secs) { le.PutUint32(b[offDeadline:], uint32(d)) }

// setAccess rewrites the last access time of the record at the start of b.
func setAccess(b []byte, t secs) { le.PutUint32(b[offAccess:], uint32(t)) }

// writeExtern writes, at b, what an external record holds in place of its
// value: the index of its buffer and its length.
func writeExtern(b []byte, index uint32, valueLen int) {
	le.PutUint32(b, index)
	le.PutUint32(b[4:], uint32(valueLen))
}
