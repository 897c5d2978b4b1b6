package netserve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall" // for syscall.Conn, the net package's access to a descriptor
	"time"

	"github.com/memcluster/memcluster/internal/freelist"
)

const (
	// readBufferSize is a connection's read buffer, as memcached's 16 KiB.
	readBufferSize = 16 << 10
	// outBufferSize is the capacity a connection's reply buffer starts
	// with; one that grew past KeepBuffer for a large reply is dropped
	// once written.
	outBufferSize = 4 << 10
	// FlushThreshold is how much reply a connection gathers before it
	// writes even though more requests are buffered.
	FlushThreshold = 64 << 10
	// loopTurnBytes is how much reply a connection writes in one turn on
	// its event loop before the others have theirs.
	loopTurnBytes = 4 * FlushThreshold
	// KeepBuffer is the most a connection keeps of buffers that grew for
	// one large request, while it is busy: at rest it keeps none (see
	// Conn.rest).
	KeepBuffer = 2 * FlushThreshold
)

// Conn is one client connection, served by a goroutine of its own while it
// needs one, and between its requests, when it is a plain socket, by an
// event loop that holds it with no goroutine (see eventLoop).
//
// The Handler reads requests from In and appends replies to Out; the Conn
// writes Out when the handler calls Flush, AfterRequest or WaitForRequest,
// and before In reads from the socket. Only the connection's goroutine, or
// the event loop while it holds the connection, may use a Conn, except for
// the methods that say otherwise.
type Conn struct {
	// In is the read buffer requests are decoded from. The pointer is
	// the connection's for its life; the buffer behind it, like Out's
	// and Scratch's, is lent from a pool while the connection is busy and
	// given back while it rests on an event loop, as memcached lends its
	// per-thread read buffer, so that an idle connection costs a few
	// hundred bytes.
	In *bufio.Reader
	// Out holds the replies not yet written.
	Out []byte
	// Scratch is the handler's to use while it serves a request: a
	// buffer pooled with In and Out.
	Scratch []byte

	in   bufio.Reader // what In points to
	bufs *connBuffers // what In, Out and Scratch are lent, or nil

	srv *Server
	nc  net.Conn // the connection requests and replies go through
	raw net.Conn // the socket under nc: nc itself, or the one under TLS
	// sock is what requests are read from and replies written to: nc, or
	// for a plain socket its descriptor, read and written directly (see
	// socketOf). Only this connection's goroutine may close nc; others
	// call abort.
	sock io.ReadWriter
	// socket is sock if the connection reads and writes its descriptor
	// directly, else nil.
	socket *socket
	id     uint64

	idle        atomic.Bool  // blocked waiting for a new request
	lastCmd     atomic.Int64 // unix second of the last request
	closeAfter  bool         // close once the replies are written
	deadlineSet bool         // a read deadline is pending
	// servedInEvent counts the requests served since the connection last
	// waited for one, up to -R (Config.MaxReqsPerEvent).
	servedInEvent int
	// turnWritten counts the bytes written in the connection's turn on
	// its event loop (see AfterRequestNow).
	turnWritten int
	// yielded is set by the event loop's answer pass when it stopped
	// after -R requests with more buffered, and carried while the loop
	// holds the connection over to its next round (see eventLoop.carry).
	yielded, carried bool
	// closeReason is why the connection ends, for its conn_close line.
	closeReason CloseReason

	// written counts the bytes of replies written (see Written).
	written int64
	// readOnly is set while the handler reads on in a request whose reply
	// it is gathering (see ReadOnly).
	readOnly bool

	// owed says replies to requests of the read being served are owed,
	// as memcached's resp_has_stack (see Owed).
	owed bool

	// loop serves the connection between its requests (see eventLoop),
	// or is nil; onLoop is how it answers them, set by ServeOnLoop.
	// parking is set by WaitForRequest when the connection is to rest
	// on the loop, and resumed when the loop gave it back to a new
	// goroutine (see run and resume).
	loop             *eventLoop
	onLoop           LoopServer
	parking, resumed bool
	// linger is set by Linger, for the next wait for a request.
	linger bool
}

func newConn(s *Server, nc net.Conn) *Conn {
	c := s.NewConn(nc)
	c.sock, c.socket = socketOf(nc)
	c.loop = s.eventLoopFor(c)
	return c
}

