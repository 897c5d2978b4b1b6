package command

import (
	"errors"
	"time"

	"github.com/memcluster/memcluster/internal/freelist"

	"github.com/memcluster/memcluster/node/netserve"
	"github.com/memcluster/memcluster/protocol"
)

// binaryRequestMagic is the first byte of every binary-protocol request; in
// auto mode it selects the binary protocol for the connection.
const binaryRequestMagic = 0x80

// session is one connection's state for memcached's commands: the
// connection, the text decoder once the protocol is known, and a request
// the event loop decoded but left to the connection's goroutine.
type session struct {
	*netserve.Conn
	h *Handler

	// text decodes the text protocol's requests once the protocol is
	// known: lent from textReaders while the connection is busy (see
	// textReader and Rest).
	text *protocol.TextReader

	// pendingReq and pendingErr are a text request the loop decoded but
	// left to the goroutine, as Next returned them; both nil if none.
	// resumeKey is where the goroutine resumes a get the loop began and
	// left when the socket would not take its reply (see retrieve): the
	// index in pendingReq.Keys of the next key to answer; 0 if none.
	pendingReq *protocol.Request
	pendingErr error
	resumeKey  int

	// peer is set once the client said "peer" (or OpPeer): it is another
	// node, whose requests are served here and never forwarded.
	peer bool
}

// ConnOpened logs the connection's opening to watchers of connevents. It
// satisfies netserve.Handler.
func (h *Handler) ConnOpened(nc *netserve.Conn) {
	if h.watching()&logConnEvents != 0 {
		(&session{Conn: nc, h: h}).logConn(false)
	}
}

// ConnClosed logs the connection's closing to watchers of connevents. It
// satisfies netserve.Handler.
func (h *Handler) ConnClosed(nc *netserve.Conn) {
	if h.watching()&logConnEvents != 0 {
		(&session{Conn: nc, h: h}).logConn(true)
	}
}

