package store

import (
	"bytes"
	"testing"
)

// TestGetSharedLargeValue: a value kept outside the pages is handed out by
// GetShared as the store's own buffer, a small one as a copy in dst.
func TestGetSharedLargeValue(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 64 << 20}, 1)
	large := bytes.Repeat([]byte("L"), GivenValue+1)
	s.Set(ModeSet, []byte("large"), large, 0, 0, 0)
	s.Set(ModeSet, []byte("small"), []byte("tiny"), 0, 0, 0)

	first, _, lk, shared := s.GetShared([]byte("large"), nil)
	if lk != Hit || !shared || !bytes.Equal(first, large) {
		t.Fatalf("large: lookup %v, shared %v, value equal %v; want a shared hit", lk, shared, bytes.Equal(first, large))
	}
	again, _, _, _ := s.GetShared([]byte("large"), nil)
	if !sameBuffer(first, again) {
		t.Error("two GetShared calls of the large value returned different buffers: it was copied")
	}
	if sameBuffer(first, large) {
		t.Error("Set kept the caller's buffer: only GiveSet may")
	}
	dst := make([]byte, 0, 64)
	small, _, lk, shared := s.GetShared([]byte("small"), dst)
	if lk != Hit || shared || string(small) != "tiny" || &small[0] != &dst[:1][0] {
		t.Errorf("small: got %q (shared %v, in dst %v), want tiny copied into dst", small, shared, &small[0] == &dst[:1][0])
	}
}

// TestSharedValueNeverChanges: a buffer GetShared handed out keeps its bytes
// when the item is changed in place (incr) or replaced, however long the
// holder keeps it.
func TestSharedValueNeverChanges(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 64 << 20}, 1)
	// A number padded with spaces beyond the inline length: incr takes it
	// as 7, and writes 8 in its place, padded to the same length.
	padded := append([]byte("7"), bytes.Repeat([]byte(" "), GivenValue+10)...)
	s.Set(ModeSet, []byte("n"), padded, 0, 0, 0)
	held, _, _, shared := s.GetShared([]byte("n"), nil)
	if !shared {
		t.Fatal("the padded number was not kept outside the pages")
	}
	kept := bytes.Clone(held)
	if v, _, st := s.Arith([]byte("n"), true, 1, 0, false, 0, 0); st != OK || v != 8 {
		t.Fatalf("incr: %d, %v; want 8, OK", v, st)
	}
	now, _, _, _ := s.GetShared([]byte("n"), nil)
	if now[0] != '8' || len(now) != len(padded) {
		t.Errorf("after incr the item holds %q..., %d bytes; want 8 padded to %d", now[:1], len(now), len(padded))
	}
	if !bytes.Equal(held, kept) {
		t.Errorf("incr changed the buffer a reader held: it begins %q", held[:1])
	}
	s.Set(ModeSet, []byte("n"), bytes.Repeat([]byte("x"), len(padded)), 0, 0, 0)
	if !bytes.Equal(held, kept) {
		t.Errorf("a set changed the buffer a reader held: it begins %q", held[:1])
	}
}

// TestGiveSetKeepsBuffer: GiveSet keeps a large value's own buffer, unless
// the buffer is much larger than the value; a small value is copied.
func TestGiveSetKeepsBuffer(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 64 << 20}, 1)
	for _, tc := range []struct {
		name  string
		value []byte
		kept  bool
	}{
		{"large", bytes.Repeat([]byte("g"), GivenValue+1), true},
		{"large in a buffer a few bytes larger", bytes.Repeat([]byte("g"), GivenValue+3)[:GivenValue+1], true},
		{"large in a much larger buffer", make([]byte, GivenValue+1, 2*GivenValue), false},
		{"small", []byte("small"), false},
	} {
		if st, _ := s.GiveSet(ModeSet, []byte(tc.name), tc.value, 0, 0, 0); st != OK {
			t.Fatalf("%s: GiveSet: %v", tc.name, st)
		}
		got, _, _, _ := s.GetShared([]byte(tc.name), nil)
		if !bytes.Equal(got, tc.value) {
			t.Errorf("%s: stored value differs", tc.name)
		}
		if kept := sameBuffer(got, tc.value); kept != tc.kept {
			t.Errorf("%s: buffer kept %v, want %v", tc.name, kept, tc.kept)
		}
	}
	if got := s.Stats().Bytes; got <= 2*GivenValue {
		t.Errorf("stats bytes %d: the kept values are not counted", got)
	}
}
