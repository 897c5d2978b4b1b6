// Package store is the node's cache engine: a memory-bounded, sharded map
// from keys to values with client flags, expiry times, CAS uniques and
// S3-FIFO eviction, its items packed in pointer-free pages. It knows nothing
// of protocols or the network.
package store

import "time"

// Status is the outcome of a store operation.
type Status uint8

// Outcomes of store operations. Each method documents which it returns.
const (
	// OK: the operation took effect (stored, deleted, touched, counted).
	OK Status = iota
	// NotStored: an add found the key, or a replace, append or prepend
	// did not.
	NotStored
	// Exists: a compare-and-swap found a different CAS unique.
	Exists
	// NotFound: no live item has the key.
	NotFound
	// TooLarge: the item would exceed the item size limit.
	TooLarge
	// NoMemory: the store is full and may not evict (NoEvictions), or the
	// item is larger than a shard can ever hold.
	NoMemory
	// NonNumeric: incr or decr on a value that is not a decimal number
	// of at most 20 digits.
	NonNumeric
)

// Mode selects the semantics of Store.Set.
type Mode uint8

// Storage modes, one per memcached storage command.
const (
	ModeSet     Mode = iota // store unconditionally
	ModeAdd                 // store only if absent
	ModeReplace             // store only if present
	ModeAppend              // add the data after the present value
	ModePrepend             // add the data before the present value
	ModeCAS                 // store only if the CAS unique matches
)

// NewCAS is the CAS unique a write gives the item it makes or changes: the
// zero value means a fresh one from the store's counter; Explicit means
// Value, as memcached's meta E flag asks ("use token as new CAS value").
// An explicit CAS unique is stored as given, as memcached stores it: it
// need not be unique, and the store's counter is neither lowered nor
// raised by it, so the CAS uniques the store hands out later stay fresh.
// With NoCAS the item's CAS unique is 0 either way.
type NewCAS struct {
	Value    uint64
	Explicit bool
}

// Lookup tells why a read found or did not find an item, for stats.
type Lookup uint8

// Results of a read.
const (
	Hit         Lookup = iota // a live item
	Miss                      // no item
	MissExpired               // an item whose time had run out
	MissFlushed               // an item invalidated by flush_all
)

// Meta is the metadata of one item.
type Meta struct {
	Flags    uint32 // the client's opaque flags
	Deadline int64  // unix second at which the item expires; 0 never
	CAS      uint64 // the CAS unique of the last mutation; 0 with NoCAS
}

// Config sizes a Store. The zero value is memcached's defaults.
type Config struct {
	// MaxBytes bounds every byte the store holds: keys, values and per-item
	// overhead. If zero, defaults to 64 MiB.
	MaxBytes int64

	// ItemSizeMax is the largest item, as ItemSize measures it. If zero,
	// defaults to 1 MiB.
	ItemSizeMax int

	// NoEvictions makes a full store refuse writes with NoMemory instead of
	// evicting items; it still reuses the memory of deleted, replaced and
	// expired ones.
	NoEvictions bool

	// NoCAS disables CAS uniques: every Meta.CAS is 0 and ModeCAS
	// compares against 0.
	NoCAS bool

	// Now returns the current unix time in seconds. If nil, the store
	// keeps a clock of its own, memcached's current_time: the unix second
	// of Epoch plus the whole seconds elapsed since Epoch on the monotonic
	// clock, so that it ticks once a second, every second, at Epoch's
	// phase, whatever the wall clock does. Tests set Now to move time.
	Now func() int64

	// Epoch is the instant the store's own clock counts from (see Now).
	// If zero, defaults to the time New is called. A server passes the
	// instant it started, so that its uptime and the store's clock agree.
	Epoch time.Time

	// OnEvict, if not nil, is called for each live item evicted to make
	// room, inside the lock of the item's shard: it must return quickly
	// and must not call the Store. Calls for different shards may run
	// concurrently. It is called whatever the caller wants of it, so a
	// caller that is not interested at the moment should return at once
	// (the store passes the Eviction by value and allocates nothing for
	// the call).
	OnEvict func(Eviction)

	// OnWrite, if not nil, is called with the hash (xxhash.Sum64) of the
	// key of every operation that may store, change or remove an item (the sets, deletes, touches and
	// arithmetic, and the reads that touch or create), on the caller's
	// goroutine, before the operation and outside every lock of the
	// store: the node's hand-off (node/handoff) learns from it which keys
	// the application wrote. It is not called for Restore, evictions,
	// expiry or flushes. It must not call the Store, and is called
	// concurrently.
	OnWrite func(keyHash uint64)
}

// Stats are the store's counters and gauges, under memcached's meanings:
// the sums of ClassStats over the classes, and the store's memory.
type Stats struct {
	Bytes            int64  // bytes held, as counted against MaxBytes
	CurrItems        int64  // live items held
	TotalItems       uint64 // items ever stored
	Evictions        uint64 // live items removed to make room
	EvictedActive    uint64 // evicted items read since the last eviction pass
	Reclaimed        uint64 // expired items whose memory was reused
	ExpiredUnfetched uint64 // expired items that were never read
	EvictedUnfetched uint64 // evicted items that were never read
	MovesToMain      uint64 // items moved from the small to the main queue
	MovesWithinMain  uint64 // items kept in the main queue by an eviction pass
	DirectReclaims   uint64 // pages emptied by writes to make room
	LimitMaxBytes    int64  // MaxBytes, as SetMaxBytes last set it

	// The commands' outcomes, as the classes count them.
	GetHits, TouchHits, SetCmds, DeleteHits uint64
	IncrHits, DecrHits, CASHits, CASBadval  uint64

	// What crawls examined, and of it removed as dead.
	CrawlerChecked, CrawlerReclaimed uint64

	// Memory.
	PageBytes     int64 // bytes of the pages held, in queues or free
	FreePageBytes int64 // of them, the bytes of pages that hold no item
	ExternBytes   int64 // bytes of the values too large for a page
	IndexBytes    int64 // bytes of the hash indexes and their ghost tables
	IndexSlots    int64 // slots of the hash indexes
}

// MaxKeyLen is the longest key the store keeps, memcached's KEY_MAX_LENGTH:
// writes of a longer key fail with TooLarge, and reads never find one.
const MaxKeyLen = 250

// ItemSize is the size memcached gives an item with a key of keyLen bytes and
// a value of valueLen bytes and no client flags, CAS off: its 48-byte header,
// the key with its terminator and the value with its "\r\n". memcached adds 4
// bytes when the flags are not zero and 8 for the CAS unique unless CAS is
// off; the store adds them when it checks ItemSizeMax, so its limit matches
// memcached's to the byte.
func ItemSize(keyLen, valueLen int) int {
	return 48 + keyLen + 1 + valueLen + 2
}
