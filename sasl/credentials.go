package sasl

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Credentials finds users' secrets for the mechanisms. Lookup is called
// once per exchange, from the goroutine that calls the Server's Step, by
// many exchanges at once: it must be safe for concurrent use. user is the
// name as the client sent it (SCRAM's decoded), compared as bytes; the
// Entry returned must stay as it is (Entries are immutable).
//
// ok reports whether user exists. For an unknown user the returned Entry is
// a template for the decoy the mechanisms check the user against, so that
// an unknown user costs the time a known one does: a verifier template
// gets a decoy verifier with its iteration count, anything else (the zero
// Entry too) a decoy password. Return the kind most users have, as
// PasswordDB does. An unknown user never authenticates, whatever the
// template.
type Credentials interface {
	Lookup(user string) (e Entry, ok bool)
}

// CredentialsFunc adapts a function to Credentials.
type CredentialsFunc func(user string) (Entry, bool)

// Lookup returns f(user).
func (f CredentialsFunc) Lookup(user string) (Entry, bool) { return f(user) }

// PasswordDB is a parsed credentials file. It is immutable and safe for
// concurrent use; to reload the file, parse it again and swap the pointer.
type PasswordDB struct {
	users map[string]Entry
	decoy Entry // the template Lookup returns for unknown users
}

var _ Credentials = (*PasswordDB)(nil)

// Lookup returns user's entry. For an unknown user it returns the
// template (see Credentials) of the kind most of db's users have and false.
// A nil *PasswordDB knows no user.
func (db *PasswordDB) Lookup(user string) (Entry, bool) {
	if db == nil {
		return Entry{}, false
	}
	if e, ok := db.users[user]; ok {
		return e, true
	}
	return db.decoy, false
}

// String describes db without a secret: "sasl.PasswordDB(N users)".
func (db PasswordDB) String() string {
	return "sasl.PasswordDB(" + strconv.Itoa(len(db.users)) + " users)"
}

// GoString is String, so that %#v prints no secret either.
func (db PasswordDB) GoString() string { return db.String() }

// Len returns the number of users in db.
func (db *PasswordDB) Len() int {
	if db == nil {
		return 0
	}
	return len(db.users)
}

// DeriveSCRAMKeys derives now, for every user of db with a password, the
// SCRAM-SHA-256 keys an exchange would otherwise derive (and keep) on the
// user's first attempt: one PBKDF2 of DefaultIterations per such user
// (about 0.7 ms each on a current core), not limited by any Limiter. A
// user whose entry in previous (the file loaded before, or nil) holds the
// same password and has its keys takes them from there instead.
//
// Until then, a known user's first SCRAM-SHA-256 attempt takes one
// derivation longer than an unknown user's (whose decoy derives nothing),
// and so tells once that the user exists. A server that offers
// SCRAM-SHA-256 calls it before it puts db to use. Users with a verifier
// need nothing derived.
func (db *PasswordDB) DeriveSCRAMKeys(previous *PasswordDB) error {
	if db == nil {
		return nil
	}
	for user, e := range db.users {
		pw := e.s.pw
		if pw == nil {
			continue
		}
		salt := derivedSalt(user)
		if old, ok := previous.Lookup(user); ok && old.s.pw != nil &&
			subtle.ConstantTimeCompare(old.s.pw.digest[:], pw.digest[:]) == 1 {
			if k := old.s.pw.scram.Load(); k != nil && k.iter == DefaultIterations && bytes.Equal(k.salt, salt) {
				pw.scram.Store(k)
				continue
			}
		}
		if _, err := pw.scramKeys(salt, DefaultIterations, nil); err != nil {
			return err
		}
	}
	return nil
}

// ReadCredentialsFile reads and parses the credentials file name (see
// ParseCredentials). A *ParseError names the file.
func ReadCredentialsFile(name string) (*PasswordDB, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("sasl: %w", err)
	}
	defer f.Close()
	db, err := ParseCredentials(f)
	if pe, ok := errors.AsType[*ParseError](err); ok {
		pe.File = name
	}
	return db, err
}

