// Package protocol decodes memcached requests and encodes its replies: the
// text protocol (classic and meta commands) and the binary protocol. It
// knows nothing of sockets, the store or the cluster.
package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Command identifies a text-protocol command.
type Command uint8

// The text-protocol commands.
const (
	CmdNone Command = iota
	CmdGet
	CmdGets
	CmdGat
	CmdGats
	CmdSet
	CmdAdd
	CmdReplace
	CmdAppend
	CmdPrepend
	CmdCas
	CmdDelete
	CmdIncr
	CmdDecr
	CmdTouch
	CmdFlushAll
	CmdVersion
	CmdVerbosity
	CmdQuit
	CmdShutdown
	CmdStats
	CmdConfig
	CmdRefreshCerts
	CmdMetaNoop
	CmdMetaGet    // mg
	CmdMetaSet    // ms
	CmdMetaDelete // md
	CmdMetaArith  // ma
	CmdMetaDebug  // me
	// Administrative commands, each with its words after the name in
	// Request.Args for the node to judge, as stats has.
	CmdCacheMemlimit // cache_memlimit <mb> [noreply]
	CmdSlabs         // slabs automove|reassign …
	CmdLruCrawler    // lru_crawler crawl|metadump|sleep|tocrawl|enable|disable …
	CmdLru           // lru mode|temp_ttl|tune …
	CmdWatch         // watch [stream …]
	// CmdPeer is memcluster's "peer": it marks the connection as another
	// node's, whose requests the node serves from its own store and never
	// forwards (see node/peer). memcached answers it ERROR.
	CmdPeer
)

var commandNames = [...]string{
	CmdNone: "", CmdGet: "get", CmdGets: "gets", CmdGat: "gat", CmdGats: "gats",
	CmdSet: "set", CmdAdd: "add", CmdReplace: "replace", CmdAppend: "append",
	CmdPrepend: "prepend", CmdCas: "cas", CmdDelete: "delete", CmdIncr: "incr",
	CmdDecr: "decr", CmdTouch: "touch", CmdFlushAll: "flush_all",
	CmdVersion: "version", CmdVerbosity: "verbosity", CmdQuit: "quit",
	CmdShutdown: "shutdown", CmdStats: "stats", CmdConfig: "config", CmdRefreshCerts: "refresh_certs",
	CmdMetaNoop: "mn", CmdMetaGet: "mg", CmdMetaSet: "ms", CmdMetaDelete: "md", CmdMetaArith: "ma",
	CmdMetaDebug: "me", CmdCacheMemlimit: "cache_memlimit", CmdSlabs: "slabs",
	CmdLruCrawler: "lru_crawler", CmdLru: "lru", CmdWatch: "watch",
	CmdPeer: "peer",
}

// freeArgCommands are the commands whose words after the name go to
// Request.Args for the node to judge.
var freeArgCommands = map[string]Command{
	"stats": CmdStats, "shutdown": CmdShutdown, "config": CmdConfig,
	"cache_memlimit": CmdCacheMemlimit, "lru": CmdLru, "slabs": CmdSlabs,
	"lru_crawler": CmdLruCrawler, "watch": CmdWatch,
}

// String returns the command's name as a client types it.
func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return "unknown"
}

// IsStorage reports whether c carries a data block.
func (c Command) IsStorage() bool { return c >= CmdSet && c <= CmdCas }

// MaxKeyLen is the longest key memcached accepts.
const MaxKeyLen = 250

// maxGetLine bounds a multi-key get line. memcached lets it grow without
// bound; we stop at 64 MiB (more than 250,000 keys of 250 bytes).
const maxGetLine = 64 << 20

// maxTokens mirrors memcached's tokenizer: at most 23 tokens are split off a
// line (the rest stays in the last) plus its terminal token.
const maxTokens = 24

