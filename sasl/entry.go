package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
)

// Entry is one user's secret: a plaintext password or a SCRAM-SHA-256
// verifier. A password serves every mechanism; a verifier serves
// SCRAM-SHA-256 and PLAIN (which derives the verifier from the password it
// is given) but not CRAM-MD5, which needs the password itself.
//
// The zero Entry holds nothing and authenticates no one. An Entry is
// immutable: it may be copied, shared and used by many goroutines at once.
// (A password entry keeps, shared by its copies, the SCRAM-SHA-256 keys
// derived from its password once an exchange needed them, so that they
// are derived once; see PasswordDB.DeriveSCRAMKeys. A Credentials that
// makes a new Entry at each Lookup loses that.) Its String and GoString
// print no secret.
type Entry struct{ s *secret }

// secret keeps every secret one pointer further down, where fmt, which
// follows one pointer of a value it cannot call String on, prints only an
// address.
type secret struct {
	pw    *plainSecret // a password entry's; nil for a verifier
	v     *verifier    // a verifier entry's keys; nil for a password
	decoy bool         // an unknown user's stand-in (see lookup)
}

type plainSecret struct {
	text   string
	digest [sha256.Size]byte // SHA-256 of text, compared in constant time

	// scram holds the SCRAM-SHA-256 keys derived from text under the
	// salt and iteration count they carry, once an exchange (or
	// PasswordDB.DeriveSCRAMKeys) needed them: nil before. The keys,
	// not a copy of text, so that the PBKDF2 is run once per entry, not
	// once per attempt. scramMu is held while they are derived, so that
	// attempts at once derive them once.
	scramMu sync.Mutex
	scram   atomic.Pointer[verifier]
}

// NewPasswordEntry returns an Entry that holds password, which must be 1 to
// MaxPasswordLen bytes long and hold no NUL (which PLAIN cannot carry).
func NewPasswordEntry(password string) (Entry, error) {
	if reason := checkPassword(password); reason != "" {
		return Entry{}, &ParseError{Reason: reason}
	}
	return passwordEntry(password), nil
}

func passwordEntry(pw string) Entry {
	return Entry{&secret{pw: &plainSecret{text: pw, digest: sha256.Sum256([]byte(pw))}}}
}

// checkPassword returns why password cannot be an entry's, or "".
func checkPassword(password string) string {
	switch {
	case password == "":
		return "empty password"
	case len(password) > MaxPasswordLen:
		return "password longer than 1024 bytes"
	case strings.IndexByte(password, 0) >= 0:
		return "NUL in password"
	}
	return ""
}

// ParseEntry parses what follows "user:" on a line of a credentials file
// (see ParseCredentials): a SCRAM-SHA-256 verifier if it begins with
// "SCRAM-SHA-256$", else a password, which ends, as in memcached, at the
// first ':'. A *ParseError says what is wrong, without quoting s.
func ParseEntry(s string) (Entry, error) {
	if strings.HasPrefix(s, verifierPrefix) {
		v, reason := parseVerifier(s)
		if reason != "" {
			return Entry{}, &ParseError{Reason: reason}
		}
		return Entry{&secret{v: v}}, nil
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i] // memcached's "additional tokens"
	}
	return NewPasswordEntry(s)
}

// IsVerifier reports whether e holds a SCRAM-SHA-256 verifier rather than
// a password.
func (e Entry) IsVerifier() bool { return e.s != nil && e.s.v != nil }

// String returns a description of e's kind that holds no secret.
func (e Entry) String() string {
	switch {
	case e.s == nil:
		return "sasl.Entry(none)"
	case e.s.v != nil:
		return "sasl.Entry(SCRAM-SHA-256 verifier)"
	}
	return "sasl.Entry(password)"
}

// GoString is String, so that %#v prints no secret either.
func (e Entry) GoString() string { return e.String() }

// saltKey is a random key, chosen once per process, from which the salts
// of users who have no verifier (password entries and unknown users) are
// derived: the same user gets the same salt for the life of the process,
// so a second look at an unknown user's salt does not tell it apart.
var saltKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails since Go 1.24
	return k
})

// derivedSalt returns the salt of a user without a verifier.
func derivedSalt(user string) []byte {
	m := hmac.New(sha256.New, saltKey())
	m.Write([]byte("memcluster SCRAM-SHA-256 salt\x00"))
	m.Write([]byte(user))
	return m.Sum(nil)[:SaltLen]
}

// decoyPassword is the password entry unknown users are checked against
// when their Credentials give no verifier template: random, and never
// accepted anyway. Its SCRAM-SHA-256 keys are decoyKeys, whatever the
// salt.
var decoyPassword = sync.OnceValue(func() Entry {
	m := hmac.New(sha256.New, saltKey())
	m.Write([]byte("memcluster decoy password"))
	e := passwordEntry(hex.EncodeToString(m.Sum(nil)))
	e.s.decoy = true
	return e
})

