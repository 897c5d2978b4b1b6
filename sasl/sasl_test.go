package sasl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestMechanisms(t *testing.T) {
	got := Mechanisms()
	want := []string{"SCRAM-SHA-256", "CRAM-MD5", "PLAIN"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if s := strings.Join(got, " "); s != "SCRAM-SHA-256 CRAM-MD5 PLAIN" {
		t.Errorf("joined: got %q", s)
	}
	got[0] = "changed"
	if Mechanisms()[0] != MechSCRAMSHA256 {
		t.Error("Mechanisms shares its slice")
	}
	for _, m := range want {
		s, err := NewServer(m, nil)
		if err != nil {
			t.Fatalf("NewServer(%q): %v", m, err)
		}
		if s.Mechanism() != m {
			t.Errorf("Mechanism() = %q, want %q", s.Mechanism(), m)
		}
	}
}

func TestNewServerNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" for unknown
	}{
		{"PLAIN", MechPLAIN},
		{"plain", MechPLAIN},
		{"Cram-Md5", MechCRAMMD5},
		{"scram-sha-256", MechSCRAMSHA256},
		{"SCRAM-SHA-256-PLUS", ""},
		{"SCRAM-SHA-1", ""},
		{"ſCRAM-SHA-256", ""}, // no Unicode folding
		{"", ""},
		{"PLAIN\x00", ""},
		{strings.Repeat("X", 100), ""},
	} {
		s, err := NewServer(tc.name, nil)
		if tc.want == "" {
			if !errors.Is(err, ErrUnknownMechanism) || s != nil {
				t.Errorf("NewServer(%q) = %v, %v; want ErrUnknownMechanism", tc.name, s, err)
			}
			if err != nil && len(err.Error()) > 60 {
				t.Errorf("error %q: too long", err)
			}
			continue
		}
		if err != nil || s.Mechanism() != tc.want {
			t.Errorf("NewServer(%q) = %v, %v; want %s", tc.name, s, err, tc.want)
		}
	}
}

// Every Server stays failed after an error, and fails after success.
func TestServerAfterFailure(t *testing.T) {
	db := testDB(t)
	type run struct {
		name  string
		mech  string
		steps []string // the last fails
	}
	runs := []run{
		{"PLAIN wrong password", MechPLAIN, []string{"\x00pw\x00wrong"}},
		{"PLAIN malformed", MechPLAIN, []string{"nonul"}},
		{"PLAIN two empty", MechPLAIN, []string{"", ""}},
		{"CRAM-MD5 initial response", MechCRAMMD5, []string{"tim"}},
		{"CRAM-MD5 wrong digest", MechCRAMMD5, []string{"", "tim 00000000000000000000000000000000"}},
		{"SCRAM malformed first", MechSCRAMSHA256, []string{"x"}},
		{"SCRAM wrong proof", MechSCRAMSHA256, []string{rfc7677First,
			"c=biws,r=" + rfc7677ClientNonce + "X,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			s, err := NewServer(r.mech, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range r.steps[:len(r.steps)-1] {
				mustStep(t, s, m)
			}
			_, _, first := s.Step([]byte(r.steps[len(r.steps)-1]))
			if first == nil {
				t.Fatal("last step succeeded")
			}
			// Whatever follows, even the right message, fails the same way.
			for _, m := range []string{"", "\x00pw\x00pencil", "pw " + strings.Repeat("0", 32), rfc7677First} {
				ch, done, err := s.Step([]byte(m))
				if err != first || done || ch != nil {
					t.Errorf("Step(%q) after failure = %q, %v, %v; want nil, false, %v", m, ch, done, err, first)
				}
			}
			if u := s.Username(); u != "" {
				t.Errorf("Username() = %q after failure", u)
			}
		})
	}
}

func TestServerAfterSuccess(t *testing.T) {
	s, _ := NewServer(MechPLAIN, testDB(t))
	if _, done, err := s.Step(plainMessage("", "pw", "pencil")); !done || err != nil {
		t.Fatalf("got %v, %v; want done", done, err)
	}
	if s.Username() != "pw" {
		t.Fatalf("Username() = %q", s.Username())
	}
	_, done, err := s.Step(plainMessage("", "pw", "pencil"))
	if !errors.Is(err, ErrMalformed) || done {
		t.Errorf("Step after success = %v, %v; want ErrMalformed", done, err)
	}
	if s.Username() != "" {
		t.Errorf("Username() = %q after a failed Step", s.Username())
	}
}

