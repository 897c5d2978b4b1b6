package netserve

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall" // for syscall.Conn and RawConn, the net package's access to a descriptor
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawCallMax is the largest read or write socket makes without telling the
// Go scheduler it is in a system call: above the flush threshold, so that
// a connection's usual writes are direct. Copying that much to or from a
// socket takes microseconds; larger transfers go through unix.Read and
// unix.Write, which let the scheduler run other goroutines meanwhile.
const rawCallMax = 2 * FlushThreshold

// socket reads and writes a connection's socket with direct system calls,
// bypassing the net package's per-call locking and deadline checks and the
// scheduler's system-call bookkeeping: a request costs one read and one
// write, and those wrappers were a measurable part of its CPU time. When the
// socket has nothing to read or no room to write, socket waits through the
// net package's poller, so deadlines (the idle timeout, shutdown's wake-up)
// still apply while it waits.
//
// The descriptor is used outside the net package's reference counting, so
// only the connection's own goroutine may close the net.Conn; others end it
// with abortConn, which shuts the socket down instead of closing it.
type socket struct {
	fd int
	rc syscall.RawConn
	// held is set while an event loop serves the connection (see
	// eventLoop): a read then never waits, and fails with errWouldBlock
	// when there is nothing to read.
	held bool

	// The state of a wait in the poller, which calls onReadable and
	// onWritable: readReady and writeReady, as method values made once,
	// so that a wait allocates nothing.
	onReadable, onWritable func(uintptr) bool
	rbuf                   []byte
	rn                     int
	rerr                   error
	wbuf                   []byte
	wdone                  int
	werr                   error
}

// errWouldBlock is a held socket's read finding nothing to read.
var errWouldBlock = errors.New("node: socket has nothing to read")

// socketOf returns what a connection reads its requests from and writes
// its replies to: a socket on nc's descriptor if nc is a socket the kernel
// reads and writes directly (TCP or Unix, not TLS), else nc itself. The
// socket is also returned alone, nil for nc.
func socketOf(nc net.Conn) (io.ReadWriter, *socket) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc, nil
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		return nc, nil
	}
	s := &socket{fd: fd, rc: rc}
	s.onReadable, s.onWritable = s.readReady, s.writeReady
	return s, s
}

// Read reads what the socket holds, at most len(p) bytes, waiting for some
// if it holds none.
func (s *socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > rawCallMax {
		return s.waitRead(p)
	}
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil
		case unix.EINTR: // interrupted before reading: again
		case unix.EAGAIN:
			if s.held {
				return 0, errWouldBlock
			}
			return s.waitRead(p)
		default:
			return 0, os.NewSyscallError("read", errno)
		}
	}
}

// waitRead reads into p through the poller, parking until the socket is
// readable or the read deadline passes.
func (s *socket) waitRead(p []byte) (int, error) {
	s.rbuf = p
	werr := s.rc.Read(s.onReadable)
	n, err := s.rn, s.rerr
	s.rbuf, s.rerr = nil, nil
	switch {
	case werr != nil:
		return 0, werr
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readReady is what the poller calls for waitRead: it reads into s.rbuf,
// and reports false if the socket had nothing to read.
func (s *socket) readReady(fd uintptr) bool {
	for {
		s.rn, s.rerr = unix.Read(int(fd), s.rbuf)
		if s.rerr != unix.EINTR {
			return s.rerr != unix.EAGAIN
		}
	}
}

// Write writes all of p, waiting for room in the socket as it must.
func (s *socket) Write(p []byte) (int, error) {
	if len(p) > rawCallMax {
		return s.waitWrite(p, 0)
	}
	done, err := s.writeNow(p)
	if err == errWouldBlock {
		return s.waitWrite(p, done)
	}
	return done, err
}

// writeNow writes as much of p as the socket takes without waiting, and
// returns how much that was; the error is errWouldBlock if the socket had no
// room for the rest.
func (s *socket) writeNow(p []byte) (int, error) {
	for done := 0; done < len(p); {
		rest := p[done:]
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(s.fd), uintptr(unsafe.Pointer(&rest[0])), uintptr(min(len(rest), rawCallMax)))
		switch errno {
		case 0:
			if n == 0 {
				return done, io.ErrShortWrite
			}
			done += int(n)
		case unix.EINTR: // interrupted before writing: again
		case unix.EAGAIN:
			return done, errWouldBlock
		default:
			return done, os.NewSyscallError("write", errno)
		}
	}
	return len(p), nil
}

// waitWrite writes p[done:] through the poller, parking whenever the
// socket has no room, and returns the bytes of p written in all.
func (s *socket) waitWrite(p []byte, done int) (int, error) {
	s.wbuf, s.wdone = p, done
	werr := s.rc.Write(s.onWritable)
	done, err := s.wdone, s.werr
	s.wbuf, s.werr = nil, nil
	switch {
	case werr != nil:
		return done, werr
	case err != nil:
		return done, os.NewSyscallError("write", err)
	}
	return done, nil
}

// writeReady is what the poller calls for waitWrite: it writes what is
// left of s.wbuf, and reports false if the socket had no room for it.
func (s *socket) writeReady(fd uintptr) bool {
	for s.wdone < len(s.wbuf) {
		n, err := unix.Write(int(fd), s.wbuf[s.wdone:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			s.werr = err
			return true
		case n == 0:
			s.werr = io.ErrShortWrite
			return true
		}
		s.wdone += n
	}
	return true
}
