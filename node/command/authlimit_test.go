package command

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/sasl"
)

// What authentication may cost the node before anyone has authenticated:
// a connection may fail maxAuthFailures times in a row, a stored entry's
// keys are derived once (at load), unknown users derive nothing, and the
// derivations guesses need (PLAIN against a verifier) take a bounded share
// of a core however many connections ask. The tests that count the
// package's derivations must not run beside another test that
// authenticates: none of them is parallel.

// TestSASLFailureLimit: a connection's failed AUTH and STEP requests,
// whatever failed, are answered Auth failure until the maxAuthFailures-th
// in a row, which is answered and closes the connection; a success in
// between starts the count again.
func TestSASLFailureLimit(t *testing.T) {
	_, addr := saslStartNode(t, saslCredentials(t))
	// fail makes one failed attempt of a kind chosen by i.
	fail := func(c *binClient, i int) {
		c.t.Helper()
		switch i % 4 {
		case 0:
			c.saslExpect("wrong password", binReq(protocol.OpSASLAuth, 1, 0, "", "PLAIN", saslPlain(saslAlice, saslNoSuchPw)), protocol.StatusAuthError)
		case 1:
			c.saslExpect("unknown user", binReq(protocol.OpSASLAuth, 2, 0, "", "PLAIN", saslPlain("mallory", saslAlicePw)), protocol.StatusAuthError)
		case 2:
			c.saslExpect("unknown mechanism", binReq(protocol.OpSASLAuth, 3, 0, "", "DIGEST-MD5", ""), protocol.StatusAuthError)
		case 3:
			c.saslExpect("STEP without AUTH", binReq(protocol.OpSASLStep, 4, 0, "", "PLAIN", saslPlain(saslAlice, saslAlicePw)), protocol.StatusAuthError)
		}
	}
	t.Run("closed at the limit", func(t *testing.T) {
		c := binDial(t, addr)
		for i := range maxAuthFailures - 1 {
			fail(c, i)
		}
		c.saslAlive(fmt.Sprintf("after %d failures", maxAuthFailures-1))
		fail(c, maxAuthFailures-1)
		c.saslClosed(fmt.Sprintf("after %d failures", maxAuthFailures))
	})
	t.Run("SCRAM-SHA-256 and CRAM-MD5 failures count", func(t *testing.T) {
		c := binDial(t, addr)
		for i := range maxAuthFailures {
			mech := sasl.MechSCRAMSHA256
			if i%2 == 1 {
				mech = sasl.MechCRAMMD5
			}
			if st := c.saslAuth(mech, saslAlice, saslNoSuchPw); st != protocol.StatusAuthError {
				t.Fatalf("attempt %d: status %#x, want Auth failure", i, uint16(st))
			}
		}
		c.saslClosed(fmt.Sprintf("after %d failures", maxAuthFailures))
	})
	t.Run("a success starts the count again", func(t *testing.T) {
		c := binDial(t, addr)
		for range 3 {
			for i := range maxAuthFailures - 1 {
				fail(c, i)
			}
			if st := c.saslAuth(sasl.MechPLAIN, saslBob, saslBobPw); st != protocol.StatusOK {
				t.Fatalf("status %#x, want success", uint16(st))
			}
		}
		c.saslWorks("after 3 rounds of failures", "limit:k")
	})
}