func TestMessageTooLong(t *testing.T) {
	for _, m := range Mechanisms() {
		s, _ := NewServer(m, testDB(t))
		_, _, err := s.Step(make([]byte, MaxMessageLen+1))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", m, err)
		}
	}
}

// Wrong passwords and unknown users get one and the same error.
func TestAuthFailedIsOneError(t *testing.T) {
	db := testDB(t)
	var errs []error
	for _, msg := range [][]byte{plainMessage("", "pw", "wrong"), plainMessage("", "nobody", "pencil"),
		plainMessage("", "user", "wrong"), plainMessage("", "nobody", "wrong")} {
		s, _ := NewServer(MechPLAIN, db)
		_, _, err := s.Step(msg)
		errs = append(errs, err)
	}
	for _, u := range []string{"user", "tim", "nobody"} {
		errs = append(errs, scramExchange(t, db, &scramClient{user: u, password: "wrong"}))
	}
	for i, err := range errs {
		if err != ErrAuthFailed {
			t.Errorf("%d: got %v, want ErrAuthFailed itself", i, err)
		}
	}
}

func TestErrors(t *testing.T) {
	err := malformed(MechPLAIN, "empty authcid")
	var me *MessageError
	if !errors.As(err, &me) || me.Mechanism != MechPLAIN || !errors.Is(err, ErrMalformed) {
		t.Errorf("malformed: %#v", err)
	}
	if got, want := err.Error(), "sasl: PLAIN: empty authcid"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(refused(MechPLAIN), ErrAuthFailed) || !errors.Is(unsupported(MechPLAIN, "x"), ErrUnsupported) {
		t.Error("refused or unsupported unwraps wrong")
	}
	pe := &ParseError{File: "/etc/pw", Line: 3, Reason: "empty password"}
	if got, want := pe.Error(), "sasl: credentials /etc/pw line 3: empty password"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := (&ParseError{Reason: "x"}).Error(), "sasl: credentials: x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// No way of printing an Entry or a PasswordDB shows a secret.
func TestPrintingShowsNoSecret(t *testing.T) {
	db := testDB(t)
	e, _ := db.Lookup("pw")
	v, _ := db.Lookup("user")
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		type holder struct {
			e  Entry
			v  *Entry
			db *PasswordDB
			m  map[string]Entry
		}
		h := holder{e, &v, db, map[string]Entry{"x": e}}
		for _, x := range []any{e, v, &e, db, *db, h, &h, []Entry{e, v}} {
			out := fmt.Sprintf(format, x)
			for _, secret := range []string{"pencil", "70656e63696c", "W22ZaJ0SNY7soEsUEjb6gQ"} {
				if strings.Contains(out, secret) {
					t.Errorf("Sprintf(%q, %T) = %q shows a secret", format, x, out)
				}
			}
		}
	}
	if got := e.String(); got != "sasl.Entry(password)" {
		t.Errorf("String() = %q", got)
	}
	if got := v.GoString(); got != "sasl.Entry(SCRAM-SHA-256 verifier)" {
		t.Errorf("GoString() = %q", got)
	}
	if got := db.String(); got != "sasl.PasswordDB(8 users)" {
		t.Errorf("String() = %q", got)
	}
	if got := (Entry{}).String(); got != "sasl.Entry(none)" {
		t.Errorf("String() = %q", got)
	}
}

// A Credentials that returns a zero Entry for a known user authenticates
// no one; a nil Credentials knows no one.
func TestOddCredentials(t *testing.T) {
	zero := CredentialsFunc(func(string) (Entry, bool) { return Entry{}, true })
	for _, creds := range []Credentials{zero, nil, (*PasswordDB)(nil)} {
		s, _ := NewServer(MechPLAIN, creds)
		if _, _, err := s.Step(plainMessage("", "pw", "pencil")); err != ErrAuthFailed {
			t.Errorf("%T: got %v, want ErrAuthFailed", creds, err)
		}
		if err := scramExchange(t, creds, &scramClient{user: "pw", password: "pencil"}); err != ErrAuthFailed {
			t.Errorf("%T: SCRAM: got %v, want ErrAuthFailed", creds, err)
		}
	}
}

func TestConcurrentServers(t *testing.T) {
	db := testDB(t)
	cfg := &Config{}
	errc := make(chan error, 8)
	for i := range 8 {
		go func() {
			user, pass := "pw", "pencil"
			if i%2 == 1 {
				user, pass = "user", rfc7677Password
			}
			s, err := cfg.NewServer(MechPLAIN, db)
			if err == nil {
				_, _, err = s.Step(plainMessage("", user, pass))
			}
			errc <- err
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