// connBuffers are the buffers a busy connection is lent (see Conn.In).
type connBuffers struct {
	in           bufio.Reader
	out, scratch []byte
}

// connBufferPool lends connBuffers: as many as are busy at once, kept up to
// a few hundred (a few megabytes).
var connBufferPool = freelist.List[connBuffers]{
	New: func() *connBuffers {
		return &connBuffers{in: *bufio.NewReaderSize(nil, readBufferSize), out: make([]byte, 0, outBufferSize)}
	},
	Max: 256,
}

// attach lends the connection its buffers, unless it has them.
func (c *Conn) attach() {
	if c.bufs != nil {
		return
	}
	b := connBufferPool.Get()
	c.bufs = b
	c.in = b.in
	c.in.Reset(connReader{c})
	c.Out, c.Scratch = b.out[:0], b.scratch[:0]
}

// rest gives back the buffers of a connection with nothing buffered and
// nothing to write, and lets the handler give back its own (LoopServer.Rest).
func (c *Conn) rest() {
	b := c.bufs
	if b == nil {
		return
	}
	if c.onLoop != nil {
		c.onLoop.Rest()
	}
	c.in.Reset(nil) // the pool must not hold the connection
	b.in, c.in = c.in, bufio.Reader{}
	b.out, b.scratch = keepSmall(c.Out, outBufferSize), keepSmall(c.Scratch, 0)
	c.Out, c.Scratch, c.bufs = nil, nil, nil
	connBufferPool.Put(b)
}

// keepSmall returns buf emptied if its capacity is at most KeepBuffer,
// else a new buffer of capacity size (nil for 0).
func keepSmall(buf []byte, size int) []byte {
	if cap(buf) <= KeepBuffer {
		return buf[:0]
	}
	if size == 0 {
		return nil
	}
	return make([]byte, 0, size)
}

// connReader is what a connection's read buffer reads from: its socket,
// counting the bytes read into bytes_read. Before it reads, it writes the
// replies gathered, as memcached writes what it owes before it waits for
// more of a request: the read buffer reads only when it lacks a whole
// request, and a client may wait for those replies before it sends the
// rest.
type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	c.owed = false
	// On the event loop nothing is owed when it reads (see
	// eventLoop.serve); and it must not wait on a write.
	if len(c.Out) > 0 && !c.readOnly && (c.socket == nil || !c.socket.held) {
		if err := c.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := c.sock.Read(p)
	c.srv.counters.BytesRead.Add(uint64(n))
	return n, err
}

// ID returns the connection's number: listeners and connections are
// numbered in the order they opened, from 1. Any goroutine may call ID,
// RemoteAddr, LocalAddr and FD.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the address the client reached.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// FD returns the connection's socket descriptor, as memcached's log lines
// name a connection; 0 if it has none.
func (c *Conn) FD() int {
	if c.socket != nil {
		return c.socket.fd
	}
	fd := 0
	if sc, ok := c.raw.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}

// Owed reports whether replies to requests of the read being served are
// owed, as memcached's resp_has_stack: watch and metadump refuse to follow
// them. memcached writes what it owes after a get and an mn, and before it
// reads more, which clears it.
func (c *Conn) Owed() bool { return c.owed }

// SetOwed records whether replies are owed once the handler has answered a
// request (see Owed).
func (c *Conn) SetOwed(owed bool) { c.owed = owed }

// LoopServer is how the event loop serves a connection between its
// goroutine's turns: the handler's state for the connection. Its methods
// are called by the loop or the connection's goroutine, never both at once.
type LoopServer interface {
	// AnswerReady answers, on the event loop, the requests the loop's
	// read completed, appending their replies to Out, and reports
	// whether the connection may stay on the loop. A request it must not
	// answer there (one that may block) it leaves to the goroutine:
	// unread in In, or decoded and held (see HasPending).
	AnswerReady() bool
	// HasPending reports whether the handler holds a request it decoded
	// on the loop but left to the goroutine.
	HasPending() bool
	// ServeRequests serves, on a new goroutine of the connection's, the
	// requests the loop left it, and those after, until WaitForRequest
	// returns false, as ServeConn does.
	ServeRequests()
	// Rest is called when the connection rests, on the loop or waiting
	// in its goroutine, with nothing buffered, pending or owed: the
	// handler gives back what it holds for requests, as the connection
	// gives back In, Out and Scratch (or, waiting in its goroutine, what
	// of them grew past KeepBuffer).
	Rest()
}

