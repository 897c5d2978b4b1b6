package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReadGetReply(t *testing.T) {
	for _, tc := range []struct {
		reply    string
		size     int
		hit      bool
		odd      bool // an errOdd
		leftover string
	}{
		{reply: "END\r\nnext", size: 3, leftover: "next"},
		{reply: "VALUE k 0 3\r\nabc\r\nEND\r\nnext", size: 3, hit: true, leftover: "next"},
		{reply: "VALUE k 0 4\r\nabcd\r\nEND\r\n", size: 3, odd: true},
		{reply: "SERVER_ERROR out of memory\r\n", size: 3, odd: true},
		{reply: "VALUE k 0 3\r\nabc\r\nVALUE k 0 3\r\n", size: 3, odd: true},
	} {
		r := bufio.NewReader(strings.NewReader(tc.reply))
		hit, err := readGetReply(r, tc.size)
		if tc.odd {
			if !errors.Is(err, errOdd) {
				t.Errorf("readGetReply(%q) = %v, %v; want an errOdd", tc.reply, hit, err)
			}
			continue
		}
		if err != nil || hit != tc.hit {
			t.Errorf("readGetReply(%q) = %v, %v; want %v", tc.reply, hit, err, tc.hit)
		}
		if rest, _ := r.ReadString(0); rest != tc.leftover {
			t.Errorf("after readGetReply(%q), %q is left; want %q", tc.reply, rest, tc.leftover)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 200; i >= 1; i-- { // 1 … 200 µs, unsorted
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	got := strings.Fields(percentiles(lat))
	// Nearest rank: the 100th and the 198th of 200.
	if want := []string{"100", "198", "200"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("percentiles(1…200 µs) = %q, want p50, p99, max %q", got, want)
	}
	if got := strings.Fields(percentiles(nil)); strings.Join(got, " ") != "- - -" {
		t.Errorf("percentiles(nil) = %q, want dashes", got)
	}
}

func TestEarliest(t *testing.T) {
	now := time.Now()
	if got := earliest(now.Add(time.Second), now, now.Add(time.Minute)); !got.Equal(now) {
		t.Errorf("earliest = %v, want %v", got, now)
	}
}
