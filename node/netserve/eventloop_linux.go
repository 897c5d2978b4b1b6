package netserve

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// loopYield is how long an event loop serves connections before it
	// lets the other runnable goroutines run: connections served by
	// their own goroutines, gossip, stats. The scheduler's preemption
	// would leave them waiting 10 ms.
	loopYield = 100 * time.Microsecond
	// loopSpin is how long a loop that finds no event polls again before
	// it sleeps, when its last sleep was as short: under load the next
	// requests come within microseconds, and a loop that is awake when
	// they do spares the kernel a wake-up on both sides, the client's
	// and the node's. A loop whose sleeps last longer sleeps at once, so
	// that a lightly loaded node spends nothing on polling.
	loopSpin = 20 * time.Microsecond
	// loopPollEvery is how often a spinning loop polls: an empty poll is
	// a system call, and requests come no faster.
	loopPollEvery = 2 * time.Microsecond
	// loopSleepEvery is the longest a loop goes without sleeping while it
	// finds moments with no event: while it never sleeps the Go scheduler
	// does not poll the network for the goroutines waiting on it
	// (listeners, connections a loop does not hold) until 10 ms pass.
	loopSleepEvery = time.Millisecond
)

// eventLoop serves connections while they wait for their next request, as
// memcached's worker threads do: one level-triggered epoll set, and for each
// connection it reports readable one read, the requests that read completed,
// and one write of their replies. A connection served by its own goroutine
// instead costs a goroutine switch per request and, when the request has not
// come yet, a read that fails and a second one once the poller wakes it;
// under load those were a tenth of a request's CPU time.
//
// The loop serves only what cannot block it: requests wholly buffered, of
// the commands that answer at once, and replies the socket takes. Anything
// else (a request still arriving, a large value, stats, a client not reading
// its replies, the end of the connection) it gives to a new goroutine of
// the connection's (release), which serves it and, once it waits for a
// request again, hands it back (park) and ends. Each connection is owned by
// one of the two at a time: park registers it, and the loop unregisters it
// before it starts the goroutine. A connection the loop holds has no
// goroutine and no buffers (Conn.rest).
type eventLoop struct {
	epfd int
	// wake is a pipe whose reading end is in the epoll set: stop writes
	// to it to end a sleep.
	wake  [2]int
	start sync.Once

	mu       sync.Mutex
	held     []*Conn // by descriptor: the connections the loop serves
	stopping atomic.Bool

	log *slog.Logger

	events []unix.EpollEvent
	ready  []*Conn // the connections of events, looked up under mu, and of carry
	// carry are the connections that yielded after -R requests with more
	// buffered: the next round serves them again without waiting for
	// epoll, which reports only what the socket holds.
	carry []*Conn

	spin  bool      // the last sleep was short: poll before the next
	slept time.Time // when the last sleep ended
}

// newEventLoop returns a loop that runs once a connection is first held.
func newEventLoop(log *slog.Logger) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("event loop: %w", os.NewSyscallError("epoll_create1", err))
	}
	l := &eventLoop{
		log:    log,
		epfd:   epfd,
		wake:   [2]int{-1, -1},
		events: make([]unix.EpollEvent, 128),
		ready:  make([]*Conn, 128),
	}
	if err := unix.Pipe2(l.wake[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("event loop: %w", os.NewSyscallError("pipe2", err))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.wake[0])}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, l.wake[0], &ev); err != nil {
		l.close()
		return nil, fmt.Errorf("event loop: %w", os.NewSyscallError("epoll_ctl", err))
	}
	return l, nil
}

