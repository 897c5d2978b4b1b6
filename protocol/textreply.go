package protocol

import "strconv"

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
