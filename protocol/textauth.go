package protocol

import (
	"bytes"
	"io"
)

// memcached's ASCII authentication (-Y): until a connection authenticates,
// every line is read as an attempt, "set <key> <flags> <exptime> <bytes>"
// followed by a data block "<user> <password>". The key, flags and exptime
// are ignored and nothing is stored. Any other line is answered
// ErrUnauthenticated and the connection stays open.

// Errors of NextAuth, memcached's replies to the letter.
var (
	// ErrUnauthenticated answers any line that is not an authentication
	// set, before the connection has authenticated.
	ErrUnauthenticated = &TextError{"CLIENT_ERROR unauthenticated"}
	// ErrAuthTermination answers an authentication set whose data block
	// does not end in "\r\n".
	ErrAuthTermination = &TextError{"CLIENT_ERROR bad command line termination"}
	// ErrAuthTokenFormat answers a data block that is not "<user> <password>".
	ErrAuthTokenFormat = &TextError{"CLIENT_ERROR bad authentication token format"}
	// ErrAuthFailure is the reply to wrong credentials. NextAuth never
	// returns it: the caller, which checks the credentials, sends it.
	ErrAuthFailure = &TextError{"CLIENT_ERROR authentication failure"}
)

// NextAuth reads one attempt of memcached's ASCII authentication and returns
// the user and password it carries, or a *TextError to answer (the
// connection carries on), or ErrClose or an I/O error, after which the
// connection must be closed.
//
// As memcached: the command must be exactly "set" with at least four
// arguments, the fourth a byte count (memcached's safe_strtoul); the data
// block, which must end in "\r\n", is split on spaces and its first two
// tokens are the user and the password (further tokens are ignored).
//
// Nothing outgrows the read buffer before authentication, as nothing
// outgrows memcached's 16 KiB one: a line that fills it without a newline
// closes the connection, even a get's (which Next lets grow), and so does
// a data block that cannot fit it, once the buffer's size of it has been
// read. memcached adds the "\r\n" to the byte count in 32 bits: the counts
// 4294967294 and 4294967295 announce a block of 0 and 1 bytes, answered
// ErrAuthTermination, and those that make memcached's length negative close
// the connection.
//
// The slices point into the TextReader's buffers and are valid until the
// next call.
func (tr *TextReader) NextAuth() (user, password []byte, err error) {
	line, err := tr.readLineLimit(false)
	if err != nil {
		return nil, nil, err
	}
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	tokens, _ := tr.tokenize(line)
	if len(tokens) < 5 || string(tokens[0]) != "set" {
		return nil, nil, ErrUnauthenticated
	}
	n, ok := parseUint32(tokens[4])
	if !ok {
		return nil, nil, ErrUnauthenticated
	}
	// memcached adds the "\r\n" in 32 bits and keeps the sum in an int.
	rl := n + 2
	switch {
	case rl < 2:
		// 4294967294 and 4294967295 wrap to a block of 0 or 1 bytes,
		// whose "\r\n" memcached looks for before the block, where the
		// line it has cut off with a NUL is: never found.
		if _, err := tr.br.Discard(int(rl)); err != nil {
			return nil, nil, eofUnexpected(err)
		}
		return nil, nil, ErrAuthTermination
	case int32(rl) < 0:
		// A negative length: memcached reads outside its buffer, and
		// may crash. Close.
		return nil, nil, ErrClose
	case int(rl) > tr.br.Size():
		// memcached waits for the block until its read buffer is full,
		// then closes.
		if _, err := tr.br.Discard(tr.br.Size()); err != nil {
			return nil, nil, eofUnexpected(err)
		}
		return nil, nil, ErrClose
	}
	size := int(rl)
	if cap(tr.data) < size {
		tr.data = make([]byte, size)
	}
	data := tr.data[:size]
	if _, err := io.ReadFull(tr.br, data); err != nil {
		return nil, nil, eofUnexpected(err)
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		return nil, nil, ErrAuthTermination
	}
	block := data[:size-2]
	if i := bytes.IndexByte(block, 0); i >= 0 {
		block = block[:i]
	}
	tokens, _ = tr.tokenize(block)
	if len(tokens) < 2 {
		return nil, nil, ErrAuthTokenFormat
	}
	return tokens[0], tokens[1], nil
}

// eofUnexpected turns io.EOF, the client leaving inside an attempt, into
// io.ErrUnexpectedEOF.
func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
