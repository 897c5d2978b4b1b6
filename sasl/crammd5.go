package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
)

// cramServer is CRAM-MD5 (RFC 2195): the server sends a challenge in the
// form of an RFC 822 msg-id,
//
//	<random.timestamp@hostname>
//
// and the client answers
//
//	user SP hex(HMAC-MD5(password, challenge))
//
// The user name may hold spaces: the digest follows the last one. Only
// users with a plaintext password can succeed.
type cramServer struct {
	creds     Credentials
	cfg       *Config
	challenge []byte // sent; nil before
}

func (c *cramServer) name() string { return MechCRAMMD5 }

// cramChallenge formats a challenge from a random number, the time and the
// host name.
func (c *Config) cramChallenge(random uint64) []byte {
	b := []byte{'<'}
	b = strconv.AppendUint(b, random, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, c.now().Unix(), 10)
	b = append(b, '@')
	b = append(b, c.hostname()...)
	return append(b, '>')
}

func (c *cramServer) step(msg []byte) ([]byte, bool, string, error) {
	if c.challenge == nil {
		if len(msg) != 0 {
			return nil, false, "", malformed(MechCRAMMD5, "initial response to a server-first mechanism")
		}
		var r [8]byte
		if _, err := io.ReadFull(c.cfg.rand(), r[:]); err != nil {
			return nil, false, "", fmt.Errorf("sasl: CRAM-MD5: reading random source: %w", err)
		}
		c.challenge = c.cfg.cramChallenge(binary.BigEndian.Uint64(r[:]))
		return bytes.Clone(c.challenge), false, "", nil
	}
	user, digest, err := parseCRAM(msg)
	if err != nil {
		return nil, false, "", err
	}
	e, known := lookup(c.creds, user)
	key, hasPassword := e.cramKey()
	m := hmac.New(md5.New, key)
	m.Write(c.challenge)
	if !hmac.Equal(m.Sum(nil), digest) || !hasPassword || !known {
		return nil, false, "", ErrAuthFailed
	}
	return nil, true, user, nil
}

// parseCRAM splits a CRAM-MD5 response into the user and the decoded
// digest.
func parseCRAM(msg []byte) (string, []byte, error) {
	sp := bytes.LastIndexByte(msg, ' ')
	if sp < 0 {
		return "", nil, malformed(MechCRAMMD5, "no space before the digest")
	}
	user, hexDigest := msg[:sp], msg[sp+1:]
	switch {
	case len(user) == 0:
		return "", nil, malformed(MechCRAMMD5, "empty user")
	case len(user) > MaxUsernameLen:
		return "", nil, malformed(MechCRAMMD5, "user longer than 255 bytes")
	case bytes.IndexByte(user, 0) >= 0:
		return "", nil, malformed(MechCRAMMD5, "NUL in user")
	case len(hexDigest) != 2*md5.Size:
		return "", nil, malformed(MechCRAMMD5, "digest not 32 hex digits")
	}
	digest := make([]byte, md5.Size)
	if _, err := hex.Decode(digest, hexDigest); err != nil {
		return "", nil, malformed(MechCRAMMD5, "digest not 32 hex digits")
	}
	return string(user), digest, nil
}
