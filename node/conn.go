package node

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

const (
	// binaryRequestMagic is the first byte of every binary-protocol request;
	// in auto mode it selects the binary protocol for the connection.
	binaryRequestMagic = 0x80
	// readBufferSize is a connection's read buffer, as memcached's 16 KiB.
	readBufferSize = 16 << 10
	// flushThreshold is how much reply a connection gathers before it
	// writes even though more requests are buffered.
	flushThreshold = 64 << 10
	// keepBuffer is the most a connection keeps of buffers that grew for
	// one large request.
	keepBuffer = 1 << 20
)

// conn is one client connection, served by one goroutine.
type conn struct {
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
	br     *bufio.Reader
	out    []byte // replies not yet written

	// scratch receives values read from the store before they are framed.
	scratch []byte

	idle        atomic.Bool  // blocked waiting for a new request
	lastCmd     atomic.Int64 // unix second of the last request
	closeAfter  bool         // close once the replies are written
	deadlineSet bool         // a read deadline is pending
	// servedInEvent counts the requests served since the connection last
	// waited for one, up to -R (Config.MaxReqsPerEvent).
	servedInEvent int
	// yielded is set by the event loop's answer pass when it stopped
	// after -R requests with more buffered, and carried while the loop
	// holds the connection over to its next round (see eventLoop.carry).
	yielded, carried bool
	// closeReason is why the connection ends, for its conn_close line.
	closeReason closeReason

	// owed says replies to requests of the read being served are owed,
	// as memcached's resp_has_stack: watch and metadump refuse to follow
	// them. memcached writes what it owes after a get and an mn (see
	// answerText), and before it reads more (see connReader).
	owed bool

	text *protocol.TextReader

	// loop serves the connection between its requests (see eventLoop),
	// or is nil; answerReady is how the loop answers the requests a read
	// completed, set once the protocol is known; released wakes hold.
	loop        *eventLoop
	answerReady func() bool
	released    chan struct{}
	// pendingReq and pendingErr are a text request the loop decoded but
	// left to the goroutine, as Next returned them; both nil if none.
	pendingReq *protocol.Request
	pendingErr error
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, raw: nc, id: s.nextConnID.Add(1)}
	c.sock, c.socket = socketOf(nc)
	if tc, ok := nc.(*tls.Conn); ok {
		c.raw = tc.NetConn()
	}
	if c.loop = s.eventLoopFor(c); c.loop != nil {
		c.released = make(chan struct{}, 1)
	}
	c.br = bufio.NewReaderSize(connReader{c}, readBufferSize)
	c.lastCmd.Store(s.store.CoarseNow())
	return c
}

// connReader is what a connection's read buffer reads from: its socket,
// counting the bytes read into bytes_read. Before it reads, it writes the
// replies gathered, as memcached writes what it owes before it waits for
// more of a request: the read buffer reads only when it lacks a whole
// request, and a client may wait for those replies before it sends the
// rest.
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	c.owed = false
	// On the event loop nothing is owed when it reads (see
	// eventLoop.serve); and it must not wait on a write.
	if len(c.out) > 0 && (c.socket == nil || !c.socket.held) {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	n, err := c.sock.Read(p)
	c.srv.counters.bytesRead.Add(uint64(n))
	return n, err
}

// serve runs the connection until the client leaves, an error, or shutdown.
func (c *conn) serve() {
	defer c.srv.untrackConn(c)
	defer c.nc.Close()
	if c.srv.watching()&logConnEvents != 0 {
		c.logConn(false)
	}
	defer func() {
		if c.srv.watching()&logConnEvents != 0 {
			c.logConn(true)
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			c.srv.log.Error("connection panicked; closing it", "remote", c.nc.RemoteAddr().String(), "panic", p)
		}
	}()
	if tc, ok := c.nc.(*tls.Conn); ok && !c.handshake(tc) {
		return
	}
	if !c.waitForRequest() {
		return
	}
	first, err := c.br.Peek(1)
	if err != nil {
		return
	}
	isBinary := first[0] == binaryRequestMagic
	switch c.srv.cfg.Protocol {
	case "ascii":
		isBinary = false
	case "binary":
		isBinary = true
	}
	switch cfg := &c.srv.cfg; {
	case cfg.SASL && cfg.AuthFile == "":
		// memcached's SASL is binary-only: no text request may bypass it.
		isBinary = true
	case cfg.AuthFile != "" && !cfg.SASL:
		// ASCII authentication is text-only: a binary request is read
		// as lines, which it cannot authenticate, as memcached does.
		isBinary = false
	}
	if isBinary {
		c.serveBinary()
	} else {
		c.serveText()
	}
}