// Errors the text decoder returns. A *TextError is answered with its line
// (unless the request asked for noreply) and the connection carries on; any
// other error means the connection must be closed.
var (
	// ErrClose asks the caller to close the connection without a reply, as
	// memcached does for an over-long line or an HTTP request.
	ErrClose = errors.New("protocol: connection must be closed")
)

// TextError is a client-visible error of the text protocol: its Line is sent
// back, followed by "\r\n".
type TextError struct {
	Line string
}

func (e *TextError) Error() string { return "protocol: " + e.Line }

// memcached's error replies.
var (
	ErrUnknownCommand   = &TextError{"ERROR"}
	ErrBadFormat        = &TextError{"CLIENT_ERROR bad command line format"}
	ErrBadDataChunk     = &TextError{"CLIENT_ERROR bad data chunk"}
	ErrTooLarge         = &TextError{"SERVER_ERROR object too large for cache"}
	ErrOutOfMemory      = &TextError{"SERVER_ERROR out of memory storing object"}
	ErrInvalidExptime   = &TextError{"CLIENT_ERROR invalid exptime argument"}
	ErrInvalidDelta     = &TextError{"CLIENT_ERROR invalid numeric delta argument"}
	ErrNonNumeric       = &TextError{"CLIENT_ERROR cannot increment or decrement non-numeric value"}
	ErrDeleteUsage      = &TextError{"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}
	ErrBadCommandLine   = &TextError{"CLIENT_ERROR bad command line"}
	ErrFlushDisabled    = &TextError{"CLIENT_ERROR flush_all not allowed"}
	ErrShutdownDisabled = &TextError{"ERROR: shutdown not enabled"}
	ErrShutdownMode     = &TextError{"CLIENT_ERROR invalid shutdown mode"}
)

// Request is one decoded text-protocol request. Its byte slices point into
// the TextReader's buffers and are valid until the next call to Next.
type Request struct {
	Command Command
	// Keys are the keys of a retrieval command, a batch at a time (see
	// MoreKeys); Keys[0] is the key of any other keyed command.
	Keys [][]byte
	// MoreKeys is set when a retrieval command's line has keys beyond
	// Keys: TextReader.NextKeys replaces Keys with the next batch. A get
	// line is read a batch of keys at a time, so that however long it is
	// the keys are looked up and answered as they arrive.
	MoreKeys bool
	// Flags are the client flags of a storage command.
	Flags uint32
	// Exptime is the raw expiration time of a storage, touch or gat command,
	// or the delay of flush_all.
	Exptime int64
	// CAS is the compare value of cas.
	CAS uint64
	// Delta is the amount of incr or decr.
	Delta uint64
	// Verbosity is the level of verbosity.
	Verbosity uint32
	// Noreply is set when the request ended in "noreply".
	Noreply bool
	// Data is the data block of a storage command, without its "\r\n".
	Data []byte
	// Args are the tokens after the command name of commands that take free
	// arguments (stats, shutdown, config and the administrative commands).
	Args [][]byte
	// Meta holds the flags of a meta command (mg, ms, md, ma, me).
	Meta MetaArgs
}

// Key returns the first key of the request, or nil.
func (r *Request) Key() []byte {
	if len(r.Keys) == 0 {
		return nil
	}
	return r.Keys[0]
}

// TextReader decodes text-protocol requests from a buffered reader. It is not
// safe for concurrent use.
type TextReader struct {
	br *bufio.Reader
	// MaxValue is the largest data block read into memory; a larger one is
	// discarded and answered ErrTooLarge. If zero, 1 MiB.
	MaxValue int

	req     Request
	tokens  [maxTokens][]byte
	keys    [][]byte
	args    [][]byte
	keyCopy []byte // the key of a storage command, which outlives the line

	// The keys of a get line not yet given out in a batch: getRest, of a
	// line wholly read; or, for a line longer than br's buffer
	// (streaming), what br holds and has yet to read, of which streamed
	// bytes have been read so far.
	getRest   []byte
	streaming bool
	streamed  int
	afterNUL  bool // the streamed line's keys ended at a NUL: drop the rest
	data      []byte

	metaLine  []byte          // a meta command's line, which outlives the read buffer
	metaFlags [][]byte        // backs Request.Meta.Flags
	keyBuf    [MaxKeyLen]byte // a base64 key, decoded
}

// NewTextReader returns a TextReader reading from br.
func NewTextReader(br *bufio.Reader) *TextReader {
	return &TextReader{br: br}
}

// Reset makes tr read from br, as NewTextReader(br) would, keeping the
// buffers it grew.
func (tr *TextReader) Reset(br *bufio.Reader) {
	tr.br = br
	tr.getRest, tr.streaming, tr.streamed, tr.afterNUL = nil, false, 0, false
	tr.req = Request{}
}

// Buffered reports whether a complete further request may already be
// buffered, so that a caller can delay flushing replies.
func (tr *TextReader) Buffered() int { return tr.br.Buffered() }

// Next reads and decodes one request. It returns the request with a nil
// error; or the request (with Command, Keys and Noreply as far as they were
// decoded) and a *TextError to answer; or ErrClose or an I/O error, after
// which the connection must be closed.
func (tr *TextReader) Next() (*Request, error) {
	if tr.streaming {
		// The caller left a long get line's keys unread: drop them.
		tr.afterNUL = false
		if err := tr.skipStreamedLine(); err != nil {
			return nil, err
		}
	}
	tr.getRest = nil
	req := &tr.req
	*req = Request{Keys: tr.keys[:0], Args: tr.args[:0]}
	line, err := tr.readLine()
	switch {
	case err == errLongGet:
		err = tr.startLongGet(req)
	case err != nil:
		return nil, err
	default:
		err = tr.parse(req, line)
	}
	// Keep the grown slices for the next request.
	tr.keys, tr.args = req.Keys[:0], req.Args[:0]
	return req, err
}

// maxKeyBatch is the most keys of a get line Request.Keys holds at once.
const maxKeyBatch = 32

// NextKeys replaces req.Keys, the last batch of a retrieval command's keys
// (see Request.MoreKeys), with the next batch. Keys already given out must
// not be used once it is called: a line longer than the read buffer is read
// on as its keys are. A key longer than MaxKeyLen in that part of the line
// is ErrBadFormat, after the rest of the line is read and dropped; ErrClose
// and I/O errors, as from Next, end the connection.
func (tr *TextReader) NextKeys(req *Request) error {
	req.Keys = req.Keys[:0]
	req.MoreKeys = false
	var err error
	if tr.streaming {
		err = tr.streamKeys(req)
	} else {
		tr.bufferedKeys(req)
	}
	tr.keys = req.Keys[:0]
	return err
}

// bufferedKeys moves the next batch of the keys in tr.getRest, a line
// wholly read, to req.Keys.
func (tr *TextReader) bufferedKeys(req *Request) {
	rest := tr.getRest
	for len(rest) > 0 && len(req.Keys) < maxKeyBatch {
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			req.Keys = append(req.Keys, rest)
			rest = nil
			break
		}
		if i > 0 {
			req.Keys = append(req.Keys, rest[:i])
		}
		rest = rest[i+1:]
	}
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	tr.getRest = rest
	req.MoreKeys = len(rest) > 0
}

