package sasl

import (
	"fmt"
	"strings"
	"testing"
)

func BenchmarkPLAINPassword(b *testing.B) {
	db := testDB(b)
	msg := plainMessage("", "pw", "pencil")
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewServer(MechPLAIN, db)
		if _, _, err := s.Step(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// An unknown user in a file of passwords costs what a known one does.
func BenchmarkPLAINUnknownUser(b *testing.B) {
	db := testDB(b)
	msg := plainMessage("", "px", "pencil")
	b.ReportAllocs()
	for b.Loop() {
		s, _ := NewServer(MechPLAIN, db)
		if _, _, err := s.Step(msg); err != ErrAuthFailed {
			b.Fatal(err)
		}
	}
}

// PLAIN against a verifier runs PBKDF2: 4096 iterations, here in the turns
// of a Limiter that holds nothing back (DefaultLimiter would keep the loop
// to a quarter of a core).
func BenchmarkPLAINVerifier(b *testing.B) {
	db := testDB(b)
	msg := plainMessage("", "user", rfc7677Password)
	cfg := &Config{Limiter: testLimiter()}
	b.ReportAllocs()
	for b.Loop() {
		s, _ := cfg.NewServer(MechPLAIN, db)
		if _, _, err := s.Step(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCRAMMD5(b *testing.B) {
	db := testDB(b)
	cfg := &Config{Hostname: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		s, _ := cfg.NewServer(MechCRAMMD5, db)
		ch, _, err := s.Step(nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Step([]byte("tim " + cramDigest(rfc2195Secret, string(ch)))); err != nil {
			b.Fatal(err)
		}
	}
}

// The server's side of RFC 7677's exchange: the client's proof is given,
// so the loop measures the server alone.
func BenchmarkSCRAMVerifier(b *testing.B) {
	db := testDB(b)
	first, final := []byte(rfc7677First), []byte(rfc7677Final)
	b.ReportAllocs()
	for b.Loop() {
		s, _ := (&Config{Rand: nonceRand(rfc7677ServerNonce)}).NewServer(MechSCRAMSHA256, db)
		if _, _, err := s.Step(first); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Step(final); err != nil {
			b.Fatal(err)
		}
	}
}

// SCRAM for a user with a plaintext password: the server derives the
// user's keys on the first exchange and keeps them, so the loop measures
// what a failed attempt costs from then on.
func BenchmarkSCRAMPasswordFailure(b *testing.B) {
	db := testDB(b)
	first := []byte("n,,n=pw,r=" + rfc7677ClientNonce)
	final := []byte("c=biws,r=" + rfc7677ClientNonce + rfc7677ServerNonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	b.ReportAllocs()
	for b.Loop() {
		s, _ := (&Config{Rand: nonceRand(rfc7677ServerNonce)}).NewServer(MechSCRAMSHA256, db)
		if _, _, err := s.Step(first); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Step(final); err != ErrAuthFailed {
			b.Fatal(err)
		}
	}
}

// A file of 10,000 users, one in ten with a verifier.
func BenchmarkParseCredentials(b *testing.B) {
	v, err := NewSCRAMVerifier("pencil", 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := range 10000 {
		if i%10 == 0 {
			fmt.Fprintf(&sb, "user%d:%s\n", i, v)
		} else {
			fmt.Fprintf(&sb, "user%d:password%d\n", i, i)
		}
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCredentials(strings.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
}
