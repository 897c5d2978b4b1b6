package sasl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Work before authentication is bounded: a stored entry's keys are derived
// once, an unknown user derives nothing, and what must be derived (PLAIN
// against a verifier) runs in a Limiter's turns.

// attempt runs one whole exchange of mech for user and password against
// creds under cfg and returns its error (nil: authenticated).
func attempt(t *testing.T, cfg *Config, creds Credentials, mech, user, password string) error {
	t.Helper()
	s, err := cfg.NewServer(mech, creds)
	if err != nil {
		t.Fatal(err)
	}
	switch mech {
	case MechPLAIN:
		_, _, err = s.Step(plainMessage("", user, password))
		return err
	case MechSCRAMSHA256:
		c := &scramClient{user: user, password: password}
		sf, _, err := s.Step([]byte(c.first()))
		if err != nil {
			return err
		}
		final, err := c.final(string(sf))
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		_, _, err = s.Step([]byte(final))
		return err
	}
	t.Fatalf("attempt: mechanism %s", mech)
	return nil
}

// parseDB parses a credentials file or fails the test.
func parseDB(t *testing.T, lines ...string) *PasswordDB {
	t.Helper()
	db, err := ParseCredentials(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestDerivationsPerEntry repeats failed attempts of every kind, wrong
// passwords of known users and unknown users of both decoy kinds, and
// counts the PBKDF2 derivations they cause: at most one per stored entry
// (a password entry's SCRAM-SHA-256 keys, on its first exchange), none for
// unknown users but the one that sets a fresh Limiter's decoy estimate,
// and none at all once DeriveSCRAMKeys has run. PLAIN against a verifier
// is the exception the Limiter exists for: one per attempt, each in a turn.
func TestDerivationsPerEntry(t *testing.T) {
	v, err := NewSCRAMVerifier("vera's secret", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	const attempts = 6
	wrong := func(i int) string { return fmt.Sprintf("wrong %d", i) }
	unknown := func(i int) string { return fmt.Sprintf("nobody%d", i) }
	for _, tc := range []struct {
		name  string
		lines []string // the credentials file
		mech  string
		user  func(i int) string
		// want is the derivations of all the attempts together, with
		// a fresh Limiter (none has set its decoy estimate yet).
		want int
	}{
		{"PLAIN, password entry, wrong passwords", []string{"pat:pat's secret", "vera:" + v}, MechPLAIN, func(int) string { return "pat" }, 0},
		{"SCRAM, password entry, wrong passwords", []string{"pat:pat's secret", "vera:" + v}, MechSCRAMSHA256, func(int) string { return "pat" }, 1},
		{"SCRAM, verifier entry, wrong passwords", []string{"pat:pat's secret", "vera:" + v}, MechSCRAMSHA256, func(int) string { return "vera" }, 0},
		{"PLAIN, unknown users, password decoy", []string{"pat:pat's secret", "vera:" + v}, MechPLAIN, unknown, 0},
		{"SCRAM, unknown users, password decoy", []string{"pat:pat's secret", "vera:" + v}, MechSCRAMSHA256, unknown, 0},
		{"PLAIN, unknown users, verifier decoy", []string{"vera:" + v, "vic:" + v}, MechPLAIN, unknown, 1},
		{"SCRAM, unknown users, verifier decoy", []string{"vera:" + v, "vic:" + v}, MechSCRAMSHA256, unknown, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, err := NewLimiter(1, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &Config{Limiter: lim}
			db := parseDB(t, tc.lines...)
			before := Derivations()
			for i := range attempts {
				if err := attempt(t, cfg, db, tc.mech, tc.user(i), wrong(i)); err != ErrAuthFailed {
					t.Fatalf("attempt %d: got %v, want ErrAuthFailed", i, err)
				}
			}
			if got := int(Derivations() - before); got != tc.want {
				t.Errorf("%d attempts derived %d times, want %d", attempts, got, tc.want)
			}
			if got := lim.Stats().Derivations; got != uint64(tc.want) {
				t.Errorf("the Limiter ran %d derivations, want %d (all of them)", got, tc.want)
			}

			// With the keys derived beforehand, as a node does at
			// load, and the Limiter's estimate set, nothing is
			// derived, for known or unknown users.
			db = parseDB(t, tc.lines...)
			if err := db.DeriveSCRAMKeys(nil); err != nil {
				t.Fatal(err)
			}
			before = Derivations()
			for i := range attempts {
				if err := attempt(t, cfg, db, tc.mech, tc.user(i), wrong(i)); err != ErrAuthFailed {
					t.Fatalf("attempt %d after DeriveSCRAMKeys: got %v, want ErrAuthFailed", i, err)
				}
			}
			if got := Derivations() - before; got != 0 {
				t.Errorf("after DeriveSCRAMKeys, %d attempts derived %d times, want 0", attempts, got)
			}
		})
	}

	t.Run("PLAIN, verifier entry", func(t *testing.T) {
		lim, err := NewLimiter(1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Limiter: lim}
		db := parseDB(t, "vera:"+v)
		before := Derivations()
		for i := range attempts {
			if err := attempt(t, cfg, db, MechPLAIN, "vera", wrong(i)); err != ErrAuthFailed {
				t.Fatalf("attempt %d: got %v, want ErrAuthFailed", i, err)
			}
		}
		if err := attempt(t, cfg, db, MechPLAIN, "vera", "vera's secret"); err != nil {
			t.Fatalf("the right password: %v", err)
		}
		if got, st := Derivations()-before, lim.Stats(); got != attempts+1 || st.Derivations != got {
			t.Errorf("%d attempts derived %d times, %d of them in the Limiter's turns; want one each, all in turns", attempts+1, got, st.Derivations)
		}
	})

	t.Run("the right password still authenticates", func(t *testing.T) {
		cfg := &Config{Limiter: testLimiter()}
		db := parseDB(t, "pat:pat's secret", "vera:"+v)
		for _, mech := range []string{MechPLAIN, MechSCRAMSHA256} {
			for _, u := range [][2]string{{"pat", "pat's secret"}, {"vera", "vera's secret"}} {
				for i := range 2 { // derived, then kept
					if err := attempt(t, cfg, db, mech, u[0], u[1]); err != nil {
						t.Errorf("%s %s, attempt %d: %v", mech, u[0], i, err)
					}
				}
			}
		}
	})
}

// TestDeriveSCRAMKeysReuses: a reload derives keys only for users whose
// password changed or who are new.
func TestDeriveSCRAMKeysReuses(t *testing.T) {
	old := parseDB(t, "a:pa", "b:pb", "c:pc")
	before := Derivations()
	if err := old.DeriveSCRAMKeys(nil); err != nil {
		t.Fatal(err)
	}
	if got := Derivations() - before; got != 3 {
		t.Fatalf("3 password users: %d derivations", got)
	}
	v, err := NewSCRAMVerifier("pv", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := parseDB(t, "a:pa", "b:changed", "d:pd", "v:"+v)
	before = Derivations()
	if err := db.DeriveSCRAMKeys(old); err != nil {
		t.Fatal(err)
	}
	if got := Derivations() - before; got != 2 {
		t.Errorf("reload with one password changed and one user added: %d derivations, want 2", got)
	}
	cfg := &Config{Limiter: testLimiter()}
	before = Derivations()
	for _, u := range [][2]string{{"a", "pa"}, {"b", "changed"}, {"d", "pd"}} {
		if err := attempt(t, cfg, db, MechSCRAMSHA256, u[0], u[1]); err != nil {
			t.Errorf("%s: %v", u[0], err)
		}
	}
	if err := attempt(t, cfg, db, MechSCRAMSHA256, "b", "pb"); err != ErrAuthFailed {
		t.Errorf("b's old password: got %v, want ErrAuthFailed", err)
	}
	if got := Derivations() - before; got != 0 {
		t.Errorf("exchanges after DeriveSCRAMKeys derived %d times", got)
	}
}

// TestSCRAMKeysDerivedOnceConcurrently: attempts at once on one entry
// derive its keys once.
func TestSCRAMKeysDerivedOnceConcurrently(t *testing.T) {
	db := parseDB(t, "pat:pat's secret")
	cfg := &Config{Limiter: testLimiter()}
	before := Derivations()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := attempt(t, cfg, db, MechSCRAMSHA256, "pat", fmt.Sprint("wrong", i)); err != ErrAuthFailed {
				t.Errorf("got %v, want ErrAuthFailed", err)
			}
		})
	}
	wg.Wait()
	if got := Derivations() - before; got != 1 {
		t.Errorf("4 attempts at once derived %d times, want 1", got)
	}
}

// TestLimiterBound runs turns of 4 ms from 8 goroutines at once through a
// Limiter of a quarter of a core: they run one at a time, and take about
// a quarter of the time that passes, never more than that and one turn.
func TestLimiterBound(t *testing.T) {
	const share, turn = 0.25, 4 * time.Millisecond
	lim, err := NewLimiter(share, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var running, overlaps atomic.Int32
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				err := lim.inTurn(1, func() bool {
					if running.Add(1) > 1 {
						overlaps.Add(1)
					}
					time.Sleep(turn)
					running.Add(-1)
					return true
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := lim.Stats()
	if overlaps.Load() != 0 {
		t.Errorf("%d turns overlapped another", overlaps.Load())
	}
	if st.Derivations != 40 || st.Refused != 0 {
		t.Errorf("stats %+v, want 40 derivations, none refused", st)
	}
	// The last turn's cool-down is not waited for: the bound is share
	// of the time plus one turn (given room for a turn slowed down by a
	// busy machine).
	if limit := time.Duration(float64(elapsed)*share) + 5*turn; st.Busy > limit {
		t.Errorf("turns took %v of %v, more than %v (a quarter and one turn)", st.Busy, elapsed, limit)
	}
	if st.Busy < time.Duration(float64(elapsed)*share/3) {
		t.Errorf("turns took only %v of %v: the Limiter holds back far more than a quarter", st.Busy, elapsed)
	}
}

// TestLimiterRefuses: an attempt that cannot have a turn within the
// Limiter's wait fails with ErrBusy, whether a turn is under way or the
// last one's cool-down lasts too long, and a Server returns the error.
func TestLimiterRefuses(t *testing.T) {
	lim, err := NewLimiter(0.01, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	release, holding := make(chan struct{}), make(chan struct{})
	go lim.inTurn(1, func() bool {
		close(holding)
		<-release
		return true
	})
	<-holding
	db := parseDB(t, "vera:"+func() string { v, _ := NewSCRAMVerifier("x", 0, nil); return v }())
	s, _ := (&Config{Limiter: lim}).NewServer(MechPLAIN, db)
	if _, _, err := s.Step(plainMessage("", "vera", "x")); !errors.Is(err, ErrBusy) {
		t.Errorf("during another turn: got %v, want ErrBusy", err)
	}
	if _, _, err := s.Step(plainMessage("", "vera", "x")); !errors.Is(err, ErrBusy) {
		t.Errorf("the Server after ErrBusy: got %v, want it to stay failed", err)
	}
	time.Sleep(10 * time.Millisecond) // a turn of 10 ms or more: a second's cool-down at 1%
	close(release)
	for lim.Stats().Derivations == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	s, _ = (&Config{Limiter: lim}).NewServer(MechPLAIN, db)
	if _, _, err := s.Step(plainMessage("", "nobody", "x")); !errors.Is(err, ErrBusy) {
		t.Errorf("during the cool-down: got %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("refused after %v: it should not wait for a turn it cannot have in time", waited)
	}
	if st := lim.Stats(); st.Refused != 2 {
		t.Errorf("Refused %d, want 2", st.Refused)
	}
}

// TestDecoyVerifierTakesADerivationsTime: PLAIN for an unknown user,
// checked against a decoy verifier, takes about as long as a wrong
// password of a known verifier user, and derives nothing once the
// Limiter's estimate is set.
func TestDecoyVerifierTakesADerivationsTime(t *testing.T) {
	v, err := NewSCRAMVerifier("vera's secret", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := parseDB(t, "vera:"+v, "vic:"+v)
	lim, err := NewLimiter(1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Limiter: lim}
	timed := func(user string) time.Duration {
		start := time.Now()
		if err := attempt(t, cfg, db, MechPLAIN, user, "wrong"); err != ErrAuthFailed {
			t.Fatalf("%s: got %v, want ErrAuthFailed", user, err)
		}
		return time.Since(start)
	}
	var known, unknown []time.Duration
	for i := range 5 {
		known = append(known, timed("vera"))
		unknown = append(unknown, timed(fmt.Sprint("nobody", i)))
	}
	st := lim.Stats()
	if st.Derivations != 5 || st.Decoys != 5 {
		t.Errorf("stats %+v, want 5 derivations (vera's) and 5 decoys", st)
	}
	slices.Sort(known)
	slices.Sort(unknown)
	k, u := known[2], unknown[2]
	if u < k/3 || u > 3*k {
		t.Errorf("median times: known user %v, unknown user %v; want them alike", k, u)
	}
}

func TestNewLimiterChecks(t *testing.T) {
	for _, tc := range []struct {
		share float64
		wait  time.Duration
	}{{0, time.Second}, {-1, time.Second}, {1.5, time.Second}, {0.5, 0}} {
		if _, err := NewLimiter(tc.share, tc.wait); err == nil {
			t.Errorf("NewLimiter(%v, %v): no error", tc.share, tc.wait)
		}
	}
	if DefaultLimiter() != DefaultLimiter() {
		t.Error("DefaultLimiter is not one Limiter")
	}
}
