package handoff

import (
	"sync"
	"sync/atomic"
)

// tombstones remember the hashes of the keys the application wrote lately:
// two Bloom filters, the newer taking every key written, and the older
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

// filter is one Bloom filter of tombstoneBits bits.
type filter [tombstoneBits / 64]atomic.Uint64

// tombstoneBits is a filter's size: 8 Mi bits (1 MiB), for about 3% false
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

// bits returns the filters' two bit positions for hash.
func bitsOf(hash uint64) (uint64, uint64) {
	return hash % tombstoneBits, (hash >> 32) * 0x9e3779b1 % tombstoneBits
}

// add records hash.
func (t *tombstones) add(hash uint64) {
	f := t.newer.Load()
	a, b := bitsOf(hash)
	f[a/64].Or(1 << (a % 64))
	f[b/64].Or(1 << (b % 64))
}

// has reports whether hash may have been added since the rotation before
// last.
func (t *tombstones) has(hash uint64) bool {
	return t.newer.Load().has(hash) || t.older.Load().has(hash)
}

func (f *filter) has(hash uint64) bool {
	a, b := bitsOf(hash)
	return f[a/64].Load()&(1<<(a%64)) != 0 && f[b/64].Load()&(1<<(b%64)) != 0
}
