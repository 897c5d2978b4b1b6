package freelist

import "testing"

func TestListReusesUpToMax(t *testing.T) {
	made := 0
	l := List[int]{New: func() *int { made++; return new(int) }, Max: 2}
	a, b, c := l.Get(), l.Get(), l.Get()
	if made != 3 {
		t.Fatalf("made %d objects for 3 gets of an empty list", made)
	}
	l.Put(a)
	l.Put(b)
	l.Put(c) // dropped: the list holds 2
	if x, y := l.Get(), l.Get(); x != b || y != a {
		t.Errorf("got back %p %p, want the last put first (%p %p)", x, y, b, a)
	}
	l.Get()
	if made != 4 {
		t.Errorf("made %d objects, want 4: the third put was to be dropped", made)
	}
	if n := testing.AllocsPerRun(100, func() { l.Put(l.Get()) }); n != 0 {
		t.Errorf("a get and put of a kept object allocated %v times", n)
	}
}
