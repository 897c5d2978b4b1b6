package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/protocol"
)

// How long items live. memcached's clock (current_time) ticks once a
// second, so an item given an exptime of n seconds lives at least n-1
// seconds and at most n, whatever the phase of the second it was stored at.
// These tests give keys TTLs of 1, 2 and 3 seconds in every way a client
// can, each at a random moment of the second, and require the key alive
// n-1 seconds later and gone n+1 seconds later, from memcached and from
// memcluster nodes started at different phases of the wall clock's second
// (the phase between a node's start and the wall clock decided whether it
// lost a second).

// ttlSlack is how much before n-1 seconds the "still alive" check is sent,
// so that its own transit cannot carry it past the deadline.
const ttlSlack = 50 * time.Millisecond

// ttlWay is one way of giving a key an exptime.
type ttlWay struct {
	name   string
	binary bool
	// setup stores the key before its exptime is given, if the way needs
	// a key to act on; it returns what give needs to know (a CAS unique).
	setup func(c *servertest.Conn, key string) (uint64, error)
	// give sends the request that gives key the exptime n, followed at
	// once (in the same write) by a check of the key, and returns the
	// request's reply's error and whether the check found the key.
	give func(c *servertest.Conn, key string, n int, cas uint64) (alive bool, err error)
}

// ttlWays are the ways of giving a key an exptime: the classic text
// commands, the meta commands' T flag and the binary protocol's
// expirations.
func ttlWays() []ttlWay {
	set := func(c *servertest.Conn, key string) (uint64, error) {
		return 0, textExpect(c, fmt.Sprintf("set %s 0 0 1\r\nx\r\n", key), "STORED\r\n")
	}
	textGive := func(req func(key string, n int, cas uint64) string, reply string) func(*servertest.Conn, string, int, uint64) (bool, error) {
		return func(c *servertest.Conn, key string, n int, cas uint64) (bool, error) {
			c.SendString(req(key, n, cas) + "mg " + key + "\r\n")
			if err := textRead(c, reply); err != nil {
				return false, err
			}
			return textAlive(c)
		}
	}
	binSet := func(c *servertest.Conn, key string) (uint64, error) {
		return 0, binaryExpect(c, protocol.OpSet, key, protocol.AppendBinaryStorageExtras(nil, 0, 0), []byte("x"))
	}
	binGive := func(op protocol.BinaryOpcode, value []byte, extras func(n int) []byte) func(*servertest.Conn, string, int, uint64) (bool, error) {
		return func(c *servertest.Conn, key string, n int, _ uint64) (bool, error) {
			req := protocol.AppendBinaryRequest(nil, op, 1, 0, extras(n), []byte(key), value)
			req = protocol.AppendBinaryRequest(req, protocol.OpGet, 2, 0, nil, []byte(key), nil)
			c.Send(req)
			if status, err := binaryRead(c); err != nil || status != protocol.StatusOK {
				return false, fmt.Errorf("%v: status %v, %v", op, status, err)
			}
			return binaryAlive(c)
		}
	}
	storage := func(n int) []byte { return protocol.AppendBinaryStorageExtras(nil, 0, uint32(n)) }
	exptime := func(n int) []byte { return protocol.AppendBinaryExptimeExtras(nil, uint32(n)) }
	return []ttlWay{
		{name: "set", give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("set %s 0 %d 1\r\nx\r\n", k, n) }, "STORED\r\n")},
		{name: "add", give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("add %s 0 %d 1\r\nx\r\n", k, n) }, "STORED\r\n")},
		{name: "cas", setup: func(c *servertest.Conn, key string) (uint64, error) {
			if _, err := set(c, key); err != nil {
				return 0, err
			}
			c.SendString("gets " + key + "\r\n")
			b, err := c.ReadUntil("END\r\n", 5*time.Second)
			var cas uint64
			var flags, size int
			if _, perr := fmt.Sscanf(string(b), "VALUE "+key+" %d %d %d", &flags, &size, &cas); err != nil || perr != nil {
				return 0, fmt.Errorf("gets: %q: %v %v", b, err, perr)
			}
			return cas, nil
		}, give: textGive(func(k string, n int, cas uint64) string { return fmt.Sprintf("cas %s 0 %d 1 %d\r\ny\r\n", k, n, cas) }, "STORED\r\n")},
		{name: "touch", setup: set, give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("touch %s %d\r\n", k, n) }, "TOUCHED\r\n")},
		{name: "gat", setup: set, give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("gat %d %s\r\n", n, k) }, "END\r\n")},
		{name: "gats", setup: set, give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("gats %d %s\r\n", n, k) }, "END\r\n")},
		{name: "ms_T", give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("ms %s 1 T%d\r\nx\r\n", k, n) }, "HD\r\n")},
		{name: "mg_T", setup: set, give: textGive(func(k string, n int, _ uint64) string { return fmt.Sprintf("mg %s T%d\r\n", k, n) }, "HD\r\n")},
		{name: "binary_set", binary: true, give: binGive(protocol.OpSet, []byte("x"), storage)},
		{name: "binary_touch", binary: true, setup: binSet, give: binGive(protocol.OpTouch, nil, exptime)},
		{name: "binary_gat", binary: true, setup: binSet, give: binGive(protocol.OpGAT, nil, exptime)},
	}
}

