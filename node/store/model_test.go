package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

// modelItem is what the model of a store knows of an item.
type modelItem struct {
	value []byte
	flags uint32
	cas   uint64
}

// TestStoreMatchesModel runs random operations on a store with memory to
// spare (nothing is evicted) and on a map that models it, and checks that
// every answer and every item agree: values kept in pages and external ones,
// in-place overwrites and moved records, explicit CAS uniques that change a
// record's length, appends, counters.
func TestStoreMatchesModel(t *testing.T) {
	for _, shards := range []int{1, 4} {
		t.Run(fmt.Sprint(shards, " shards"), func(t *testing.T) {
			s, _ := newTestStore(t, Config{MaxBytes: 256 << 20}, shards)
			model := map[string]*modelItem{}
			r := rand.New(rand.NewPCG(uint64(shards), 7))
			sizes := []int{0, 1, 5, 30, 200, 3000, 20_000, 70_000}
			value := func() []byte {
				v := make([]byte, sizes[r.IntN(len(sizes))]+r.IntN(3))
				for i := range v {
					v[i] = byte('a' + r.IntN(26))
				}
				return v
			}
			for step := range 20_000 {
				key := []byte("key" + strconv.Itoa(r.IntN(60)))
				m := model[string(key)]
				switch op := r.IntN(9); op {
				case 0, 1: // set, add, replace, cas, with a fresh or an explicit CAS unique
					mode := []Mode{ModeSet, ModeAdd, ModeReplace, ModeCAS}[r.IntN(4)]
					v, flags := value(), uint32(r.IntN(3))
					var cas uint64
					if mode == ModeCAS && m != nil && r.IntN(3) > 0 {
						cas = m.cas
					}
					nc := NewCAS{}
					if r.IntN(4) == 0 {
						nc = NewCAS{Value: r.Uint64N(1000) + 1, Explicit: true}
					}
					st, got := s.SetCAS(mode, key, v, flags, 0, cas, nc)
					want := OK
					switch {
					case mode == ModeAdd && m != nil, mode == ModeReplace && m == nil:
						want = NotStored
					case mode == ModeCAS && m == nil:
						want = NotFound
					case mode == ModeCAS && (cas == 0 || cas != m.cas):
						want = Exists
					}
					if st != want {
						t.Fatalf("step %d: %v %s: got %v, want %v", step, mode, key, st, want)
					}
					if st == OK {
						if nc.Explicit && got != nc.Value {
							t.Fatalf("step %d: explicit CAS %d, got %d", step, nc.Value, got)
						}
						model[string(key)] = &modelItem{value: v, flags: flags, cas: got}
					}
				case 2: // append, prepend
					mode := []Mode{ModeAppend, ModePrepend}[r.IntN(2)]
					v := value()
					st, got := s.Set(mode, key, v, 9, 0, 0)
					if m == nil {
						if st != NotStored {
							t.Fatalf("step %d: %v to a missing key: got %v", step, mode, st)
						}
						continue
					}
					if s.limitSize(len(key), len(m.value)+len(v), m.flags) > s.itemMax {
						if st != NotStored {
							t.Fatalf("step %d: %v over the item size: got %v", step, mode, st)
						}
						continue
					}
					if st != OK {
						t.Fatalf("step %d: %v: got %v", step, mode, st)
					}
					if mode == ModeAppend {
						m.value = append(m.value, v...)
					} else {
						m.value = append(v, m.value...)
					}
					m.cas = got
				case 3: // delete, sometimes with a CAS unique
					var cas uint64
					if m != nil && r.IntN(2) == 0 {
						cas = m.cas + uint64(r.IntN(2))
					}
					st := s.Delete(key, cas)
					want := OK
					switch {
					case m == nil:
						want = NotFound
					case cas != 0 && cas != m.cas:
						want = Exists
					}
					if st != want {
						t.Fatalf("step %d: delete %s cas %d: got %v, want %v", step, key, cas, st, want)
					}
					if st == OK {
						delete(model, string(key))
					}
				case 4: // a counter: created, counted up and down
					delta := r.Uint64N(1 << uint(r.IntN(40)))
					incr := r.IntN(2) == 0
					nc := NewCAS{}
					if r.IntN(4) == 0 {
						nc = NewCAS{Value: r.Uint64N(1000) + 1, Explicit: true}
					}
					v, got, st := s.ArithCAS(key, incr, delta, 7, true, 0, 0, nc)
					if m == nil {
						if st != OK || v != 7 {
							t.Fatalf("step %d: create %s: got %d %v", step, key, v, st)
						}
						model[string(key)] = &modelItem{value: []byte("7"), cas: got}
						continue
					}
					old, ok := parseNumber(m.value)
					if !ok || len(m.value) == 0 || ItemSize(len(key), len(m.value)) > s.chunkMax {
						if st != NonNumeric {
							t.Fatalf("step %d: arith on %q: got %v, want %v", step, m.value, st, NonNumeric)
						}
						continue
					}
					switch {
					case incr:
						old += delta
					case delta > old:
						old = 0
					default:
						old -= delta
					}
					if st != OK || v != old {
						t.Fatalf("step %d: arith: got %d %v, want %d", step, v, st, old)
					}
					digits := strconv.AppendUint(nil, old, 10)
					if len(digits) <= len(m.value) {
						digits = append(digits, bytes.Repeat([]byte(" "), len(m.value)-len(digits))...)
					}
					m.value, m.cas = digits, got
				case 5: // a small decimal value, for the counters
					v := strconv.AppendUint(nil, r.Uint64N(1<<uint(r.IntN(64))), 10)
					st, got := s.Set(ModeSet, key, v, 0, 0, 0)
					if st != OK {
						t.Fatalf("step %d: set %q: got %v", step, v, st)
					}
					model[string(key)] = &modelItem{value: v, cas: got}
				case 6: // invalidate and recompute, the meta way
					st := s.MetaDelete(key, MetaDeleteOptions{Invalidate: true, NewCAS: NewCAS{Value: 5, Explicit: r.IntN(2) == 0}})
					if m == nil {
						if st != NotFound {
							t.Fatalf("step %d: invalidate a missing key: got %v", step, st)
						}
						continue
					}
					if st != OK {
						t.Fatalf("step %d: invalidate: got %v", step, st)
					}
					_, it, _ := s.MetaGet(key, MetaGetOptions{NoBump: true}, nil)
					if !it.Stale {
						t.Fatalf("step %d: invalidated item not stale: %+v", step, it)
					}
					m.cas = it.CAS
				default: // read
					v, meta, lk := s.Get(key, nil)
					if m == nil {
						if lk != Miss {
							t.Fatalf("step %d: get %s: got %v, want %v", step, key, lk, Miss)
						}
						continue
					}
					if lk != Hit || !bytes.Equal(v, m.value) || meta.Flags != m.flags || meta.CAS != m.cas {
						t.Fatalf("step %d: get %s: got %d bytes flags %d cas %d %v, want %d bytes flags %d cas %d",
							step, key, len(v), meta.Flags, meta.CAS, lk, len(m.value), m.flags, m.cas)
					}
				}
				if step%1000 == 0 {
					checkInvariants(t, s)
				}
			}
			for k, m := range model {
				if v, meta, lk := s.Get([]byte(k), nil); lk != Hit || !bytes.Equal(v, m.value) || meta.CAS != m.cas {
					t.Errorf("%s at the end: got %d bytes cas %d %v, want %d bytes cas %d", k, len(v), meta.CAS, lk, len(m.value), m.cas)
				}
			}
			if st := s.Stats(); st.Evictions != 0 || st.CurrItems != int64(len(model)) {
				t.Errorf("stats: got %+v, want no evictions and %d items", st, len(model))
			}
			checkInvariants(t, s)
		})
	}
}

