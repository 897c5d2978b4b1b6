package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// The fuzz targets check that no input panics and that none authenticates
// without the user's password.

func FuzzPLAIN(f *testing.F) {
	for user, pw := range testPasswords {
		f.Add(plainMessage("", user, pw))
		f.Add(plainMessage(user, user, pw+"x"))
	}
	for _, s := range []string{"", "\x00", "\x00\x00", "\x00\x00\x00", "a\x00b\x00c\x00d", "\x00pw\x00pencil\x00",
		"\x00nobody\x00pencil", "tim\x00pw\x00pencil", "\x00user\x00" + strings.Repeat("p", 1024)} {
		f.Add([]byte(s))
	}
	db := testDB(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _ := NewServer(MechPLAIN, db)
		in := bytes.Clone(msg)
		ch, done, err := s.Step(msg)
		if !bytes.Equal(in, msg) {
			t.Fatal("Step changed its argument")
		}
		if err == nil && !done {
			if len(msg) != 0 || ch == nil || len(ch) != 0 {
				t.Fatalf("not done, no error, on %q: challenge %q", msg, ch)
			}
			_, done, err = s.Step(msg)
			if err == nil {
				t.Fatal("second empty message accepted")
			}
		}
		if err != nil {
			if done || s.Username() != "" {
				t.Fatalf("error %v with done %v, user %q", err, done, s.Username())
			}
			return
		}
		user := s.Username()
		parts := bytes.Split(msg, []byte{0})
		pw, known := testPasswords[user]
		if !known || len(parts) != 3 || string(parts[1]) != user || string(parts[2]) != pw ||
			(len(parts[0]) != 0 && string(parts[0]) != user) {
			t.Fatalf("%q authenticated as %q", msg, user)
		}
	})
}

func FuzzCRAMMD5(f *testing.F) {
	for user, pw := range testPasswords {
		f.Add([]byte(user + " " + cramDigest(pw, rfc2195Challenge)))
	}
	for _, s := range []string{"", " ", "tim ", "tim b913a602c7eda7a495b4e6e7334d389", "tim B913A602C7EDA7A495B4E6E7334D3890",
		" b913a602c7eda7a495b4e6e7334d3890", "tim  b913a602c7eda7a495b4e6e7334d3890", "tim\x00 b913a602c7eda7a495b4e6e7334d3890"} {
		f.Add([]byte(s))
	}
	db := testDB(f)
	f.Fuzz(func(t *testing.T, resp []byte) {
		s, _ := rfc2195Config().NewServer(MechCRAMMD5, db)
		if ch := mustStep(t, s, ""); string(ch) != rfc2195Challenge {
			t.Fatalf("challenge %q", ch)
		}
		_, done, err := s.Step(resp)
		if err != nil {
			if done || s.Username() != "" {
				t.Fatalf("error %v with done %v, user %q", err, done, s.Username())
			}
			return
		}
		user := s.Username()
		pw, known := testPasswords[user]
		e, _ := db.Lookup(user)
		if !done || !known || e.IsVerifier() ||
			!strings.EqualFold(string(resp), user+" "+cramDigest(pw, rfc2195Challenge)) {
			t.Fatalf("%q authenticated as %q", resp, user)
		}
	})
}

func FuzzSCRAMClientFirst(f *testing.F) {
	for _, s := range []string{rfc7677First, "y,,n=user,r=abc", "n,a=user,n=user,r=abc,x=y", "n,,n=us=2Cer=3Dx,r=a",
		"p=tls-unique,,n=user,r=abc", "n,,m=x,n=user,r=abc", "n,a=tim,n=user,r=abc", "n,,n=pw,r=~", "n,,n=nobody,r=abc",
		"n,,n=with space,r=!", "n,,n=user=,r=abc", "n,,n=user,r=a,b", "", "n", "n,", "n,,", "n,,n=", "n,,n=a,r="} {
		f.Add([]byte(s))
	}
	db := testDB(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		srv, _ := NewServer(MechSCRAMSHA256, db)
		sf, done, err := srv.Step(msg)
		if done {
			t.Fatalf("done after %q", msg)
		}
		if err != nil || len(msg) == 0 {
			return
		}
		s := srv.(*server).impl.(*scramServer)
		attrs := strings.Split(string(sf), ",")
		if len(attrs) != 3 || attrs[0] != "r="+s.nonce || !validNonce(s.nonce) || !strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
			t.Fatalf("server-first %q after %q", sf, msg)
		}
		if bare := strings.TrimSuffix(s.authPrefix, ","+string(sf)); !bytes.HasSuffix(msg, []byte(bare)) || len(bare) == len(s.authPrefix) {
			t.Fatalf("client-first-message-bare %q is no suffix of %q", s.authPrefix, msg)
		}
		pw, known := testPasswords[s.user]
		if !known {
			pw = "pencil" // a known user's password must not open an unknown user
		}
		for _, try := range []string{pw + "x", pw} {
			srv2 := *srv.(*server)
			impl := *s
			srv2.impl = &impl
			salt, _ := base64.StdEncoding.DecodeString(attrs[1][2:])
			final, sig := testClientFinal(t, try, salt, s.iter, "c="+s.cbind+","+attrs[0], s.authPrefix)
			out, done, err := srv2.Step([]byte(final))
			wantOK := known && try == pw
			if (err == nil) != wantOK || done != wantOK {
				t.Fatalf("user %q (known %v), password ok %v: got %v, %v", s.user, known, try == pw, done, err)
			}
			if wantOK && string(out) != sig {
				t.Fatalf("server-final %q, want %q", out, sig)
			}
		}
	})
}