// textExpect sends req and requires the reply want.
func textExpect(c *servertest.Conn, req, want string) error {
	c.SendString(req)
	return textRead(c, want)
}

// textRead reads a reply ending in the last line of want and requires it
// to end with want.
func textRead(c *servertest.Conn, want string) error {
	b, err := c.ReadUntil(want, 5*time.Second)
	if err != nil || !strings.HasSuffix(string(b), want) {
		return fmt.Errorf("got %q (%v), want %q", b, err, want)
	}
	return nil
}

// textAlive reads the reply to "mg <key>": HD if the key is alive, EN if not.
func textAlive(c *servertest.Conn) (bool, error) {
	line, err := c.ReadLine(5 * time.Second)
	switch {
	case err != nil:
		return false, err
	case line == "HD\r\n":
		return true, nil
	case line == "EN\r\n":
		return false, nil
	}
	return false, fmt.Errorf("mg: unexpected reply %q", line)
}

// binaryExpect sends a binary request and requires status OK.
func binaryExpect(c *servertest.Conn, op protocol.BinaryOpcode, key string, extras, value []byte) error {
	c.Send(protocol.AppendBinaryRequest(nil, op, 0, 0, extras, []byte(key), value))
	status, err := binaryRead(c)
	if err == nil && status != protocol.StatusOK {
		err = fmt.Errorf("%v: status %v", op, status)
	}
	return err
}

// binaryRead reads one binary response and returns its status.
func binaryRead(c *servertest.Conn) (protocol.BinaryStatus, error) {
	h, err := c.ReadN(24, 5*time.Second)
	if err != nil {
		return 0, fmt.Errorf("binary header: %q: %w", h, err)
	}
	if h[0] != 0x81 {
		return 0, fmt.Errorf("binary header: bad magic in %x", h)
	}
	if n := binary.BigEndian.Uint32(h[8:12]); n > 0 {
		if _, err := c.ReadN(int(n), 5*time.Second); err != nil {
			return 0, fmt.Errorf("binary body: %w", err)
		}
	}
	return protocol.BinaryStatus(binary.BigEndian.Uint16(h[6:8])), nil
}

// binaryAlive reads the reply to a binary Get: OK if the key is alive, Key
// not found if not.
func binaryAlive(c *servertest.Conn) (bool, error) {
	status, err := binaryRead(c)
	switch {
	case err != nil:
		return false, err
	case status == protocol.StatusOK:
		return true, nil
	case status == protocol.StatusKeyNotFound:
		return false, nil
	}
	return false, fmt.Errorf("get: status %v", status)
}

// checkAlive sends a check of key on c and reports whether it is alive.
func checkAlive(c *servertest.Conn, key string, bin bool) (bool, error) {
	if bin {
		c.Send(protocol.AppendBinaryRequest(nil, protocol.OpGet, 3, 0, nil, []byte(key), nil))
		return binaryAlive(c)
	}
	c.SendString("mg " + key + "\r\n")
	return textAlive(c)
}

