//go:build !unix

package store

// allocSlots returns a zeroed table of n slots.
func allocSlots(n int) []uint64 { return make([]uint64, n) }

// freeSlots gives a table from allocSlots back: the collector frees it.
func freeSlots([]uint64) {}