// testClientFinal returns the client-final message and the server-final
// message due, for a password and the message so far.
func testClientFinal(t *testing.T, password string, salt []byte, iter int, withoutProof, authPrefix string) (final, serverFinal string) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	return proveWith(salted, withoutProof, authPrefix)
}

func proveWith(salted []byte, withoutProof, authPrefix string) (final, serverFinal string) {
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	authMessage := authPrefix + "," + withoutProof
	proof := mac(storedKey[:], authMessage)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof),
		"v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
}

func FuzzSCRAMClientFinal(f *testing.F) {
	const nonce = "r=" + rfc7677ClientNonce + rfc7677ServerNonce
	for _, s := range []string{rfc7677Final, "c=biws," + nonce + ",x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=eSws," + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "c=biws," + nonce + ",p=", "c=biws," + nonce,
		"c=biws,r=" + rfc7677ClientNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "c=,r=,p=", ",,", ""} {
		f.Add([]byte(s))
	}
	salted, err := pbkdf2.Key(sha256.New, rfc7677Password, mustDecode(rfc7677Salt), 4096, 32)
	if err != nil {
		f.Fatal(err)
	}
	db := testDB(f)
	authPrefix := strings.TrimPrefix(rfc7677First, "n,,") + "," + rfc7677ServerFirst
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, _ := (&Config{Rand: nonceRand(rfc7677ServerNonce)}).NewServer(MechSCRAMSHA256, db)
		if sf := mustStep(t, s, rfc7677First); string(sf) != rfc7677ServerFirst {
			t.Fatalf("server-first %q", sf)
		}
		out, done, err := s.Step(msg)
		if err != nil {
			if done || s.Username() != "" || errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v with done %v, user %q", err, done, s.Username())
			}
			return
		}
		// Success: msg must carry the proof of the password for exactly
		// what it says before the proof.
		i := bytes.LastIndex(msg, []byte(",p="))
		if i < 0 {
			t.Fatalf("%q authenticated without a proof", msg)
		}
		final, sig := proveWith(salted, string(msg[:i]), authPrefix)
		if !done || final != string(msg) || string(out) != sig || s.Username() != rfc7677User {
			t.Fatalf("%q authenticated (%q, %v)", msg, out, done)
		}
	})
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(testDBText()))
	for _, s := range []string{"", "\n", "a:b", "a:b\r\n", "a:b:c\n", ":b\n", "a:\n", "a\n", "a:b\na:c\n", "a:b\x00\n",
		"a:b\rc\n", "a:SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"a:SCRAM-SHA-256$", "a:SCRAM-SHA-256$1:$:", " \t\n\t:x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := ParseCredentials(bytes.NewReader(data))
		db2, err2 := ParseCredentials(iotest.OneByteReader(bytes.NewReader(data)))
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || db.Len() != db2.Len() {
			t.Fatalf("whole: %v, %v; byte by byte: %v, %v", db, err, db2, err2)
		}
		if err != nil {
			pe, ok := errors.AsType[*ParseError](err)
			if !ok || pe.Line < 1 || len(err.Error()) > 100 {
				t.Fatalf("error %q", err)
			}
			return
		}
		// Every line names a user, and a password line's password works.
		n := 0
		for line := range strings.Lines(string(data)) {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if strings.Trim(line, " \t") == "" {
				continue
			}
			n++
			user, rest, ok := strings.Cut(line, ":")
			e, known := db.Lookup(user)
			if !ok || !known || e.s == nil {
				t.Fatalf("line %q: user missing", line)
			}
			if strings.HasPrefix(rest, verifierPrefix) != e.IsVerifier() {
				t.Fatalf("line %q: kind %v", line, e)
			}
			if !e.IsVerifier() && n <= 8 {
				pw, _, _ := strings.Cut(rest, ":")
				s, _ := NewServer(MechPLAIN, db)
				if _, done, err := s.Step(plainMessage("", user, pw)); !done || err != nil {
					t.Fatalf("line %q: PLAIN: %v", line, err)
				}
				s, _ = NewServer(MechPLAIN, db)
				if _, _, err := s.Step(plainMessage("", user, pw+"x")); err == nil {
					t.Fatalf("line %q: PLAIN accepts a longer password", line)
				}
			}
		}
		if n != db.Len() || n > MaxEntries {
			t.Fatalf("%d lines, %d users", n, db.Len())
		}
	})
}