// Written returns how many bytes of replies the connection has written:
// with len(Out), where in the stream of replies the next reply begins.
func (c *Conn) Written() int64 { return c.written }

// ReadOnly sets whether reading more of a request leaves the replies
// gathered unwritten, as a handler wants while it reads on in a request
// whose reply it is still gathering and may yet retract: a long get line
// with a key too long is answered with the error alone. The handler then
// writes as its reply grows, with Flush or TryFlush.
func (c *Conn) ReadOnly(on bool) { c.readOnly = on }

// OnLoop reports whether the event loop is serving the connection: a write
// must not wait then (see TryFlush).
func (c *Conn) OnLoop() bool { return c.socket != nil && c.socket.held }

// ServeOnLoop lets the event loop serve the connection between its
// requests through s, once the handler knows the protocol.
func (c *Conn) ServeOnLoop(s LoopServer) { c.onLoop = s }

// WaitForRequest blocks until a request's first byte is buffered. It
// returns false when the connection should close instead: shutdown, idle
// timeout, the client gone. Replies gathered so far are flushed first.
func (c *Conn) WaitForRequest() bool {
	switch {
	case c.resumed:
		// Given back by the loop: the replies it could not write
		// first, then what it left to serve.
		c.resumed = false
		c.attach()
		if c.closeAfter {
			_ = c.Flush()
			return false
		}
		if c.Flush() != nil {
			return false
		}
		if c.requestWaiting() {
			return true
		}
		// Given back with nothing to serve: the end of the stream, an
		// error or shutdown, which what follows finds.
	case c.requestWaiting():
		// Another request arrived with the one just served: one event,
		// as memcached counts, until -R of them have been served.
		if c.servedInEvent++; c.servedInEvent >= c.srv.cfg.MaxReqsPerEvent {
			return c.yield()
		}
		return true
	case c.loop != nil && c.onLoop != nil:
		c.servedInEvent = 0
		if c.Flush() != nil || c.srv.shuttingDown.Load() {
			return false
		}
		if c.linger {
			c.linger = false
			if c.lingered() {
				return true
			}
		}
		c.parking = true // see run
		return false
	}
	c.servedInEvent = 0
	c.attach()
	if len(c.Out) > 0 {
		if c.srv.currConns.Load() > 1 {
			runtime.Gosched()
		}
		if err := c.Flush(); err != nil {
			return false
		}
		// The client is likely to answer the reply with its next
		// request soon: let the other connections run first, so that
		// the read finds it instead of failing with EAGAIN and parking,
		// which costs a system call per request. A lone connection
		// has no one to let run, and would only wait.
		if c.srv.currConns.Load() > 1 {
			runtime.Gosched()
		}
	}
	// What grew for large requests is dropped before the wait.
	c.Out, c.Scratch = keepSmall(c.Out, outBufferSize), keepSmall(c.Scratch, 0)
	if c.onLoop != nil {
		c.onLoop.Rest()
	}
	c.idle.Store(true)
	defer c.idle.Store(false)
	if c.srv.shuttingDown.Load() {
		return false
	}
	if t := c.srv.cfg.IdleTimeout; t > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(t))
		c.deadlineSet = true
	}
	if _, err := c.In.Peek(1); err != nil {
		c.ReadEnded(err)
		return false
	}
	if c.deadlineSet {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.deadlineSet = false
	}
	c.lastCmd.Store(c.srv.clock()) // a coarse clock: cheaper than time.Now per request
	return true
}

// lingerFor is how long a connection that asked to linger (Linger) waits
// on its goroutine for its next request before it rests on its loop.
const lingerFor = 2 * time.Millisecond

// Linger asks that the connection's next wait for a request, if it would
// rest on its event loop, first wait up to lingerFor on its goroutine: a
// handler whose request waited on the network (a forwarded request) has a
// client that comes back within a round trip, and resting costs two epoll
// calls and a new goroutine per request. A connection that stays idle still
// rests, lingerFor later.
func (c *Conn) Linger() { c.linger = true }

