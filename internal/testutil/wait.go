package testutil

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// WaitFor polls cond, backing off from 5 ms to 50 ms between calls, until it
// returns true. It fails the test, naming what it waited for, if timeout
// passes first. The timeout is a failsafe, not a claim about speed: give
// it room for a loaded machine.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// WaitAccepting dials addr on network ("tcp", "unix") until a connection is
// accepted, and closes it. It returns an error if timeout passes first, or
// as soon as gaveUp, when not nil, returns one (the server exited, say).
func WaitAccepting(network, addr string, timeout time.Duration, gaveUp func() error) error {
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if gaveUp != nil {
			if gerr := gaveUp(); gerr != nil {
				return fmt.Errorf("no listener on %s %s: %w", network, addr, gerr)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no listener on %s %s after %v: %w", network, addr, timeout, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}