// close closes the loop's descriptors.
func (l *eventLoop) close() {
	unix.Close(l.epfd)
	for _, fd := range l.wake {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// park hands c, resting (see Conn.rest), to the loop, and reports whether
// the loop took it: then the calling goroutine must not touch c again, and
// the loop gives it back to a new one (release) when it has requests the
// loop cannot answer, replies the socket will not take, or an end. park
// reports false, at once, if the loop is stopping or cannot take c.
func (l *eventLoop) park(c *Conn) bool {
	l.start.Do(func() { go l.run() })
	fd := c.socket.fd
	c.socket.held = true
	c.idle.Store(true)
	l.mu.Lock()
	if l.stopping.Load() {
		l.mu.Unlock()
		c.socket.held = false
		c.idle.Store(false)
		return false
	}
	for fd >= len(l.held) {
		l.held = append(l.held, make([]*Conn, len(l.held)+64)...)
	}
	l.held[fd] = c
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	if err != nil {
		l.held[fd] = nil
		c.socket.held = false
		c.idle.Store(false)
	}
	l.mu.Unlock()
	return err == nil
}

// release gives c back to a new goroutine of its own.
func (l *eventLoop) release(c *Conn) {
	fd := c.socket.fd
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.mu.Lock()
	l.held[fd] = nil
	l.mu.Unlock()
	c.idle.Store(false)
	go c.resume()
}

// stop gives every connection back to its goroutine and ends the loop;
// hold refuses connections from then on.
func (l *eventLoop) stop() {
	l.mu.Lock()
	l.stopping.Store(true)
	l.mu.Unlock()
	ran := true
	l.start.Do(func() { ran = false })
	if !ran {
		l.close() // nothing was ever held
		return
	}
	// The pipe stays readable: run finds an event at once from now on.
	_, _ = unix.Write(l.wake[1], []byte{0})
}

// run serves the held connections until stop.
func (l *eventLoop) run() {
	defer l.close()
	yielded := time.Now()
	for !l.stopping.Load() {
		var n int
		if len(l.carry) > 0 {
			n = l.epollWait() // requests are waiting: look, but do not wait
		} else {
			n = l.wait()
		}
		ready := l.ready[:0]
		l.mu.Lock()
		for _, ev := range l.events[:n] {
			if int(ev.Fd) < len(l.held) {
				if c := l.held[ev.Fd]; c != nil && !c.carried {
					ready = append(ready, c)
				}
			}
		}
		l.mu.Unlock()
		ready = append(ready, l.carry...) // their carried flag is cleared by readNow
		l.carry = l.carry[:0]
		l.ready = ready
		l.serve(ready)
		if now := time.Now(); now.Sub(yielded) >= loopYield {
			runtime.Gosched()
			yielded = now
		}
	}
	l.mu.Lock()
	held := l.held
	l.held = nil
	l.mu.Unlock()
	for _, c := range held {
		if c != nil {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.socket.fd, nil)
			c.idle.Store(false)
			go c.resume()
		}
	}
}

// serve serves the connections epoll reported readable in three passes:
// it reads every one, then answers the requests each read completed, then
// writes every one's replies. Each pass runs one kind of work back to back,
// the kernel's receive path, the store, the kernel's send path, and finds
// its code and data still in the caches, where serving the connections one
// after another alternates the three; under memcaslap the passes cost 5-7%
// less CPU per request. A connection the loop cannot go on serving (see
// eventLoop) goes back to its goroutine at the pass that finds it so.
// serve empties ready.
func (l *eventLoop) serve(ready []*Conn) {
	for i, c := range ready {
		if c != nil && !c.readNow() {
			ready[i] = nil
			l.release(c)
		}
	}
	for i, c := range ready {
		if c != nil && (c.onLoop == nil || !c.onLoop.AnswerReady()) {
			// A connection whose protocol is not yet known has its
			// first request read by its goroutine's handler.
			ready[i] = nil
			l.release(c)
		}
	}
	for i, c := range ready {
		ready[i] = nil
		switch {
		case c == nil:
		case c.yielded:
			// Served -R requests with more buffered: the others have
			// had their turn; its own comes again next round, with
			// its replies, unless enough gathered to write now.
			c.yielded = false
			if len(c.Out) >= FlushThreshold && !c.TryFlush() {
				l.release(c)
				break
			}
			c.carried = true
			l.carry = append(l.carry, c)
		case !c.flushReady():
			l.release(c)
		default:
			c.rest()
		}
	}
}

// wait returns the number of events in l.events, waiting while there are
// none: polling for up to loopSpin if the last wait was as short, then
// sleeping in epoll_wait (see sleep). It returns 0 if the loop failed.
func (l *eventLoop) wait() int {
	if n := l.epollWait(); n > 0 {
		return n
	}
	start := time.Now()
	if l.spin && start.Sub(l.slept) < loopSleepEvery {
		for now := start; now.Sub(start) < loopSpin; {
			runtime.Gosched()
			for poll := now.Add(loopPollEvery); now.Before(poll); now = time.Now() {
			}
			if n := l.epollWait(); n > 0 {
				return n
			}
		}
	}
	n := l.sleep()
	l.slept = time.Now()
	l.spin = l.slept.Sub(start) < loopSpin
	return n
}

// fail stops the loop after an error it cannot go on from. The connections
// it held go back to their goroutines, which serve them as if there were no
// loop.
func (l *eventLoop) fail(err error) {
	l.mu.Lock()
	l.stopping.Store(true)
	l.mu.Unlock()
	l.log.Error("event loop stopped; its connections go on without it", "err", err)
}

// sleep waits in epoll_wait until there are events, and returns their
// number. It is a system call the Go scheduler knows may block: if it does,
// the scheduler runs the other goroutines on another thread meanwhile.
//
// The loop does not sleep through the Go poller, although it could (an
// epoll descriptor is pollable): nested in the poller's epoll set, its own
// would make every event the kernel queues on it run a second wake-up chain,
// in the time of the client whose write made it. memcached sleeps in
// epoll_wait too. In six alternating memcaslap A/B runs against sleeping
// through the poller, this won three by 4-6% in throughput and spent 0.6-1
// µs less CPU per request on each side; it tied one and lost two, by 1.5%
// and 6%: the machine's noise is as large.
func (l *eventLoop) sleep() int { return l.epoll(true) }

// epollWait returns the number of events ready now, without waiting: a
// system call too short to tell the scheduler of.
func (l *eventLoop) epollWait() int { return l.epoll(false) }

// epoll fills l.events by epoll_pwait, waiting for events if block, and
// returns their number.
func (l *eventLoop) epoll(block bool) int {
	for {
		var n uintptr
		var errno unix.Errno
		if block {
			forever := -1 // the timeout: none
			n, _, errno = unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), uintptr(forever), 0, 0)
		} else {
			n, _, errno = unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
		}
		switch errno {
		case 0:
			return int(n)
		case unix.EINTR:
		default:
			l.fail(os.NewSyscallError("epoll_pwait", errno))
			return 0
		}
	}
}

