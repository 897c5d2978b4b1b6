package sasl

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The defaults of DefaultLimiter.
const (
	// DefaultLimiterShare is the share of one core that key derivations
	// for clients not yet authenticated may take, at most.
	DefaultLimiterShare = 0.25
	// DefaultLimiterWait is how long an attempt waits for its turn to
	// derive before it fails with ErrBusy.
	DefaultLimiterWait = 2 * time.Second
)

// Limiter bounds the CPU that Servers spend on PBKDF2 for clients that
// have not authenticated yet: the derivation PLAIN needs to check a
// password against a verifier (one per attempt: the guess is new each
// time), and the first SCRAM-SHA-256 exchange of a password entry whose
// keys were not derived beforehand (see PasswordDB.DeriveSCRAMKeys).
//
// It runs one derivation at a time, and after one that took d it lets the
// next start only d×(1−share)/share later, so that derivations take at
// most share of one core over any period, plus the one under way. An
// attempt waits for its turn in the order it came (a goroutine that
// waits costs no CPU); one that would wait longer than maxWait fails with
// ErrBusy, as a wrong password does for the client.
//
// An unknown user checked against a decoy verifier takes a turn as a real
// user would, and spends it waiting as long as a real derivation of its
// iteration count takes (estimated from the real ones), without deriving:
// so unknown users cost no CPU and still take the time known ones do.
//
// A Limiter is safe for concurrent use; its zero value is not usable.
type Limiter struct {
	share   float64
	maxWait time.Duration

	// turn holds a token while a derivation has its turn: one at a
	// time. next and nsPerIter are used only by the token's holder.
	turn      chan struct{}
	next      time.Time // the earliest start of the next turn
	nsPerIter float64   // a derivation's time per iteration, averaged; 0 before the first

	derivations atomic.Uint64 // real derivations run
	decoys      atomic.Uint64 // turns spent waiting for an unknown user
	refused     atomic.Uint64 // attempts that waited longer than maxWait
	busyNanos   atomic.Int64  // time spent in turns
}

// NewLimiter returns a Limiter that lets derivations take at most share
// of one core (0 < share ≤ 1; 1 runs them back to back, one at a time)
// and fails an attempt that would wait longer than maxWait for its turn.
func NewLimiter(share float64, maxWait time.Duration) (*Limiter, error) {
	if !(share > 0 && share <= 1) {
		return nil, fmt.Errorf("sasl: limiter share %v outside (0, 1]", share)
	}
	if maxWait <= 0 {
		return nil, fmt.Errorf("sasl: limiter wait %v not positive", maxWait)
	}
	return &Limiter{share: share, maxWait: maxWait, turn: make(chan struct{}, 1)}, nil
}

var defaultLimiter = sync.OnceValue(func() *Limiter {
	l, err := NewLimiter(DefaultLimiterShare, DefaultLimiterWait)
	if err != nil {
		panic(err) // the defaults are valid
	}
	return l
})

// DefaultLimiter returns the process's Limiter, which a Config without
// one uses: DefaultLimiterShare of one core, DefaultLimiterWait at most.
func DefaultLimiter() *Limiter { return defaultLimiter() }

// LimiterStats are a Limiter's counts since it was made.
type LimiterStats struct {
	Derivations uint64        // PBKDF2 derivations run in a turn
	Decoys      uint64        // turns spent waiting for an unknown user instead
	Refused     uint64        // attempts failed with ErrBusy
	Busy        time.Duration // the time turns took, derivations and decoys
}

// Stats returns l's counts.
func (l *Limiter) Stats() LimiterStats {
	return LimiterStats{
		Derivations: l.derivations.Load(),
		Decoys:      l.decoys.Load(),
		Refused:     l.refused.Load(),
		Busy:        time.Duration(l.busyNanos.Load()),
	}
}

// derive runs PBKDF2-HMAC-SHA-256 of password, salt and iter in a turn
// and returns the keys deriveKeys makes of it.
func (l *Limiter) derive(password string, salt []byte, iter int) (*verifier, error) {
	var v *verifier
	var err error
	if terr := l.inTurn(iter, func() bool {
		v, err = deriveKeys(password, salt, iter)
		return err == nil
	}); terr != nil {
		return nil, terr
	}
	return v, err
}

// decoy takes a turn for an unknown user checked against a verifier of
// iter iterations, and waits in it as long as a derivation of iter
// iterations takes. Until a real derivation has set the estimate, it
// derives once itself, from a throwaway password, to set it.
func (l *Limiter) decoy(iter int) error {
	return l.inTurn(iter, func() bool {
		if l.nsPerIter == 0 {
			_, err := deriveKeys("memcluster decoy", decoySalt[:], iter)
			return err == nil
		}
		time.Sleep(time.Duration(l.nsPerIter * float64(iter)))
		return false
	})
}

// decoySalt salts the derivation that sets a decoy's estimate.
var decoySalt = [SaltLen]byte{'m', 'e', 'm', 'c', 'l', 'u', 's', 't', 'e', 'r'}

// inTurn waits for a turn, at most maxWait, and runs fn in it. fn
// reports whether it ran a real derivation of iter iterations, whose time
// then updates the estimate that decoys wait by.
func (l *Limiter) inTurn(iter int, fn func() (derived bool)) error {
	deadline := time.Now().Add(l.maxWait)
	t := time.NewTimer(l.maxWait)
	select {
	case l.turn <- struct{}{}:
		t.Stop()
	case <-t.C:
		l.refused.Add(1)
		return ErrBusy
	}
	defer func() { <-l.turn }()
	if wait := time.Until(l.next); wait > 0 {
		if time.Now().Add(wait).After(deadline) {
			l.refused.Add(1)
			return ErrBusy
		}
		time.Sleep(wait)
	}
	start := time.Now()
	derived := fn()
	end := time.Now()
	d := end.Sub(start)
	l.next = end.Add(time.Duration(float64(d) * (1 - l.share) / l.share))
	l.busyNanos.Add(int64(d))
	if !derived {
		l.decoys.Add(1)
		return nil
	}
	l.derivations.Add(1)
	perIter := float64(d) / float64(iter)
	if l.nsPerIter == 0 {
		l.nsPerIter = perIter
	} else {
		l.nsPerIter += (perIter - l.nsPerIter) / 8 // an average of the last few
	}
	return nil
}
