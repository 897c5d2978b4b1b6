package sasl

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// RFC 7677's example, byte for byte, through the public API.
func TestSCRAMRFC7677(t *testing.T) {
	db := testDB(t)
	s, err := (&Config{Rand: nonceRand(rfc7677ServerNonce)}).NewServer(MechSCRAMSHA256, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		in, out string
		done    bool
	}{
		{rfc7677First, rfc7677ServerFirst, false},
		{rfc7677Final, rfc7677ServerFinal, true},
	} {
		out, done, err := s.Step([]byte(step.in))
		if err != nil || done != step.done || string(out) != step.out {
			t.Fatalf("Step(%q) = %q, %v, %v; want %q, %v", step.in, out, done, err, step.out, step.done)
		}
	}
	if s.Username() != rfc7677User {
		t.Errorf("Username() = %q", s.Username())
	}
}

// The test's own client agrees with RFC 7677 too.
func TestSCRAMTestClient(t *testing.T) {
	c := &scramClient{user: rfc7677User, password: rfc7677Password, cnonce: rfc7677ClientNonce}
	if got := c.first(); got != rfc7677First {
		t.Fatalf("first: got %q", got)
	}
	final, err := c.final(rfc7677ServerFirst)
	if err != nil || final != rfc7677Final || c.serverSig != rfc7677ServerFinal {
		t.Fatalf("final: got %q, %q, %v", final, c.serverSig, err)
	}
}

func TestSCRAMUsers(t *testing.T) {
	db := testDB(t)
	for user, password := range testPasswords {
		for _, gs2 := range []string{"n,,", "y,,", "n,a=" + escapeSaslname(user) + ","} {
			c := &scramClient{gs2: gs2, user: user, password: password}
			if err := scramExchange(t, db, c); err != nil {
				t.Errorf("%q %s: %v", user, gs2, err)
			}
			c = &scramClient{gs2: gs2, user: user, password: password + "x"}
			if err := scramExchange(t, db, c); err != ErrAuthFailed {
				t.Errorf("%q %s, wrong password: got %v, want ErrAuthFailed", user, gs2, err)
			}
		}
	}
	if err := scramExchange(t, db, &scramClient{user: "nobody", password: "pencil"}); err != ErrAuthFailed {
		t.Errorf("unknown user: got %v, want ErrAuthFailed", err)
	}
}

