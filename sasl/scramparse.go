package sasl

import (
	"strings"
	"unicode/utf8"
)

// clientFirst is a parsed SCRAM client-first message. Its strings alias
// the message.
type clientFirst struct {
	gs2Header string // "n,,", "y,,", "n,a=user," ...: as sent, with its final comma
	bare      string // client-first-message-bare
	authzid   string // decoded; "" if absent
	user      string // decoded
	nonce     string // the client's nonce
}

// parseClientFirst parses
//
//	gs2-cbind-flag "," [ "a=" saslname ] "," ["m=" ... ","] "n=" saslname "," "r=" c-nonce ["," extensions]
func parseClientFirst(msg string) (clientFirst, error) {
	var cf clientFirst
	if msg == "" {
		return cf, malformed(MechSCRAMSHA256, "empty client-first message")
	}
	switch msg[0] {
	case 'n', 'y':
		if len(msg) < 2 || msg[1] != ',' {
			return cf, malformed(MechSCRAMSHA256, "bad channel-binding flag")
		}
	case 'p':
		if len(msg) >= 2 && msg[1] == '=' {
			return cf, unsupported(MechSCRAMSHA256, "channel binding")
		}
		return cf, malformed(MechSCRAMSHA256, "bad channel-binding flag")
	default:
		return cf, malformed(MechSCRAMSHA256, "bad channel-binding flag")
	}
	i := 2
	if strings.HasPrefix(msg[i:], "a=") {
		j := strings.IndexByte(msg[i:], ',')
		if j < 0 {
			return cf, malformed(MechSCRAMSHA256, "gs2 header not ended by ','")
		}
		var err error
		if cf.authzid, err = decodeSaslname(msg[i+2:i+j], "authzid"); err != nil {
			return cf, err
		}
		i += j
	}
	if i >= len(msg) || msg[i] != ',' {
		return cf, malformed(MechSCRAMSHA256, "bad gs2 header")
	}
	i++
	cf.gs2Header, cf.bare = msg[:i], msg[i:]

	attrs := strings.Split(cf.bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return cf, unsupported(MechSCRAMSHA256, "mandatory extension")
	}
	if !strings.HasPrefix(attrs[0], "n=") {
		return cf, malformed(MechSCRAMSHA256, "client-first message lacks n=")
	}
	var err error
	if cf.user, err = decodeSaslname(attrs[0][2:], "username"); err != nil {
		return cf, err
	}
	if len(attrs) < 2 || !strings.HasPrefix(attrs[1], "r=") {
		return cf, malformed(MechSCRAMSHA256, "client-first message lacks r= after n=")
	}
	cf.nonce = attrs[1][2:]
	if !validNonce(cf.nonce) {
		return cf, malformed(MechSCRAMSHA256, "client nonce empty, too long or not printable")
	}
	for _, a := range attrs[2:] {
		if err := checkExtension(a); err != nil {
			return cf, err
		}
	}
	return cf, nil
}

// clientFinal is a parsed SCRAM client-final message.
type clientFinal struct {
	cbind        string // c=, still in base64
	nonce        string // r=
	withoutProof string // client-final-message-without-proof
	proof        []byte // p=, decoded: sha256.Size bytes
}

// parseClientFinal parses
//
//	"c=" base64 "," "r=" nonce ["," extensions] "," "p=" base64
func parseClientFinal(msg string) (clientFinal, error) {
	var cf clientFinal
	attrs := strings.Split(msg, ",")
	if len(attrs) < 3 {
		return cf, malformed(MechSCRAMSHA256, "client-final message lacks c=, r= or p=")
	}
	if !strings.HasPrefix(attrs[0], "c=") {
		return cf, malformed(MechSCRAMSHA256, "client-final message lacks c=")
	}
	cf.cbind = attrs[0][2:]
	if b, ok := decodeBase64(cf.cbind); !ok || len(b) == 0 {
		return cf, malformed(MechSCRAMSHA256, "channel binding not base64")
	}
	if !strings.HasPrefix(attrs[1], "r=") {
		return cf, malformed(MechSCRAMSHA256, "client-final message lacks r= after c=")
	}
	cf.nonce = attrs[1][2:]
	last := attrs[len(attrs)-1]
	for _, a := range attrs[2 : len(attrs)-1] {
		if err := checkExtension(a); err != nil {
			return cf, err
		}
	}
	if !strings.HasPrefix(last, "p=") {
		return cf, malformed(MechSCRAMSHA256, "client-final message does not end with p=")
	}
	proof, ok := decodeBase64(last[2:])
	if !ok || len(proof) != 32 {
		return cf, malformed(MechSCRAMSHA256, "proof not 32 bytes in base64")
	}
	cf.proof = proof
	cf.withoutProof = msg[:len(msg)-len(last)-1]
	return cf, nil
}

// decodeSaslname decodes RFC 5802's saslname: UTF-8 without NUL, ',' or
// '=', except '=' in the escapes "=2C" (',') and "=3D" ('='). what names
// the field in errors.
func decodeSaslname(s, what string) (string, error) {
	if s == "" {
		return "", malformed(MechSCRAMSHA256, "empty "+what)
	}
	if !utf8.ValidString(s) {
		return "", malformed(MechSCRAMSHA256, what+" not UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", malformed(MechSCRAMSHA256, "NUL in "+what)
	}
	if strings.IndexByte(s, '=') >= 0 {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] != '=' {
				b.WriteByte(s[i])
				continue
			}
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", malformed(MechSCRAMSHA256, "bad '=' escape in "+what)
			}
			i += 2
		}
		s = b.String()
	}
	if len(s) > MaxUsernameLen {
		return "", malformed(MechSCRAMSHA256, what+" longer than 255 bytes")
	}
	return s, nil
}

// validNonce reports whether s is 1 to MaxNonceLen printable characters.
func validNonce(s string) bool {
	if s == "" || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// checkExtension checks an extension attribute, ALPHA "=" 1*value-char,
// which the server then ignores. Attribute names SCRAM itself defines are
// refused out of place.
func checkExtension(a string) error {
	if len(a) < 3 || a[1] != '=' || !('a' <= a[0] && a[0] <= 'z' || 'A' <= a[0] && a[0] <= 'Z') {
		return malformed(MechSCRAMSHA256, "malformed attribute")
	}
	if strings.IndexByte("acemnprsiv", a[0]) >= 0 {
		return malformed(MechSCRAMSHA256, "attribute out of place")
	}
	if !utf8.ValidString(a) || strings.IndexByte(a, 0) >= 0 {
		return malformed(MechSCRAMSHA256, "attribute value not UTF-8 without NUL")
	}
	return nil
}
