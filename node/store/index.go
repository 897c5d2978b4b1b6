package store

import "bytes"

// A shard's index is an open-addressing hash table of integers with linear
// probing: each slot is 0 (empty) or a record's location plus one in its low
// locBits bits, under the low tagBits bits of the key's hash. The tag both
// filters probes (a key is compared only when its tag matches) and gives a
// slot's home in a table of up to 2^tagBits slots (the tag scaled to the
// table's length, so that the table need not be a power of two and can grow
// by a quarter at a time), so the table grows and deletes (by backward
// shift, without tombstones) without reading a key.
const (
	tagBits = 28
	locBits = 36
	tagMask = 1<<tagBits - 1
	locMask = 1<<locBits - 1

	minSlots = 64
	maxSlots = 1 << tagBits
	slotSize = 8 // bytes per slot, counted against MaxBytes
)

// tagOf is the tag of a key's hash.
func tagOf(h uint64) uint64 { return h & tagMask }

// homeOf is the first slot a key with tag probes in a table of n slots.
func homeOf(tag uint64, n int) int { return int(tag * uint64(n) >> tagBits) }

// slotOf encodes a record's location under a tag.
func slotOf(tag, loc uint64) uint64 { return tag<<locBits | (loc + 1) }

// lookupSlot finds key (whose hash is h) in sh's index: the slot holding it
// and its record's location, or, with ok false, the empty slot where it
// would go. sh.mu must be held.
func (sh *shard) lookupSlot(h uint64, key []byte) (slot int, loc uint64, ok bool) {
	n := len(sh.slots)
	tag := tagOf(h)
	for i := homeOf(tag, n); ; i = next(i, n) {
		v := sh.slots[i]
		if v == 0 {
			return i, 0, false
		}
		if v>>locBits == tag {
			loc := v&locMask - 1
			if bytes.Equal(keyOf(sh.record(loc)), key) {
				return i, loc, true
			}
		}
	}
}

// slotAt finds the slot that holds the location loc of a record whose key
// hashes to h. The record must be indexed. sh.mu must be held.
func (sh *shard) slotAt(h, loc uint64) int {
	n := len(sh.slots)
	want := slotOf(tagOf(h), loc)
	for i := homeOf(tagOf(h), n); ; i = next(i, n) {
		if sh.slots[i] == want {
			return i
		}
	}
}

// insertSlot fills the empty slot found by lookupSlot.
func (sh *shard) insertSlot(slot int, h, loc uint64) {
	sh.slots[slot] = slotOf(tagOf(h), loc)
	sh.count++
}

// removeSlot empties slot and shifts back the entries after it that probed
// past it, so that no lookup stops early.
func (sh *shard) removeSlot(slot int) {
	n := len(sh.slots)
	i := slot
	for j := next(i, n); ; j = next(j, n) {
		v := sh.slots[j]
		if v == 0 {
			break
		}
		home := homeOf(v>>locBits, n)
		// v may move to i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			sh.slots[i] = v
			i = j
		}
	}
	sh.slots[i] = 0
	sh.count--
}

// needsGrowth reports whether one more key would load the index over 13/16.
func (sh *shard) needsGrowth() bool {
	return (sh.count+1)*16 > len(sh.slots)*13
}

// grownSlots is the length sh's index grows to: a quarter more.
func (sh *shard) grownSlots() int { return len(sh.slots) + len(sh.slots)/4 }

// rehash moves every slot into slots, a table with room for them all.
func (sh *shard) rehash(slots []uint64) {
	n := len(slots)
	for _, v := range sh.slots {
		if v == 0 {
			continue
		}
		i := homeOf(v>>locBits, n)
		for slots[i] != 0 {
			i = next(i, n)
		}
		slots[i] = v
	}
	sh.slots = slots
}

// next is the slot after i in a table of n.
func next(i, n int) int {
	if i++; i == n {
		return 0
	}
	return i
}
