package sasl

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func cramDigest(password, challenge string) string {
	m := hmac.New(md5.New, []byte(password))
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}

// rfc2195Config makes the challenge of RFC 2195's example.
func rfc2195Config() *Config {
	var r [8]byte
	binary.BigEndian.PutUint64(r[:], 1896)
	return &Config{
		Rand:     strings.NewReader(string(r[:])),
		Hostname: "postoffice.reston.mci.net",
		Time:     func() time.Time { return time.Unix(697170952, 0) },
	}
}

func TestCRAMMD5RFC2195(t *testing.T) {
	if got := cramDigest(rfc2195Secret, rfc2195Challenge); "tim "+got != rfc2195Response {
		t.Fatalf("test's own HMAC-MD5: got %s", got)
	}
	s, err := rfc2195Config().NewServer(MechCRAMMD5, testDB(t))
	if err != nil {
		t.Fatal(err)
	}
	ch, done, err := s.Step(nil)
	if err != nil || done || string(ch) != rfc2195Challenge {
		t.Fatalf("challenge: got %q, %v, %v; want %q", ch, done, err, rfc2195Challenge)
	}
	ch, done, err = s.Step([]byte(rfc2195Response))
	if err != nil || !done || ch != nil {
		t.Fatalf("response: got %q, %v, %v; want done", ch, done, err)
	}
	if s.Username() != rfc2195User {
		t.Errorf("Username() = %q, want %q", s.Username(), rfc2195User)
	}
}

func TestCRAMMD5(t *testing.T) {
	db := testDB(t)
	ch := rfc2195Challenge
	digest := func(user string) string { return cramDigest(testPasswords[user], ch) }
	for _, tc := range []struct {
		name     string
		response string
		user     string
		err      error
	}{
		{"RFC 2195", rfc2195Response, "tim", nil},
		{"upper-case hex", "tim " + strings.ToUpper(digest("tim")), "tim", nil},
		{"user with a space", "with space " + digest("with space"), "with space", nil},
		{"comma user", "us,er=x " + digest("us,er=x"), "us,er=x", nil},

		{"wrong digest", "tim " + digest("pw"), "", ErrAuthFailed},
		{"unknown user", "nobody " + digest("tim"), "", ErrAuthFailed},
		{"verifier user", "user " + cramDigest(rfc7677Password, ch), "", ErrAuthFailed},
		{"digest of the verifier text", "user " + cramDigest("", ch), "", ErrAuthFailed},

		{"empty", "", "", ErrMalformed},
		{"no space", "tim" + digest("tim"), "", ErrMalformed},
		{"empty user", " " + digest("tim"), "", ErrMalformed},
		{"short digest", "tim " + digest("tim")[:31], "", ErrMalformed},
		{"long digest", "tim " + digest("tim") + "0", "", ErrMalformed},
		{"trailing space", "tim " + digest("tim") + " ", "", ErrMalformed},
		{"not hex", "tim " + strings.Repeat("g", 32), "", ErrMalformed},
		{"NUL in user", "t\x00m " + digest("tim"), "", ErrMalformed},
		{"user too long", strings.Repeat("u", MaxUsernameLen+1) + " " + digest("tim"), "", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := rfc2195Config().NewServer(MechCRAMMD5, db)
			mustStep(t, s, "")
			_, done, err := s.Step([]byte(tc.response))
			if !errors.Is(err, tc.err) || (err == nil) != done {
				t.Fatalf("got %v, %v; want %v", done, err, tc.err)
			}
			if s.Username() != tc.user {
				t.Errorf("Username() = %q, want %q", s.Username(), tc.user)
			}
		})
	}
}

func TestCRAMMD5InitialResponse(t *testing.T) {
	s, _ := NewServer(MechCRAMMD5, testDB(t))
	if _, _, err := s.Step([]byte(rfc2195Response)); !errors.Is(err, ErrMalformed) {
		t.Errorf("got %v, want ErrMalformed", err)
	}
}

// The default challenge is a fresh msg-id with this host's name.
func TestCRAMMD5DefaultChallenge(t *testing.T) {
	re := regexp.MustCompile(`^<[0-9]{1,20}\.[0-9]+@[^<>@ ]+>$`)
	seen := map[string]bool{}
	for range 20 {
		s, _ := NewServer(MechCRAMMD5, nil)
		ch := string(mustStep(t, s, ""))
		if !re.MatchString(ch) {
			t.Fatalf("challenge %q", ch)
		}
		if seen[ch] {
			t.Fatalf("challenge %q twice", ch)
		}
		seen[ch] = true
	}
}

func TestCRAMMD5RandError(t *testing.T) {
	for _, r := range []io.Reader{iotest.ErrReader(io.ErrClosedPipe), strings.NewReader("short")} {
		s, _ := (&Config{Rand: r}).NewServer(MechCRAMMD5, nil)
		_, _, err := s.Step(nil)
		if err == nil || errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrMalformed) {
			t.Errorf("got %v, want the random source's error", err)
		}
	}
}

// The challenge belongs to the caller.
func TestCRAMMD5ChallengeOwned(t *testing.T) {
	s, _ := rfc2195Config().NewServer(MechCRAMMD5, testDB(t))
	ch := mustStep(t, s, "")
	copy(ch, "XXXX")
	if _, done, err := s.Step([]byte(rfc2195Response)); !done || err != nil {
		t.Errorf("got %v, %v after the caller changed the challenge", done, err)
	}
}