// ParseCredentials parses a credentials file: memcached's
// MEMCACHED_SASL_PWDB, one user a line,
//
//	user:password
//	user:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// The user name runs to the first ':' and is compared as bytes (spaces
// count). A password runs to the end of the line or, as in memcached, to
// the next ':' (memcached ignores what follows, and so does this parser).
// An entry that begins with "SCRAM-SHA-256$" is a verifier instead, in
// PostgreSQL's format, salt and keys in standard base64 with padding, as
// NewSCRAMVerifier makes it. Lines end with LF or CRLF; empty lines (and
// lines of only spaces and tabs) are skipped. There are no comments, as in
// memcached: "#" begins a user name.
//
// Unlike memcached, which quietly skips what it cannot use, this parser
// refuses a file with a line without ':', an empty user name or password,
// a NUL or a CR inside a line, a malformed verifier, a user named twice
// (memcached would use the first line), or anything over the limits:
// MaxUsernameLen, MaxPasswordLen, MaxLineLen, MaxEntries, MaxFileSize.
// (memcached reads at most 255 bytes of a line and takes a user and
// password of at most 252 bytes together; every file it can use fits.)
// It returns a *ParseError that gives the line number and never the line,
// or the reader's error.
func ParseCredentials(r io.Reader) (*PasswordDB, error) {
	br := bufio.NewReaderSize(r, MaxLineLen+2)
	db := &PasswordDB{users: make(map[string]Entry)}
	lineOf := make(map[string]int)
	iters := make(map[int]int) // verifiers by iteration count
	size, passwords := 0, 0
	for n := 1; ; n++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, &ParseError{Line: n, Reason: "line longer than " + strconv.Itoa(MaxLineLen) + " bytes"}
		}
		if size += len(b); size > MaxFileSize {
			return nil, &ParseError{Line: n, Reason: "file larger than " + strconv.Itoa(MaxFileSize>>20) + " MiB"}
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("sasl: reading credentials: %w", err)
		}
		user, e, skip, reason := parseLine(b)
		switch {
		case reason != "":
			return nil, &ParseError{Line: n, Reason: reason}
		case skip:
		case lineOf[user] != 0:
			return nil, &ParseError{Line: n, Reason: "user already on line " + strconv.Itoa(lineOf[user])}
		case len(db.users) == MaxEntries:
			return nil, &ParseError{Line: n, Reason: "more than " + strconv.Itoa(MaxEntries) + " users"}
		default:
			db.users[user], lineOf[user] = e, n
			if e.IsVerifier() {
				iters[e.s.v.iter]++
			} else {
				passwords++
			}
		}
		if err == io.EOF {
			break
		}
	}
	db.decoy = decoyTemplate(passwords, iters)
	return db, nil
}

// parseLine parses one line, with or without its line ending. It returns
// skip for an empty line, or why the line is wrong.
func parseLine(b []byte) (user string, e Entry, skip bool, reason string) {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	switch {
	case len(b) > MaxLineLen:
		return "", Entry{}, false, "line longer than " + strconv.Itoa(MaxLineLen) + " bytes"
	case len(bytes.Trim(b, " \t")) == 0:
		return "", Entry{}, true, ""
	case bytes.IndexByte(b, 0) >= 0:
		return "", Entry{}, false, "NUL in line"
	case bytes.IndexByte(b, '\r') >= 0:
		return "", Entry{}, false, "CR inside line"
	}
	i := bytes.IndexByte(b, ':')
	switch {
	case i < 0:
		return "", Entry{}, false, "no ':' after the user name"
	case i == 0:
		return "", Entry{}, false, "empty user name"
	case i > MaxUsernameLen:
		return "", Entry{}, false, "user name longer than " + strconv.Itoa(MaxUsernameLen) + " bytes"
	}
	e, err := ParseEntry(string(b[i+1:]))
	if err != nil {
		return "", Entry{}, false, err.(*ParseError).Reason
	}
	return string(b[:i]), e, false, ""
}

// decoyTemplate returns the template for unknown users of a file with
// that many passwords and verifiers by iteration count: a verifier with the
// most common count if verifiers are the majority, else a password.
func decoyTemplate(passwords int, iters map[int]int) Entry {
	verifiers, iter := 0, 0
	for it, n := range iters {
		verifiers += n
		if n > iters[iter] || n == iters[iter] && it < iter {
			iter = it
		}
	}
	if verifiers <= passwords {
		return Entry{}
	}
	return Entry{&secret{v: &verifier{iter: iter}}}
}
