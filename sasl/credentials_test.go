package sasl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseCredentials(t *testing.T) {
	db := testDB(t)
	if db.Len() != len(testPasswords) {
		t.Errorf("Len() = %d, want %d", db.Len(), len(testPasswords))
	}
	for user, pw := range testPasswords {
		e, ok := db.Lookup(user)
		if !ok {
			t.Errorf("%q missing", user)
			continue
		}
		if match, err := e.matchPassword(user, []byte(pw), testLimiter()); !match || err != nil {
			t.Errorf("%q: password does not match: %v", user, err)
		}
		if isV := user == "user" || user == "verifier2"; e.IsVerifier() != isV {
			t.Errorf("%q: IsVerifier() = %v", user, e.IsVerifier())
		}
	}
	for _, user := range []string{"nobody", "", "Tim", "tim ", " tim", "us"} {
		if e, ok := db.Lookup(user); ok || e.IsVerifier() {
			t.Errorf("Lookup(%q) = %v, %v; want a password template, false", user, e, ok)
		}
	}
}

func TestParseCredentialsLines(t *testing.T) {
	v := func() string {
		s, err := NewSCRAMVerifier("pencil", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	for _, tc := range []struct {
		name  string
		file  string
		users map[string]string // user: password ("" for a verifier)
	}{
		{"empty file", "", map[string]string{}},
		{"only empty lines", "\n\r\n \t\n", map[string]string{}},
		{"no final newline", "a:b", map[string]string{"a": "b"}},
		{"CRLF", "a:b\r\nc:d\r\n", map[string]string{"a": "b", "c": "d"}},
		{"additional tokens", "a:b:c:d\n", map[string]string{"a": "b"}},
		{"spaces count", " a :b c \n", map[string]string{" a ": "b c "}},
		{"hash is a user", "#a:b\n", map[string]string{"#a": "b"}},
		{"tab in password", "a:b\tc\n", map[string]string{"a": "b\tc"}},
		{"UTF-8", "j\u00fcrgen:p\u00e4ss\n", map[string]string{"j\u00fcrgen": "p\u00e4ss"}},
		{"verifier", "a:" + v + "\nb:pencil\n", map[string]string{"a": "", "b": "pencil"}},
		{"verifier-like password", "a:SCRAM-SHA-1$x\n", map[string]string{"a": "SCRAM-SHA-1$x"}},
		{"longest line", strings.Repeat("u", 255) + ":" + strings.Repeat("p", 1024) + "\n",
			map[string]string{strings.Repeat("u", 255): strings.Repeat("p", 1024)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := ParseCredentials(strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if db.Len() != len(tc.users) {
				t.Errorf("Len() = %d, want %d", db.Len(), len(tc.users))
			}
			for user, pw := range tc.users {
				e, ok := db.Lookup(user)
				if !ok || e.IsVerifier() != (pw == "") {
					t.Errorf("Lookup(%q) = %v, %v", user, e, ok)
					continue
				}
				if pw == "" {
					pw = "pencil"
				}
				if match, _ := e.matchPassword(user, []byte(pw), testLimiter()); !match {
					t.Errorf("%q: password does not match", user)
				}
			}
		})
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	good, err := NewSCRAMVerifier("pencil", 0, bytes.NewReader(make([]byte, SaltLen)))
	if err != nil {
		t.Fatal(err)
	}
	// good is SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAA==$<stored>:<server>
	_, keys, _ := strings.Cut(strings.TrimPrefix(good, verifierPrefix), "$")
	stored, server, _ := strings.Cut(keys, ":")
	vf := func(iter, salt, stored, server string) string {
		return verifierPrefix + iter + ":" + salt + "$" + stored + ":" + server
	}
	salt := "AAAAAAAAAAAAAAAAAAAAAA=="
	for _, tc := range []struct {
		name string
		file string
		line int
	}{
		{"no colon", "a:b\nsecretpassword\n", 2},
		{"empty user", ":secretpassword\n", 1},
		{"empty password", "a:\n", 1},
		{"empty password before token", "a::secretpassword\n", 1},
		{"NUL", "a:b\nc:secret\x00password\n", 2},
		{"CR inside", "a:secret\rpassword\n", 1},
		{"CR CR LF", "a:secretpassword\r\r\n", 1},
		{"duplicate", "a:b\n\nc:d\na:secretpassword\n", 4},
		{"user too long", strings.Repeat("u", 256) + ":secretpassword\n", 1},
		{"password too long", "a:" + strings.Repeat("p", 1025) + "\n", 1},
		{"line too long", "a:b\na:" + strings.Repeat("p", MaxLineLen) + "\n", 2},
		{"line far too long", "a:" + strings.Repeat("p", 3*MaxLineLen), 1},
		{"verifier without $", "a:" + verifierPrefix + "4096:" + salt + "\n", 1},
		{"verifier without :", "a:" + verifierPrefix + "4096" + salt + "$" + stored + ":" + server + "\n", 1},
		{"verifier keys without :", "a:" + verifierPrefix + "4096:" + salt + "$" + stored + server + "\n", 1},
		{"iterations low", "a:" + vf("4095", salt, stored, server) + "\n", 1},
		{"iterations high", "a:" + vf("1048577", salt, stored, server) + "\n", 1},
		{"iterations huge", "a:" + vf("99999999999999999999", salt, stored, server) + "\n", 1},
		{"iterations signed", "a:" + vf("+4096", salt, stored, server) + "\n", 1},
		{"iterations leading zero", "a:" + vf("04096", salt, stored, server) + "\n", 1},
		{"iterations empty", "a:" + vf("", salt, stored, server) + "\n", 1},
		{"salt short", "a:" + vf("4096", "AAAAAAAAAA==", stored, server) + "\n", 1},
		{"salt long", "a:" + vf("4096", strings.Repeat("A", 176), stored, server) + "\n", 1},
		{"salt not base64", "a:" + vf("4096", "!AAAAAAAAAAAAAAAAAAAAA=", stored, server) + "\n", 1},
		{"salt unpadded", "a:" + vf("4096", "AAAAAAAAAAAAAAAAAAAAAA", stored, server) + "\n", 1},
		{"stored short", "a:" + vf("4096", salt, stored[:40]+"==", server) + "\n", 1},
		{"server not base64", "a:" + vf("4096", salt, stored, "*"+server[1:]) + "\n", 1},
		{"extra field", "a:" + good + ":x\n", 1},
		{"two $", "a:" + vf("4096", salt, stored, server) + "$\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCredentials(strings.NewReader(tc.file))
			pe, ok := errors.AsType[*ParseError](err)
			if !ok {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if pe.Line != tc.line {
				t.Errorf("%v: line %d, want %d", err, pe.Line, tc.line)
			}
			for _, secret := range []string{"secret", "pppp", stored[:8], "AAAA"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes the line", err)
				}
			}
		})
	}
	if _, err := ParseCredentials(strings.NewReader("a:" + vf("4096", salt, stored, server) + "\n")); err != nil {
		t.Errorf("the verifier the error cases spoil: %v", err)
	}
}

func TestParseCredentialsLimits(t *testing.T) {
	var b strings.Builder
	for i := range MaxEntries {
		fmt.Fprintf(&b, "u%d:p\n", i)
	}
	full := b.String()
	db, err := ParseCredentials(strings.NewReader(full))
	if err != nil || db.Len() != MaxEntries {
		t.Fatalf("MaxEntries users: %v, %v", db, err)
	}
	_, err = ParseCredentials(strings.NewReader(full + "\nlast:p\n"))
	if pe, ok := errors.AsType[*ParseError](err); !ok || pe.Line != MaxEntries+2 {
		t.Errorf("MaxEntries+1 users: got %v", err)
	}

	// A file of blank lines that never ends stops at MaxFileSize.
	blank := strings.Repeat(" ", MaxLineLen) + "\n"
	r := io.MultiReader(strings.NewReader("a:b\n"), &repeatReader{s: blank})
	_, err = ParseCredentials(r)
	if pe, ok := errors.AsType[*ParseError](err); !ok || !strings.Contains(pe.Reason, "32 MiB") {
		t.Errorf("endless file: got %v", err)
	}
}

// repeatReader repeats s without end.
type repeatReader struct {
	s string
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.i:])
		n += c
		r.i = (r.i + c) % len(r.s)
	}
	return n, nil
}