// waitForRequest blocks until a request's first byte is buffered. It returns
// false when the connection should close instead: shutdown, idle timeout,
// the client gone. Replies gathered so far are flushed first.
func (c *conn) waitForRequest() bool {
	if c.requestWaiting() {
		// Another request arrived with the one just served: one event,
		// as memcached counts, until -R of them have been served.
		if c.servedInEvent++; c.servedInEvent >= c.srv.cfg.MaxReqsPerEvent {
			return c.yield()
		}
		return true
	}
	c.servedInEvent = 0
	if c.loop != nil && c.answerReady != nil {
		if c.flush() != nil || c.srv.shuttingDown.Load() {
			return false
		}
		c.idle.Store(true)
		held := c.loop.hold(c)
		c.idle.Store(false)
		if held {
			if c.closeAfter {
				_ = c.flush()
				return false
			}
			if c.flush() != nil {
				return false
			}
			if c.requestWaiting() {
				return true
			}
			// Given back with nothing to serve: the end of the
			// stream, an error or shutdown, which what follows finds.
		}
	}
	if len(c.out) > 0 {
		if c.srv.currConns.Load() > 1 {
			runtime.Gosched()
		}
		if err := c.flush(); err != nil {
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
	c.idle.Store(true)
	defer c.idle.Store(false)
	if c.srv.shuttingDown.Load() {
		return false
	}
	if t := c.srv.cfg.IdleTimeout; t > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(t))
		c.deadlineSet = true
	}
	if _, err := c.br.Peek(1); err != nil {
		c.readEnded(err)
		return false
	}
	if c.deadlineSet {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.deadlineSet = false
	}
	c.lastCmd.Store(c.srv.store.CoarseNow()) // the store's coarse clock: cheaper than time.Now per request
	return true
}

// closeReason is why a connection closed, as memcached's conn_close lines
// say it.
type closeReason uint8

// memcached's close reasons, and closeUnknown before one is known, which
// the conn_close line gives as memcached's default, an error (or shutdown,
// when the node is shutting down).
const (
	closeUnknown closeReason = iota
	closeError
	closeNormal
	closeIdleTimeout
	closeShutdown
)

var closeReasonNames = [...]string{"error", "error", "normal", "idle_timeout", "shutdown"}

// readEnded records why the connection's reads ended, for its conn_close
// line, unless a reason is known already: the first failed read tells (a
// reset is reported once; the reads after it find the end of the stream).
// The client closing the connection is a normal close, as are the idle
// timeout and shutdown their own. An idle timeout counts idle_kicks.
func (c *conn) readEnded(err error) {
	if c.closeReason != closeUnknown {
		return
	}
	switch {
	case c.srv.shuttingDown.Load():
		c.closeReason = closeShutdown
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		c.closeReason = closeNormal
	case c.srv.cfg.IdleTimeout > 0 && os.IsTimeout(err):
		c.closeReason = closeIdleTimeout
		c.srv.counters.idleKicks.Add(1)
		if c.srv.verbosity.Load() > 0 {
			c.srv.log.Info("closing an idle connection", "conn", c.id, "remote", c.nc.RemoteAddr().String(), "idle_timeout", c.srv.cfg.IdleTimeout)
		}
	default:
		c.closeReason = closeError
	}
}

// yield lets the other connections run after this one has been served -R
// requests in one event, as memcached's connections yield: it writes the
// replies owed, counts conn_yields, and gives up the processor. It reports
// false if the write failed.
func (c *conn) yield() bool {
	c.servedInEvent = 0
	if c.flush() != nil {
		return false
	}
	c.srv.counters.connYields.Add(1)
	if c.srv.currConns.Load() > 1 { // a lone connection has no one to let run
		runtime.Gosched()
	}
	return true
}