// errLongGet is readLine's finding a get line longer than the read
// buffer: Next reads its keys as they come (see startLongGet).
var errLongGet = errors.New("protocol: a get line outgrows the read buffer")

// startLongGet begins a get or gets line longer than the read buffer,
// whose first bytes br holds: it reads the command's name and the first
// batch of keys. The rest of the line stays in br and the connection, for
// NextKeys.
func (tr *TextReader) startLongGet(req *Request) error {
	buf, _ := tr.br.Peek(tr.br.Buffered())
	lead := len(buf) - len(bytes.TrimLeft(buf, " "))
	req.Command = CmdGet
	name := len("get ")
	if bytes.HasPrefix(buf[lead:], []byte("gets ")) {
		req.Command = CmdGets
		name = len("gets ")
	}
	_, _ = tr.br.Discard(lead + name)
	tr.streaming, tr.streamed = true, lead+name
	return tr.streamKeys(req)
}

// streamKeys reads the next batch of a long get line's keys into
// req.Keys: the keys br holds whole, reading more only before the batch's
// first key, so that a read cannot move the bytes of keys already given.
func (tr *TextReader) streamKeys(req *Request) error {
	if tr.afterNUL {
		tr.afterNUL = false
		return tr.skipStreamedLine()
	}
	for len(req.Keys) < maxKeyBatch {
		buf, _ := tr.br.Peek(tr.br.Buffered())
		skip := len(buf) - len(bytes.TrimLeft(buf, " "))
		buf = buf[skip:]
		end := bytes.IndexAny(buf, " \n\x00")
		if end < 0 {
			if len(buf) > MaxKeyLen+1 { // room for a key and its "\r"
				return tr.badStreamedKey(skip)
			}
			if len(req.Keys) > 0 {
				break // read more once this batch is answered
			}
			if err := tr.readStreamed(skip); err != nil {
				return err
			}
			continue
		}
		key := buf[:end]
		last := buf[end] != ' '
		if last && buf[end] == '\n' {
			key = trimCR(key)
		}
		if len(key) > MaxKeyLen {
			return tr.badStreamedKey(skip)
		}
		if len(key) > 0 {
			req.Keys = append(req.Keys, key)
		}
		if err := tr.consumeStreamed(skip + end + 1); err != nil {
			return err
		}
		if last {
			if buf[end] == 0 {
				// memcached's line ends at a NUL. Dropping the rest
				// reads, which would move this batch's keys: the
				// next call does.
				tr.afterNUL = true
				break
			}
			tr.streaming = false
			return nil
		}
	}
	req.MoreKeys = true
	return nil
}