// ServeConn serves memcached's commands on c until the client leaves, an
// error, shutdown, or the connection rests on its event loop. It chooses
// the protocol from the first byte, as memcached's -B auto does, unless the
// settings fix it. It satisfies netserve.Handler.
func (h *Handler) ServeConn(nc *netserve.Conn) {
	c := &session{Conn: nc, h: h}
	if !c.WaitForRequest() {
		return
	}
	first, err := c.In.Peek(1)
	if err != nil {
		return
	}
	isBinary := first[0] == binaryRequestMagic
	switch h.cfg.Protocol {
	case "ascii":
		isBinary = false
	case "binary":
		isBinary = true
	}
	switch cfg := &h.cfg; {
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

// textReaders lend connections their text decoders while they are busy:
// a decoder is a kilobyte and more, which a resting connection need not
// hold.
var textReaders = freelist.List[protocol.TextReader]{
	New: func() *protocol.TextReader { return protocol.NewTextReader(nil) },
	Max: 256,
}

// textReader returns the connection's text decoder, lending it one if it
// has none.
func (c *session) textReader() *protocol.TextReader {
	if c.text == nil {
		c.text = textReaders.Get()
		c.text.Reset(c.In)
		c.text.MaxValue = c.h.cfg.ItemSizeMax
	}
	return c.text
}

// Rest gives back the text decoder of a connection that rests (see
// netserve.LoopServer), with the buffers it grew up to KeepBuffer. It
// satisfies netserve.LoopServer.
func (c *session) Rest() {
	if c.text != nil {
		c.text.ReleaseLarge(netserve.KeepBuffer)
		c.text.Reset(nil)
		textReaders.Put(c.text)
		c.text = nil
	}
}

// serveText serves the text protocol until the connection ends or rests.
func (c *session) serveText() {
	c.textReader()
	if c.h.auth.ascii != nil && !c.asciiAuth() {
		return
	}
	c.ServeOnLoop(c)
	c.ServeRequests()
}

// ServeRequests serves text requests on the connection's goroutine until
// the connection ends or rests. It satisfies netserve.LoopServer.
func (c *session) ServeRequests() {
	for c.WaitForRequest() {
		req, err := c.nextText()
		if !c.answerText(req, err) || !c.AfterRequest() {
			return
		}
	}
}

// nextText returns the request the event loop left to the goroutine, if
// any, else the next request read.
func (c *session) nextText() (*protocol.Request, error) {
	if !c.HasPending() {
		return c.textReader().Next()
	}
	req, err := c.pendingReq, c.pendingErr
	c.pendingReq, c.pendingErr = nil, nil
	return req, err
}

// HasPending reports whether the event loop left a decoded text request to
// the goroutine.
func (c *session) HasPending() bool { return c.pendingReq != nil || c.pendingErr != nil }

// answerText answers what the text decoder returned, and reports whether
// the connection goes on: false after an I/O error or ErrClose.
func (c *session) answerText(req *protocol.Request, err error) bool {
	if err != nil {
		var te *protocol.TextError
		if !errors.As(err, &te) {
			c.ReadEnded(err)
			_ = c.Flush()
			return false
		}
		if te == protocol.ErrTooLarge && req != nil {
			c.logTooLarge(req)
		}
		c.textError(req, te)
	} else {
		if c.h.verbosity.Load() >= 2 {
			c.h.log.Debug("text command", "conn", c.ID(), "cmd", req.Command.String(), "keys", len(req.Keys), "key", string(req.Key()))
		}
		if c.h.latency != nil {
			start := time.Now()
			c.handleText(req)
			c.h.latency.Observe(textFamily(req.Command), textProtocol(req.Command), time.Since(start))
		} else {
			c.handleText(req)
		}
		if c.HasPending() {
			return true // a get to resume on the goroutine (see retrieve)
		}
	}
	c.SetOwed(err != nil || !writesOwed(req.Command))
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

// AnswerReady answers, on the event loop, for the text protocol, the requests the loop's read
// completed, and reports whether the connection may stay on the loop. A
// request the loop must not answer (see textOnLoop) is left pending for the
// goroutine; a request not yet wholly arrived stays buffered, and the loop
// then gives the connection back to its goroutine. The replies stay in c.Out unless enough gather to write at once.
func (c *session) AnswerReady() bool {
	text := c.textReader()
	for n := 0; text.NextBuffered(); n++ {
		if n == c.h.cfg.MaxReqsPerEvent {
			// Served -R requests: the others' turn, this one's
			// again in the loop's next round.
			c.YieldOnLoop()
			return true
		}
		req, err := text.Next()
		if !textOnLoop(req, err) || (err == nil && c.textForwards(req)) {
			c.pendingReq, c.pendingErr = req, err
			return false
		}
		c.answerText(req, err)
		if c.HasPending() || !c.AfterRequestNow() {
			return false
		}
		if c.TurnOver() {
			return true
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
// unauthenticated" without executing it. The maxAuthFailures-th wrong
// password is answered and the connection closed. It reports whether the
// connection authenticated; false means it must close.
func (c *session) asciiAuth() bool {
	failures := 0
	for c.WaitForRequest() {
		user, password, err := c.text.NextAuth()
		var te *protocol.TextError
		switch {
		case err == nil:
			c.h.counters.AuthCmds.Add(1)
			if c.h.auth.checkASCII(user, password) {
				c.Out = protocol.AppendLine(c.Out, "STORED")
				return true
			}
			c.h.counters.AuthErrors.Add(1)
			c.Out = protocol.AppendLine(c.Out, protocol.ErrAuthFailure.Line)
			if failures++; failures >= maxAuthFailures {
				c.CloseAfterReplies(netserve.CloseUnknown)
			}
		case errors.As(err, &te):
			c.Out = protocol.AppendLine(c.Out, te.Line)
		default:
			_ = c.Flush()
			return false
		}
		if !c.AfterRequest() {
			return false
		}
	}
	return false
}
