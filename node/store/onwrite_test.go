package store

import (
	"testing"

	"github.com/cespare/xxhash/v2"
)

// TestOnWriteReportsEveryWrite checks that every operation that may store,
// change or remove an item reports its key to Config.OnWrite, and that
// reads and Restore do not: the hand-off trusts it to know every
// key the application wrote.
func TestOnWriteReportsEveryWrite(t *testing.T) {
	var got []uint64
	s := New(Config{OnWrite: func(h uint64) { got = append(got, h) }})
	defer s.Close()
	k := []byte("key")
	want := xxhash.Sum64(k)
	writes := []struct {
		name string
		op   func()
	}{
		{"set", func() { s.Set(ModeSet, k, []byte("v"), 0, 0, 0) }},
		{"add", func() { s.Set(ModeAdd, k, []byte("v"), 0, 0, 0) }},
		{"append", func() { s.Set(ModeAppend, k, []byte("v"), 0, 0, 0) }},
		{"give", func() { s.GiveSet(ModeSet, k, []byte("v"), 0, 0, 0) }},
		{"touch", func() { s.Touch(k, 100) }},
		{"gat", func() { s.GetAndTouch(k, 100, nil) }},
		{"gat shared", func() { s.GetAndTouchShared(k, 100, nil) }},
		{"arith", func() { s.Arith(k, true, 1, 0, true, 0, 0) }},
		{"mg T", func() { s.MetaGet(k, MetaGetOptions{Touch: true, Deadline: 100}, nil) }},
		{"md", func() { s.MetaDelete(k, MetaDeleteOptions{}) }},
		{"set stale", func() { s.SetStale(k, []byte("v"), 0, 0, 0, NewCAS{}) }},
		{"delete", func() { s.Delete(k, 0) }},
		{"drop", func() { s.Drop(k) }},
	}
	for _, w := range writes {
		got = got[:0]
		w.op()
		if len(got) == 0 || got[0] != want {
			t.Errorf("%s reported %v to OnWrite, want [%d]", w.name, got, want)
		}
	}
	got = got[:0]
	s.Get(k, nil)
	s.Peek(k)
	s.MetaGet(k, MetaGetOptions{}, nil)
	st, _ := s.Restore(k, []byte("restored"), 5, 0, nil)
	if st != OK {
		t.Fatalf("Restore of a missing key: %v, want OK", st)
	}
	if st, _ := s.Restore(k, []byte("again"), 5, 0, nil); st != NotStored {
		t.Fatalf("Restore of a present key: %v, want NotStored", st)
	}
	if v, _, lk := s.Get(k, nil); lk != Hit || string(v) != "restored" {
		t.Fatalf("after Restore: %q %v, want restored", v, lk)
	}
	k2 := []byte("vetoed")
	if st, _ := s.Restore(k2, []byte("x"), 0, 0, func() bool { return true }); st != NotStored {
		t.Fatalf("Restore with a veto: %v, want NotStored", st)
	}
	if _, _, lk := s.Get(k2, nil); lk == Hit {
		t.Fatal("a vetoed Restore stored its item")
	}
	if len(got) != 0 {
		t.Fatalf("reads and Restore reported %d writes, want none", len(got))
	}
}
