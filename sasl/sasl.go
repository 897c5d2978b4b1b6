// Package sasl implements the server side of the SASL mechanisms PLAIN, CRAM-MD5 and SCRAM-SHA-256, and memcached's credentials file.
package sasl

import (
	"crypto/rand"
	"io"
	"os"
	"sync"
	"time"
)

// The mechanisms' names, as a client names them in an AUTH.
const (
	MechSCRAMSHA256 = "SCRAM-SHA-256"
	MechCRAMMD5     = "CRAM-MD5"
	MechPLAIN       = "PLAIN"
)

// Limits on what a client may send and what a credentials file may hold.
// Every length is in bytes.
const (
	// MaxUsernameLen bounds a user name (PLAIN's authcid and authzid,
	// CRAM-MD5's user, SCRAM's decoded n= and a=, a file's user field).
	MaxUsernameLen = 255
	// MaxPasswordLen bounds a password (PLAIN's passwd, a file's password,
	// the password given to NewSCRAMVerifier).
	MaxPasswordLen = 1024
	// MaxMessageLen bounds every client message of every mechanism.
	MaxMessageLen = 4096
	// MaxNonceLen bounds SCRAM's client nonce.
	MaxNonceLen = 255

	// DefaultIterations is the SCRAM iteration count of verifiers made
	// with an iteration count of zero, and of users whose entry is a
	// plaintext password.
	DefaultIterations = 4096
	// MinIterations and MaxIterations bound a verifier's iteration count.
	// RFC 7677 asks for at least 4096; the upper bound caps the work one
	// PLAIN attempt against a verifier costs the node.
	MinIterations = 4096
	MaxIterations = 1 << 20
	// SaltLen is the length of the salts NewSCRAMVerifier chooses.
	SaltLen = 16
	// MinSaltLen and MaxSaltLen bound the salt of a verifier.
	MinSaltLen = 8
	MaxSaltLen = 128

	// MaxLineLen bounds one line of a credentials file, without its line
	// ending.
	MaxLineLen = 4096
	// MaxEntries bounds the users in one credentials file.
	MaxEntries = 1 << 16
	// MaxFileSize bounds the size of a credentials file.
	MaxFileSize = 32 << 20
)

var mechanisms = [...]string{MechSCRAMSHA256, MechCRAMMD5, MechPLAIN}

// Mechanisms returns the names of the mechanisms NewServer knows, strongest
// first: the order of a LIST_MECHS answer, which joins them with spaces
// ("SCRAM-SHA-256 CRAM-MD5 PLAIN"). The slice is new at each call and the
// caller may modify it.
func Mechanisms() []string { return append([]string(nil), mechanisms[:]...) }

// Server is the server side of one authentication exchange: a state machine
// made by NewServer for one AUTH, fed each client message in turn. A new
// AUTH needs a new Server, so no half-finished exchange carries over.
//
// A Server is not safe for concurrent use: one goroutine (the connection's)
// calls its methods, one after the other.
type Server interface {
	// Mechanism returns the mechanism's name, as in Mechanisms.
	Mechanism() string

	// Step takes the client's next message and returns the server's
	// reply to it. The first call carries the AUTH's initial response,
	// which may be empty for "none" (the server then answers with an
	// empty challenge, or, for CRAM-MD5, with its challenge).
	//
	// done false with a nil error: send challenge and pass the client's
	// answer to the next Step. done true with a nil error: the client is
	// authenticated as Username; challenge, when not empty, is data that
	// goes with the success (SCRAM's server-final message, which lets the
	// client check the server). A non-nil error: the exchange failed;
	// errors.Is tells ErrAuthFailed (wrong password or unknown user,
	// indistinguishably), ErrMalformed, ErrUnsupported and ErrBusy (no
	// turn for a key derivation in time) apart, and any other error is
	// the random source's (or PBKDF2's, which can fail only in FIPS 140
	// mode). Once Step has returned an error
	// the Server stays failed: every later Step returns the same error.
	// Step after success fails with ErrMalformed.
	//
	// Step does not keep response (or any slice of it) after it returns;
	// challenge is new and belongs to the caller.
	Step(response []byte) (challenge []byte, done bool, err error)

	// Username returns the authentication identity once Step has
	// returned done with a nil error, and "" before that or after any
	// error.
	Username() string
}

// Config configures the Servers it makes. The zero Config is ready to use.
// A Config may be used by many goroutines at once, if Rand and Time may be;
// it must not be modified once in use. NewServer never modifies it.
type Config struct {
	// Rand is the source of CRAM-MD5 challenges and SCRAM nonces.
	// If nil, defaults to crypto/rand.Reader.
	Rand io.Reader

	// Hostname is the host part of CRAM-MD5 challenges.
	// If empty, defaults to os.Hostname, or "localhost" if that fails.
	Hostname string

	// Time returns the current time, the timestamp of CRAM-MD5 challenges.
	// If nil, defaults to time.Now.
	Time func() time.Time

	// Limiter runs the PBKDF2 derivations the Servers need, and the
	// decoys that stand in for them, a bounded share of a core at most.
	// If nil, defaults to DefaultLimiter, which every Config without
	// one shares.
	Limiter *Limiter
}

// NewServer returns a Server for the mechanism mech (one of Mechanisms,
// in any case), checking users against creds, with the default Config.
// It is safe for concurrent use.
func NewServer(mech string, creds Credentials) (Server, error) {
	return (*Config)(nil).NewServer(mech, creds)
}

// NewServer returns a Server for the mechanism mech (one of Mechanisms,
// in any case), checking users against creds; a nil creds knows no user.
// An unknown mech returns an error that wraps ErrUnknownMechanism. A nil
// *Config is the zero Config.
//
// User names and passwords compare as bytes: there is no SASLprep (RFC
// 4013), so a non-ASCII password must reach the server in the Unicode form
// it was stored in. An unknown user costs the time a known one of the same
// kind (password or verifier) does; see Credentials. The PBKDF2 a
// mechanism needs runs in turns of the Config's Limiter: once per
// password entry for SCRAM-SHA-256 (whose keys the entry then keeps), once
// per PLAIN attempt against a verifier; an unknown user's decoy derives
// nothing.
func (c *Config) NewServer(mech string, creds Credentials) (Server, error) {
	var m mechanism
	switch {
	case equalFoldASCII(mech, MechPLAIN):
		m = &plainServer{creds: creds, lim: c.limiter()}
	case equalFoldASCII(mech, MechCRAMMD5):
		m = &cramServer{creds: creds, cfg: c}
	case equalFoldASCII(mech, MechSCRAMSHA256):
		m = &scramServer{creds: creds, rand: c.rand(), lim: c.limiter()}
	default:
		return nil, unknownMechanism(mech)
	}
	return &server{impl: m}, nil
}

func (c *Config) rand() io.Reader {
	if c == nil || c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

func (c *Config) limiter() *Limiter {
	if c == nil || c.Limiter == nil {
		return DefaultLimiter()
	}
	return c.Limiter
}

func (c *Config) now() time.Time {
	if c == nil || c.Time == nil {
		return time.Now()
	}
	return c.Time()
}

func (c *Config) hostname() string {
	if c == nil || c.Hostname == "" {
		return defaultHostname()
	}
	return c.Hostname
}

var defaultHostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
})

// equalFoldASCII reports whether a and b are equal under ASCII case folding
// (and no other: SASL mechanism names are ASCII).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