// An unknown user's server-first message looks like a known user's: a salt
// that stays the same from one exchange to the next, and the iteration
// count most users have.
func TestSCRAMUnknownUserLooksKnown(t *testing.T) {
	serverFirst := func(creds Credentials, user string) (salt, iter string) {
		s, _ := NewServer(MechSCRAMSHA256, creds)
		sf := string(mustStep(t, s, "n,,n="+escapeSaslname(user)+",r=abc"))
		attrs := strings.Split(sf, ",")
		if len(attrs) != 3 || len(attrs[0]) != 2+3+serverNonceLen {
			t.Fatalf("server-first %q", sf)
		}
		return attrs[1], attrs[2]
	}
	db := testDB(t)
	for _, user := range []string{"nobody", "pw", "user"} {
		s1, i1 := serverFirst(db, user)
		s2, i2 := serverFirst(db, user)
		if s1 != s2 || i1 != i2 {
			t.Errorf("%s: salt or count changed: %s %s, %s %s", user, s1, i1, s2, i2)
		}
		if i1 != "i=4096" {
			t.Errorf("%s: %s", user, i1)
		}
		if len(mustDecode(s1[2:])) != SaltLen {
			t.Errorf("%s: salt %s", user, s1)
		}
	}
	if a, _ := serverFirst(db, "nobody"); a == func() string { b, _ := serverFirst(db, "nobody2"); return b }() {
		t.Error("two unknown users share a salt")
	}

	// A file of verifiers with 8192 iterations hides unknown users
	// behind 8192 iterations.
	v, err := NewSCRAMVerifier("pencil", 8192, nil)
	if err != nil {
		t.Fatal(err)
	}
	vdb, err := ParseCredentials(strings.NewReader("a:" + v + "\nb:" + v + "\nc:pencil\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, iter := serverFirst(vdb, "nobody"); iter != "i=8192" {
		t.Errorf("unknown user in a verifier file: %s, want i=8192", iter)
	}
	if err := scramExchange(t, vdb, &scramClient{user: "nobody", password: "pencil"}); err != ErrAuthFailed {
		t.Errorf("unknown user: got %v", err)
	}
	if err := scramExchange(t, vdb, &scramClient{user: "a", password: "pencil"}); err != nil {
		t.Errorf("a: %v", err)
	}
}

func TestSCRAMClientFirst(t *testing.T) {
	db := testDB(t)
	long := strings.Repeat("u", MaxUsernameLen+1)
	for _, tc := range []struct {
		name string
		msg  string
		err  error // nil: accepted
	}{
		{"plain", "n,,n=user,r=abc", nil},
		{"y flag", "y,,n=user,r=abc", nil},
		{"authzid", "n,a=user,n=user,r=abc", nil},
		{"escaped authzid", "n,a=us=2Cer=3Dx,n=us=2Cer=3Dx,r=abc", nil},
		{"extension", "n,,n=user,r=abc,x=1,Y=a=b", nil},
		{"unknown user", "n,,n=nobody,r=abc", nil},
		{"longest nonce", "n,,n=user,r=" + strings.Repeat("~", MaxNonceLen), nil},
		{"UTF-8 user", "n,,n=us\u00e9r,r=abc", nil},

		{"channel binding", "p=tls-unique,,n=user,r=abc", ErrUnsupported},
		{"mandatory extension", "n,,m=foo,n=user,r=abc", ErrUnsupported},
		{"authzid other", "n,a=tim,n=user,r=abc", ErrAuthFailed},
		{"authzid escaped other", "n,a=us=2Cer,n=us=2Cer=3Dx,r=abc", ErrAuthFailed},

		{"empty", "", nil}, // an empty initial response: answered with an empty challenge
		{"bad flag", "x,,n=user,r=abc", ErrMalformed},
		{"flag without comma", "n", ErrMalformed},
		{"p without =", "p,,n=user,r=abc", ErrMalformed},
		{"no gs2 header", "n=user,r=abc", ErrMalformed},
		{"one comma", "n,n=user,r=abc", ErrMalformed},
		{"empty authzid", "n,a=,n=user,r=abc", ErrMalformed},
		{"authzid unterminated", "n,a=user", ErrMalformed},
		{"other gs2 attribute", "n,b=user,n=user,r=abc", ErrMalformed},
		{"no n=", "n,,r=abc", ErrMalformed},
		{"empty user", "n,,n=,r=abc", ErrMalformed},
		{"no r=", "n,,n=user", ErrMalformed},
		{"r= first", "n,,r=abc,n=user", ErrMalformed},
		{"empty nonce", "n,,n=user,r=", ErrMalformed},
		{"nonce too long", "n,,n=user,r=" + strings.Repeat("~", MaxNonceLen+1), ErrMalformed},
		{"nonce with space", "n,,n=user,r=a b", ErrMalformed},
		{"nonce with DEL", "n,,n=user,r=a\x7f", ErrMalformed},
		{"bad escape", "n,,n=us=2cer,r=abc", ErrMalformed},
		{"bare =", "n,,n=us=er,r=abc", ErrMalformed},
		{"= at end", "n,,n=user=,r=abc", ErrMalformed},
		{"= 2 at end", "n,,n=user=2,r=abc", ErrMalformed},
		{"NUL in user", "n,,n=us\x00er,r=abc", ErrMalformed},
		{"user not UTF-8", "n,,n=us\xffer,r=abc", ErrMalformed},
		{"user too long", "n,,n=" + long + ",r=abc", ErrMalformed},
		{"escaped user too long", "n,,n=" + strings.Repeat("=2C", MaxUsernameLen+1) + ",r=abc", ErrMalformed},
		{"authzid too long", "n,a=" + long + ",n=user,r=abc", ErrMalformed},
		{"empty extension", "n,,n=user,r=abc,", ErrMalformed},
		{"extension without value", "n,,n=user,r=abc,x=", ErrMalformed},
		{"extension long name", "n,,n=user,r=abc,xy=1", ErrMalformed},
		{"extension digit name", "n,,n=user,r=abc,1=1", ErrMalformed},
		{"repeated r", "n,,n=user,r=abc,r=def", ErrMalformed},
		{"proof in first", "n,,n=user,r=abc,p=abc", ErrMalformed},
		{"NUL in extension", "n,,n=user,r=abc,x=\x00", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := NewServer(MechSCRAMSHA256, db)
			out, done, err := s.Step([]byte(tc.msg))
			if !errors.Is(err, tc.err) || done {
				t.Fatalf("got %q, %v, %v; want %v", out, done, err, tc.err)
			}
			if tc.err == nil && tc.msg != "" && !strings.HasPrefix(string(out), "r=") {
				t.Errorf("server-first %q", out)
			}
		})
	}
}

