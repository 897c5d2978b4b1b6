package sasl

import (
	"errors"
	"strings"
	"testing"
)

func TestPLAIN(t *testing.T) {
	db := testDB(t)
	for _, tc := range []struct {
		name string
		msg  string
		user string // "" unless it succeeds
		err  error
	}{
		{"password", "\x00pw\x00pencil", "pw", nil},
		{"authzid equal", "pw\x00pw\x00pencil", "pw", nil},
		{"RFC 4616 example form", "\x00tim\x00tanstaaftanstaaf", "tim", nil},
		{"verifier user", "\x00user\x00pencil", "user", nil},
		{"random-salt verifier", "\x00verifier2\x00another password", "verifier2", nil},
		{"escaped-looking user", "\x00us,er=x\x00s3cret", "us,er=x", nil},
		{"longest password", "\x00long\x00" + strings.Repeat("p", MaxPasswordLen), "long", nil},
		{"longest user", "\x00" + strings.Repeat("u", MaxUsernameLen) + "\x00maxlen", strings.Repeat("u", MaxUsernameLen), nil},
		{"spaces", "\x00with space\x00two words", "with space", nil},

		{"wrong password", "\x00pw\x00pencil2", "", ErrAuthFailed},
		{"password prefix", "\x00pw\x00penci", "", ErrAuthFailed},
		{"verifier wrong password", "\x00user\x00Pencil", "", ErrAuthFailed},
		{"ignored part of password", "\x00us,er=x\x00s3cret:not", "", ErrAuthFailed},
		{"unknown user", "\x00nobody\x00pencil", "", ErrAuthFailed},
		{"user case", "\x00PW\x00pencil", "", ErrAuthFailed},
		{"authzid other", "tim\x00pw\x00pencil", "", ErrAuthFailed},

		{"no NUL", "pwpencil", "", ErrMalformed},
		{"one NUL", "pw\x00pencil", "", ErrMalformed},
		{"NUL in password", "\x00pw\x00pen\x00cil", "", ErrMalformed},
		{"empty authcid", "pw\x00\x00pencil", "", ErrMalformed},
		{"empty password", "\x00pw\x00", "", ErrMalformed},
		{"only NULs", "\x00\x00", "", ErrMalformed},
		{"authcid too long", "\x00" + strings.Repeat("u", MaxUsernameLen+1) + "\x00maxlen", "", ErrMalformed},
		{"authzid too long", strings.Repeat("u", MaxUsernameLen+1) + "\x00pw\x00pencil", "", ErrMalformed},
		{"password too long", "\x00long\x00" + strings.Repeat("p", MaxPasswordLen+1), "", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(MechPLAIN, db)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte(tc.msg)
			ch, done, err := s.Step(msg)
			if !errors.Is(err, tc.err) || (err == nil) != done {
				t.Fatalf("got %q, %v, %v; want %v", ch, done, err, tc.err)
			}
			if ch != nil {
				t.Errorf("challenge %q, want none", ch)
			}
			if s.Username() != tc.user {
				t.Errorf("Username() = %q, want %q", s.Username(), tc.user)
			}
			if err != nil && strings.Contains(err.Error(), "pencil") {
				t.Errorf("error %q quotes the message", err)
			}
		})
	}
}

// Without an initial response PLAIN asks with an empty challenge, once.
func TestPLAINNoInitialResponse(t *testing.T) {
	s, _ := NewServer(MechPLAIN, testDB(t))
	ch, done, err := s.Step(nil)
	if err != nil || done || ch == nil || len(ch) != 0 {
		t.Fatalf("got %q, %v, %v; want an empty challenge", ch, done, err)
	}
	if _, done, err := s.Step(plainMessage("", "pw", "pencil")); !done || err != nil {
		t.Fatalf("got %v, %v; want done", done, err)
	}

	s, _ = NewServer(MechPLAIN, testDB(t))
	mustStep(t, s, "")
	if _, _, err := s.Step(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("second empty message: got %v, want ErrMalformed", err)
	}
}

// Step keeps nothing of its argument.
func TestPLAINDoesNotKeepMessage(t *testing.T) {
	s, _ := NewServer(MechPLAIN, testDB(t))
	msg := plainMessage("", "pw", "pencil")
	if _, done, err := s.Step(msg); !done || err != nil {
		t.Fatal(err)
	}
	copy(msg, "\x00xx\x00")
	if s.Username() != "pw" {
		t.Errorf("Username() = %q after the message changed", s.Username())
	}
}
