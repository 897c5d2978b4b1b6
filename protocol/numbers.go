package protocol

import (
	"math"
	"strconv"
	"strings"
)

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

// ParseUint32 reads a number as memcached's safe_strtoul does on a 64-bit
// machine: strtoul's syntax (optional white space and sign, decimal
// digits, then the end or white space), a value that fits 64 bits, no
// minus sign on a value that is negative as a signed number, then
// truncated to 32 bits without complaint. For the node's administrative
// commands, whose words the decoder hands over unread.
func ParseUint32(b []byte) (uint32, bool) { return parseUint32(b) }

// ParseInt32 reads a number as memcached's safe_strtol does on a 64-bit
// machine: a signed 64-bit number, truncated to 32 bits.
func ParseInt32(b []byte) (int32, bool) {
	v, ok := parseInt32(b)
	return int32(v), ok
}

// ParseDouble reads a number as memcached's safe_strtod does: the longest
// prefix C's strtod reads (optional white space and sign; decimal digits
// with an optional point and exponent; 0x and hexadecimal digits with an
// optional point and binary exponent; inf, infinity or nan, in any case,
// nan perhaps followed by parenthesised letters and digits), which must be
// followed by the end or white space, and a value that neither overflows
// nor underflows (strtod's ERANGE).
func ParseDouble(b []byte) (float64, bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	start := i
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	var v float64
	switch n := cWord(b[i:]); {
	case n != 0:
		// inf, infinity or nan
		word := strings.ToLower(string(b[i : i+n]))
		i += n
		if word == "nan" {
			i += cNaNPayload(b[i:])
			v = math.NaN()
		} else {
			v = math.Inf(1)
		}
		if neg {
			v = -v // a negative NaN keeps its sign, as printf's "-nan" shows
		}
	default:
		hex := i+1 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X')
		j := i
		if hex {
			j += 2
		}
		digits, nonzero := 0, false
		isDigit := func(c byte) bool {
			if hex {
				return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f'
			}
			return '0' <= c && c <= '9'
		}
		for j < len(b) && isDigit(b[j]) {
			digits, nonzero = digits+1, nonzero || b[j] != '0'
			j++
		}
		if j < len(b) && b[j] == '.' {
			j++
			for j < len(b) && isDigit(b[j]) {
				digits, nonzero = digits+1, nonzero || b[j] != '0'
				j++
			}
		}
		if digits == 0 {
			if !hex {
				return 0, false // strtod read nothing
			}
			// "0x" with no hexadecimal digit: strtod reads the 0.
			j = i + 1
			hex = false
		}
		expMark := byte('e')
		if hex {
			expMark = 'p'
		}
		end := j
		if j < len(b) && b[j]|0x20 == expMark {
			k := j + 1
			if k < len(b) && (b[k] == '+' || b[k] == '-') {
				k++
			}
			if k < len(b) && '0' <= b[k] && b[k] <= '9' {
				for k < len(b) && '0' <= b[k] && b[k] <= '9' {
					k++
				}
				end = k
			}
		}
		lit := string(b[start:end])
		if hex && end == j {
			lit += "p0" // Go wants a binary exponent; C does not
		}
		var err error
		v, err = strconv.ParseFloat(lit, 64)
		if err != nil {
			return 0, false // out of range
		}
		if nonzero && (v == 0 || math.Abs(v) < 0x1p-1022) {
			return 0, false // underflow: strtod's ERANGE
		}
		i = end
	}
	if i < len(b) && !isCSpace(b[i]) {
		return 0, false
	}
	return v, true
}

// cWord returns the length of the inf, infinity or nan (in any case) b
// starts with, or 0.
func cWord(b []byte) int {
	for _, w := range []string{"infinity", "inf", "nan"} {
		if len(b) >= len(w) && strings.EqualFold(string(b[:len(w)]), w) {
			return len(w)
		}
	}
	return 0
}

// cNaNPayload returns the length of the "(n-char-sequence)" strtod reads
// after nan, or 0.
func cNaNPayload(b []byte) int {
	if len(b) == 0 || b[0] != '(' {
		return 0
	}
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == ')':
			return i + 1
		case '0' <= c && c <= '9', 'a' <= c|0x20 && c|0x20 <= 'z', c == '_':
		default:
			return 0
		}
	}
	return 0
}
