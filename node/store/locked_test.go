package store

import "testing"

// TestPanicUnderLockReleasesShard: a panic in code that runs under a
// shard's lock unwinds through the unlock, whichever helper took the lock,
// so a caller that recovers finds the shard, and the key, usable.
func TestPanicUnderLockReleasesShard(t *testing.T) {
	s, _ := newTestStore(t, Config{}, 1)
	key := []byte("key")
	set(t, s, "key", "value")
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: did not panic", name)
			}
		}()
		f()
	}
	o := s.begin(key)
	for _, c := range []struct {
		name string
		run  func()
	}{
		{"withKey", func() { s.withKey(&o, key, func() { panic("in withKey") }) }},
		{"writeKey", func() {
			var r room
			s.writeKey(&o, key, &r, func() roomResult { panic("in writeKey") })
		}},
		{"shard.with", func() { o.sh.with(func() { panic("in shard.with") }) }},
	} {
		mustPanic(c.name, c.run)
		if !o.sh.mu.TryLock() {
			t.Fatalf("%s: the shard is still locked after a panic under its lock", c.name)
		}
		o.sh.mu.Unlock()
	}
	if v, _, lk := s.Get(key, nil); lk != Hit || string(v) != "value" {
		t.Errorf("Get after the panics: got %q %v, want %q Hit", v, lk, "value")
	}
}
