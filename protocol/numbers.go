package protocol

// memcached reads numbers with strtol/strtoul wrappers (safe_strtol,
// safe_strtoul, safe_strtoull) whose quirks clients can see: leading white
// space and a sign are allowed, the number may be followed by white space,
// values past the C type's range are errors, and 64-bit results are then
// truncated to 32 bits without complaint. These functions reproduce them.

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// parseMagnitude reads what strtoull reads: optional white space, an optional
// sign, decimal digits. It reports the digits' value (saturated), whether it
// overflowed 64 bits, whether a minus sign was seen, and whether the token
// ended correctly (at its end or at white space after at least one digit).
func parseMagnitude(b []byte) (mag uint64, overflow, neg, ok bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if mag > (1<<64-1-d)/10 {
			overflow = true
		} else {
			mag = mag*10 + d
		}
		i++
	}
	if i == start {
		return 0, false, false, false
	}
	if i < len(b) && !isCSpace(b[i]) {
		return 0, false, false, false
	}
	return mag, overflow, neg, true
}

// parseUint64 is memcached's safe_strtoull.
func parseUint64(b []byte) (uint64, bool) {
	mag, overflow, neg, ok := parseMagnitude(b)
	if !ok || overflow {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && neg {
		return 0, false
	}
	return v, true
}

// parseUint32 is memcached's safe_strtoul on a 64-bit machine: parsed as 64
// bits, then truncated.
func parseUint32(b []byte) (uint32, bool) {
	v, ok := parseUint64(b)
	return uint32(v), ok
}

// ParseUint32 reads a number as memcached's safe_strtoul does on a 64-bit
// machine (see parseUint32), for the node to judge the words of the
// commands it decodes as Request.Args.
func ParseUint32(b []byte) (uint32, bool) { return parseUint32(b) }

// parseInt32 is memcached's safe_strtol on a 64-bit machine: parsed as a
// signed 64-bit number, then truncated to 32 bits.
func parseInt32(b []byte) (int64, bool) {
	mag, overflow, neg, ok := parseMagnitude(b)
	if !ok || overflow {
		return 0, false
	}
	if neg {
		if mag > 1<<63 {
			return 0, false
		}
		return int64(int32(-int64(mag))), true
	}
	if mag > 1<<63-1 {
		return 0, false
	}
	return int64(int32(int64(mag))), true
}