// TestEvictionNeverServesWrongData runs random writes, of values kept in
// pages and external ones, with fresh and explicit CAS uniques, on a store
// far too small for them, from several goroutines on keys of their own,
// and checks that a read finds either nothing (the item was evicted) or
// exactly what was last written.
func TestEvictionNeverServesWrongData(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxBytes: 2 << 20}, 8)
	sizes := []int{0, 10, 100, 1000, 6000, 40_000}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 9))
			model := map[string]*modelItem{}
			for step := range 30_000 {
				key := []byte(fmt.Sprintf("g%d:%d", g, r.IntN(400)))
				m := model[string(key)]
				switch r.IntN(6) {
				case 0, 1:
					v := bytes.Repeat([]byte{byte('a' + r.IntN(26))}, sizes[r.IntN(len(sizes))]+r.IntN(9))
					nc := NewCAS{}
					if r.IntN(3) == 0 {
						nc = NewCAS{Value: r.Uint64N(1 << 40), Explicit: true}
					}
					st, cas := s.SetCAS(ModeSet, key, v, uint32(step), 0, 0, nc)
					if st != OK {
						t.Errorf("set %s: got %v", key, st)
						return
					}
					model[string(key)] = &modelItem{value: v, flags: uint32(step), cas: cas}
				case 2:
					v := []byte{byte('A' + r.IntN(26))}
					st, cas := s.Set(ModeAppend, key, v, 0, 0, 0)
					switch {
					case st == OK && m != nil:
						m.value, m.cas = append(m.value, v...), cas
					case st == NotStored:
						delete(model, string(key)) // evicted, or never stored
					default:
						t.Errorf("append %s: got %v with the model holding %v", key, st, m != nil)
						return
					}
				case 3:
					s.Delete(key, 0)
					delete(model, string(key))
				default:
					v, meta, lk := s.Get(key, nil)
					if lk != Hit {
						delete(model, string(key))
						continue
					}
					if m == nil || !bytes.Equal(v, m.value) || meta.Flags != m.flags || meta.CAS != m.cas {
						t.Errorf("get %s: got %d bytes flags %d cas %d, the last write was %+v", key, len(v), meta.Flags, meta.CAS, m)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if st := s.Stats(); st.Evictions == 0 {
		t.Errorf("no evictions: the load did not fill the store (%+v)", st)
	}
	checkInvariants(t, s)
}