func TestParseCredentialsReadError(t *testing.T) {
	broken := errors.New("broken disk")
	_, err := ParseCredentials(io.MultiReader(strings.NewReader("a:b\n"), iotest.ErrReader(broken)))
	if !errors.Is(err, broken) {
		t.Errorf("got %v, want %v", err, broken)
	}
	// Small reads change nothing.
	db, err := ParseCredentials(iotest.OneByteReader(strings.NewReader(testDBText())))
	if err != nil || db.Len() != len(testPasswords) {
		t.Errorf("one byte at a time: %v, %v", db, err)
	}
}

func TestReadCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "pwdb")
	if err := os.WriteFile(name, []byte(testDBText()), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := ReadCredentialsFile(name)
	if err != nil || db.Len() != len(testPasswords) {
		t.Fatalf("got %v, %v", db, err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("a:b\nsecretpassword\n"), 0o600)
	_, err = ReadCredentialsFile(bad)
	if got, want := err.Error(), "sasl: credentials "+bad+" line 2: no ':' after the user name"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = ReadCredentialsFile(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

// An unknown user is checked against a decoy of the kind most users have.
func TestDecoyTemplate(t *testing.T) {
	v4096, _ := NewSCRAMVerifier("x", 4096, nil)
	v8192, _ := NewSCRAMVerifier("x", 8192, nil)
	for _, tc := range []struct {
		name     string
		file     string
		verifier bool
		iter     int
	}{
		{"empty", "", false, 0},
		{"passwords", "a:b\nc:d\n", false, 0},
		{"tie", "a:b\nc:" + v4096 + "\n", false, 0},
		{"verifiers", "a:b\nc:" + v4096 + "\nd:" + v8192 + "\ne:" + v8192 + "\n", true, 8192},
		{"verifier tie", "c:" + v8192 + "\nd:" + v4096 + "\n", true, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := ParseCredentials(strings.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			e, ok := db.Lookup("nobody")
			if ok || e.IsVerifier() != tc.verifier {
				t.Fatalf("got %v, %v", e, ok)
			}
			if tc.verifier && e.s.v.iter != tc.iter {
				t.Errorf("iterations %d, want %d", e.s.v.iter, tc.iter)
			}
			d, known := lookup(db, "nobody")
			if known || d.s == nil || d.IsVerifier() != tc.verifier {
				t.Errorf("lookup: %v, %v", d, known)
			}
			if tc.verifier && d.s.v.salt != nil {
				t.Error("decoy verifier has a salt of its own")
			}
		})
	}
}

func TestEntries(t *testing.T) {
	if _, err := NewPasswordEntry(""); err == nil {
		t.Error("empty password accepted")
	}
	if _, err := NewPasswordEntry("a\x00b"); err == nil {
		t.Error("NUL accepted")
	}
	if _, err := NewPasswordEntry(strings.Repeat("p", MaxPasswordLen+1)); err == nil {
		t.Error("long password accepted")
	}
	e, err := NewPasswordEntry("a:b\nc") // only the file's syntax forbids these
	if err != nil {
		t.Fatal(err)
	}
	creds := CredentialsFunc(func(u string) (Entry, bool) { return e, u == "me" })
	s, _ := NewServer(MechPLAIN, creds)
	if _, done, err := s.Step(plainMessage("", "me", "a:b\nc")); !done || err != nil {
		t.Errorf("got %v, %v", done, err)
	}
	p, err := ParseEntry("pass:word")
	if err != nil || p.IsVerifier() {
		t.Fatalf("ParseEntry: %v, %v", p, err)
	}
	if m, _ := p.matchPassword("", []byte("pass"), testLimiter()); !m {
		t.Error("ParseEntry kept what follows ':'")
	}
}

func TestNewSCRAMVerifier(t *testing.T) {
	salt := mustDecode(rfc7677Salt)
	v, err := NewSCRAMVerifier(rfc7677Password, 4096, bytes.NewReader(salt))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, "SCRAM-SHA-256$4096:"+rfc7677Salt+"$") || len(v) != len("SCRAM-SHA-256$4096:")+24+1+44+1+44 {
		t.Errorf("verifier %q", v)
	}
	e, err := ParseEntry(v)
	if err != nil || !e.IsVerifier() || e.s.v.String() != v {
		t.Fatalf("ParseEntry: %v, %v", e, err)
	}
	d, err := NewSCRAMVerifier("pencil", 0, nil)
	if err != nil || !strings.HasPrefix(d, "SCRAM-SHA-256$4096:") {
		t.Errorf("defaults: %q, %v", d, err)
	}
	d2, _ := NewSCRAMVerifier("pencil", 0, nil)
	if d == d2 {
		t.Error("two verifiers share a salt")
	}
	for _, tc := range []struct {
		pw   string
		iter int
		r    io.Reader
	}{
		{"", 4096, nil},
		{"a\x00", 4096, nil},
		{"pencil", 4095, nil},
		{"pencil", MaxIterations + 1, nil},
		{"pencil", -1, nil},
		{"pencil", 4096, strings.NewReader("short")},
	} {
		if v, err := NewSCRAMVerifier(tc.pw, tc.iter, tc.r); err == nil {
			t.Errorf("NewSCRAMVerifier(%q, %d) = %q", tc.pw, tc.iter, v)
		}
	}
}
