package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The RFC 7677 section 3 example.
const (
	rfc7677User        = "user"
	rfc7677Password    = "pencil"
	rfc7677ClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfc7677ServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfc7677Salt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfc7677First       = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfc7677ServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfc7677Final       = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfc7677ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// The RFC 2195 example.
const (
	rfc2195Challenge = "<1896.697170952@postoffice.reston.mci.net>"
	rfc2195User      = "tim"
	rfc2195Secret    = "tanstaaftanstaaf"
	rfc2195Response  = "tim b913a602c7eda7a495b4e6e7334d3890"
)

// testPasswords are the users of testDB and their passwords.
var testPasswords = map[string]string{
	rfc2195User:                         rfc2195Secret,   // a password entry
	rfc7677User:                         rfc7677Password, // a verifier entry, RFC 7677's salt
	"pw":                                "pencil",        // a password entry
	"us,er=x":                           "s3cret",        // on a line "s3cret:not": a password ends at ':'
	"long":                              strings.Repeat("p", MaxPasswordLen),
	"with space":                        "two words",
	"verifier2":                         "another password", // a verifier with a random salt
	strings.Repeat("u", MaxUsernameLen): "maxlen",
}

func mustDecode(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// testDBText is the credentials file behind testDB.
var testDBText = sync.OnceValue(func() string {
	v1, err := NewSCRAMVerifier(rfc7677Password, 4096, bytes.NewReader(mustDecode(rfc7677Salt)))
	if err != nil {
		panic(err)
	}
	v2, err := NewSCRAMVerifier("another password", 0, nil)
	if err != nil {
		panic(err)
	}
	var b strings.Builder
	b.WriteString("tim:tanstaaftanstaaf\r\n\n")
	b.WriteString("user:" + v1 + "\n")
	b.WriteString("pw:pencil\n")
	b.WriteString("us,er=x:s3cret:not\n")
	b.WriteString("long:" + strings.Repeat("p", MaxPasswordLen) + "\n")
	b.WriteString("with space:two words\n   \t\n")
	b.WriteString("verifier2:" + v2 + "\n")
	b.WriteString(strings.Repeat("u", MaxUsernameLen) + ":maxlen")
	return b.String()
})

var testDBOnce = sync.OnceValues(func() (*PasswordDB, error) {
	return ParseCredentials(strings.NewReader(testDBText()))
})

func testDB(t testing.TB) *PasswordDB {
	t.Helper()
	db, err := testDBOnce()
	if err != nil {
		t.Fatalf("ParseCredentials: %v", err)
	}
	return db
}

// nonceBytes returns the random bytes that make serverNonce return nonce.
func nonceBytes(nonce string) []byte {
	b := make([]byte, len(nonce))
	for i := range nonce {
		b[i] = byte(strings.IndexByte(nonceAlphabet, nonce[i]))
	}
	return b
}

// nonceRand returns a Rand that makes serverNonce return nonce.
func nonceRand(nonce string) *bytes.Reader { return bytes.NewReader(nonceBytes(nonce)) }

// scramClient is a SCRAM-SHA-256 client, written from RFC 5802 apart from
// the package under test.
type scramClient struct {
	gs2      string // gs2 header: "n,,", "y,,", "n,a=user,"
	user     string // escaped as needed
	password string
	cnonce   string

	bare      string
	serverSig string
}

func escapeSaslname(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *scramClient) first() string {
	if c.gs2 == "" {
		c.gs2 = "n,,"
	}
	if c.cnonce == "" {
		c.cnonce = "fyko+d2lbbFgONRv9qkxdawL"
	}
	c.bare = "n=" + escapeSaslname(c.user) + ",r=" + c.cnonce
	return c.gs2 + c.bare
}

// final returns the client-final message answering serverFirst, with
// extensions (like "x=1") before the proof.
func (c *scramClient) final(serverFirst string, extensions ...string) (string, error) {
	attrs := strings.Split(serverFirst, ",")
	if len(attrs) != 3 || !strings.HasPrefix(attrs[0], "r="+c.cnonce) ||
		!strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
		return "", errors.New("bad server-first message")
	}
	salt, err := base64.StdEncoding.DecodeString(attrs[1][2:])
	if err != nil {
		return "", err
	}
	iter, err := strconv.Atoi(attrs[2][2:])
	if err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, c.password, salt, iter, 32)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	without := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2)) + "," + attrs[0]
	for _, e := range extensions {
		without += "," + e
	}
	authMessage := c.bare + "," + serverFirst + "," + without
	proof := mac(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	c.serverSig = "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
	return without + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// scramExchange runs a whole exchange for c against creds and returns the
// first error.
func scramExchange(t testing.TB, creds Credentials, c *scramClient) error {
	t.Helper()
	s, err := NewServer(MechSCRAMSHA256, creds)
	if err != nil {
		t.Fatal(err)
	}
	sf, done, err := s.Step([]byte(c.first()))
	if err != nil {
		return err
	}
	if done {
		t.Fatal("done after client-first")
	}
	final, err := c.final(string(sf))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	sfinal, done, err := s.Step([]byte(final))
	if err != nil {
		if s.Username() != "" {
			t.Errorf("Username() = %q after failure", s.Username())
		}
		return err
	}
	if !done {
		t.Fatal("not done after client-final")
	}
	if string(sfinal) != c.serverSig {
		t.Errorf("server-final %q, want %q", sfinal, c.serverSig)
	}
	if got, want := s.Username(), c.user; got != want {
		t.Errorf("Username() = %q, want %q", got, want)
	}
	return nil
}

// plainMessage builds a PLAIN message.
func plainMessage(authzid, authcid, passwd string) []byte {
	return []byte(authzid + "\x00" + authcid + "\x00" + passwd)
}

// step runs one Step and fails the test on an unexpected error.
func mustStep(t testing.TB, s Server, msg string) []byte {
	t.Helper()
	out, _, err := s.Step([]byte(msg))
	if err != nil {
		t.Fatalf("Step(%q): %v", msg, err)
	}
	return out
}

// testLimiter is a Limiter that runs derivations back to back, for tests
// of what a derivation finds rather than of when it runs.
var testLimiter = sync.OnceValue(func() *Limiter {
	l, err := NewLimiter(1, time.Minute)
	if err != nil {
		panic(err)
	}
	return l
})