// TestASCIIAuthFailureLimit: under -Y the maxAuthFailures-th wrong
// password is answered and closes the connection; replies that are not a
// failed check (a malformed token) do not count.
func TestASCIIAuthFailureLimit(t *testing.T) {
	_, addr := serveForTest(t, Config{AuthFile: textAuthFile(t, "alice:secret")})
	c, r := dialForTest(t, addr)
	for range 2 * maxAuthFailures {
		if got := roundTrip(t, c, r, textAuthAttempt("alice", ""), 1); got != textAuthTokenFormat {
			t.Fatalf("a malformed token: got %q, want %q", got, textAuthTokenFormat)
		}
	}
	for i := range maxAuthFailures {
		user := "alice"
		if i%2 == 1 {
			user = "mallory"
		}
		if got := roundTrip(t, c, r, textAuthAttempt(user, "wrong"), 1); got != textAuthFailure {
			t.Fatalf("attempt %d: got %q, want %q", i, got, textAuthFailure)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("after %d failures: got %q, want the connection closed", maxAuthFailures, line)
	}
	// Below the limit the connection goes on, and authenticates.
	c, r = dialForTest(t, addr)
	for range maxAuthFailures - 1 {
		if got := roundTrip(t, c, r, textAuthAttempt("alice", "wrong"), 1); got != textAuthFailure {
			t.Fatalf("got %q, want %q", got, textAuthFailure)
		}
	}
	if got := roundTrip(t, c, r, textAuthAttempt("alice", "secret"), 1); got != "STORED\r\n" {
		t.Fatalf("the right password after %d failures: got %q", maxAuthFailures-1, got)
	}
}

// TestSASLDerivationsPerEntry counts the PBKDF2 derivations behind
// unauthenticated attempts of every kind: loading the file derives the
// keys of each password user once; after that wrong passwords (PLAIN and
// SCRAM-SHA-256, of a password user and of a verifier user, bar PLAIN
// against the verifier, which must derive each guess) and unknown users
// (with either kind of decoy) derive nothing, but for the one derivation
// that may set the Limiter's decoy estimate.
func TestSASLDerivationsPerEntry(t *testing.T) {
	v, err := sasl.NewSCRAMVerifier(saslVeraPw, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mixed, verifiers := filepath.Join(dir, "mixed"), filepath.Join(dir, "verifiers")
	saslWriteFile(t, mixed, saslAlice+":"+saslAlicePw, saslBob+":"+saslBobPw, saslVera+":"+v)
	saslWriteFile(t, verifiers, saslVera+":"+v, "vic:"+v)

	// start starts a node and returns once it serves: once it has
	// loaded its file.
	start := func(path string, mechs ...string) string {
		_, addr := saslStartNode(t, path, mechs...)
		binDial(t, addr).saslAlive("a new node")
		return addr
	}
	before := sasl.Derivations()
	mixedAddr := start(mixed)
	if got := sasl.Derivations() - before; got != 2 {
		t.Errorf("loading a file of 2 password users and 1 verifier user derived %d times, want 2", got)
	}
	verifiersAddr := start(verifiers)
	before = sasl.Derivations()
	plainOnlyAddr := start(mixed, "PLAIN", "CRAM-MD5")
	if got := sasl.Derivations() - before; got != 0 {
		t.Errorf("loading without SCRAM-SHA-256 offered derived %d times, want 0", got)
	}

	const rounds = 5
	for _, tc := range []struct {
		name       string
		addr       string
		mech, user string
		most       int // derivations in all the rounds together
	}{
		{"PLAIN, password user", mixedAddr, sasl.MechPLAIN, saslAlice, 0},
		{"SCRAM, password user", mixedAddr, sasl.MechSCRAMSHA256, saslAlice, 0},
		{"SCRAM, verifier user", mixedAddr, sasl.MechSCRAMSHA256, saslVera, 0},
		{"CRAM-MD5, password user", mixedAddr, sasl.MechCRAMMD5, saslBob, 0},
		{"PLAIN, unknown users, password decoy", mixedAddr, sasl.MechPLAIN, "", 0},
		{"SCRAM, unknown users, password decoy", mixedAddr, sasl.MechSCRAMSHA256, "", 0},
		{"PLAIN, unknown users, verifier decoy", verifiersAddr, sasl.MechPLAIN, "", 1},
		{"SCRAM, unknown users, verifier decoy", verifiersAddr, sasl.MechSCRAMSHA256, "", 0},
		{"PLAIN, password user, no SCRAM offered", plainOnlyAddr, sasl.MechPLAIN, saslBob, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := binDial(t, tc.addr)
			before := sasl.Derivations()
			for i := range rounds {
				user := tc.user
				if user == "" {
					user = fmt.Sprintf("nobody%d", i)
				}
				if st := c.saslAuth(tc.mech, user, fmt.Sprintf("guess %d", i)); st != protocol.StatusAuthError {
					t.Fatalf("attempt %d: status %#x, want Auth failure", i, uint16(st))
				}
			}
			if got := sasl.Derivations() - before; got > uint64(tc.most) {
				t.Errorf("%d failed attempts derived %d times, want at most %d", rounds, got, tc.most)
			}
		})
	}
	t.Run("the right passwords still authenticate", func(t *testing.T) {
		for _, mech := range []string{sasl.MechPLAIN, sasl.MechSCRAMSHA256} {
			for _, u := range [][2]string{{saslAlice, saslAlicePw}, {saslVera, saslVeraPw}} {
				if st := binDial(t, mixedAddr).saslAuth(mech, u[0], u[1]); st != protocol.StatusOK {
					t.Errorf("%s %s: status %#x, want success", mech, u[0], uint16(st))
				}
			}
		}
	})
}

// TestSASLGuessesTakeABoundedShare: many connections sending PLAIN
// guesses against a verifier user and unknown users as fast as they are
// answered, reconnecting when closed, take the node no more than the
// Limiter's share of one core for derivations, and little more in all.
func TestSASLGuessesTakeABoundedShare(t *testing.T) {
	v, err := sasl.NewSCRAMVerifier(saslVeraPw, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pwdb")
	saslWriteFile(t, path, saslVera+":"+v, "vic:"+v)
	_, addr := saslStartNode(t, path)

	const clients, duration = 8, 1500 * time.Millisecond
	lim := sasl.DefaultLimiter()
	statsBefore, cpuBefore, start := lim.Stats(), processCPU(t), time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	attempts := 0
	for i := range clients {
		wg.Go(func() {
			for n := 0; ; n++ {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				c := &binClient{t: t, nc: nc, r: bufio.NewReader(nc)}
				for range maxAuthFailures {
					select {
					case <-stop:
						nc.Close()
						return
					default:
					}
					user := saslVera
					if n%2 == 1 {
						user = fmt.Sprintf("nobody%d", i)
					}
					if _, err := nc.Write(binReq(protocol.OpSASLAuth, 1, 0, "", "PLAIN", saslPlain(user, "guess"))); err != nil {
						t.Error(err)
						return
					}
					p, err := c.readPacket(10 * time.Second)
					if err != nil || protocol.BinaryStatus(binary.BigEndian.Uint16(p[6:])) != protocol.StatusAuthError {
						t.Errorf("a guess: reply %x, %v; want Auth failure", p, err)
						return
					}
					mu.Lock()
					attempts++
					mu.Unlock()
				}
				nc.Close()
			}
		})
	}
	time.Sleep(duration)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU(t) - cpuBefore
	st := lim.Stats()
	busy := st.Busy - statsBefore.Busy
	turns := st.Derivations + st.Decoys - statsBefore.Derivations - statsBefore.Decoys
	t.Logf("%d attempts in %v: %d turns of the Limiter, %v in them (%.0f%% of one core), %d refused; the test process used %v of CPU (%.0f%% of one core)",
		attempts, elapsed.Round(time.Millisecond), turns, busy.Round(time.Millisecond), 100*float64(busy)/float64(elapsed),
		st.Refused-statsBefore.Refused, cpu.Round(time.Millisecond), 100*float64(cpu)/float64(elapsed))
	if turns == 0 {
		t.Fatal("no guess took a turn of the Limiter: the test measures nothing")
	}
	// The share, plus the turn under way when the clients stopped (with
	// room for one slowed down by a busy machine).
	if limit := time.Duration(float64(elapsed)*sasl.DefaultLimiterShare) + 100*time.Millisecond; busy > limit {
		t.Errorf("derivations took %v of %v, more than %v", busy, elapsed, limit)
	}
	// Everything the process did, clients included: without the
	// Limiter, 8 clients keep every core busy.
	if cpu > elapsed*3/4 {
		t.Errorf("the process used %v of CPU in %v: more than three quarters of one core", cpu, elapsed)
	}
}

// processCPU returns the CPU time the process has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