// wakeIfIdle interrupts a connection blocked waiting for a request, so that
// it sees the server is shutting down. A connection in mid-request is left
// to finish.
func (c *conn) wakeIfIdle() {
	if c.idle.Load() {
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// abort ends the connection from another goroutine, as a forced shutdown
// must: it wakes the connection from any wait and shuts its socket down, so
// that its next read finds the end of the stream and its next write fails.
// The connection's goroutine then closes it: closing it here could let the
// descriptor be reused while that goroutine still reads it directly.
func (c *conn) abort() {
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

// flush writes the gathered replies.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	n, err := c.sock.Write(c.out)
	c.srv.counters.bytesWritten.Add(uint64(n))
	if cap(c.out) > keepBuffer {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err
}

// afterRequest flushes if enough replies have gathered, and reports whether
// the connection should go on.
func (c *conn) afterRequest() bool {
	if c.closeAfter {
		_ = c.flush()
		return false
	}
	if len(c.out) >= flushThreshold {
		if err := c.flush(); err != nil {
			return false
		}
	}
	return true
}

// afterRequestNow is afterRequest on the event loop: it writes, if enough
// replies have gathered, only what the socket takes without waiting, and
// reports whether the loop may go on serving the connection.
func (c *conn) afterRequestNow() bool {
	return !c.closeAfter && (len(c.out) < flushThreshold || c.tryFlush())
}

// serveText serves the text protocol until the connection ends.
func (c *conn) serveText() {
	c.text = protocol.NewTextReader(c.br)
	c.text.MaxValue = c.srv.cfg.ItemSizeMax
	if c.srv.auth.ascii != nil && !c.asciiAuth() {
		return
	}
	c.answerReady = c.answerTextReady
	for c.waitForRequest() {
		req, err := c.nextText()
		if !c.answerText(req, err) || !c.afterRequest() {
			return
		}
	}
}

// nextText returns the request the event loop left to the goroutine, if
// any, else the next request read.
func (c *conn) nextText() (*protocol.Request, error) {
	if !c.hasPending() {
		return c.text.Next()
	}
	req, err := c.pendingReq, c.pendingErr
	c.pendingReq, c.pendingErr = nil, nil
	return req, err
}

// requestWaiting reports whether a request is there to serve without
// waiting: buffered, or left by the event loop.
func (c *conn) requestWaiting() bool { return c.br.Buffered() > 0 || c.hasPending() }

// hasPending reports whether the event loop left a decoded text request to
// the goroutine.
func (c *conn) hasPending() bool { return c.pendingReq != nil || c.pendingErr != nil }

// answerText answers what the text decoder returned, and reports whether
// the connection goes on: false after an I/O error or ErrClose.
func (c *conn) answerText(req *protocol.Request, err error) bool {
	if err != nil {
		var te *protocol.TextError
		if !errors.As(err, &te) {
			c.readEnded(err)
			_ = c.flush()
			return false
		}
		if te == protocol.ErrTooLarge && req != nil {
			c.logTooLarge(req)
		}
		c.textError(req, te)
	} else {
		if c.srv.verbosity.Load() >= 2 {
			c.srv.log.Debug("text command", "conn", c.id, "cmd", req.Command.String(), "keys", len(req.Keys), "key", string(req.Key()))
		}
		c.handleText(req)
	}
	c.owed = err != nil || !writesOwed(req.Command)
	c.text.ReleaseLarge(keepBuffer)
	if cap(c.scratch) > keepBuffer {
		c.scratch = nil
	}
	return true
}

// writesOwed reports whether memcached writes the replies it owes once it
// has answered cmd: after the commands of its process_get_command (get,
// gets, gat, gats) and mn.
func writesOwed(cmd protocol.Command) bool {
	switch cmd {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats, protocol.CmdMetaNoop:
		return true
	}
	return false
}

// answerTextReady answers, on the event loop, the requests the loop's read
// completed, and reports whether the connection may stay on the loop. A
// request the loop must not answer (see textOnLoop) is left pending for the
// goroutine; a request not yet wholly arrived stays buffered, for flushReady
// to find. The replies stay in c.out unless enough gather to write at once.
func (c *conn) answerTextReady() bool {
	for n := 0; c.text.NextBuffered(); n++ {
		if n == c.srv.cfg.MaxReqsPerEvent {
			// Served -R requests: the others' turn, this one's
			// again in the loop's next round (see eventLoop.serve).
			c.srv.counters.connYields.Add(1)
			c.yielded = true
			return true
		}
		req, err := c.text.Next()
		if !textOnLoop(req, err) {
			c.pendingReq, c.pendingErr = req, err
			return false
		}
		c.answerText(req, err)
		if !c.afterRequestNow() {
			return false
		}
	}
	return true
}

// textOnLoop reports whether the event loop may answer what the text
// decoder returned: a refusal, or a command answered at once from the
// store. Commands that may take long (stats, config, refresh_certs), end
// the connection (quit) or the server (shutdown), and the errors that close
// the connection are the goroutine's.
func textOnLoop(req *protocol.Request, err error) bool {
	if err != nil {
		var te *protocol.TextError
		return errors.As(err, &te)
	}
	switch req.Command {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats,
		protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas,
		protocol.CmdDelete, protocol.CmdIncr, protocol.CmdDecr, protocol.CmdTouch,
		protocol.CmdFlushAll, protocol.CmdVersion, protocol.CmdVerbosity,
		protocol.CmdMetaNoop, protocol.CmdMetaGet, protocol.CmdMetaSet, protocol.CmdMetaDelete, protocol.CmdMetaArith, protocol.CmdMetaDebug:
		return true
	}
	return false
}

// asciiAuth runs memcached's ASCII authentication (-Y) until the connection
// authenticates, answering every other command "CLIENT_ERROR
// unauthenticated" without executing it. It reports whether the connection
// authenticated; false means it must close.
func (c *conn) asciiAuth() bool {
	for c.waitForRequest() {
		user, password, err := c.text.NextAuth()
		var te *protocol.TextError
		switch {
		case err == nil:
			c.srv.counters.authCmds.Add(1)
			if c.srv.auth.checkASCII(user, password) {
				c.out = protocol.AppendLine(c.out, "STORED")
				return true
			}
			c.srv.counters.authErrors.Add(1)
			c.out = protocol.AppendLine(c.out, protocol.ErrAuthFailure.Line)
		case errors.As(err, &te):
			c.out = protocol.AppendLine(c.out, te.Line)
		default:
			_ = c.flush()
			return false
		}
		if !c.afterRequest() {
			return false
		}
	}
	return false
}