func TestSCRAMClientFinal(t *testing.T) {
	db := testDB(t)
	run := func(t *testing.T, c *scramClient, final func(good string) string) ([]byte, error) {
		t.Helper()
		s, _ := NewServer(MechSCRAMSHA256, db)
		sf := mustStep(t, s, c.first())
		good, err := c.final(string(sf))
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := s.Step([]byte(final(good)))
		if (err == nil) != done {
			t.Fatalf("done %v with error %v", done, err)
		}
		return out, err
	}
	same := func(good string) string { return good }
	replace := func(old, new string) func(string) string {
		return func(good string) string { return strings.Replace(good, old, new, 1) }
	}
	nonce := func(good string) string { return strings.Split(good, ",")[1] }
	proof := func(good string) string { parts := strings.Split(good, ","); return parts[len(parts)-1] }

	for _, tc := range []struct {
		name   string
		gs2    string
		final  func(string) string
		err    error
		withXt bool // the client sends an extension
	}{
		{name: "good", final: same},
		{name: "good y", gs2: "y,,", final: same},
		{name: "good authzid", gs2: "n,a=user,", final: same},
		{name: "extension", final: same, withXt: true},

		{name: "c= of n,, after y,,", gs2: "y,,", final: replace("c=eSws", "c=biws"), err: ErrMalformed},
		{name: "c= of y,, after n,,", final: replace("c=biws", "c=eSws"), err: ErrMalformed},
		{name: "c= without authzid", gs2: "n,a=user,", final: func(g string) string {
			return "c=biws" + g[strings.IndexByte(g, ','):]
		}, err: ErrMalformed},
		{name: "c= not base64", final: replace("c=biws", "c=b!ws"), err: ErrMalformed},
		{name: "c= non-canonical", final: replace("c=biws", "c=biwt"), err: ErrMalformed},
		{name: "empty c=", final: replace("c=biws", "c="), err: ErrMalformed},
		{name: "no c=", final: replace("c=biws,", ""), err: ErrMalformed},
		{name: "nonce of client only", final: func(g string) string {
			return strings.Replace(g, nonce(g), "r=fyko+d2lbbFgONRv9qkxdawL", 1)
		}, err: ErrMalformed},
		{name: "nonce changed", final: func(g string) string { return strings.Replace(g, nonce(g), nonce(g)+"x", 1) }, err: ErrMalformed},
		{name: "no r=", final: func(g string) string { return strings.Replace(g, nonce(g)+",", "", 1) }, err: ErrMalformed},
		{name: "no proof", final: func(g string) string { return strings.TrimSuffix(g, ","+proof(g)) }, err: ErrMalformed},
		{name: "proof not last", final: func(g string) string { return strings.TrimSuffix(g, ","+proof(g)) + "," + proof(g) + ",x=1" }, err: ErrMalformed},
		{name: "two proofs", final: func(g string) string { return g + "," + proof(g) }, err: ErrMalformed},
		{name: "short proof", final: func(g string) string { return strings.Replace(g, proof(g), "p=AAAA", 1) }, err: ErrMalformed},
		{name: "proof not base64", final: func(g string) string { return strings.Replace(g, proof(g), "p=!"+proof(g)[3:], 1) }, err: ErrMalformed},
		{name: "proof with LF", final: func(g string) string { return strings.Replace(g, proof(g), proof(g)[:10]+"\n"+proof(g)[10:], 1) }, err: ErrMalformed},
		{name: "wrong proof", final: func(g string) string {
			return strings.Replace(g, proof(g), "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 1)
		}, err: ErrAuthFailed},
		{name: "extension added after proof made", final: func(g string) string {
			return strings.TrimSuffix(g, ","+proof(g)) + ",x=1," + proof(g)
		}, err: ErrAuthFailed},
		{name: "empty", final: func(string) string { return "" }, err: ErrMalformed},
		{name: "client-first again", final: func(string) string { return "n,,n=user,r=abc" }, err: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &scramClient{gs2: tc.gs2, user: rfc7677User, password: rfc7677Password}
			if tc.withXt {
				s, _ := NewServer(MechSCRAMSHA256, db)
				sf := mustStep(t, s, c.first())
				msg, _ := c.final(string(sf), "x=ext")
				out, done, err := s.Step([]byte(msg))
				if err != nil || !done || string(out) != c.serverSig {
					t.Fatalf("got %q, %v, %v", out, done, err)
				}
				return
			}
			out, err := run(t, c, tc.final)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %q, %v; want %v", out, err, tc.err)
			}
			if err == nil && string(out) != c.serverSig {
				t.Errorf("server-final %q, want %q", out, c.serverSig)
			}
		})
	}
}

