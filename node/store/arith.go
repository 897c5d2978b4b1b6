package store

import (
	"math"
	"strconv"
)

// Arith adds delta to (incr) or subtracts it from (!incr) the decimal value
// of key's item, as memcached's incr and decr: unsigned 64-bit, incr wraps
// around, decr stops at 0. It returns the new value, the new CAS unique (0
// with NoCAS) and the status.
//
// The value is read as memcached's safe_strtoull reads it: optional leading
// white space, an optional sign, decimal digits that fit in 64 bits, then
// the end, white space or a NUL; "-" negates modulo 2^64 and is refused when
// the result would be negative as a signed number. Anything else, an empty
// value or one larger than a slab chunk (512 KiB by default: memcached's
// chunked items) gives NonNumeric. The flags and deadline are kept. A result
// no longer than the old value is written in place, padded with trailing
// spaces to the old length, as memcached does ("100" decr 1 reads "99 ");
// a longer one replaces the value. Either is a mutation: a new CAS unique.
//
// A non-zero cas must equal the item's CAS unique, else Exists (with NoCAS,
// every item's is 0). On a missing key Arith returns NotFound, unless create
// is set: then it stores initial in decimal with flags 0 and deadline,
// ignoring cas, and returns initial (NoMemory or TooLarge if it cannot).
// An OK on a number found counts an incr or decr hit in its class; a
// created one counts nothing.
func (s *Store) Arith(key []byte, incr bool, delta, initial uint64, create bool, deadline int64, cas uint64) (uint64, uint64, Status) {
	return s.ArithCAS(key, incr, delta, initial, create, deadline, cas, NewCAS{})
}

// ArithCAS is Arith that gives the item counted or created the CAS unique
// nc asks for, as memcached's ma with E.
func (s *Store) ArithCAS(key []byte, incr bool, delta, initial uint64, create bool, deadline int64, cas uint64, nc NewCAS) (uint64, uint64, Status) {
	s.wrote(key)
	o := s.begin(key)
	sh := o.sh
	var r room
	var buf [20]byte
	var num, newCAS uint64
	var st Status
	s.writeKey(&o, key, &r, func() roomResult {
		f := &o.found
		if f.lk != Hit {
			if !create {
				st = NotFound
				return roomOK
			}
			digits := strconv.AppendUint(buf[:0], initial, 10)
			if s.limitSize(len(key), len(digits), 0) > s.itemMax || len(key) > MaxKeyLen {
				st = TooLarge
				return roomOK
			}
			if !s.fits(len(key), len(digits)) {
				st = NoMemory
				return roomOK
			}
			nh := hdr{deadline: toDeadline(deadline), access: toSecs(o.now)}
			s.stamp(&nh, nc)
			_, res := s.putLocked(&o, key, &nh, digits, nil, &r)
			switch res {
			case roomOK:
				num, newCAS, st = initial, s.casOf(&nh), OK
			case roomFail:
				st = NoMemory
			}
			return res
		}

		h := &f.h
		value := sh.valueOf(sh.record(f.loc), h)
		if len(value) == 0 || ItemSize(h.keyLen, len(value)) > s.chunkMax {
			st = NonNumeric
			return roomOK
		}
		if cas != 0 && cas != s.casOf(h) {
			st = Exists
			return roomOK
		}
		v, ok := parseNumber(value)
		if !ok {
			st = NonNumeric
			return roomOK
		}
		switch {
		case incr:
			v += delta
		case delta > v:
			v = 0
		default:
			v -= delta
		}
		digits := strconv.AppendUint(buf[:0], v, 10)
		hits := s.classLocked(sh, h) // the hit counts in the class of the number found
		nh := *h
		var res roomResult
		if len(digits) <= len(value) {
			// In place, padded with spaces to the old length; the item
			// keeps its place and state.
			s.stamp(&nh, nc)
			padded := value
			if h.bits&bitExternal != 0 || recordLen(h.keyLen, h.valueLen, nh.bits) != recordLen(h.keyLen, h.valueLen, h.bits) {
				// The record must move, or its value is external, which
				// is never changed in place (see GetShared).
				padded = append([]byte(nil), value...)
			}
			n := copy(padded, digits)
			for i := n; i < len(padded); i++ {
				padded[i] = ' '
			}
			res = s.rewriteLocked(&o, key, f.slot, f.loc, h, &nh, padded, &r)
		} else {
			// A longer value: a new item with the old flags and deadline.
			nh = hdr{flags: h.flags, deadline: h.deadline, access: toSecs(o.now)}
			s.stamp(&nh, nc)
			_, res = s.putLocked(&o, key, &nh, digits, nil, &r)
		}
		switch res {
		case roomRetry:
			return roomRetry
		case roomFail:
			st = NoMemory
			return roomFail
		}
		if incr {
			hits.incrHits++
		} else {
			hits.decrHits++
		}
		num, newCAS, st = v, s.casOf(&nh), OK
		return roomOK
	})
	return num, newCAS, st
}

// isSpace reports whether c is white space to C's isspace.
func isSpace(c byte) bool {
	return c == ' ' || ('\t' <= c && c <= '\r')
}

// parseNumber reads b as memcached's safe_strtoull (strtoull in base 10 and
// its checks) does; see Arith.
func parseNumber(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v uint64
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false // strtoull's ERANGE
		}
		v = v*10 + d
	}
	if i == start {
		return 0, false
	}
	if i < len(b) && b[i] != 0 && !isSpace(b[i]) {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return v, true
}
