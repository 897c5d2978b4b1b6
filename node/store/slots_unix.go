//go:build unix

package store

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapMin is the smallest table allocSlots maps; smaller ones are not worth
// a mapping of their own.
const mapMin = 64 << 10

// allocSlots returns a zeroed table of n slots, in memory mapped for it
// alone outside the Go heap if it is large: a table the index has outgrown
// goes back to the system at once (freeSlots) instead of waiting, resident,
// for the collector.
func allocSlots(n int) []uint64 {
	if n*slotSize < mapMin {
		return make([]uint64, n)
	}
	b, err := unix.Mmap(-1, 0, n*slotSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]uint64, n) // no mapping to be had: the heap will do
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// freeSlots gives a table from allocSlots back. It must not be used after.
func freeSlots(slots []uint64) {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(slots))), len(slots)*slotSize)
	_ = unix.Munmap(b) // fails only for a table from the heap, which the collector frees
}