// Without an initial response SCRAM asks with an empty challenge, once.
func TestSCRAMNoInitialResponse(t *testing.T) {
	s, _ := (&Config{Rand: nonceRand(rfc7677ServerNonce)}).NewServer(MechSCRAMSHA256, testDB(t))
	if ch := mustStep(t, s, ""); ch == nil || len(ch) != 0 {
		t.Fatalf("got %q, want an empty challenge", ch)
	}
	if sf := mustStep(t, s, rfc7677First); string(sf) != rfc7677ServerFirst {
		t.Fatalf("got %q", sf)
	}
	if sv := mustStep(t, s, rfc7677Final); string(sv) != rfc7677ServerFinal {
		t.Fatalf("got %q", sv)
	}

	s, _ = NewServer(MechSCRAMSHA256, testDB(t))
	mustStep(t, s, "")
	if _, _, err := s.Step(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("second empty message: got %v, want ErrMalformed", err)
	}
}

func TestSCRAMServerNonce(t *testing.T) {
	// Bytes at or above 186 are skipped, so that each of the 93 characters
	// is as likely; b and b+93 give the same character.
	mixed := []byte{}
	for _, b := range nonceBytes(rfc7677ServerNonce) {
		mixed = append(mixed, 200, b+93*(b%2))
	}
	got, err := serverNonce(bytes.NewReader(mixed))
	if err != nil || got != rfc7677ServerNonce {
		t.Errorf("got %q, %v; want %q", got, err, rfc7677ServerNonce)
	}
	if _, err := serverNonce(bytes.NewReader(bytes.Repeat([]byte{255}, 1<<16))); err == nil {
		t.Error("a source of 255s gave a nonce")
	}
	for _, r := range []io.Reader{iotest.ErrReader(errors.New("broken")), strings.NewReader("short")} {
		s, _ := (&Config{Rand: r}).NewServer(MechSCRAMSHA256, nil)
		if _, _, err := s.Step([]byte(rfc7677First)); err == nil || errors.Is(err, ErrMalformed) || errors.Is(err, ErrAuthFailed) {
			t.Errorf("broken Rand: got %v, want its error", err)
		}
	}
	seen := map[string]bool{}
	for range 100 {
		n, err := serverNonce(rand.Reader)
		if err != nil || len(n) != serverNonceLen || !validNonce(n) || seen[n] {
			t.Fatalf("nonce %q, %v", n, err)
		}
		seen[n] = true
	}
}
