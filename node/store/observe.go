package store

// What the store tells an observer of its items (the node's watch streams,
// memcached's "watch fetchers", "mutations" and "evictions"): Peek reports an
// item without touching it, ClassOf names the slab class memcached would
// give an item, and Config.OnEvict is told of each eviction.

// Peeked is what Peek reports of a live item.
type Peeked struct {
	Size     int    // the value's length
	Flags    uint32 // the client's flags
	Deadline int64  // unix second at which the item expires; 0 never
}

// Peek reports key's item as a read would find it now: on Hit its value's
// length, client flags and deadline; otherwise why a read would miss (Miss,
// MissExpired or MissFlushed) and a zero Peeked. Unlike a read it changes
// nothing: the item is neither marked fetched nor counted for eviction, and
// a dead item is left for the next operation to find and remove, so that
// the operation reports (and counts) the miss as it would have without the
// Peek. It locks the key's shard briefly.
func (s *Store) Peek(key []byte) (Peeked, Lookup) {
	if len(key) > MaxKeyLen {
		return Peeked{}, Miss
	}
	o := s.begin(key)
	var p Peeked
	lk := Miss
	o.sh.with(func() {
		_, loc, ok := o.sh.lookupSlot(o.hash, key)
		if !ok {
			return
		}
		h := readHdr(o.sh.record(loc))
		if lk = o.fl.check(&h, o.now); lk == Hit {
			p = Peeked{Size: h.valueLen, Flags: h.flags, Deadline: int64(h.deadline)}
		}
	})
	return p, lk
}

// ClassOf is memcached's slab class number (from 1) of an item with a key of
// keyLen bytes, a value of valueLen bytes and client flags flags: the class
// "stats items" files it under. It takes no lock.
func (s *Store) ClassOf(keyLen, valueLen int, flags uint32) int {
	return int(s.classOf(s.limitSize(keyLen, valueLen, flags))) + 1
}

// Eviction describes a live item the store evicted to make room, for
// Config.OnEvict.
type Eviction struct {
	// Key is the item's key. It aliases the store's memory and is valid
	// only during the call: copy what you keep.
	Key      []byte
	Size     int    // the value's length
	Flags    uint32 // the client's flags
	Deadline int64  // unix second at which the item would have expired; 0 never
	Access   int64  // unix second of the item's last access
	Fetched  bool   // whether the item was ever read
	Now      int64  // the store's clock at the eviction
}
