//go:build !linux

package netserve

import (
	"io"
	"net"
)

// socketOf returns what a connection reads its requests from and writes
// its replies to: on this system, nc itself, and no socket.
func socketOf(nc net.Conn) (io.ReadWriter, *socket) { return nc, nil }

// socket is, on this system, never made: connections read and write
// through the net package. Its fields are those code shared with Linux
// reads of it, never set.
type socket struct {
	fd   int
	held bool
}
