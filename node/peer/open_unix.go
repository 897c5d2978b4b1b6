//go:build unix

package peer

import (
	"crypto/tls"
	"syscall"

	"golang.org/x/sys/unix"
)

// open reports whether cn's peer has neither closed it nor sent anything
// unasked: a read that does not wait finds nothing yet. It reads nothing.
func open(cn *conn) bool {
	if cn.r.Buffered() > 0 {
		return false
	}
	nc := cn.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	if err := rc.Control(func(fd uintptr) {
		_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		alive = rerr == unix.EAGAIN // nothing to read: open and quiet
	}); err != nil {
		return false
	}
	return alive
}