// lingered waits up to lingerFor on the goroutine for a request's first
// byte, and reports whether one came.
func (c *Conn) lingered() bool {
	if c.nc.SetReadDeadline(time.Now().Add(lingerFor)) != nil {
		return false
	}
	_, err := c.In.Peek(1)
	if c.nc.SetReadDeadline(time.Time{}) != nil {
		return false
	}
	// A timeout rests the connection; the end of the stream, or an error,
	// is found again by whoever reads next.
	return err == nil
}

// requestWaiting reports whether a request is there to serve without
// waiting: buffered, or held by the handler.
func (c *Conn) requestWaiting() bool {
	return c.bufs != nil && c.In.Buffered() > 0 || c.onLoop != nil && c.onLoop.HasPending()
}

// CloseReason is why a connection closed, as memcached's conn_close lines
// say it.
type CloseReason uint8

// memcached's close reasons, and CloseUnknown before one is known, which
// the conn_close line gives as memcached's default, an error (or shutdown,
// when the node is shutting down).
const (
	CloseUnknown CloseReason = iota
	CloseError
	CloseNormal
	CloseIdleTimeout
	CloseShutdown
)

var closeReasonNames = [...]string{"error", "error", "normal", "idle_timeout", "shutdown"}

// String returns memcached's name for the reason.
func (r CloseReason) String() string { return closeReasonNames[r] }

// CloseReason returns why the connection ends, CloseUnknown until known.
func (c *Conn) CloseReason() CloseReason { return c.closeReason }

// SetCloseReason records why the connection ends.
func (c *Conn) SetCloseReason(r CloseReason) { c.closeReason = r }

// CloseAfterReplies closes the connection once the replies gathered are
// written: after the request being answered, the goroutine writes Out and
// closes; on the event loop, the loop gives the connection back to it to do
// so. A reason other than CloseUnknown is recorded as why it closes.
func (c *Conn) CloseAfterReplies(reason CloseReason) {
	c.closeAfter = true
	if reason != CloseUnknown {
		c.closeReason = reason
	}
}

// ReadEnded records why the connection's reads ended, for its conn_close
// line, unless a reason is known already: the first failed read tells (a
// reset is reported once; the reads after it find the end of the stream).
// The client closing the connection is a normal close, as are the idle
// timeout and shutdown their own. An idle timeout counts idle_kicks.
func (c *Conn) ReadEnded(err error) {
	if c.closeReason != CloseUnknown {
		return
	}
	switch {
	case c.srv.shuttingDown.Load():
		c.closeReason = CloseShutdown
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		c.closeReason = CloseNormal
	case c.srv.cfg.IdleTimeout > 0 && os.IsTimeout(err):
		c.closeReason = CloseIdleTimeout
		c.srv.counters.IdleKicks.Add(1)
		if c.srv.verbose() {
			c.srv.log.Info("closing an idle connection", "conn", c.id, "remote", c.nc.RemoteAddr().String(), "idle_timeout", c.srv.cfg.IdleTimeout)
		}
	default:
		c.closeReason = CloseError
	}
}

// yield lets the other connections run after this one has been served -R
// requests in one event, as memcached's connections yield: it writes the
// replies owed, counts conn_yields, and gives up the processor. It reports
// false if the write failed.
func (c *Conn) yield() bool {
	c.servedInEvent = 0
	if c.Flush() != nil {
		return false
	}
	c.srv.counters.ConnYields.Add(1)
	if c.srv.currConns.Load() > 1 { // a lone connection has no one to let run
		runtime.Gosched()
	}
	return true
}

// YieldOnLoop ends the event loop's answers to the connection for this
// round, after -R requests with more buffered: the others' turn, this one's
// again in the loop's next round (see eventLoop.serve). It counts
// conn_yields.
func (c *Conn) YieldOnLoop() {
	c.srv.counters.ConnYields.Add(1)
	c.yielded = true
}

