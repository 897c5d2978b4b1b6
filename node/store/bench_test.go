package store

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"testing"
)

const benchKeys = 1 << 16

// scatter maps i to a key index, visiting the keys out of insertion order
// so that consecutive operations do not touch neighbouring memory.
func scatter(i int) int {
	return (i * 0x9E3779B1) & (benchKeys - 1)
}

// benchStore returns a store holding benchKeys items of 100-byte values
// under the keys benchKey(i).
func benchStore(b *testing.B) (*Store, [][]byte) {
	b.Helper()
	s := New(Config{MaxBytes: 1 << 30})
	b.Cleanup(s.Close)
	keys := make([][]byte, benchKeys)
	val := bytes.Repeat([]byte("v"), 100)
	for i := range keys {
		keys[i] = []byte("key:" + strconv.Itoa(i))
		s.Set(ModeSet, keys[i], val, 0, 0, 0)
	}
	return s, keys
}

func BenchmarkGetHit(b *testing.B) {
	s, keys := benchStore(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Get(keys[scatter(i)], buf[:0])
		i++
	}
}

func BenchmarkGetMiss(b *testing.B) {
	s, _ := benchStore(b)
	keys := make([][]byte, benchKeys)
	for i := range keys {
		keys[i] = []byte("missing:" + strconv.Itoa(i))
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Get(keys[scatter(i)], buf[:0])
		i++
	}
}

func BenchmarkSetOverwrite(b *testing.B) {
	s, keys := benchStore(b)
	val := bytes.Repeat([]byte("w"), 100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Set(ModeSet, keys[scatter(i)], val, 0, 0, 0)
		i++
	}
}

func BenchmarkSetNewEvicting(b *testing.B) {
	// A full store: every set of a new key evicts an old one.
	s := New(Config{MaxBytes: 8 << 20})
	b.Cleanup(s.Close)
	val := bytes.Repeat([]byte("v"), 100)
	key := make([]byte, 0, 32)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key = strconv.AppendInt(append(key[:0], "key:"...), int64(i), 10)
		s.Set(ModeSet, key, val, 0, 0, 0)
		i++
	}
}

func BenchmarkIncr(b *testing.B) {
	s, _ := benchStore(b)
	key := []byte("counter")
	s.Set(ModeSet, key, []byte("0"), 0, 0, 0)
	b.ReportAllocs()
	for b.Loop() {
		s.Arith(key, true, 1, 0, false, 0, 0)
	}
}

// BenchmarkParallelGetSet is 90% gets and 10% sets over many keys from
// GOMAXPROCS goroutines.
func BenchmarkParallelGetSet(b *testing.B) {
	s, keys := benchStore(b)
	val := bytes.Repeat([]byte("w"), 100)
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 256)
		x := seed.Add(1) * 0x9E3779B97F4A7C15
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			k := keys[x&(benchKeys-1)]
			if x>>60 < 2 { // 2/16, about 10%
				s.Set(ModeSet, k, val, 0, 0, 0)
			} else {
				s.Get(k, buf[:0])
			}
		}
	})
}