// eventLoopFor returns the event loop that is to serve c between its
// requests, or nil if c is to wait in its goroutine: a connection that is
// not a plain socket (TLS), or any under an idle timeout, which its
// goroutine's read deadline enforces. The server has a loop per processor,
// started with its first connection.
func (s *Server) eventLoopFor(c *Conn) *eventLoop {
	if c.socket == nil || s.cfg.IdleTimeout > 0 {
		return nil
	}
	s.loopsOnce.Do(func() {
		if s.shuttingDown.Load() {
			return
		}
		for range runtime.GOMAXPROCS(0) {
			l, err := newEventLoop(s.log)
			if err != nil {
				s.log.Warn("connections wait for requests in their goroutines", "err", err)
				break
			}
			s.loops = append(s.loops, l)
		}
	})
	if len(s.loops) == 0 {
		return nil
	}
	return s.loops[c.id%uint64(len(s.loops))]
}

// stopEventLoops gives the connections the event loops hold back to their
// goroutines, and stops the loops.
func (s *Server) stopEventLoops() {
	s.loopsOnce.Do(func() {})
	for _, l := range s.loops {
		l.stop()
	}
}

// readNow reads, without waiting, what the socket holds into the read
// buffer, and reports whether the connection may stay on its loop: false
// for the end of the stream or an error, which the goroutine's next read
// finds again. A read is a request's arrival, for secs_since_last_cmd.
func (c *Conn) readNow() bool {
	if c.carried {
		c.carried = false
		c.turnWritten = 0
		return true // carried over with requests buffered: serve those first
	}
	c.turnWritten = 0
	c.attach()
	_, err := c.In.Peek(c.In.Buffered() + 1)
	if err != nil && err != errWouldBlock {
		c.ReadEnded(err) // a reset is reported once: later reads find the end
		return false
	}
	c.lastCmd.Store(c.srv.clock())
	return true
}

// flushReady writes, after AnswerReady, the replies gathered, and reports
// whether the connection may stay on its loop: only if the socket took them
// all and no request is left part-read.
func (c *Conn) flushReady() bool {
	return c.TryFlush() && c.In.Buffered() == 0
}

// appendValueNow is AppendValue on the event loop: it writes the replies
// gathered and then v as far as the socket takes them, and copies the rest
// of v into c.Out. A write error is left for the goroutine to meet.
func (c *Conn) appendValueNow(v []byte) {
	n := 0
	if c.TryFlush() {
		n, _ = c.socket.writeNow(v)
		c.wrote(n)
	}
	c.Out = append(c.Out, v[n:]...)
}

// TryFlush writes the gathered replies as far as the socket takes them
// without waiting, and reports whether it took them all; what it did not
// take stays in c.Out, for the goroutine to write.
func (c *Conn) TryFlush() bool {
	if len(c.Out) == 0 {
		return true
	}
	n, err := c.socket.writeNow(c.Out)
	c.wrote(n)
	if err != nil {
		c.Out = c.Out[:copy(c.Out, c.Out[n:])]
		return false
	}
	c.Out = c.Out[:0]
	return true
}
