package e2e

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/memcluster/memcluster/internal/servertest"
)

// How the comparison suite knows that a server has finished answering a
// step: after the step's request it sends a sentinel, a request that both
// servers answer at once with a reply of their own ("mn" → "MN", "version"
// → "VERSION …"), and reads up to that reply, which it then cuts off.
// Servers answer a connection's requests in order, so everything before
// the sentinel's reply is the step's reply, however late it comes: no wait
// for silence decides where a reply ends.
//
// A sentinel can follow a step only where the server is between two
// requests; a framer follows each connection's bytes as memcached frames
// them to tell. Where it cannot (a step that ends inside a request line or
// a data block; a connection before ASCII authentication, on which
// memcached writes only the last reply of a read, so that a sentinel would
// overwrite the step's reply; a shutdown, after which a server may answer a
// sentinel and still close; a watch, after which memcached answers nothing;
// the binary protocol), the step is read as before: up to its golden reply
// or the reference's reply, or to the first line before authentication, or
// until the server falls silent.

// sentinel is a request both servers answer at once, without side effects.
type sentinel struct {
	cmd   string                 // the command word, as it may appear in a request
	req   string                 // the request
	word  string                 // the reply's first word, as it may appear in data
	reply func(line []byte) bool // whether a line (with its "\r\n") is the reply
}

var sentinels = []sentinel{
	{cmd: "mn", req: "mn\r\n", word: "MN",
		reply: func(line []byte) bool { return string(line) == "MN\r\n" }},
	{cmd: "version", req: "version\r\n", word: "VERSION",
		reply: func(line []byte) bool {
			v, ok := bytes.CutPrefix(line, []byte("VERSION "))
			v = bytes.TrimSuffix(v, []byte("\r\n"))
			return ok && len(v) > 0 && bytes.IndexFunc(v, unicode.IsSpace) < 0
		}},
}

// cut cuts up to n replies of s off the end of b, returning the rest and
// how many it cut. It looks at the last lines only.
func (s sentinel) cut(b []byte, n int) ([]byte, int) {
	cut := 0
	for cut < n && bytes.HasSuffix(b, []byte("\r\n")) {
		start := bytes.LastIndexByte(b[:len(b)-2], '\n') + 1
		if !s.reply(b[start:]) {
			break
		}
		b = b[:start]
		cut++
	}
	return b, cut
}

// pickSentinel returns a sentinel whose reply the step's own reply cannot
// end with: a sentinel whose command the step does not send, and whose
// reply no request of the case holds as data to be echoed back. It returns
// nil if there is none.
func pickSentinel(tc compareCase, req string) *sentinel {
	for i, s := range sentinels {
		if strings.Contains(strings.ToLower(req), s.cmd) {
			continue
		}
		if slices.ContainsFunc(tc.steps, func(st step) bool { return strings.Contains(st.send, s.word) }) {
			continue
		}
		return &sentinels[i]
	}
	return nil
}

const (
	sentinelWait = 15 * time.Second       // wait for a sentinel's reply
	nudgeAfter   = 500 * time.Millisecond // then, after a metadump, send another
)

// readToSentinel sends s after a step's request and reads until the
// server's reply to it ends what has arrived. It returns the step's reply,
// the sentinel's reply cut off, and whether the sentinel was answered
// (false if the server closed the connection or did not answer in time).
//
// memcached leaves bytes that arrive in the same read as a metadump line
// unread until more arrive: after a step whose last request is a metadump
// (afterDump), the sentinel is sent once the step's reply has begun, and
// if it is not answered within nudgeAfter, a second follows it, which
// answers a sentinel stuck that way.
func readToSentinel(c *servertest.Conn, s sentinel, afterDump bool) ([]byte, bool) {
	deadline := time.Now().Add(sentinelWait)
	var got []byte
	sent := 0
	read := func(until time.Time) bool {
		wait := max(time.Until(until), time.Millisecond) // 0 would be Read's default
		got = append(got, c.Read(servertest.ReadOptions{First: wait, Max: wait,
			Done: func(b []byte) bool {
				// The replies are in the last bytes: look at those.
				k := 1024 * sent
				if len(b) < k {
					b = slices.Concat(got[max(0, len(got)-(k-len(b))):], b)
				}
				_, n := s.cut(b[max(0, len(b)-k):], sent)
				return n == sent
			}})...)
		_, n := s.cut(got, sent)
		return n == sent
	}
	if afterDump {
		got = c.Read(servertest.ReadOptions{First: nudgeAfter, Max: nudgeAfter,
			Done: func(b []byte) bool { return len(b) > 0 }})
	}
	c.SendString(s.req)
	sent++
	if afterDump && !read(time.Now().Add(nudgeAfter)) && !c.Closed() {
		c.SendString(s.req)
		sent++
	}
	read(deadline)
	rest, n := s.cut(got, sent)
	return rest, n == sent
}

