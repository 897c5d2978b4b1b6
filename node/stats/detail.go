package stats

import (
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/memcluster/memcluster/protocol"
)

// DefaultPrefixDelimiter ends a key's prefix for "stats detail" unless -D
// names another.
const DefaultPrefixDelimiter = ':'

// prefixBuckets is memcached's PREFIX_HASH_SIZE: "stats detail dump" lists
// prefixes bucket by bucket, as memcached does.
const prefixBuckets = 256

// Detail is memcached's per-prefix statistics ("stats detail"): for each
// key prefix (a key's bytes before its first delimiter), how many get, set
// and delete commands named it and how many of the gets hit. Keys without
// the delimiter are not counted. Nothing is recorded unless "stats detail
// on"; while off, a record call costs one atomic load. The zero value
// records nothing and splits keys at DefaultPrefixDelimiter.
//
// All methods are safe for concurrent use, but for SetDelimiter, which must
// come before any other. Keys passed in are not retained.
type Detail struct {
	on    atomic.Bool
	delim byte // ends a key's prefix; 0 for DefaultPrefixDelimiter

	mu       sync.Mutex               // guards prefixes and buckets
	prefixes map[string]*prefixCounts // by prefix
	// buckets order the dump as memcached's: by bucket, murmur3 of the
	// prefix modulo prefixBuckets, and in a bucket newest first.
	buckets [prefixBuckets]*prefixCounts
}

// prefixCounts are the counters of one prefix.
type prefixCounts struct {
	next                   *prefixCounts // in the same bucket, older
	prefix                 string
	gets, hits, sets, dels uint64
}

// The commands Detail counts.
const (
	detailGet = iota
	detailSet
	detailDelete
)

// SetDelimiter sets the byte that ends a key's prefix (memcached's -D).
func (d *Detail) SetDelimiter(b byte) { d.delim = b }

// Delimiter returns the byte that ends a key's prefix.
func (d *Detail) Delimiter() byte {
	if d.delim == 0 {
		return DefaultPrefixDelimiter
	}
	return d.delim
}

// Enabled reports whether recording is on.
func (d *Detail) Enabled() bool { return d.on.Load() }

// SetEnabled turns recording on or off; counts so far are kept.
func (d *Detail) SetEnabled(on bool) { d.on.Store(on) }

// RecordGet counts a get of key (get, gets, gat, gats, for each key) that
// hit or missed.
func (d *Detail) RecordGet(key []byte, hit bool) {
	if d.on.Load() {
		d.record(key, detailGet, hit)
	}
}

// RecordSet counts a storage command (set, add, replace, append, prepend,
// cas) for key, whatever its outcome.
func (d *Detail) RecordSet(key []byte) {
	if d.on.Load() {
		d.record(key, detailSet, false)
	}
}

// RecordDelete counts a delete of key, whether it found the key or not.
func (d *Detail) RecordDelete(key []byte) {
	if d.on.Load() {
		d.record(key, detailDelete, false)
	}
}

func (d *Detail) record(key []byte, op int, hit bool) {
	delim := d.Delimiter()
	n := -1
	for i, b := range key {
		if b == delim {
			n = i
			break
		}
		if b == 0 { // memcached reads the key as a C string
			return
		}
	}
	if n < 0 {
		return
	}
	prefix := key[:n]
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.prefixes[string(prefix)]
	if p == nil {
		if d.prefixes == nil {
			d.prefixes = make(map[string]*prefixCounts)
		}
		p = &prefixCounts{prefix: string(prefix)}
		b := murmur3(prefix) % prefixBuckets
		p.next, d.buckets[b] = d.buckets[b], p
		d.prefixes[p.prefix] = p
	}
	switch op {
	case detailGet:
		p.gets++
		if hit {
			p.hits++
		}
	case detailSet:
		p.sets++
	case detailDelete:
		p.dels++
	}
}

// clear forgets every prefix, as "stats reset".
func (d *Detail) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.prefixes = nil
	d.buckets = [prefixBuckets]*prefixCounts{}
}

// AppendDump appends the reply to "stats detail dump": a line
// "PREFIX <prefix> get <n> hit <n> set <n> del <n>" for each prefix, in
// memcached's order, then END.
func (d *Detail) AppendDump(dst []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.buckets {
		for ; p != nil; p = p.next {
			dst = append(dst, "PREFIX "...)
			dst = append(dst, p.prefix...)
			dst = append(dst, " get "...)
			dst = strconv.AppendUint(dst, p.gets, 10)
			dst = append(dst, " hit "...)
			dst = strconv.AppendUint(dst, p.hits, 10)
			dst = append(dst, " set "...)
			dst = strconv.AppendUint(dst, p.sets, 10)
			dst = append(dst, " del "...)
			dst = strconv.AppendUint(dst, p.dels, 10)
			dst = append(dst, '\r', '\n')
		}
	}
	return append(dst, protocol.ReplyEnd...)
}

// murmur3 is MurmurHash3_x86_32 with seed 0, memcached's default hash,
// which places prefixes in its buckets.
func murmur3(data []byte) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	var h uint32
	n := len(data)
	for ; len(data) >= 4; data = data[4:] {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
