package protocol

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// authAttempt is memcached's ASCII authentication attempt with block as
// its data block.
func authAttempt(block string) string {
	return fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", len(block), block)
}

// decodeAuth runs NextAuth over r until an error closes the connection,
// rendering each result: "user=U password=P", "error LINE", or "end ERR"
// ("end close" for ErrClose).
func decodeAuth(r io.Reader) []string {
	out, _ := decodeAuthCreds(r)
	return out
}

// decodeAuthCreds is decodeAuth, returning as well the user and password
// of each success.
func decodeAuthCreds(r io.Reader) (out []string, creds [][2]string) {
	tr := NewTextReader(bufio.NewReaderSize(r, 16<<10))
	for {
		user, password, err := tr.NextAuth()
		var te *TextError
		switch {
		case err == nil:
			out = append(out, "user="+string(user)+" password="+string(password))
			creds = append(creds, [2]string{string(user), string(password)})
		case errors.As(err, &te):
			out = append(out, "error "+te.Line)
		case errors.Is(err, ErrClose):
			return append(out, "end close"), creds
		default:
			return append(out, "end "+err.Error()), creds
		}
	}
}

func TestNextAuth(t *testing.T) {
	const (
		ok     = "user=alice password=secret"
		unauth = "error CLIENT_ERROR unauthenticated"
		term   = "error CLIENT_ERROR bad command line termination"
		format = "error CLIENT_ERROR bad authentication token format"
		eof    = "end EOF"
		short  = "end unexpected EOF"
		closes = "end close"
	)
	block16K := "alice " + strings.Repeat("x", 16<<10-2-len("alice "))
	for _, tt := range []struct {
		name string
		in   string
		want []string
	}{
		{"nothing", "", []string{eof}},
		{"good", authAttempt("alice secret"), []string{ok, eof}},
		{"noreply ignored", "set k 0 0 12 noreply\r\nalice secret\r\n", []string{ok, eof}},
		{"key flags exptime ignored", "set " + strings.Repeat("k", 300) + " x -1 12 more\r\nalice secret\r\n", []string{ok, eof}},
		{"extra tokens ignored", authAttempt("alice secret extra"), []string{ok, eof}},
		{"spaces", "   set  k  0  0  18  \r\n  alice   secret  \r\n", []string{ok, eof}},
		{"bare LF line", "set k 0 0 12\nalice secret\r\n", []string{ok, eof}},
		{"CR before the LF of the line", "set k 0 0 12\r\r\nalice secret\r\n", []string{ok, eof}},
		{"NUL ends the block", authAttempt("alice secret\x00junk"), []string{ok, eof}},
		{"several attempts", authAttempt("alice") + authAttempt("alice wrong") + authAttempt("bob hunter2"),
			[]string{format, "user=alice password=wrong", "user=bob password=hunter2", eof}},
		{"binary bytes kept", authAttempt("\xff\x80 \x01\x7f"), []string{"user=\xff\x80 password=\x01\x7f", eof}},

		// Lines that are not an attempt.
		{"get", "get a\r\n", []string{unauth, eof}},
		{"empty line", "\r\n", []string{unauth, eof}},
		{"bare LF", "\n", []string{unauth, eof}}, // memcached answers once a second byte arrives
		{"spaces only", "   \r\n", []string{unauth, eof}},
		{"quit", "quit\r\n", []string{unauth, eof}},
		{"meta", "mn\r\nmg a v\r\n", []string{unauth, unauth, eof}},
		{"SET", "SET k 0 0 12\r\n", []string{unauth, eof}},
		{"setx", "setx k 0 0 12\r\n", []string{unauth, eof}},
		{"add", "add k 0 0 12\r\nalice secret\r\n", []string{unauth, unauth, eof}},
		{"too few arguments", "set k 0 12\r\nalice secret\r\n", []string{unauth, unauth, eof}},
		{"set alone", "set\r\n", []string{unauth, eof}},
		{"NUL in the line", "set k\x00 0 0 12\r\n", []string{unauth, eof}},
		{"binary header", "\x80\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\r\n",
			[]string{unauth, eof}},
		{"line of 3000 bytes", strings.Repeat("x", 3000) + "\r\n", []string{unauth, eof}},

		// Byte counts.
		{"negative", "set k 0 0 -1\r\n", []string{unauth, eof}},
		{"minus zero", "set k 0 0 -0\r\n\r\n", []string{format, eof}},
		{"plus sign", "set k 0 0 +12\r\nalice secret\r\n", []string{ok, eof}},
		{"not a number", "set k 0 0 abc\r\n", []string{unauth, eof}},
		{"trailing garbage", "set k 0 0 12x\r\n", []string{unauth, eof}},
		{"past 64 bits", "set k 0 0 18446744073709551616\r\n", []string{unauth, eof}},
		{"2^32 is 0", "set k 0 0 4294967296\r\n\r\n", []string{format, eof}},
		{"2^64-1 is 2^32-1", "set k 0 0 18446744073709551615\r\nx", []string{term, eof}},
		{"2^32-2 wraps to 0 bytes", "set k 0 0 4294967294\r\n" + authAttempt("alice secret"), []string{term, ok, eof}},
		{"2^32-1 wraps to 1 byte", "set k 0 0 4294967295\r\nx" + authAttempt("alice secret"), []string{term, ok, eof}},
		{"2^32-1 at the end", "set k 0 0 4294967295\r\n", []string{short}},
		{"2^32-3 is negative", "set k 0 0 4294967293\r\n" + authAttempt("alice secret"), []string{closes}},
		{"2^31-2 is negative", "set k 0 0 2147483646\r\n", []string{closes}},
		{"largest block", authAttempt(block16K), []string{"user=alice password=" + block16K[len("alice "):], eof}},
		{"block too big", authAttempt(block16K + "x"), []string{closes}},
		{"block too big, short", fmt.Sprintf("set k 0 0 %d\r\n", 1<<20) + strings.Repeat("x", 16<<10-1), []string{short}},
		{"block too big, a buffer of it", fmt.Sprintf("set k 0 0 %d\r\n", 1<<20) + strings.Repeat("x", 16<<10), []string{closes}},

		// Data blocks.
		{"short block", "set k 0 0 12\r\nalice secret", []string{short}},
		{"no CRLF", "set k 0 0 3\r\nabcde", []string{term, eof}},
		{"bare LF end", "set k 0 0 12\r\nalice secret\n\n", []string{term, eof}},
		{"CR CR end", "set k 0 0 12\r\nalice secret\r\r", []string{term, eof}},
		{"too long", "set k 0 0 11\r\nalice secret\r\n", []string{term, unauth, eof}},
		{"one token", authAttempt("alice"), []string{format, eof}},
		{"empty", authAttempt(""), []string{format, eof}},
		{"spaces only block", authAttempt("   "), []string{format, eof}},
		{"empty password", authAttempt("alice "), []string{format, eof}},
		{"tab is no separator", authAttempt("alice\tsecret"), []string{format, eof}},
		{"NUL before the password", authAttempt("alice\x00secret"), []string{format, eof}},
		{"CRLF inside", authAttempt("alice\r\nsecret"), []string{format, eof}},

		// Lines that fill the read buffer.
		{"unterminated", strings.Repeat("x", 1<<20), []string{closes}},
		{"unterminated short", strings.Repeat("x", 100), []string{short}},
		{"long get line", "get " + strings.Repeat("k ", 10000) + "\r\n", []string{closes}},
		{"line of the buffer's size", strings.Repeat("x", 16<<10-1) + "\n", []string{unauth, eof}},
		{"2049 bytes without a newline", strings.Repeat("x", 2049), []string{closes}},
		{"2048 bytes without a newline", strings.Repeat("x", 2048), []string{short}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeAuth(strings.NewReader(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("NextAuth over %q:\n got %q\nwant %q", abbrev(tt.in), got, tt.want)
			}
			// One at a time, the bytes of a line longer than
			// MaxUnterminatedLine close the connection before its
			// newline comes, as in memcached.
			want := tt.want
			if tt.name == "line of 3000 bytes" || tt.name == "line of the buffer's size" {
				want = []string{closes}
			}
			if got := decodeAuth(iotest.OneByteReader(strings.NewReader(tt.in))); !reflect.DeepEqual(got, want) {
				t.Errorf("NextAuth one byte at a time over %q:\n got %q\nwant %q", abbrev(tt.in), got, want)
			}
		})
	}
}

