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
)

// Entry is one user's secret: a plaintext password or a SCRAM-SHA-256
// verifier. A password serves every mechanism; a verifier serves
// SCRAM-SHA-256 and PLAIN (which derives the verifier from the password it
// is given) but not CRAM-MD5, which needs the password itself.
//
// The zero Entry holds nothing and authenticates no one. An Entry is
// immutable: it may be copied, shared and used by many goroutines at once.
// Its String and GoString print no secret.
type Entry struct{ s *secret }

// secret keeps every secret one pointer further down, where fmt, which
// follows one pointer of a value it cannot call String on, prints only an
// address.
type secret struct {
	pw *plainSecret // a password entry's; nil for a verifier
	v  *verifier    // a verifier entry's keys; nil for a password
}

type plainSecret struct {
	text   string
	digest [sha256.Size]byte // SHA-256 of text, compared in constant time
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
// accepted anyway.
var decoyPassword = sync.OnceValue(func() Entry {
	m := hmac.New(sha256.New, saltKey())
	m.Write([]byte("memcluster decoy password"))
	return passwordEntry(hex.EncodeToString(m.Sum(nil)))
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
		return Entry{&secret{v: &verifier{iter: e.s.v.iter}}}, false
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
// scramParams), deriving them from the password if e has no verifier.
func (e Entry) scramKeys(salt []byte, iter int) (storedKey, serverKey []byte, err error) {
	if v := e.s.v; v != nil {
		return v.storedKey[:], v.serverKey[:], nil
	}
	k, err := deriveKeys(e.s.pw.text, salt, iter)
	if err != nil {
		return nil, nil, err
	}
	return k.storedKey[:], k.serverKey[:], nil
}

// matchPassword reports in constant time whether password is e's. Against
// a verifier it derives StoredKey from password; user's derived salt
// stands in for a decoy's missing salt.
func (e Entry) matchPassword(user string, password []byte) (bool, error) {
	if e.s.v == nil {
		d := sha256.Sum256(password)
		return subtle.ConstantTimeCompare(d[:], e.s.pw.digest[:]) == 1, nil
	}
	salt, iter := e.scramParams(user)
	k, err := deriveKeys(string(password), salt, iter)
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
