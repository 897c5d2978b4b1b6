package command

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/sasl"
)

// SASL over the binary protocol (-S), at the protocol level: each
// mechanism's exchange driven by a client written here, retries,
// re-authentication, the mechanisms offered, reloads, the counters, and
// the gate that refuses every other opcode before authentication.

// ---- helpers

// The users of saslCredentials: two with a password, one with a SCRAM
// verifier only.
const (
	saslAlice    = "alice"
	saslAlicePw  = "secret"
	saslBob      = "bob"
	saslBobPw    = "hunter2"
	saslVera     = "vera" // a verifier entry: PLAIN and SCRAM-SHA-256, never CRAM-MD5
	saslVeraPw   = "vera's password"
	saslNoSuchPw = "wrong"
)

// saslAllMechs are the mechanisms in LIST_MECHS's default order.
var saslAllMechs = []string{sasl.MechSCRAMSHA256, sasl.MechCRAMMD5, sasl.MechPLAIN}

// saslWriteFile writes a credentials file with lines into dir.
func saslWriteFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// saslCredentials writes alice's, bob's and vera's credentials file into a
// temporary directory and returns its path.
func saslCredentials(t *testing.T) string {
	t.Helper()
	v, err := sasl.NewSCRAMVerifier(saslVeraPw, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sasl.pwdb")
	saslWriteFile(t, path, saslAlice+":"+saslAlicePw, saslBob+":"+saslBobPw, saslVera+":"+v)
	return path
}

// saslStartNode serves a node with -S and the credentials file path.
func saslStartNode(t *testing.T, path string, mechs ...string) (*testServer, string) {
	t.Helper()
	return binStartNode(t, Config{SASL: true, SASLPasswordFile: path, SASLMechanisms: mechs})
}

// saslReply is a reply packet taken apart.
type saslReply struct {
	protocol.BinaryHeader
	extras, key, value []byte
	raw                []byte
}

func saslParse(t *testing.T, p []byte) saslReply {
	t.Helper()
	var r saslReply
	if err := r.Decode(p); err != nil {
		t.Fatalf("reply %x: %v", p, err)
	}
	body := p[protocol.BinaryHeaderLen:]
	el, kl := int(r.ExtrasLen), int(r.KeyLen)
	if r.Magic != protocol.BinaryMagicResponse || el+kl > len(body) {
		t.Fatalf("malformed reply %s", binDump([][]byte{p}))
	}
	r.extras, r.key, r.value, r.raw = body[:el], body[el:el+kl], body[el+kl:], p
	return r
}

func (r saslReply) String() string { return binDump([][]byte{r.raw}) }

// saslRoundTrip sends req and reads the one reply it draws.
func (c *binClient) saslRoundTrip(req []byte) saslReply {
	c.t.Helper()
	if _, err := c.nc.Write(req); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	p, err := c.readPacket(5 * time.Second)
	if err != nil {
		c.t.Fatalf("reading the reply to %s: %v", binDump([][]byte{req}), err)
	}
	return saslParse(c.t, p)
}

// saslExpect sends req and checks the reply's opcode (the request's),
// status and opaque.
func (c *binClient) saslExpect(what string, req []byte, status protocol.BinaryStatus) saslReply {
	c.t.Helper()
	r := c.saslRoundTrip(req)
	op := protocol.BinaryOpcode(req[1])
	opaque := binary.BigEndian.Uint32(req[12:])
	if r.Opcode != op || r.Status != status || r.Opaque != opaque {
		c.t.Fatalf("%s: got %v, want %v status %#x opaque %#x", what, r, op, uint16(status), opaque)
	}
	return r
}

// saslClosed reports whether the server closes the connection with
// nothing more to say; a packet instead fails the test.
func (c *binClient) saslClosed(what string) {
	c.t.Helper()
	p, err := c.readPacket(5 * time.Second)
	switch {
	case err == nil:
		c.t.Fatalf("%s: got %s, want the connection closed", what, binDump([][]byte{p}))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || binIsReset(err):
	default:
		c.t.Fatalf("%s: %v, want the connection closed", what, err)
	}
}

// saslAlive checks that the connection still serves: Version, which needs
// no authentication, is answered.
func (c *binClient) saslAlive(what string) {
	c.t.Helper()
	r := c.saslExpect(what+": Version", binReq(protocol.OpVersion, 0x7e57, 0, "", "", ""), protocol.StatusOK)
	if string(r.value) != Version {
		c.t.Fatalf("%s: Version answered %v", what, r)
	}
}

// saslWorks checks that the connection is authenticated: a Set and a Get
// of key are served.
func (c *binClient) saslWorks(what, key string) {
	c.t.Helper()
	c.saslExpect(what+": Set", binReq(protocol.OpSet, 1, 0, binStorageExtras(7, 0), key, "v:"+key), protocol.StatusOK)
	r := c.saslExpect(what+": Get", binReq(protocol.OpGet, 2, 0, "", key, ""), protocol.StatusOK)
	if string(r.value) != "v:"+key || binary.BigEndian.Uint32(r.extras) != 7 {
		c.t.Fatalf("%s: Get answered %v", what, r)
	}
}

// saslRefused checks that the connection is not authenticated: a Get is
// answered Auth failure and the connection closed.
func (c *binClient) saslRefused(what string) {
	c.t.Helper()
	c.saslExpect(what+": Get", binReq(protocol.OpGet, 3, 0, "", "k", ""), protocol.StatusAuthError)
	c.saslClosed(what + ": after the refused Get")
}

// saslPlain is PLAIN's message: no authzid, user and password.
func saslPlain(user, password string) string { return "\x00" + user + "\x00" + password }

// saslCRAMResponse is CRAM-MD5's answer to challenge.
func saslCRAMResponse(user, password string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write(challenge)
	return user + " " + hex.EncodeToString(m.Sum(nil))
}

// saslSCRAM is the client side of one SCRAM-SHA-256 exchange (RFC 5802,
// RFC 7677), without channel binding.
type saslSCRAM struct {
	user, password, cnonce string
	bare                   string // client-first-message-bare
	serverSignature        []byte // expected in server-final, set by final
}

func newSASLSCRAM(user, password string) *saslSCRAM {
	return &saslSCRAM{user: user, password: password, cnonce: "fyko+d2lbbFgONRv9qkxdawL" + strconv.FormatInt(time.Now().UnixNano(), 36)}
}

// first returns the client-first message.
func (s *saslSCRAM) first() string {
	name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	s.bare = "n=" + name + ",r=" + s.cnonce
	return "n,," + s.bare
}

// final checks the server-first message and returns the client-final one.
func (s *saslSCRAM) final(serverFirst string) (string, error) {
	var nonce, salt64, iters string
	for _, attr := range strings.Split(serverFirst, ",") {
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return "", fmt.Errorf("server-first %q: attribute %q", serverFirst, attr)
		}
		switch k {
		case "r":
			nonce = v
		case "s":
			salt64 = v
		case "i":
			iters = v
		}
	}
	if !strings.HasPrefix(nonce, s.cnonce) || len(nonce) == len(s.cnonce) {
		return "", fmt.Errorf("server-first %q: nonce does not extend the client's %q", serverFirst, s.cnonce)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return "", fmt.Errorf("server-first %q: salt: %v", serverFirst, err)
	}
	iter, err := strconv.Atoi(iters)
	if err != nil || iter < 4096 {
		return "", fmt.Errorf("server-first %q: iteration count %q", serverFirst, iters)
	}
	salted, err := pbkdf2.Key(sha256.New, s.password, salt, iter, sha256.Size)
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
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
	authMessage := s.bare + "," + serverFirst + "," + withoutProof
	proof := mac(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	s.serverSignature = mac(mac(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// verify checks the server-final message.
func (s *saslSCRAM) verify(serverFinal string) error {
	if want := "v=" + base64.StdEncoding.EncodeToString(s.serverSignature); serverFinal != want {
		return fmt.Errorf("server-final %q, want %q", serverFinal, want)
	}
	return nil
}

// saslAuth runs a whole exchange of mech for user and password and returns
// the status it ends with: StatusOK (after checking the success reply,
// SCRAM's server signature included) or StatusAuthError. Any other reply
// fails the test.
func (c *binClient) saslAuth(mech, user, password string) protocol.BinaryStatus {
	c.t.Helper()
	what := mech + " " + user
	auth := func(data string) saslReply {
		c.t.Helper()
		return c.saslRoundTrip(binReq(protocol.OpSASLAuth, 0x21, 0, "", mech, data))
	}
	step := func(data string) saslReply {
		c.t.Helper()
		return c.saslRoundTrip(binReq(protocol.OpSASLStep, 0x22, 0, "", mech, data))
	}
	// end checks the reply that ends the exchange.
	end := func(r saslReply, op protocol.BinaryOpcode, body func([]byte) error) protocol.BinaryStatus {
		c.t.Helper()
		if r.Opcode != op || r.Opaque != uint32(op) {
			c.t.Fatalf("%s: got %v, want a reply to %v", what, r, op)
		}
		switch r.Status {
		case protocol.StatusOK:
			if err := body(r.value); err != nil {
				c.t.Fatalf("%s: success reply %v: %v", what, r, err)
			}
		case protocol.StatusAuthError:
			if !bytes.Equal(r.raw, binErr(op, protocol.StatusAuthError, uint32(op))) {
				c.t.Fatalf("%s: got %v, want Auth failure", what, r)
			}
		default:
			c.t.Fatalf("%s: got %v, want success or Auth failure", what, r)
		}
		return r.Status
	}
	authenticated := func(b []byte) error {
		if string(b) != "Authenticated" {
			return fmt.Errorf("body %q, want \"Authenticated\"", b)
		}
		return nil
	}
	// challenge checks a continuation reply.
	challenge := func(r saslReply, op protocol.BinaryOpcode) []byte {
		c.t.Helper()
		if r.Opcode != op || r.Status != protocol.StatusAuthContinue || r.Opaque != uint32(op) || len(r.value) == 0 {
			c.t.Fatalf("%s: got %v, want a challenge (status 0x21)", what, r)
		}
		return r.value
	}
	switch mech {
	case sasl.MechPLAIN:
		return end(auth(saslPlain(user, password)), protocol.OpSASLAuth, authenticated)
	case sasl.MechCRAMMD5:
		ch := challenge(auth(""), protocol.OpSASLAuth)
		if !bytes.HasPrefix(ch, []byte("<")) || !bytes.HasSuffix(ch, []byte(">")) || !bytes.Contains(ch, []byte("@")) {
			c.t.Fatalf("%s: challenge %q is not a msg-id", what, ch)
		}
		return end(step(saslCRAMResponse(user, password, ch)), protocol.OpSASLStep, authenticated)
	case sasl.MechSCRAMSHA256:
		sc := newSASLSCRAM(user, password)
		r := auth(sc.first())
		if r.Status == protocol.StatusAuthError {
			// Refused before the proof; this server never does so
			// for a well-formed client-first, but a client may not
			// tell.
			return end(r, protocol.OpSASLAuth, func([]byte) error { return errors.New("success without a proof") })
		}
		final, err := sc.final(string(challenge(r, protocol.OpSASLAuth)))
		if err != nil {
			c.t.Fatalf("%s: %v", what, err)
		}
		return end(step(final), protocol.OpSASLStep, func(b []byte) error { return sc.verify(string(b)) })
	}
	c.t.Fatalf("saslAuth: unknown mechanism %q", mech)
	return 0
}

// saslStats returns the general stats, read over c.
func saslStats(t *testing.T, c *binClient) map[string]string {
	t.Helper()
	return binStatMap(binReadStats(t, c, ""))
}

// ---- flows

// TestSASLMechanisms runs each mechanism's exchange for each kind of user:
// the right password authenticates (and the connection then serves), a
// wrong one or an unknown user is refused, and a refused connection may
// try again on the same connection and succeed.
func TestSASLMechanisms(t *testing.T) {
	_, addr := saslStartNode(t, saslCredentials(t))
	for _, mech := range saslAllMechs {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			t.Run("right password", func(t *testing.T) {
				c := binDial(t, addr)
				if st := c.saslAuth(mech, saslAlice, saslAlicePw); st != protocol.StatusOK {
					t.Fatalf("alice: status %#x, want success", uint16(st))
				}
				c.saslWorks("after success", "k:"+mech)
			})
			t.Run("second user", func(t *testing.T) {
				c := binDial(t, addr)
				if st := c.saslAuth(mech, saslBob, saslBobPw); st != protocol.StatusOK {
					t.Fatalf("bob: status %#x, want success", uint16(st))
				}
				c.saslWorks("after success", "k2:"+mech)
			})
			t.Run("refused then retried", func(t *testing.T) {
				c := binDial(t, addr)
				for _, bad := range []struct{ user, password string }{
					{saslAlice, saslNoSuchPw},
					{saslAlice, saslBobPw}, // another user's password
					{saslAlice, ""},
					{"mallory", saslAlicePw}, // unknown user
					{"Alice", saslAlicePw},   // names compare as bytes
				} {
					if st := c.saslAuth(mech, bad.user, bad.password); st != protocol.StatusAuthError {
						t.Fatalf("%s/%q: status %#x, want Auth failure", bad.user, bad.password, uint16(st))
					}
					c.saslAlive("after a refusal")
				}
				if st := c.saslAuth(mech, saslAlice, saslAlicePw); st != protocol.StatusOK {
					t.Fatalf("retry on the same connection: status %#x, want success", uint16(st))
				}
				c.saslWorks("after the retry", "k3:"+mech)
			})
			t.Run("refused stays unauthenticated", func(t *testing.T) {
				c := binDial(t, addr)
				if st := c.saslAuth(mech, saslAlice, saslNoSuchPw); st != protocol.StatusAuthError {
					t.Fatalf("status %#x, want Auth failure", uint16(st))
				}
				c.saslRefused("after a refusal")
			})
			t.Run("verifier user", func(t *testing.T) {
				c := binDial(t, addr)
				st := c.saslAuth(mech, saslVera, saslVeraPw)
				if mech == sasl.MechCRAMMD5 {
					// CRAM-MD5 needs the password itself.
					if st != protocol.StatusAuthError {
						t.Fatalf("vera: status %#x, want Auth failure", uint16(st))
					}
					c.saslRefused("after the refusal")
					return
				}
				if st != protocol.StatusOK {
					t.Fatalf("vera: status %#x, want success", uint16(st))
				}
				c.saslWorks("after success", "k4:"+mech)
				if st := c.saslAuth(mech, saslVera, saslNoSuchPw); st != protocol.StatusAuthError {
					t.Fatalf("vera with a wrong password: status %#x, want Auth failure", uint16(st))
				}
			})
		})
	}
}

// TestSASLReauthentication: an AUTH on an authenticated connection drops
// the authentication before anything else, so one that fails (or has not
// finished) leaves the connection unauthenticated, and its next command is
// refused and closes it.
func TestSASLReauthentication(t *testing.T) {
	_, addr := saslStartNode(t, saslCredentials(t))
	for _, tc := range []struct {
		name  string
		again func(c *binClient)
	}{
		{"wrong password", func(c *binClient) {
			c.saslExpect("AUTH PLAIN", binReq(protocol.OpSASLAuth, 9, 0, "", "PLAIN", saslPlain(saslAlice, saslNoSuchPw)), protocol.StatusAuthError)
		}},
		{"unknown user", func(c *binClient) {
			c.saslExpect("AUTH PLAIN", binReq(protocol.OpSASLAuth, 9, 0, "", "PLAIN", saslPlain("mallory", saslAlicePw)), protocol.StatusAuthError)
		}},
		{"unknown mechanism", func(c *binClient) {
			c.saslExpect("AUTH DIGEST-MD5", binReq(protocol.OpSASLAuth, 9, 0, "", "DIGEST-MD5", ""), protocol.StatusAuthError)
		}},
		{"mechanism name too long", func(c *binClient) {
			// memcached's MAX_SASL_MECH_LEN: Invalid arguments, and no
			// exchange begins, but the AUTH still ends the old
			// authentication.
			c.saslExpect("AUTH of a 33-byte mechanism", binReq(protocol.OpSASLAuth, 9, 0, "", strings.Repeat("M", 33), "x"), protocol.StatusInvalidArgs)
		}},
		{"data too large", func(c *binClient) {
			// Over half the item size limit: swallowed and answered Out
			// of memory, as memcached does.
			c.saslExpect("AUTH with 600 KiB of data", binReq(protocol.OpSASLAuth, 9, 0, "", "PLAIN", saslPlain(saslAlice, saslAlicePw)+strings.Repeat("x", 600<<10)), protocol.StatusOutOfMemory)
		}},
		{"unfinished CRAM-MD5", func(c *binClient) {
			c.saslExpect("AUTH CRAM-MD5", binReq(protocol.OpSASLAuth, 9, 0, "", "CRAM-MD5", ""), protocol.StatusAuthContinue)
		}},
		{"unfinished SCRAM-SHA-256", func(c *binClient) {
			c.saslExpect("AUTH SCRAM-SHA-256", binReq(protocol.OpSASLAuth, 9, 0, "", "SCRAM-SHA-256", newSASLSCRAM(saslAlice, saslAlicePw).first()), protocol.StatusAuthContinue)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := binDial(t, addr)
			if st := c.saslAuth(sasl.MechPLAIN, saslAlice, saslAlicePw); st != protocol.StatusOK {
				t.Fatalf("status %#x, want success", uint16(st))
			}
			c.saslWorks("authenticated", "re:"+tc.name)
			tc.again(c)
			c.saslRefused("after the second AUTH")
		})
	}
	t.Run("as another user", func(t *testing.T) {
		c := binDial(t, addr)
		for _, u := range []struct{ mech, user, password string }{
			{sasl.MechPLAIN, saslAlice, saslAlicePw},
			{sasl.MechCRAMMD5, saslBob, saslBobPw},
			{sasl.MechSCRAMSHA256, saslVera, saslVeraPw},
			{sasl.MechPLAIN, saslAlice, saslAlicePw},
		} {
			if st := c.saslAuth(u.mech, u.user, u.password); st != protocol.StatusOK {
				t.Fatalf("%s %s: status %#x, want success", u.mech, u.user, uint16(st))
			}
			c.saslWorks("as "+u.user, "re:"+u.user)
		}
	})
}

// TestSASLStepWithoutExchange: a STEP with no exchange under way (none
// begun, one that ended in success or failure, or one of another
// mechanism) fails and authenticates no one, and the connection stays
// open.
func TestSASLStepWithoutExchange(t *testing.T) {
	_, addr := saslStartNode(t, saslCredentials(t))
	stepReq := func(mech, data string) []byte { return binReq(protocol.OpSASLStep, 0x22, 0, "", mech, data) }
	t.Run("none begun", func(t *testing.T) {
		c := binDial(t, addr)
		// Even with a message that would authenticate in an AUTH.
		c.saslExpect("STEP PLAIN", stepReq("PLAIN", saslPlain(saslAlice, saslAlicePw)), protocol.StatusAuthError)
		c.saslAlive("after the STEP")
		c.saslExpect("STEP CRAM-MD5", stepReq("CRAM-MD5", saslAlice+" "+strings.Repeat("0", 32)), protocol.StatusAuthError)
		c.saslExpect("STEP SCRAM-SHA-256", stepReq("SCRAM-SHA-256", newSASLSCRAM(saslAlice, saslAlicePw).first()), protocol.StatusAuthError)
		c.saslAlive("after the STEPs")
		c.saslRefused("after the STEPs")
	})
	t.Run("after a failure", func(t *testing.T) {
		c := binDial(t, addr)
		ch := c.saslExpect("AUTH CRAM-MD5", binReq(protocol.OpSASLAuth, 0x21, 0, "", "CRAM-MD5", ""), protocol.StatusAuthContinue).value
		c.saslExpect("wrong STEP", stepReq("CRAM-MD5", saslCRAMResponse(saslAlice, saslNoSuchPw, ch)), protocol.StatusAuthError)
		// The failed exchange is over: the right answer comes too late.
		c.saslExpect("right STEP after the failure", stepReq("CRAM-MD5", saslCRAMResponse(saslAlice, saslAlicePw, ch)), protocol.StatusAuthError)
		c.saslRefused("after the STEPs")
	})
	t.Run("another mechanism", func(t *testing.T) {
		c := binDial(t, addr)
		ch := c.saslExpect("AUTH CRAM-MD5", binReq(protocol.OpSASLAuth, 0x21, 0, "", "CRAM-MD5", ""), protocol.StatusAuthContinue).value
		c.saslExpect("STEP PLAIN", stepReq("PLAIN", saslPlain(saslAlice, saslAlicePw)), protocol.StatusAuthError)
		// The mismatch ended the CRAM-MD5 exchange too.
		c.saslExpect("STEP CRAM-MD5", stepReq("CRAM-MD5", saslCRAMResponse(saslAlice, saslAlicePw, ch)), protocol.StatusAuthError)
		c.saslRefused("after the STEPs")
	})
	t.Run("after an AUTH refused before it began", func(t *testing.T) {
		c := binDial(t, addr)
		ch := c.saslExpect("AUTH CRAM-MD5", binReq(protocol.OpSASLAuth, 0x21, 0, "", "CRAM-MD5", ""), protocol.StatusAuthContinue).value
		c.saslExpect("AUTH of a 33-byte mechanism", binReq(protocol.OpSASLAuth, 0x21, 0, "", strings.Repeat("M", 33), ""), protocol.StatusInvalidArgs)
		// That AUTH ended the CRAM-MD5 exchange.
		c.saslExpect("STEP CRAM-MD5", stepReq("CRAM-MD5", saslCRAMResponse(saslAlice, saslAlicePw, ch)), protocol.StatusAuthError)
		c.saslRefused("after the STEP")
	})
	t.Run("after success", func(t *testing.T) {
		c := binDial(t, addr)
		if st := c.saslAuth(sasl.MechCRAMMD5, saslAlice, saslAlicePw); st != protocol.StatusOK {
			t.Fatalf("status %#x, want success", uint16(st))
		}
		c.saslExpect("STEP after success", stepReq("CRAM-MD5", saslAlice+" "+strings.Repeat("0", 32)), protocol.StatusAuthError)
		c.saslAlive("after the STEP")
	})
}

// TestSASLUnknownMechanism: AUTH with a mechanism the node does not offer,
// known to package sasl or not, fails and leaves the connection open and
// unauthenticated.
func TestSASLUnknownMechanism(t *testing.T) {
	path := saslCredentials(t)
	_, all := saslStartNode(t, path)
	_, plainOnly := saslStartNode(t, path, "PLAIN")
	for _, tc := range []struct {
		name, addr, mech, data string
	}{
		{"DIGEST-MD5", all, "DIGEST-MD5", ""},
		{"GSSAPI", all, "GSSAPI", "x"},
		{"a prefix", all, "PLAI", saslPlain(saslAlice, saslAlicePw)},
		{"an extension", all, "PLAIN-X", saslPlain(saslAlice, saslAlicePw)},
		{"SCRAM-SHA-1", all, "SCRAM-SHA-1", "n,,n=alice,r=abc"},
		{"CRAM-MD5 not offered", plainOnly, "CRAM-MD5", ""},
		{"SCRAM-SHA-256 not offered", plainOnly, "SCRAM-SHA-256", newSASLSCRAM(saslAlice, saslAlicePw).first()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := binDial(t, tc.addr)
			c.saslExpect("AUTH "+tc.mech, binReq(protocol.OpSASLAuth, 5, 0, "", tc.mech, tc.data), protocol.StatusAuthError)
			c.saslAlive("after the AUTH")
			c.saslRefused("after the AUTH")
		})
	}
	// The node that offers PLAIN alone still authenticates with it.
	c := binDial(t, plainOnly)
	if st := c.saslAuth(sasl.MechPLAIN, saslAlice, saslAlicePw); st != protocol.StatusOK {
		t.Fatalf("PLAIN on the PLAIN-only node: status %#x, want success", uint16(st))
	}
}

// TestSASLListMechs: LIST_MECHS names the mechanisms of SASLMechanisms, in
// its order, in upper case and once each, before and after
// authentication; a mechanism package sasl does not know is a
// configuration error.
func TestSASLListMechs(t *testing.T) {
	path := saslCredentials(t)
	for _, tc := range []struct {
		mechs []string
		want  string
	}{
		{nil, "SCRAM-SHA-256 CRAM-MD5 PLAIN"},
		{[]string{"PLAIN"}, "PLAIN"},
		{[]string{"CRAM-MD5"}, "CRAM-MD5"},
		{[]string{"SCRAM-SHA-256"}, "SCRAM-SHA-256"},
		{[]string{"PLAIN", "SCRAM-SHA-256"}, "PLAIN SCRAM-SHA-256"},
		{[]string{"cram-md5", "Plain", "CRAM-MD5"}, "CRAM-MD5 PLAIN"},
	} {
		t.Run(strings.Join(tc.mechs, ","), func(t *testing.T) {
			_, addr := saslStartNode(t, path, tc.mechs...)
			c := binDial(t, addr)
			list := binReq(protocol.OpSASLListMechs, 0x20, 0, "", "", "")
			want := binResp(protocol.OpSASLListMechs, protocol.StatusOK, 0x20, 0, "", "", tc.want)
			if r := c.saslRoundTrip(list); !bytes.Equal(r.raw, want) {
				t.Fatalf("before AUTH: got %v, want %s", r, binDump([][]byte{want}))
			}
			mech := strings.Fields(tc.want)[0]
			if st := c.saslAuth(mech, saslAlice, saslAlicePw); st != protocol.StatusOK {
				t.Fatalf("%s: status %#x, want success", mech, uint16(st))
			}
			if r := c.saslRoundTrip(list); !bytes.Equal(r.raw, want) {
				t.Fatalf("after AUTH: got %v, want %s", r, binDump([][]byte{want}))
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := newTestServer(Config{SASL: true, SASLPasswordFile: path, SASLMechanisms: []string{"PLAIN", "DIGEST-MD5"}})
		if err := s.Serve(l); err == nil || errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "DIGEST-MD5") {
			t.Errorf("Serve: %v, want an error naming DIGEST-MD5", err)
		}
	})
}

// TestSASLPipelinedRefusal: requests written together before
// authentication are served up to the first refused one; nothing after it
// is read or executed.
func TestSASLPipelinedRefusal(t *testing.T) {
	_, addr := saslStartNode(t, saslCredentials(t))
	c := binDial(t, addr)
	c.check(0, binStep{
		send: binCat(
			binReq(protocol.OpVersion, 1, 0, "", "", ""),
			binReq(protocol.OpSASLListMechs, 2, 0, "", "", ""),
			binReq(protocol.OpSetQ, 3, 0, binStorageExtras(0, 0), "piped", "v"),
			binReq(protocol.OpSASLAuth, 4, 0, "", "PLAIN", saslPlain(saslAlice, saslAlicePw)),
			binReq(protocol.OpSet, 5, 0, binStorageExtras(0, 0), "piped2", "v"),
		),
		want: [][]byte{
			binResp(protocol.OpVersion, protocol.StatusOK, 1, 0, "", "", Version),
			binResp(protocol.OpSASLListMechs, protocol.StatusOK, 2, 0, "", "", "SCRAM-SHA-256 CRAM-MD5 PLAIN"),
			binErr(protocol.OpSetQ, protocol.StatusAuthError, 3),
		},
		end: binEndClosed,
	})
	admin := binDial(t, addr)
	if st := admin.saslAuth(sasl.MechPLAIN, saslAlice, saslAlicePw); st != protocol.StatusOK {
		t.Fatalf("status %#x, want success", uint16(st))
	}
	admin.check(1, binStep{send: binCat(binReq(protocol.OpGetKQ, 1, 0, "", "piped", ""), binReq(protocol.OpGetKQ, 2, 0, "", "piped2", ""))})
	m := saslStats(t, admin)
	if m["cmd_set"] != "0" || m["auth_cmds"] != "1" || m["auth_errors"] != "0" {
		t.Errorf("cmd_set %s auth_cmds %s auth_errors %s, want 0, 1 (the admin's AUTH), 0", m["cmd_set"], m["auth_cmds"], m["auth_errors"])
	}
}

// TestSASLReload: Reload re-reads the credentials file: a user added can
// authenticate, one removed or whose password changed cannot, connections
// authenticated before stay so; a file that does not parse leaves the one
// loaded before.
func TestSASLReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pwdb")
	saslWriteFile(t, path, "alice:old", "carol:carolpw")
	s, addr := saslStartNode(t, path)
	auth := func(mech, user, password string) protocol.BinaryStatus {
		t.Helper()
		return binDial(t, addr).saslAuth(mech, user, password)
	}
	before := binDial(t, addr)
	if st := before.saslAuth(sasl.MechSCRAMSHA256, "carol", "carolpw"); st != protocol.StatusOK {
		t.Fatalf("carol before the reload: status %#x, want success", uint16(st))
	}
	if st := auth(sasl.MechPLAIN, "dave", "davepw"); st != protocol.StatusAuthError {
		t.Fatalf("dave before the reload: status %#x, want Auth failure", uint16(st))
	}

	saslWriteFile(t, path, "alice:new", "dave:davepw")
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, mech := range saslAllMechs {
		for _, tc := range []struct {
			user, password string
			want           protocol.BinaryStatus
		}{
			{"dave", "davepw", protocol.StatusOK},          // added
			{"carol", "carolpw", protocol.StatusAuthError}, // removed
			{"alice", "new", protocol.StatusOK},            // password changed
			{"alice", "old", protocol.StatusAuthError},
		} {
			if st := auth(mech, tc.user, tc.password); st != tc.want {
				t.Errorf("after the reload, %s %s/%s: status %#x, want %#x", mech, tc.user, tc.password, uint16(st), uint16(tc.want))
			}
		}
	}
	// carol's connection authenticated under the old file and stays so.
	before.saslWorks("carol's connection after the reload", "reload:carol")

	saslWriteFile(t, path, "this line has no colon")
	err := s.Reload()
	var pe *sasl.ParseError
	if !errors.As(err, &pe) || strings.Contains(err.Error(), "this line") {
		t.Fatalf("Reload of a bad file: %v, want a *sasl.ParseError that does not quote the line", err)
	}
	if st := auth(sasl.MechPLAIN, "dave", "davepw"); st != protocol.StatusOK {
		t.Errorf("dave after a failed reload: status %#x, want success (the old file kept)", uint16(st))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Errorf("Reload of a missing file: no error")
	}
	if st := auth(sasl.MechCRAMMD5, "alice", "new"); st != protocol.StatusOK {
		t.Errorf("alice after a failed reload: status %#x, want success (the old file kept)", uint16(st))
	}
}

// TestSASLCounters: auth_cmds counts every AUTH and STEP (LIST_MECHS
// not), auth_errors every one that failed; requests refused by the gate
// count in neither.
func TestSASLCounters(t *testing.T) {
	s, addr := saslStartNode(t, saslCredentials(t))
	c := binDial(t, addr)
	type count struct{ cmds, errs int }
	var want count
	add := func(cmds, errs int) { want.cmds += cmds; want.errs += errs }

	c.saslExpect("LIST_MECHS", binReq(protocol.OpSASLListMechs, 1, 0, "", "", ""), protocol.StatusOK)
	c.saslAuth(sasl.MechPLAIN, saslAlice, saslAlicePw) // AUTH
	add(1, 0)
	c.saslAuth(sasl.MechPLAIN, saslAlice, saslNoSuchPw)
	add(1, 1)
	c.saslAuth(sasl.MechCRAMMD5, saslAlice, saslAlicePw) // AUTH, STEP
	add(2, 0)
	c.saslAuth(sasl.MechCRAMMD5, "mallory", saslAlicePw)
	add(2, 1)
	c.saslAuth(sasl.MechSCRAMSHA256, saslVera, saslVeraPw) // AUTH, STEP
	add(2, 0)
	c.saslAuth(sasl.MechSCRAMSHA256, saslAlice, saslNoSuchPw)
	add(2, 1)
	c.saslAuth(sasl.MechCRAMMD5, saslVera, saslVeraPw) // a verifier user
	add(2, 1)
	c.saslExpect("STEP without AUTH", binReq(protocol.OpSASLStep, 1, 0, "", "PLAIN", saslPlain(saslAlice, saslAlicePw)), protocol.StatusAuthError)
	add(1, 1)
	c.saslExpect("AUTH DIGEST-MD5", binReq(protocol.OpSASLAuth, 1, 0, "", "DIGEST-MD5", ""), protocol.StatusAuthError)
	add(1, 1)
	for range 3 {
		g := binDial(t, addr)
		g.saslRefused("unauthenticated")
	}
	if st := c.saslAuth(sasl.MechPLAIN, saslBob, saslBobPw); st != protocol.StatusOK {
		t.Fatalf("status %#x, want success", uint16(st))
	}
	add(1, 0)

	wantCmds, wantErrs := strconv.Itoa(want.cmds), strconv.Itoa(want.errs)
	m := saslStats(t, c)
	if m["auth_cmds"] != wantCmds || m["auth_errors"] != wantErrs {
		t.Errorf("binary stats: auth_cmds %s, auth_errors %s; want %s, %s", m["auth_cmds"], m["auth_errors"], wantCmds, wantErrs)
	}
	got := map[string]string{}
	for _, st := range s.Stats() {
		got[st.Name] = st.Value
	}
	if got["auth_cmds"] != wantCmds || got["auth_errors"] != wantErrs {
		t.Errorf("Server.Stats: auth_cmds %s, auth_errors %s; want %s, %s", got["auth_cmds"], got["auth_errors"], wantCmds, wantErrs)
	}
	if m := binStatMap(binReadStats(t, c, "settings")); m["auth_enabled_sasl"] != "yes" {
		t.Errorf("auth_enabled_sasl = %q, want yes", m["auth_enabled_sasl"])
	}
	// stats reset zeroes them, as memcached's does.
	binReadStats(t, c, "reset")
	if m := saslStats(t, c); m["auth_cmds"] != "0" || m["auth_errors"] != "0" {
		t.Errorf("after stats reset: auth_cmds %s, auth_errors %s; want 0, 0", m["auth_cmds"], m["auth_errors"])
	}
}

// ---- the gate

// saslGateState is where a connection stands when a request reaches the
// gate.
type saslGateState struct {
	name string
	// enter brings a fresh connection into the state and returns the
	// number of AUTH and STEP requests it took and how many failed.
	enter func(c *binClient) (cmds, errs int)
	// step is the STEP the state is sent as its 0x22: one that fails.
	step []byte
}

var saslGateStates = []saslGateState{
	{"fresh", func(c *binClient) (int, int) { return 0, 0 },
		binReq(protocol.OpSASLStep, 0x22, 0, "", "PLAIN", saslPlain(saslAlice, saslAlicePw))},
	{"after a failed AUTH", func(c *binClient) (int, int) {
		c.saslExpect("failed AUTH", binReq(protocol.OpSASLAuth, 1, 0, "", "PLAIN", saslPlain(saslAlice, saslNoSuchPw)), protocol.StatusAuthError)
		return 1, 1
	}, binReq(protocol.OpSASLStep, 0x22, 0, "", "PLAIN", saslPlain(saslAlice, saslAlicePw))},
	{"in CRAM-MD5", func(c *binClient) (int, int) {
		c.saslExpect("AUTH CRAM-MD5", binReq(protocol.OpSASLAuth, 1, 0, "", "CRAM-MD5", ""), protocol.StatusAuthContinue)
		return 1, 0
	}, binReq(protocol.OpSASLStep, 0x22, 0, "", "CRAM-MD5", saslAlice+" "+strings.Repeat("0", 32))},
	{"in SCRAM-SHA-256", func(c *binClient) (int, int) {
		c.saslExpect("AUTH SCRAM-SHA-256", binReq(protocol.OpSASLAuth, 1, 0, "", "SCRAM-SHA-256", newSASLSCRAM(saslVera, saslVeraPw).first()), protocol.StatusAuthContinue)
		return 1, 0
	}, binReq(protocol.OpSASLStep, 0x22, 0, "", "SCRAM-SHA-256", "c=biws,r=not-the-nonce,p="+base64.StdEncoding.EncodeToString(make([]byte, 32)))},
}

// The items the gate test sets up, and must find as they were.
const (
	saslGateKnown      = "gate:known"
	saslGateKnownValue = "known value"
	saslGateKnownFlags = 0xdeadbeef
	saslGateCounter    = "gate:counter"
)

// saslGateRequest is a well-formed request of opcode op, shaped as
// memcached expects it, aimed where executing it would leave a trace: the
// known item or the counter, or fresh (a key of its own, which must never
// come to exist).
func saslGateRequest(op protocol.BinaryOpcode, opaque uint32, fresh string) []byte {
	se := binStorageExtras(0x0bad, 0)
	switch op {
	case protocol.OpGet, protocol.OpGetQ, protocol.OpGetK, protocol.OpGetKQ, protocol.OpDelete, protocol.OpDeleteQ:
		return binReq(op, opaque, 0, "", saslGateKnown, "")
	case protocol.OpSet, protocol.OpSetQ, protocol.OpAdd, protocol.OpAddQ:
		return binReq(op, opaque, 0, se, fresh, "executed")
	case protocol.OpReplace, protocol.OpReplaceQ:
		return binReq(op, opaque, 0, se, saslGateKnown, "executed")
	case protocol.OpAppend, protocol.OpAppendQ, protocol.OpPrepend, protocol.OpPrependQ:
		return binReq(op, opaque, 0, "", saslGateKnown, "executed")
	case protocol.OpIncrement, protocol.OpIncrementQ, protocol.OpDecrement, protocol.OpDecrementQ:
		return binReq(op, opaque, 0, binCounterExtras(1000, 0, 0), saslGateCounter, "")
	case protocol.OpTouch, protocol.OpGAT, protocol.OpGATQ, protocol.OpGATK, protocol.OpGATKQ:
		return binReq(op, opaque, 0, binExptimeExtras(1), saslGateKnown, "")
	case protocol.OpStat:
		return binReq(op, opaque, 0, "", "reset", "")
	case protocol.OpFlush, protocol.OpFlushQ, protocol.OpNoop, protocol.OpQuit, protocol.OpQuitQ:
		return binReq(op, opaque, 0, "", "", "")
	case protocol.OpVerbosity:
		return binReq(op, opaque, 0, binExptimeExtras(3), "", "")
	}
	// An opcode memcached does not serve: a key and a small value.
	return binReq(op, opaque, 0, "", fresh, "executed")
}

// TestSASLGate sends every opcode, 0x00 to 0xff, as a well-formed request
// on a fresh connection in each of saslGateStates. Every one but the SASL
// opcodes and Version is answered with exactly one packet, Auth failure,
// and the connection closed; the four exempt ones are answered and the
// connection goes on (still unauthenticated). Then, over an authenticated
// connection: nothing executed (the known item and the counter are as
// they were, no fresh key exists, nothing was flushed, the settings did
// not change) and no statistic moved but those the attempts explain.
func TestSASLGate(t *testing.T) {
	_, addr := saslStartNode(t, saslCredentials(t))
	admin := binDial(t, addr)
	if st := admin.saslAuth(sasl.MechPLAIN, saslAlice, saslAlicePw); st != protocol.StatusOK {
		t.Fatalf("admin: status %#x, want success", uint16(st))
	}
	admin.saslExpect("set the known item", binReq(protocol.OpSet, 1, 0, binStorageExtras(saslGateKnownFlags, 0), saslGateKnown, saslGateKnownValue), protocol.StatusOK)
	admin.saslExpect("set the counter", binReq(protocol.OpSet, 1, 0, binStorageExtras(0, 0), saslGateCounter, "42"), protocol.StatusOK)
	statsBefore := saslStats(t, admin)
	settingsBefore := binStatMap(binReadStats(t, admin, "settings"))

	var wantCmds, wantErrs int
	start := time.Now()
	for si, state := range saslGateStates {
		for op := range 256 {
			op := protocol.BinaryOpcode(op)
			opaque := uint32(si)<<16 | uint32(op)<<8 | 0xa5
			what := fmt.Sprintf("%s, opcode %#02x (%v)", state.name, uint8(op), op)
			saslGateAttempt(t, addr, what, state, op, opaque, saslGateFresh(si, op), &wantCmds, &wantErrs)
		}
	}
	elapsed := time.Since(start)

	statsAfter := saslStats(t, admin)
	volatile := map[string]bool{
		"uptime": true, "time": true, "rusage_user": true, "rusage_system": true,
		"curr_connections": true, "total_connections": true, "connection_structures": true,
		"bytes_read": true, "bytes_written": true,
		"auth_cmds": true, "auth_errors": true, // checked below
	}
	for name, before := range statsBefore {
		if after := statsAfter[name]; !volatile[name] && after != before {
			t.Errorf("stat %s: %s before the attempts, %s after", name, before, after)
		}
	}
	for _, name := range []string{"cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "curr_items", "auth_cmds", "auth_errors"} {
		if _, ok := statsAfter[name]; !ok {
			t.Errorf("stat %s missing", name)
		}
	}
	if statsBefore["curr_items"] != "2" || statsBefore["cmd_set"] != "2" {
		t.Errorf("before the attempts: curr_items %s cmd_set %s, want 2, 2", statsBefore["curr_items"], statsBefore["cmd_set"])
	}
	delta := func(name string) int {
		a, _ := strconv.Atoi(statsAfter[name])
		b, _ := strconv.Atoi(statsBefore[name])
		return a - b
	}
	if got, want := delta("total_connections"), 256*len(saslGateStates); got != want {
		t.Errorf("total_connections grew by %d, want %d", got, want)
	}
	if delta("auth_cmds") != wantCmds || delta("auth_errors") != wantErrs {
		t.Errorf("auth_cmds grew by %d, auth_errors by %d; want %d, %d", delta("auth_cmds"), delta("auth_errors"), wantCmds, wantErrs)
	}
	if settingsAfter := binStatMap(binReadStats(t, admin, "settings")); !maps.Equal(settingsAfter, settingsBefore) {
		for name, before := range settingsBefore {
			if settingsAfter[name] != before {
				t.Errorf("setting %s: %s before the attempts, %s after", name, before, settingsAfter[name])
			}
		}
	}

	// The items as they were.
	r := admin.saslExpect("Get the known item", binReq(protocol.OpGetK, 1, 0, "", saslGateKnown, ""), protocol.StatusOK)
	if string(r.value) != saslGateKnownValue || binary.BigEndian.Uint32(r.extras) != saslGateKnownFlags {
		t.Errorf("the known item is now %v, want %q with flags %#x", r, saslGateKnownValue, saslGateKnownFlags)
	}
	r = admin.saslExpect("Get the counter", binReq(protocol.OpGet, 1, 0, "", saslGateCounter, ""), protocol.StatusOK)
	if string(r.value) != "42" {
		t.Errorf("the counter is now %v, want 42", r)
	}
	// No fresh key exists: the GetKQs are silent.
	var gets []byte
	for si := range saslGateStates {
		for op := range 256 {
			gets = binCat(gets, binReq(protocol.OpGetKQ, uint32(op), 0, "", saslGateFresh(si, protocol.BinaryOpcode(op)), ""))
		}
	}
	admin.check(0, binStep{send: gets, end: binEndSync})
	if m := saslStats(t, admin); m["curr_items"] != "2" {
		t.Errorf("curr_items %s at the end, want 2", m["curr_items"])
	}
	t.Logf("%d attempts in %v", 256*len(saslGateStates), elapsed.Round(time.Millisecond))
}

// saslGateFresh is the fresh key of the attempt of op in the state
// numbered si.
func saslGateFresh(si int, op protocol.BinaryOpcode) string {
	return fmt.Sprintf("gate:%d:%02x", si, uint8(op))
}

// saslGateAttempt makes one attempt of TestSASLGate on a connection of
// its own, closed before it returns, and adds the AUTH and STEP requests it
// sent, and those that failed, to cmds and errs.
func saslGateAttempt(t *testing.T, addr, what string, state saslGateState, op protocol.BinaryOpcode, opaque uint32, fresh string, cmds, errs *int) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer nc.Close()
	c := &binClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	n, e := state.enter(c)
	*cmds += n
	*errs += e
	switch op {
	case protocol.OpVersion:
		if r := c.saslExpect(what, binReq(op, opaque, 0, "", "", ""), protocol.StatusOK); string(r.value) != Version {
			t.Fatalf("%s: got %v", what, r)
		}
	case protocol.OpSASLListMechs:
		if r := c.saslExpect(what, binReq(op, opaque, 0, "", "", ""), protocol.StatusOK); string(r.value) != strings.Join(saslAllMechs, " ") {
			t.Fatalf("%s: got %v", what, r)
		}
	case protocol.OpSASLAuth:
		c.saslExpect(what, binReq(op, opaque, 0, "", "PLAIN", saslPlain(saslAlice, saslNoSuchPw)), protocol.StatusAuthError)
		*cmds, *errs = *cmds+1, *errs+1
	case protocol.OpSASLStep:
		c.saslExpect(what, state.step, protocol.StatusAuthError)
		*cmds, *errs = *cmds+1, *errs+1
	default:
		req := saslGateRequest(op, opaque, fresh)
		if _, err := nc.Write(req); err != nil {
			t.Fatalf("%s: write: %v", what, err)
		}
		p, err := c.readPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v, want Auth failure", what, err)
		}
		if want := binErr(op, protocol.StatusAuthError, opaque); !bytes.Equal(p, want) {
			t.Fatalf("%s:\n got %s\nwant %s", what, binDump([][]byte{p}), binDump([][]byte{want}))
		}
		c.saslClosed(what)
		return
	}
	// An exempt opcode: the connection goes on, unauthenticated.
	c.saslAlive(what)
	c.saslRefused(what)
}
