package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
)

// verifierPrefix starts a verifier entry:
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// with salt and keys in standard base64 with padding: PostgreSQL's format
// (pg_authid.rolpassword), so its verifiers can be copied over.
const verifierPrefix = "SCRAM-SHA-256$"

// verifier is what a SCRAM-SHA-256 server stores of a password (RFC 5802
// section 3). A decoy's salt is nil.
type verifier struct {
	iter      int
	salt      []byte
	storedKey [sha256.Size]byte
	serverKey [sha256.Size]byte
}

// deriveKeys computes StoredKey and ServerKey from a password:
//
//	SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iter)
//	ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey)
//	ServerKey = HMAC(SaltedPassword, "Server Key")
func deriveKeys(password string, salt []byte, iter int) (*verifier, error) {
	derivations.Add(1)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("sasl: PBKDF2: %w", err)
	}
	v := &verifier{iter: iter, salt: salt}
	v.storedKey = sha256.Sum256(hmacSHA256(salted, "Client Key"))
	copy(v.serverKey[:], hmacSHA256(salted, "Server Key"))
	return v, nil
}

// derivations counts the calls of deriveKeys; see Derivations.
var derivations atomic.Uint64

// Derivations returns the number of PBKDF2 derivations the package has
// run in this process, for any purpose: checking a PLAIN password against
// a verifier, deriving a password entry's SCRAM-SHA-256 keys, making a
// verifier (NewSCRAMVerifier), setting the estimate of a Limiter's decoys.
// Each costs the CPU of its iteration count (about 0.7 ms for 4096 on a
// current core), which is why they are few: see Limiter.
func Derivations() uint64 { return derivations.Load() }

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// NewSCRAMVerifier returns the credentials-file entry text (what follows
// "user:" on the line) of a SCRAM-SHA-256 verifier of password, with iter
// iterations (DefaultIterations if zero) and a salt of SaltLen bytes read
// from rand (crypto/rand.Reader if nil). password follows
// NewPasswordEntry's rules; iter must lie within MinIterations and
// MaxIterations.
func NewSCRAMVerifier(password string, iter int, rand io.Reader) (string, error) {
	if reason := checkPassword(password); reason != "" {
		return "", &ParseError{Reason: reason}
	}
	if iter == 0 {
		iter = DefaultIterations
	}
	if iter < MinIterations || iter > MaxIterations {
		return "", fmt.Errorf("sasl: iteration count %d outside [%d, %d]", iter, MinIterations, MaxIterations)
	}
	salt := make([]byte, SaltLen)
	if _, err := io.ReadFull(randOrDefault(rand), salt); err != nil {
		return "", fmt.Errorf("sasl: reading salt: %w", err)
	}
	v, err := deriveKeys(password, salt, iter)
	if err != nil {
		return "", err
	}
	return v.String(), nil
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// String returns v in the entry format of verifierPrefix.
func (v *verifier) String() string {
	b64 := base64.StdEncoding
	return verifierPrefix + strconv.Itoa(v.iter) + ":" + b64.EncodeToString(v.salt) +
		"$" + b64.EncodeToString(v.storedKey[:]) + ":" + b64.EncodeToString(v.serverKey[:])
}

// parseVerifier parses an entry that begins with verifierPrefix. It
// returns why s is no verifier, or "".
func parseVerifier(s string) (*verifier, string) {
	rest := s[len(verifierPrefix):]
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return nil, "verifier lacks '$' between parameters and keys"
	}
	iterText, saltText, ok := strings.Cut(params, ":")
	if !ok {
		return nil, "verifier lacks ':' between iterations and salt"
	}
	storedText, serverText, ok := strings.Cut(keys, ":")
	if !ok {
		return nil, "verifier lacks ':' between StoredKey and ServerKey"
	}
	iter, ok := parseDecimal(iterText)
	if !ok || iter < MinIterations || iter > MaxIterations {
		return nil, "verifier iteration count not a number from 4096 to 1048576"
	}
	salt, ok := decodeBase64(saltText)
	if !ok {
		return nil, "verifier salt not base64"
	}
	if len(salt) < MinSaltLen || len(salt) > MaxSaltLen {
		return nil, "verifier salt not 8 to 128 bytes long"
	}
	v := &verifier{iter: iter, salt: salt}
	for _, k := range []struct {
		text string
		dst  []byte
		name string
	}{{storedText, v.storedKey[:], "StoredKey"}, {serverText, v.serverKey[:], "ServerKey"}} {
		b, ok := decodeBase64(k.text)
		if !ok || len(b) != sha256.Size {
			return nil, "verifier " + k.name + " not 32 bytes in base64"
		}
		copy(k.dst, b)
	}
	return v, ""
}

// parseDecimal parses 1 to 7 decimal digits without sign or leading zero.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 7 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// decodeBase64 decodes standard base64 with padding, strictly: no other
// byte (Go's decoder skips CR and LF), no non-zero padding bits.
func decodeBase64(s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, false
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil
}
