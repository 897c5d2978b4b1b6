package handoff

import (
	"context"
	"math/bits"
	"time"

	"github.com/memcluster/memcluster/node/store"
	"github.com/memcluster/memcluster/ring"
)

// PushItem is an item a leaving node pushes to its key's new owner.
type PushItem struct {
	Key   []byte
	Value []byte
	Flags uint32
	// TTL is the item's remaining time to live in seconds; 0 if it never
	// expires.
	TTL int64
}

// Pusher sends items to another member, each as an add that carries the
// hand-off's Opaque (which the member takes through Accept). It returns
// how many the member stored. It is called by one goroutine at a time.
type Pusher interface {
	Push(ctx context.Context, m ring.Member, items []PushItem) (stored int, err error)
}

// PushResult is what Push did.
type PushResult struct {
	Items  int   // items sent
	Bytes  int64 // their keys' and values' bytes
	Stored int   // items their new owners stored
	Errors int   // batches that failed
	// Cutoff is the oldest last access pushed, in seconds before the
	// push began.
	Cutoff   int64
	Duration time.Duration
}

// pushBatch is how many items go to a member in one pipelined batch.
const pushBatch = 64

// Push sends the most recently used of st's items, up to maxBytes of keys
// and values, to their owners among members (the cluster's view without
// this node, which is leaving) on a ring in mode, the cluster's, until
// ctx ends: a planned scale-in then
// hands its hot keys over instead of leaving them to miss. It lists the
// store twice: once to find the last access age above which the items
// fit in maxBytes, and once to send those (items are read as a get would,
// one shard's range at a time).
//
// fresh, if not nil, picks the items that may go (Handoff.Fresh): a copy
// this node kept from an earlier spell of ownership must not.
func Push(ctx context.Context, st *store.Store, members []ring.Member, mode ring.Mode, p Pusher, maxBytes int64, fresh func(key []byte, cas uint64) bool) PushResult {
	began := time.Now()
	var res PushResult
	r, err := ring.NewMode(members, mode)
	if err != nil || r.Len() == 0 || maxBytes <= 0 {
		return res
	}
	now := st.Now()
	// Pass 1: bytes by age of last access, in powers of two of seconds.
	var byAge [65]int64
	var b store.Batch
	var d store.Dump
	for st.DumpNext(&d, 1024, &b) && ctx.Err() == nil {
		for i := range b.Items {
			it := &b.Items[i]
			byAge[ageBucket(now-it.Access)] += int64(len(b.Key(i)) + it.ValueLen)
		}
	}
	for i := range b.Items { // the last batch
		it := &b.Items[i]
		byAge[ageBucket(now-it.Access)] += int64(len(b.Key(i)) + it.ValueLen)
	}
	// The youngest buckets that fit; at least the first, which the byte
	// bound then cuts short.
	cutoff, total := 0, int64(0)
	for i, n := range byAge {
		if total+n > maxBytes && i > 0 {
			break
		}
		total += n
		cutoff = i
	}
	res.Cutoff = int64(1)<<cutoff - 1
	// Pass 2: send them, batched by owner.
	batches := make(map[int][]PushItem)
	flush := func(owner int) {
		items := batches[owner]
		if len(items) == 0 {
			return
		}
		stored, err := p.Push(ctx, r.Member(owner), items)
		res.Stored += stored
		if err != nil {
			res.Errors++
		}
		for i := range items {
			items[i] = PushItem{}
		}
		batches[owner] = items[:0]
	}
	var value []byte
	send := func(b *store.Batch) bool {
		for i := range b.Items {
			it := &b.Items[i]
			if ageBucket(now-it.Access) > cutoff || it.Dead {
				continue
			}
			if res.Bytes >= maxBytes || ctx.Err() != nil {
				return false
			}
			key := b.Key(i)
			v, meta, lk := st.Get(key, value[:0])
			value = v
			if lk != store.Hit || (fresh != nil && !fresh(key, meta.CAS)) {
				continue
			}
			var ttl int64
			if meta.Deadline != 0 {
				if ttl = meta.Deadline - st.Now(); ttl <= 0 {
					continue
				}
			}
			owner := r.OwnerIndex(key)
			batches[owner] = append(batches[owner], PushItem{
				Key: append([]byte(nil), key...), Value: append([]byte(nil), v...), Flags: meta.Flags, TTL: ttl,
			})
			res.Items++
			res.Bytes += int64(len(key) + len(v))
			if len(batches[owner]) == pushBatch {
				flush(owner)
			}
		}
		return true
	}
	d = store.Dump{}
	for {
		more := st.DumpNext(&d, 1024, &b)
		if !send(&b) || !more {
			break
		}
	}
	for owner := range batches {
		flush(owner)
	}
	res.Duration = time.Since(began)
	return res
}

// ageBucket is the bucket of an age in seconds: 0 for 0, then one per
// power of two.
func ageBucket(age int64) int {
	if age <= 0 {
		return 0
	}
	return bits.Len64(uint64(age))
}
