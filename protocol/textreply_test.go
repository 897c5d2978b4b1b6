package protocol

import (
	"errors"
	"testing"
)

func TestReplyDataLen(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
		bad  bool
	}{
		{"VALUE k 0 5\r\n", 5, false},
		{"VALUE k 12 1048576 77\r\n", 1048576, false},
		{"VA 3 f0 t-1\r\n", 3, false},
		{"VA 0\r\n", 0, false},
		{"END\r\n", -1, false},
		{"HD\r\n", -1, false},
		{"STORED\r\n", -1, false},
		{"VALUEk 0 5\r\n", -1, false},
		{"VALUE k 0\r\n", 0, true},
		{"VALUE k 0 -1\r\n", 0, true},
		{"VALUE k 0 99999999999\r\n", 0, true},
		{"VA x\r\n", 0, true},
		{"VA \r\n", 0, true},
	} {
		got, err := ReplyDataLen([]byte(tc.line))
		if tc.bad {
			if !errors.Is(err, ErrBadReplyLength) {
				t.Errorf("ReplyDataLen(%q): err %v, want ErrBadReplyLength", tc.line, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ReplyDataLen(%q) = %d, %v; want %d", tc.line, got, err, tc.want)
		}
	}
}

// FuzzReplyDataLen checks that any line gives a length in range or an
// error, never a panic.
func FuzzReplyDataLen(f *testing.F) {
	for _, s := range []string{"VALUE k 0 5\r\n", "VA 3 f1\r\n", "END\r\n", "VALUE  ", "VA"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		n, err := ReplyDataLen(line)
		if err == nil && (n < -1 || n > 1<<31-1) {
			t.Fatalf("ReplyDataLen(%q) = %d", line, n)
		}
	})
}
