package sasl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// scramServer is SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel
// binding:
//
//	C: n,,n=user,r=cnonce                     client-first
//	S: r=cnonce+snonce,s=salt,i=iterations    server-first
//	C: c=biws,r=cnonce+snonce,p=proof         client-final
//	S: v=ServerSignature                      server-final, with success
//
// The gs2 flag may be "n" or "y" (the client could bind but believes the
// server cannot: true, as no -PLUS mechanism is offered); "p=" is refused
// with ErrUnsupported. The user name is SASLprep'd by no one: names and
// passwords compare as bytes.
type scramServer struct {
	creds     Credentials
	rand      io.Reader
	lim       *Limiter
	waitedFor bool // an empty initial response was answered with an empty challenge
	started   bool // server-first sent; the fields below are set

	user       string
	entry      Entry
	known      bool
	salt       []byte
	iter       int
	cbind      string // the c= the client-final must carry: base64 of the gs2 header
	nonce      string // cnonce+snonce
	authPrefix string // client-first-message-bare "," server-first-message
}

// serverNonceLen is the length of the server's part of the nonce, drawn
// from nonceAlphabet (about 196 bits).
const serverNonceLen = 30

// nonceAlphabet is RFC 5802's printable: %x21-2B / %x2D-7E.
const nonceAlphabet = "!\"#$%&'()*+-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

func (s *scramServer) name() string { return MechSCRAMSHA256 }

func (s *scramServer) step(msg []byte) ([]byte, bool, string, error) {
	if !s.started {
		if len(msg) == 0 && !s.waitedFor {
			s.waitedFor = true // no initial response: ask for it
			return []byte{}, false, "", nil
		}
		return s.clientFirst(string(msg))
	}
	return s.clientFinal(string(msg))
}

func (s *scramServer) clientFirst(msg string) ([]byte, bool, string, error) {
	cf, err := parseClientFirst(msg)
	if err != nil {
		return nil, false, "", err
	}
	if cf.authzid != "" && cf.authzid != cf.user {
		return nil, false, "", refused(MechSCRAMSHA256)
	}
	snonce, err := serverNonce(s.rand)
	if err != nil {
		return nil, false, "", fmt.Errorf("sasl: SCRAM-SHA-256: reading random source: %w", err)
	}
	s.user = cf.user
	s.entry, s.known = lookup(s.creds, cf.user)
	s.salt, s.iter = s.entry.scramParams(cf.user)
	s.cbind = base64.StdEncoding.EncodeToString([]byte(cf.gs2Header))
	s.nonce = cf.nonce + snonce
	first := "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.salt) + ",i=" + strconv.Itoa(s.iter)
	s.authPrefix = cf.bare + "," + first
	s.started = true
	return []byte(first), false, "", nil
}

func (s *scramServer) clientFinal(msg string) ([]byte, bool, string, error) {
	cf, err := parseClientFinal(msg)
	if err != nil {
		return nil, false, "", err
	}
	if cf.cbind != s.cbind {
		return nil, false, "", malformed(MechSCRAMSHA256, "channel binding differs from the client-first message's gs2 header")
	}
	if cf.nonce != s.nonce {
		return nil, false, "", malformed(MechSCRAMSHA256, "nonce differs from the server-first message's")
	}
	storedKey, serverKey, err := s.entry.scramKeys(s.salt, s.iter, s.lim)
	if err != nil {
		return nil, false, "", err
	}
	authMessage := s.authPrefix + "," + cf.withoutProof
	clientKey := hmacSHA256(storedKey, authMessage) // ClientSignature, then XOR proof
	for i := range clientKey {
		clientKey[i] ^= cf.proof[i]
	}
	h := sha256.Sum256(clientKey)
	if !hmac.Equal(h[:], storedKey) || !s.known {
		return nil, false, "", ErrAuthFailed
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage))), true, s.user, nil
}

// serverNonce draws serverNonceLen characters of nonceAlphabet from r,
// byte by byte, skipping bytes that would bias the draw.
func serverNonce(r io.Reader) (string, error) {
	const limit = 2 * len(nonceAlphabet) // 186: bytes at or above are skipped
	out := make([]byte, 0, serverNonceLen)
	buf := make([]byte, serverNonceLen)
	for round := 0; len(out) < serverNonceLen; round++ {
		if round == 64 {
			return "", errors.New("random source gives only biased bytes")
		}
		b := buf[:serverNonceLen-len(out)]
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		for _, c := range b {
			if int(c) < limit {
				out = append(out, nonceAlphabet[int(c)%len(nonceAlphabet)])
			}
		}
	}
	return string(out), nil
}