// wakeIfIdle interrupts a connection blocked waiting for a request, so that
// it sees the server is shutting down. A connection in mid-request is left
// to finish. Any goroutine may call it.
func (c *Conn) wakeIfIdle() {
	if c.idle.Load() {
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// abort ends the connection from another goroutine, as a forced shutdown
// must: it wakes the connection from any wait and shuts its socket down, so
// that its next read finds the end of the stream and its next write fails.
// The connection's goroutine then closes it: closing it here could let the
// descriptor be reused while that goroutine still reads it directly.
func (c *Conn) abort() {
	_ = c.raw.SetDeadline(time.Now())
	if hc, ok := c.raw.(interface {
		CloseRead() error
		CloseWrite() error
	}); ok {
		_ = hc.CloseRead()
		_ = hc.CloseWrite()
		return
	}
	_ = c.raw.Close()
}

// wrote counts n bytes written to the client: in bytes_written, in the
// connection's total (Written) and in its turn on the event loop (which
// the loop resets at the turn's start).
func (c *Conn) wrote(n int) {
	c.srv.counters.BytesWritten.Add(uint64(n))
	c.written += int64(n)
	c.turnWritten += n
}

// Flush writes the gathered replies.
func (c *Conn) Flush() error {
	if len(c.Out) == 0 {
		return nil
	}
	n, err := c.sock.Write(c.Out)
	c.wrote(n)
	c.Out = c.Out[:0] // kept for the rest of the reply; WaitForRequest and rest drop it if it grew large
	return err
}

// AfterRequest flushes if enough replies have gathered, and reports whether
// the connection should go on.
func (c *Conn) AfterRequest() bool {
	if c.closeAfter {
		_ = c.Flush()
		return false
	}
	if len(c.Out) >= FlushThreshold {
		if err := c.FlushPart(); err != nil {
			return false
		}
	}
	return true
}

// FlushPart writes the replies gathered in the middle of a long reply or
// pipeline, and then lets the other goroutines run, the event loops first
// among them: a goroutine that streams hundreds of megabytes to a client
// that reads fast would otherwise keep its processor until the scheduler
// preempts it, 10 ms later, and every connection of a loop waiting for that
// processor would wait as long.
func (c *Conn) FlushPart() error {
	err := c.Flush()
	if c.srv.currConns.Load() > 1 {
		runtime.Gosched()
	}
	return err
}

// AppendValue adds v, an item's value, to the replies. A value shorter than
// FlushThreshold is copied into Out. A longer one is written from v itself
// once the replies before it are, with no copy into Out, as memcached
// writes a value from its item: on the connection's goroutine at once, and
// then it lets the other goroutines run (see FlushPart); on the event loop
// as far as the socket takes it without waiting, what it does not take
// copied into Out for the goroutine. v must not change meanwhile; it is not
// kept after AppendValue returns. The error is the write's.
func (c *Conn) AppendValue(v []byte) error {
	if len(v) < FlushThreshold {
		c.Out = append(c.Out, v...)
		return nil
	}
	if c.OnLoop() {
		c.appendValueNow(v)
		return nil
	}
	if err := c.Flush(); err != nil {
		return err
	}
	n, err := c.sock.Write(v)
	c.wrote(n)
	if c.srv.currConns.Load() > 1 {
		runtime.Gosched()
	}
	return err
}

// TurnSpent reports whether the connection has been written, on the event
// loop, as much as one turn allows (loopTurnBytes): a handler in the middle
// of a long reply leaves the rest to the connection's goroutine, as it does
// when the socket takes no more, so that the loop serves the others.
func (c *Conn) TurnSpent() bool { return c.turnWritten >= loopTurnBytes }

// AfterRequestNow is AfterRequest on the event loop: it writes, if enough
// replies have gathered, only what the socket takes without waiting, and
// reports whether the loop may go on serving the connection.
//
// A connection whose replies this round have passed loopTurnBytes ends its
// turn (see TurnOver), as one that has been served -R requests does, but
// uncounted: a client that pipelines gets of large values would otherwise
// keep the loop copying megabytes while the others wait.
func (c *Conn) AfterRequestNow() bool {
	if c.closeAfter {
		return false
	}
	if len(c.Out) < FlushThreshold {
		return true
	}
	if !c.TryFlush() {
		return false
	}
	if c.turnWritten >= loopTurnBytes {
		c.yielded = true
	}
	return true
}

// TurnOver reports whether the connection's turn on the event loop is over
// for this round (see AfterRequestNow): the handler stops answering its
// requests until the next.
func (c *Conn) TurnOver() bool { return c.yielded }

// Stream turns the connection into a one-way stream, as memcached's watch
// does: it writes what take returns each time ready fires, until the client
// closes the connection, a write fails, or done is closed. What the client
// sends meanwhile is read and dropped. take is given spare, and then the
// buffer it returned last, once written, to reuse.
func (c *Conn) Stream(done, ready <-chan struct{}, spare []byte, take func(spare []byte) []byte) {
	if c.Flush() != nil { // replies owed before the stream: a get's
		return
	}
	stop, gone, kicked := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go c.discardInput(stop, gone)
	go func() {
		defer close(kicked)
		select {
		case <-done:
			_ = c.raw.SetDeadline(time.Now())
		case <-stop:
		}
	}()
	defer func() {
		// The reader must be gone before the connection closes: it
		// reads the descriptor directly.
		close(stop)
		_ = c.raw.SetReadDeadline(time.Now())
		<-gone
		<-kicked
	}()
	for {
		select {
		case <-ready:
		case <-gone:
			return
		case <-done:
			return
		}
		out := take(spare)
		if len(out) > 0 {
			if _, err := c.sock.Write(out); err != nil {
				return
			}
		}
		spare = out
	}
}

// discardInput reads and drops what a stream's client sends until it
// closes the connection, a read fails or stop is closed; it then closes
// gone, and ends a write that waits on the client.
func (c *Conn) discardInput(stop <-chan struct{}, gone chan<- struct{}) {
	defer close(gone)
	defer func() { _ = c.raw.SetWriteDeadline(time.Now()) }()
	buf := make([]byte, 512)
	for {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := c.sock.Read(buf); err != nil {
			return
		}
	}
}

// serve runs the connection on its first goroutine: the handshake, if
// TLS, then its first request; a connection an event loop serves waits for
// that on the loop, without a goroutine.
func (c *Conn) serve() {
	c.srv.handler.ConnOpened(c)
	if tc, ok := c.nc.(*tls.Conn); ok && !c.handshake(tc) {
		c.close()
		return
	}
	if c.loop != nil {
		c.parking = true
	}
	c.run()
}

// resume serves the connection on a new goroutine once its event loop has
// given it back (see eventLoop.release).
func (c *Conn) resume() {
	c.socket.held = false
	c.resumed = true
	c.run()
}

// run serves the connection on this goroutine until it closes, or rests on
// its event loop: the goroutine then ends.
func (c *Conn) run() {
	for {
		if c.parking {
			c.parking = false
			c.rest()
			if c.loop.park(c) {
				return // the loop has it: c is not this goroutine's any more
			}
			c.loop = nil // the loop is stopping: serve on here
			continue
		}
		if c.onLoop == nil {
			c.srv.handler.ServeConn(c)
		} else {
			c.onLoop.ServeRequests()
		}
		if !c.parking {
			c.close()
			return
		}
	}
}

// close closes the connection and gives back its buffers.
func (c *Conn) close() {
	c.srv.handler.ConnClosed(c)
	c.nc.Close()
	if c.bufs != nil {
		c.Out = c.Out[:0]
		c.in.Reset(nil) // what it held is dropped
		c.rest()
	}
	c.srv.untrackConn(c)
}

// handshake runs the TLS handshake of the connection, bounded by the
// handshake timeout, and reports whether it succeeded. A failure is counted
// in ssl_handshake_errors, unless the client left before sending anything.
// Shutdown may interrupt a handshake, as it does an idle connection: no
// request has begun.
func (c *Conn) handshake(tc *tls.Conn) bool {
	s := c.srv
	_ = c.raw.SetDeadline(time.Now().Add(s.tls.HandshakeTimeout()))
	c.idle.Store(true)
	if s.shuttingDown.Load() {
		c.idle.Store(false)
		return false
	}
	err := tc.Handshake()
	c.idle.Store(false)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.counters.SSLHandshakeErrors.Add(1)
			// At the daemon's -v level (slog.LevelInfo-2), as memcached
			// logs it at -v: not a line per scanner at the default.
			s.log.Log(context.Background(), slog.LevelInfo-2, "TLS handshake failed", "remote", c.raw.RemoteAddr().String(), "err", err)
		}
		return false
	}
	_ = c.raw.SetDeadline(time.Time{})
	if s.tls.SessionCache() && !tc.ConnectionState().DidResume {
		s.counters.SSLNewSessions.Add(1)
	}
	return true
}