// A framer follows the requests sent on one connection as memcached frames
// them (lines; the data blocks of storage commands; before ASCII
// authentication, memcached's own framing of its "set"), to tell after each
// step whether the server is between two requests.
type framer struct {
	unauth   bool   // -Y and not yet authenticated
	closable bool   // -A: a shutdown line may close the connection
	pending  string // the bytes of an unfinished request
	started  bool   // bytes were sent (the first chooses the protocol)
	lost     bool   // the requests can no longer be followed
}

// framing is what a framer tells of one step.
type framing struct {
	boundary bool // the step ends between two requests
	requests int  // requests the step completes
	dumpLast bool // the last of them is a metadump
	mayClose bool // one of them may close the connection later (shutdown)
	oneLine  bool // sent before ASCII authentication: answered with one line
}

func newFramer(flags []string) *framer {
	return &framer{unauth: slices.Contains(flags, "-Y"), closable: slices.Contains(flags, "-A")}
}

// feed follows req, the bytes of one step.
func (f *framer) feed(req string) framing {
	var fr framing
	if f.lost {
		return fr
	}
	if !f.started && req != "" && req[0] == 0x80 && !f.unauth {
		f.lost = true // the binary protocol
		return fr
	}
	f.started = f.started || req != ""
	buf := f.pending + req
	for {
		if buf == "" {
			f.pending = ""
			fr.boundary = true
			return fr
		}
		nl := strings.IndexByte(buf, '\n')
		if nl < 0 {
			f.pending = buf
			return fr
		}
		tok := tokens(strings.TrimSuffix(buf[:nl], "\r"))
		rest := buf[nl+1:]
		n, ok := f.blockLen(tok)
		if !ok {
			f.lost = true
			return fr
		}
		if n >= 0 {
			if len(rest) < n {
				f.pending = buf
				return fr
			}
			rest = rest[n:]
		}
		fr.requests++
		fr.dumpLast = len(tok) >= 2 && tok[0] == "lru_crawler" && (tok[1] == "metadump" || tok[1] == "mgdump")
		if len(tok) > 0 && tok[0] == "shutdown" && f.closable {
			fr.mayClose = true
		}
		if len(tok) > 0 && tok[0] == "watch" && !f.unauth {
			f.lost = true // memcached answers nothing more
			return fr
		}
		buf = rest
	}
}

// tokens splits a request line at spaces, as memcached does.
func tokens(line string) []string {
	return slices.DeleteFunc(strings.Split(line, " "), func(s string) bool { return s == "" })
}

// blockLen returns the length of the data block (with its "\r\n") that
// follows a request line, -1 if none, and false if the framer cannot tell.
func (f *framer) blockLen(tok []string) (int, bool) {
	if len(tok) == 0 {
		return -1, true
	}
	if f.unauth {
		// memcached's ASCII authentication reads any "set" line of at
		// least five tokens as an attempt; it parses the byte count as
		// an unsigned long cut to 32 bits, and adds the "\r\n" in 32 bits.
		if tok[0] != "set" || len(tok) < 5 {
			return -1, true
		}
		n, ok := safeStrtoul(tok[4])
		if !ok {
			return -1, true
		}
		n += 2
		if n > 16<<10 {
			return 0, false // larger than memcached's read buffer: it closes
		}
		return int(n), true
	}
	i := -1
	switch tok[0] {
	case "set", "add", "replace", "append", "prepend":
		if len(tok) == 5 || len(tok) == 6 {
			i = 4
		}
	case "cas":
		if len(tok) == 6 || len(tok) == 7 {
			i = 4
		}
	case "ms":
		if len(tok) >= 3 {
			i = 2
		}
	}
	if i < 0 {
		return -1, true
	}
	// memcached parses the byte count with safe_strtol (a long cut to
	// 32 bits) and refuses a negative one or one too large to add 2 to,
	// without reading a block.
	n, ok := safeStrtol(tok[i])
	if !ok || n < 0 || n > 1<<31-1-2 {
		return -1, true
	}
	return int(n) + 2, true
}

// safeStrtol is memcached's safe_strtol: strtol, refusing trailing bytes
// and a range error, the result cut to 32 bits.
func safeStrtol(s string) (int32, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return int32(v), true
}

// safeStrtoul is memcached's safe_strtoul: strtoul, refusing trailing
// bytes, a range error and a negative number other than -0, the result cut
// to 32 bits.
func safeStrtoul(s string) (uint32, bool) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "+"), "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
		if int64(v) < 0 {
			return 0, false
		}
	}
	return uint32(v), true
}

// oneLine reports whether b holds a whole line: before authentication,
// memcached answers the requests of one read with one line.
func oneLine(b []byte) bool { return bytes.Contains(b, []byte("\r\n")) }
