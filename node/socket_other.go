//go:build !linux

package node

import (
	"io"
	"net"
)

// socketOf returns what a connection reads its requests from and writes
// its replies to: on this system, nc itself.
func socketOf(nc net.Conn) io.ReadWriter { return nc }
