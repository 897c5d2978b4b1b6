package handoff

import (
	"sync"
	"sync/atomic"
)

// tombstones remember the hashes of the keys the application wrote lately:
// two blocked Bloom filters, the newer taking every key written, and the older
// what the newer held before the last rotation. They are fixed in size
// whatever the load, lock-free for writers, and wrong only on the safe side
// (a key never written may be taken for one that was, and is then not
// fetched: a miss, never a resurrection).
//
// Writes are remembered all the time, not only in a window: a client that
// learned of a change of membership before this node did may already have
// deleted a key here that the window then would fetch.
type tombstones struct {
	newer atomic.Pointer[filter]
	older atomic.Pointer[filter]
	mu    sync.Mutex // serialises rotate
}

// filter is one blocked Bloom filter of tombstoneBits bits: a key's two
// bits lie in one 64-bit word, so that recording a write touches one cache
// line, and a key written again (most writes) only reads it.
type filter [tombstoneBits / 64]atomic.Uint64

// tombstoneBits is a filter's size: 8 Mi bits (1 MiB), for about 5% false
// positives with a million keys.
const tombstoneBits = 1 << 23

func newTombstones() *tombstones {
	t := new(tombstones)
	t.newer.Store(new(filter))
	t.older.Store(new(filter))
	return t
}

// rotate forgets the older filter's keys: the newer becomes the older, and
// the older, emptied, the newer.
func (t *tombstones) rotate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, o := t.newer.Load(), t.older.Load()
	t.older.Store(n)
	for i := range o {
		o[i].Store(0)
	}
	t.newer.Store(o)
}

// word returns the index of hash's word in a filter, and its two bits.
func word(hash uint64) (int, uint64) {
	return int(hash % (tombstoneBits / 64)), 1<<(hash>>40&63) | 1<<(hash>>52&63)
}

// add records hash.
func (t *tombstones) add(hash uint64) {
	f := t.newer.Load()
	i, bits := word(hash)
	if f[i].Load()&bits != bits {
		f[i].Or(bits)
	}
}

// has reports whether hash may have been added since the rotation before
// last.
func (t *tombstones) has(hash uint64) bool {
	return t.newer.Load().has(hash) || t.older.Load().has(hash)
}

func (f *filter) has(hash uint64) bool {
	i, bits := word(hash)
	return f[i].Load()&bits == bits
}