// TestNextAuthReadError checks that a read error other than EOF ends
// NextAuth with that error, wherever it strikes.
func TestNextAuthReadError(t *testing.T) {
	boom := errors.New("boom")
	for _, in := range []string{"", "set k 0 0 12\r\n", "set k 0 0 12\r\nalice", "set k 0 0 4294967295\r\n", "set k 0 0 99999\r\n"} {
		r := io.MultiReader(strings.NewReader(in), iotest.ErrReader(boom))
		tr := NewTextReader(bufio.NewReaderSize(r, 16<<10))
		if _, _, err := tr.NextAuth(); !errors.Is(err, boom) {
			t.Errorf("NextAuth over %q then an error: got %v, want %v", in, err, boom)
		}
	}
}

// TestNextAuthSlicesValid checks that the user and password stay intact
// until the next call, whatever the reader does with its buffer meanwhile.
func TestNextAuthSlicesValid(t *testing.T) {
	in := authAttempt("alice secret") + strings.Repeat("get a\r\n", 5000)
	tr := NewTextReader(bufio.NewReaderSize(strings.NewReader(in), 16<<10))
	user, password, err := tr.NextAuth()
	if err != nil {
		t.Fatal(err)
	}
	// Fill the read buffer with what follows.
	if _, err := tr.br.Peek(tr.br.Size()); err != nil {
		t.Fatal(err)
	}
	if string(user) != "alice" || string(password) != "secret" {
		t.Errorf("got user %q password %q, want alice and secret", user, password)
	}
}

// abbrev shortens s for a message.
func abbrev(s string) string {
	if len(s) > 80 {
		return s[:60] + fmt.Sprintf("…(%d bytes)…", len(s)-70) + s[len(s)-10:]
	}
	return s
}