// consumeStreamed drops n bytes of a long get line from br, counting them
// against maxGetLine.
func (tr *TextReader) consumeStreamed(n int) error {
	_, _ = tr.br.Discard(n)
	if tr.streamed += n; tr.streamed > maxGetLine {
		tr.streaming = false
		return ErrClose
	}
	return nil
}

// readStreamed drops the skip bytes of spaces that lead what br holds of a
// long get line, and reads more of it.
func (tr *TextReader) readStreamed(skip int) error {
	if err := tr.consumeStreamed(skip); err != nil {
		return err
	}
	if _, err := tr.br.Peek(tr.br.Buffered() + 1); err != nil {
		tr.streaming = false
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// badStreamedKey answers a key too long in a long get line: the rest of the
// line is read and dropped, and the request refused.
func (tr *TextReader) badStreamedKey(skip int) error {
	if err := tr.consumeStreamed(skip); err != nil {
		return err
	}
	if err := tr.skipStreamedLine(); err != nil {
		return err
	}
	return ErrBadFormat
}

// skipStreamedLine reads and drops the rest of a long get line.
func (tr *TextReader) skipStreamedLine() error {
	for {
		buf, _ := tr.br.Peek(tr.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			tr.streaming = false
			return tr.consumeStreamed(i + 1)
		}
		if err := tr.readStreamed(len(buf)); err != nil {
			return err
		}
	}
}

// NextBuffered reports whether the next request is wholly buffered, so that
// Next decodes it from the buffer without reading from the connection: its
// line has arrived, and so has the data block it announces, if any. It errs
// towards false: a line whose data length does not parse, or a line too long
// for the buffer, is left to a Next that may read.
func (tr *TextReader) NextBuffered() bool {
	buf, _ := tr.br.Peek(tr.br.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	line := buf[:i]
	if j := bytes.IndexByte(line, 0); j >= 0 {
		line = line[:j]
	}
	line = trimCR(line)
	// Only storage commands and ms read past their line, the data block
	// and its "\r\n"; each names its length at a fixed token. The first
	// word tells, without tokenizing the line, unless spaces lead it.
	name := line
	if j := bytes.IndexByte(line, ' '); j >= 0 {
		name = line[:j]
	}
	if len(name) == 0 {
		tokens, _ := tr.tokenize(line)
		if len(tokens) == 0 {
			return true
		}
		name = tokens[0]
	}
	lengthToken := 4
	switch string(name) {
	case "set", "add", "replace", "append", "prepend", "cas":
	case "ms":
		lengthToken = 2
	default:
		return true
	}
	tokens, _ := tr.tokenize(line)
	if len(tokens) <= lengthToken {
		return true // refused before any data is read
	}
	n, ok := parseInt32(tokens[lengthToken])
	if !ok || n < 0 {
		return true // refused before any data is read
	}
	return int64(len(buf)) >= int64(i)+1+n+2
}

// MaxUnterminatedLine is how many bytes of a line may arrive without its
// newline: once more have, the connection is closed, as memcached closes it,
// unless the line is a get or gets (see readLine).
const MaxUnterminatedLine = 2048

// readLine returns the next line without its "\n" or "\r\n". Once more than
// MaxUnterminatedLine bytes are buffered without a newline, the connection
// is closed unless the line is a get or gets, which may grow to maxGetLine,
// as memcached does: so whether a line of 3000 bytes is answered or cut off
// depends, as in memcached, on whether its newline arrived with the rest.
func (tr *TextReader) readLine() ([]byte, error) { return tr.readLineLimit(true) }

// readLineLimit is readLine; without longGets, a line of more than
// MaxUnterminatedLine bytes buffered without a newline closes the connection
// whatever its command.
func (tr *TextReader) readLineLimit(longGets bool) ([]byte, error) {
	for {
		n := tr.br.Buffered()
		buf, _ := tr.br.Peek(n)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			_, _ = tr.br.Discard(i + 1)
			return trimCR(buf[:i]), nil
		}
		if n > MaxUnterminatedLine && (!longGets || !isLongGet(buf)) {
			return nil, ErrClose
		}
		if n == tr.br.Size() {
			if !longGets || !isLongGet(buf) {
				return nil, ErrClose
			}
			return nil, errLongGet
		}
		if _, err := tr.br.Peek(n + 1); err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// isLongGet reports whether line may outgrow the read buffer: memcached lets only a
// get or gets with at most 100 leading spaces do so.
func isLongGet(line []byte) bool {
	trimmed := bytes.TrimLeft(line, " ")
	if len(line)-len(trimmed) > 100 {
		return false
	}
	return bytes.HasPrefix(trimmed, []byte("get ")) || bytes.HasPrefix(trimmed, []byte("gets "))
}

// tokenize splits line on spaces as memcached's tokenizer does: at most 23
// tokens, the rest of the line left unsplit in rest. It returns memcached's
// token count, which includes a terminal token.
func (tr *TextReader) tokenize(line []byte) (tokens [][]byte, rest []byte) {
	tokens = tr.tokens[:0]
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			break
		}
		if len(tokens) == maxTokens-1 {
			return tokens, line[i:]
		}
		start := i
		for i < len(line) && line[i] != ' ' {
			i++
		}
		tokens = append(tokens, line[start:i])
	}
	return tokens, nil
}

func (tr *TextReader) parse(req *Request, line []byte) error {
	// memcached reads the line as a C string: it ends at the first NUL.
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	tokens, _ := tr.tokenize(line)
	ntokens := len(tokens) + 1 // memcached counts the terminal token
	if len(tokens) == 0 || len(tokens[0]) < 2 {
		return ErrUnknownCommand
	}
	name := tokens[0]
	switch string(name) {
	case "get", "gets", "gat", "gats", "bget":
		return tr.parseRetrieval(req, line, tokens, ntokens)
	case "set", "add", "replace", "append", "prepend":
		if ntokens != 6 && ntokens != 7 {
			return ErrUnknownCommand
		}
		return tr.parseStorage(req, name, tokens, ntokens)
	case "cas":
		if ntokens != 7 && ntokens != 8 {
			return ErrUnknownCommand
		}
		return tr.parseStorage(req, name, tokens, ntokens)
	case "incr", "decr":
		if ntokens != 4 && ntokens != 5 {
			return ErrUnknownCommand
		}
		req.Command = CmdIncr
		if name[0] == 'd' {
			req.Command = CmdDecr
		}
		req.Noreply = noreply(tokens)
		if len(tokens[1]) > MaxKeyLen {
			return ErrBadFormat
		}
		req.Keys = append(req.Keys, tokens[1])
		delta, ok := parseUint64(tokens[2])
		if !ok {
			return ErrInvalidDelta
		}
		req.Delta = delta
		return nil
	case "touch":
		if ntokens != 4 && ntokens != 5 {
			return ErrUnknownCommand
		}
		req.Command = CmdTouch
		req.Noreply = noreply(tokens)
		if len(tokens[1]) > MaxKeyLen {
			return ErrBadFormat
		}
		req.Keys = append(req.Keys, tokens[1])
		exp, ok := parseInt32(tokens[2])
		if !ok {
			return ErrInvalidExptime
		}
		req.Exptime = exp
		return nil
	case "delete":
		if ntokens < 3 || ntokens > 5 {
			return ErrUnknownCommand
		}
		req.Command = CmdDelete
		if ntokens > 3 {
			holdIsZero := string(tokens[2]) == "0"
			req.Noreply = noreply(tokens)
			valid := (ntokens == 4 && (holdIsZero || req.Noreply)) ||
				(ntokens == 5 && holdIsZero && req.Noreply)
			if !valid {
				return ErrDeleteUsage
			}
		}
		if len(tokens[1]) > MaxKeyLen {
			return ErrBadFormat
		}
		req.Keys = append(req.Keys, tokens[1])
		return nil
	case "flush_all":
		if ntokens < 2 || ntokens > 4 {
			return ErrUnknownCommand
		}
		req.Command = CmdFlushAll
		req.Noreply = noreply(tokens)
		want := 2
		if req.Noreply {
			want = 3
		}
		if ntokens != want {
			exp, ok := parseInt32(tokens[1])
			if !ok {
				return ErrInvalidExptime
			}
			req.Exptime = exp
		}
		return nil
	case "version":
		req.Command = CmdVersion
		return nil
	case "quit":
		req.Command = CmdQuit
		return nil
	case "verbosity":
		if ntokens != 3 && ntokens != 4 {
			return ErrUnknownCommand
		}
		req.Command = CmdVerbosity
		req.Noreply = noreply(tokens)
		level, ok := parseUint32(tokens[1])
		if !ok {
			return ErrBadFormat
		}
		req.Verbosity = level
		return nil
	case "mn":
		req.Command = CmdMetaNoop
		return nil
	case "peer":
		if ntokens != 2 {
			return ErrUnknownCommand
		}
		req.Command = CmdPeer
		return nil
	case "stats", "shutdown", "config", "cache_memlimit", "lru", "slabs", "lru_crawler", "watch":
		// The node judges these commands' words; the decoder checks
		// only the counts memcached refuses with ERROR before it looks.
		req.Command = freeArgCommands[string(name)]
		if (req.Command == CmdCacheMemlimit && ntokens != 3 && ntokens != 4) || (req.Command == CmdLru && ntokens < 3) {
			return ErrUnknownCommand
		}
		if req.Command == CmdCacheMemlimit {
			req.Noreply = noreply(tokens)
		}
		req.Args = append(req.Args[:0], tokens[1:]...)
		return nil
	case "refresh_certs":
		// memcached takes any arguments and heeds a final noreply.
		req.Command = CmdRefreshCerts
		req.Noreply = noreply(tokens)
		return nil
	}
	if isMeta(name) {
		return tr.parseMeta(req, line)
	}
	if len(tokens) > 0 && bytes.HasPrefix(tokens[len(tokens)-1], []byte("HTTP/")) {
		return ErrClose
	}
	return ErrUnknownCommand
}

func (tr *TextReader) parseRetrieval(req *Request, line []byte, tokens [][]byte, ntokens int) error {
	if ntokens < 3 {
		return ErrUnknownCommand
	}
	switch string(tokens[0]) {
	case "get", "bget":
		req.Command = CmdGet
	case "gets":
		req.Command = CmdGets
	case "gat":
		req.Command = CmdGat
	case "gats":
		req.Command = CmdGats
	}
	first := 1
	if req.Command == CmdGat || req.Command == CmdGats {
		exp, ok := parseInt32(tokens[1])
		if !ok {
			return ErrInvalidExptime
		}
		req.Exptime = exp
		first = 2
	}
	// The keys are the line from the first: tokens are subslices of
	// line, where their capacities place them.
	var rest []byte
	if first < len(tokens) {
		rest = line[cap(line)-cap(tokens[first]):]
	}
	// Every key is checked before any is answered, as memcached answers
	// nothing of a get line with a key too long.
	for k := range bytes.SplitSeq(rest, []byte{' '}) {
		if len(k) > MaxKeyLen {
			return ErrBadFormat
		}
	}
	tr.getRest = rest
	tr.bufferedKeys(req)
	return nil
}

func (tr *TextReader) parseStorage(req *Request, name []byte, tokens [][]byte, ntokens int) error {
	switch string(name) {
	case "set":
		req.Command = CmdSet
	case "add":
		req.Command = CmdAdd
	case "replace":
		req.Command = CmdReplace
	case "append":
		req.Command = CmdAppend
	case "prepend":
		req.Command = CmdPrepend
	case "cas":
		req.Command = CmdCas
	}
	req.Noreply = noreply(tokens)
	if len(tokens[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	flags, ok1 := parseUint32(tokens[2])
	exp, ok2 := parseInt32(tokens[3])
	length, ok3 := parseInt32(tokens[4])
	if !ok1 || !ok2 || !ok3 {
		return ErrBadFormat
	}
	req.Flags, req.Exptime = flags, exp
	if req.Command == CmdCas {
		cas, ok := parseUint64(tokens[5])
		if !ok {
			return ErrBadFormat
		}
		req.CAS = cas
	}
	if length < 0 || length > 1<<31-1-2 {
		return ErrBadFormat
	}
	// The key lives in the read buffer, which reading the data overwrites.
	tr.keyCopy = append(tr.keyCopy[:0], tokens[1]...)
	req.Keys = append(req.Keys, tr.keyCopy)
	return tr.readData(req, int(length))
}

// TakeData gives the caller the buffer of the last request's Data, to keep:
// the reader reads the next data block into a new one.
func (tr *TextReader) TakeData() { tr.data = nil }

// ReleaseLarge drops buffers that grew past keep bytes, so that one huge value
// does not stay pinned to an idle connection.
func (tr *TextReader) ReleaseLarge(keep int) {
	if cap(tr.data) > keep {
		tr.data = nil
	}
	if cap(tr.keys) > 1024 {
		tr.keys = nil
	}
	if cap(tr.args) > 1024 {
		tr.args = nil
	}
	if cap(tr.metaLine) > keep {
		tr.metaLine = nil
	}
}

// noreply reports whether the last token is "noreply", as memcached's
// set_noreply_maybe does.
func noreply(tokens [][]byte) bool {
	return len(tokens) > 0 && string(tokens[len(tokens)-1]) == "noreply"
}