// startAtPhase starts a server when the wall clock's second is at phase
// (0 to 1) or a moment after.
func startAtPhase(t *testing.T, name string, phase float64) *servertest.Server {
	now := time.Now()
	at := now.Truncate(time.Second).Add(time.Duration(phase * float64(time.Second)))
	if at.Before(now) {
		at = at.Add(time.Second)
	}
	time.Sleep(time.Until(at))
	return servertest.Start(t, name)
}

func TestTTLLifetime(t *testing.T) {
	type target struct {
		name  string
		phase float64
	}
	var targets []target
	if enabled("memcached") {
		targets = append(targets, target{"memcached", 0})
	}
	if enabled("memcluster") {
		// Nodes whose clocks tick a quarter and three quarters of a
		// second after the wall clock's.
		targets = append(targets, target{"memcluster", 0.25}, target{"memcluster", 0.75})
	}
	for _, tg := range targets {
		t.Run(fmt.Sprintf("%s_phase%.2f", tg.name, tg.phase), func(t *testing.T) {
			t.Parallel()
			srv := startAtPhase(t, tg.name, tg.phase)
			var wg sync.WaitGroup
			for _, way := range ttlWays() {
				for n := 1; n <= 3; n++ {
					key := fmt.Sprintf("ttl_%s_%d", way.name, n)
					c := srv.Raw(t)
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := ttlLifetime(c, way, key, n); err != nil {
							t.Errorf("%s with exptime %d: %v", way.name, n, err)
						}
					}()
				}
			}
			wg.Wait()
		})
	}
}

// ttlLifetime gives key an exptime of n seconds on c, the way way does, at
// a random moment of the second, and checks that it is alive n-1 seconds
// later and gone n+1 seconds later.
func ttlLifetime(c *servertest.Conn, way ttlWay, key string, n int) error {
	var cas uint64
	if way.setup != nil {
		var err error
		if cas, err = way.setup(c, key); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
	sent := time.Now()
	alive, err := way.give(c, key, n, cas)
	if err != nil {
		return err
	}
	replied := time.Now()
	if !alive {
		return errors.New("gone at once")
	}
	if n > 1 {
		time.Sleep(time.Until(sent.Add(time.Duration(n-1)*time.Second - ttlSlack)))
		at := time.Since(sent)
		if alive, err := checkAlive(c, key, way.binary); err != nil || !alive {
			return fmt.Errorf("gone %v after the request (want alive until %ds): %v", at.Round(time.Millisecond), n-1, err)
		}
	}
	time.Sleep(time.Until(replied.Add(time.Duration(n+1)*time.Second + ttlSlack)))
	if alive, err := checkAlive(c, key, way.binary); err != nil || alive {
		return fmt.Errorf("alive %v after the request (want gone by %ds): %v", time.Since(sent).Round(time.Millisecond), n+1, err)
	}
	return nil
}

// TestTTLTouchKeepsAlive is gomemcache's own touch test, made longer: an
// item with a 2-second TTL touched with 2 seconds every second stays alive.
func TestTTLTouchKeepsAlive(t *testing.T) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, name)
			c := memcache.New(srv.Addr)
			c.Timeout = 5 * time.Second
			defer c.Close()
			var wg sync.WaitGroup
			for i := range 4 {
				key := fmt.Sprintf("touched%d", i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Start at a different moment of the second for each key.
					time.Sleep(time.Duration(i) * 250 * time.Millisecond)
					if err := c.Set(&memcache.Item{Key: key, Value: []byte("v"), Expiration: 2}); err != nil {
						t.Errorf("Set(%s): %v", key, err)
						return
					}
					for round := range 4 {
						time.Sleep(time.Second)
						if err := c.Touch(key, 2); err != nil {
							t.Errorf("Touch(%s) %d s after the set: %v", key, round+1, err)
							return
						}
					}
					it, err := c.Get(key)
					if err != nil || !bytes.Equal(it.Value, []byte("v")) {
						t.Errorf("Get(%s) after the touches: %v", key, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}