// decoyKeys are the SCRAM-SHA-256 keys of decoyPassword: random, made
// once without a derivation, so that an unknown user's exchange costs
// what a known user's does once that user's keys are derived (see
// plainSecret.scram), and no PBKDF2.
var decoyKeys = sync.OnceValue(func() *verifier {
	v := &verifier{iter: DefaultIterations}
	m := hmac.New(sha256.New, saltKey())
	m.Write([]byte("memcluster decoy StoredKey"))
	m.Sum(v.storedKey[:0])
	m = hmac.New(sha256.New, saltKey())
	m.Write([]byte("memcluster decoy ServerKey"))
	m.Sum(v.serverKey[:0])
	return v
})

// lookup asks creds for user's entry. For an unknown user it returns a
// decoy of the kind creds suggest (see Credentials), so that the caller
// does the same work for known and unknown users; ok reports whether the
// entry is real. A decoy verifier has no salt: the caller derives one.
func lookup(creds Credentials, user string) (e Entry, ok bool) {
	if creds != nil {
		e, ok = creds.Lookup(user)
	}
	if ok && e.s != nil {
		return e, true
	}
	if e.IsVerifier() {
		return Entry{&secret{v: &verifier{iter: e.s.v.iter}, decoy: true}}, false
	}
	return decoyPassword(), false
}

// scramParams returns the salt and iteration count a SCRAM exchange for
// user announces. Entries without a verifier (passwords and decoys) get a
// salt derived from user; it is derived for every entry so that each takes
// the same time.
func (e Entry) scramParams(user string) (salt []byte, iter int) {
	salt, iter = derivedSalt(user), DefaultIterations
	if v := e.s.v; v != nil {
		iter = v.iter
		if v.salt != nil {
			salt = v.salt
		}
	}
	return salt, iter
}

// scramKeys returns e's StoredKey and ServerKey under salt and iter (from
// scramParams). A password entry's are derived on the first call, in a
// turn of lim, and kept (see plainSecret.scram); a verifier's and a
// decoy's are at hand.
func (e Entry) scramKeys(salt []byte, iter int, lim *Limiter) (storedKey, serverKey []byte, err error) {
	var k *verifier
	switch {
	case e.s.v != nil:
		k = e.s.v
	case e.s.decoy:
		k = decoyKeys()
	default:
		if k, err = e.s.pw.scramKeys(salt, iter, lim); err != nil {
			return nil, nil, err
		}
	}
	return k.storedKey[:], k.serverKey[:], nil
}

// scramKeys returns the keys derived from p's password under salt and
// iter: those kept, or, if none are kept for that salt and count, new
// ones, derived in a turn of lim (at once if lim is nil), which are kept
// in their place.
func (p *plainSecret) scramKeys(salt []byte, iter int, lim *Limiter) (*verifier, error) {
	if k := p.scram.Load(); k != nil && k.iter == iter && bytes.Equal(k.salt, salt) {
		return k, nil
	}
	p.scramMu.Lock()
	defer p.scramMu.Unlock()
	if k := p.scram.Load(); k != nil && k.iter == iter && bytes.Equal(k.salt, salt) {
		return k, nil
	}
	salt = bytes.Clone(salt)
	var k *verifier
	var err error
	if lim != nil {
		k, err = lim.derive(p.text, salt, iter)
	} else {
		k, err = deriveKeys(p.text, salt, iter)
	}
	if err != nil {
		return nil, err
	}
	p.scram.Store(k)
	return k, nil
}

// matchPassword reports in constant time whether password is e's. Against
// a verifier it derives StoredKey from password, in a turn of lim: the
// guess is new each time, so nothing of it can be kept. Against a decoy
// verifier it spends a turn of lim as long as a derivation, without one.
func (e Entry) matchPassword(user string, password []byte, lim *Limiter) (bool, error) {
	switch {
	case e.s.v == nil:
		d := sha256.Sum256(password)
		return subtle.ConstantTimeCompare(d[:], e.s.pw.digest[:]) == 1, nil
	case e.s.decoy:
		return false, lim.decoy(e.s.v.iter)
	}
	salt, iter := e.scramParams(user)
	k, err := lim.derive(string(password), salt, iter)
	if err != nil {
		return false, err
	}
	return hmac.Equal(k.storedKey[:], e.s.v.storedKey[:]), nil
}

// cramKey returns the HMAC-MD5 key CRAM-MD5 checks e against: the password,
// or, for a verifier, a stand-in that costs the same and never matches
// (ok false).
func (e Entry) cramKey() (key []byte, ok bool) {
	if e.s.v != nil {
		return bytes.Repeat([]byte{0}, sha256.Size), false
	}
	return []byte(e.s.pw.text), true
}
