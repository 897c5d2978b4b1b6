package ring

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/bradfitz/gomemcache/memcache"
)

// Client is a gomemcache client on a Selector that does not fail a request
// because the node that owns its key stopped answering. At the first
// failure to reach a node (a connection refused, reset or timed out), it
// marks the node down in the Selector (see Selector.MarkDown), so that the
// node's keys go to the nodes that own them without it, where they miss and
// are refilled, and it tries the request once more there. The cluster's
// gossip drops a dead node seconds later, and the Selector's next poll
// brings the config without it; the mark covers the time until then.
//
// Every method takes a context: no attempt starts once ctx is done. An
// attempt under way is bounded by the gomemcache client's Timeout (see
// Memcache), not by ctx. Replies from a node that answered (a miss, not
// stored, a CAS conflict, a server error) are returned as they are.
type Client struct {
	sel *Selector
	mc  *memcache.Client
}

// NewClient returns a Client over sel.
func NewClient(sel *Selector) *Client {
	return &Client{sel: sel, mc: memcache.NewFromSelector(sel)}
}

// Memcache returns the gomemcache client the Client sends its requests
// with: to set its Timeout or MaxIdleConns, or for a request Client does
// not offer (which then fails as gomemcache's do).
func (c *Client) Memcache() *memcache.Client { return c.mc }

// Get gets the item for key; memcache.ErrCacheMiss if there is none.
func (c *Client) Get(ctx context.Context, key string) (*memcache.Item, error) {
	var it *memcache.Item
	err := c.do(ctx, key, func() (err error) {
		it, err = c.mc.Get(key)
		return err
	})
	return it, err
}

// Set stores item unconditionally.
func (c *Client) Set(ctx context.Context, item *memcache.Item) error {
	return c.do(ctx, item.Key, func() error { return c.mc.Set(item) })
}

// Add stores item only if its key holds nothing; memcache.ErrNotStored if
// it does.
func (c *Client) Add(ctx context.Context, item *memcache.Item) error {
	return c.do(ctx, item.Key, func() error { return c.mc.Add(item) })
}

// Replace stores item only if its key holds something;
// memcache.ErrNotStored if not.
func (c *Client) Replace(ctx context.Context, item *memcache.Item) error {
	return c.do(ctx, item.Key, func() error { return c.mc.Replace(item) })
}

// CompareAndSwap stores item if its key has not changed since item was
// got; memcache.ErrCASConflict if it has, memcache.ErrNotStored if it is
// gone.
func (c *Client) CompareAndSwap(ctx context.Context, item *memcache.Item) error {
	return c.do(ctx, item.Key, func() error { return c.mc.CompareAndSwap(item) })
}

// Delete deletes key; memcache.ErrCacheMiss if it held nothing.
func (c *Client) Delete(ctx context.Context, key string) error {
	return c.do(ctx, key, func() error { return c.mc.Delete(key) })
}

// Touch sets key's expiration to seconds from now.
func (c *Client) Touch(ctx context.Context, key string, seconds int32) error {
	return c.do(ctx, key, func() error { return c.mc.Touch(key, seconds) })
}

// Increment adds delta to key's value and returns the new value.
func (c *Client) Increment(ctx context.Context, key string, delta uint64) (uint64, error) {
	var v uint64
	err := c.do(ctx, key, func() (err error) {
		v, err = c.mc.Increment(key, delta)
		return err
	})
	return v, err
}

// Decrement subtracts delta from key's value, stopping at 0, and returns
// the new value.
func (c *Client) Decrement(ctx context.Context, key string, delta uint64) (uint64, error) {
	var v uint64
	err := c.do(ctx, key, func() (err error) {
		v, err = c.mc.Decrement(key, delta)
		return err
	})
	return v, err
}

// do runs op, a request for key, and, if it could not reach key's node,
// marks the node down and runs op once more on the node that owns key
// then.
func (c *Client) do(ctx context.Context, key string, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	addr, err := c.sel.PickServer(key)
	if err != nil {
		return err
	}
	err = op()
	if !unreachable(err) || !c.moved(key, addr) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return op()
}

// moved marks addr, which could not be reached, down, and reports whether
// key's owner is another node now (it may be already, if another request
// marked it first).
func (c *Client) moved(key string, addr net.Addr) bool {
	c.sel.MarkDown(addr)
	now, err := c.sel.PickServer(key)
	return err == nil && now.String() != addr.String()
}

// GetMulti gets the items of keys, in one request per node, and returns
// those found. The keys of a node that cannot be reached are asked again of
// their owners without it.
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]*memcache.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	items, failed, err := c.getMulti(keys)
	if len(failed) == 0 || err != nil {
		return items, err
	}
	var again []string
	var stuck error // a node's whose keys have nowhere else to go
	for addr, f := range failed {
		for _, k := range f.keys {
			if c.moved(k, addr) {
				again = append(again, k)
			} else {
				stuck = f.err
			}
		}
	}
	if len(again) == 0 {
		return items, stuck
	}
	if err := ctx.Err(); err != nil {
		return items, err
	}
	more, failed, err := c.getMulti(again)
	for k, it := range more {
		items[k] = it
	}
	if err != nil {
		return items, err
	}
	for _, f := range failed {
		stuck = f.err
	}
	return items, stuck
}

// getMulti gets keys with one gomemcache GetMulti per node, at once, and
// returns the items found, the keys of each node that could not be reached
// (with that node's error), and the first other error.
func (c *Client) getMulti(keys []string) (map[string]*memcache.Item, map[net.Addr]failedKeys, error) {
	byNode := map[net.Addr][]string{}
	for _, k := range keys {
		addr, err := c.sel.PickServer(k)
		if err != nil {
			return nil, nil, err
		}
		byNode[addr] = append(byNode[addr], k)
	}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		items  = make(map[string]*memcache.Item, len(keys))
		failed map[net.Addr]failedKeys
		first  error
	)
	for addr, ks := range byNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.mc.GetMulti(ks)
			mu.Lock()
			defer mu.Unlock()
			for k, it := range got {
				items[k] = it
			}
			switch {
			case unreachable(err):
				if failed == nil {
					failed = map[net.Addr]failedKeys{}
				}
				failed[addr] = failedKeys{keys: ks, err: err}
			case err != nil && first == nil:
				first = err
			}
		}()
	}
	wg.Wait()
	return items, failed, first
}

// failedKeys are the keys asked of a node that could not be reached.
type failedKeys struct {
	keys []string
	err  error
}

// unreachable reports whether err says that a node could not be reached,
// or stopped answering, rather than that it answered.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var nerr net.Error
	var cte *memcache.ConnectTimeoutError
	return errors.As(err, &nerr) || errors.As(err, &cte) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
