package protocol

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Text-protocol reply lines, each with its "\r\n".
var (
	ReplyStored    = []byte("STORED\r\n")
	ReplyNotStored = []byte("NOT_STORED\r\n")
	ReplyExists    = []byte("EXISTS\r\n")
	ReplyNotFound  = []byte("NOT_FOUND\r\n")
	ReplyDeleted   = []byte("DELETED\r\n")
	ReplyTouched   = []byte("TOUCHED\r\n")
	ReplyEnd       = []byte("END\r\n")
	ReplyOK        = []byte("OK\r\n")
	ReplyReset     = []byte("RESET\r\n")
	ReplyMetaNoop  = []byte("MN\r\n")
)

// AppendValueHeader appends a retrieval hit's header line:
// "VALUE <key> <flags> <bytes>[ <cas>]\r\n". The data and its "\r\n" follow.
func AppendValueHeader(dst, key []byte, flags uint32, n int, cas uint64, withCAS bool) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(n), 10)
	if withCAS {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	return append(dst, '\r', '\n')
}

// AppendNumber appends the reply of incr or decr: the new value and "\r\n".
func AppendNumber(dst []byte, v uint64) []byte {
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\r', '\n')
}

// AppendLine appends s and "\r\n".
func AppendLine(dst []byte, s string) []byte {
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendStat appends one "STAT <name> <value>\r\n" line.
func AppendStat(dst []byte, name, value string) []byte {
	dst = append(dst, "STAT "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// ReplyDataLen returns the length of the data block that follows a text
// reply line, without its "\r\n": the <bytes> of "VALUE <key> <flags>
// <bytes> [<cas>]" (classic retrievals) and of "VA <bytes> <flags>*" (meta),
// and -1 for any other line, which has no data. line may end in "\r\n". A
// VALUE or VA line whose length is not a decimal number is an error. It is
// for a node that relays another node's replies (node/command's
// forwarding), which must know where each reply ends.
func ReplyDataLen(line []byte) (int, error) {
	var field []byte
	switch {
	case len(line) > 6 && string(line[:6]) == "VALUE ":
		field = nthField(line[6:], 2)
	case len(line) > 3 && string(line[:3]) == "VA ":
		field = nthField(line[3:], 0)
	default:
		return -1, nil
	}
	if len(field) == 0 || len(field) > 10 {
		return 0, fmt.Errorf("%w: %q", ErrBadReplyLength, line)
	}
	n := 0
	for _, c := range field {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrBadReplyLength, line)
		}
		n = n*10 + int(c-'0')
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %q", ErrBadReplyLength, line)
	}
	return n, nil
}

// ErrBadReplyLength is returned, wrapped, by ReplyDataLen for a VALUE or VA
// line whose length is not a decimal number below 2^31.
var ErrBadReplyLength = errors.New("protocol: reply line with a bad data length")

// nthField returns the i'th space-separated field of line (from 0), with
// any "\r\n" after it left out, or nil if there is none.
func nthField(line []byte, i int) []byte {
	for {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		end := 0
		for end < len(line) && line[end] != ' ' && line[end] != '\r' && line[end] != '\n' {
			end++
		}
		if end == 0 {
			return nil
		}
		if i == 0 {
			return line[:end]
		}
		line, i = line[end:], i-1
	}
}
