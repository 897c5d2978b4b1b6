package protocol

import (
	"encoding/base64"
)

// The meta commands' limits, as memcached 1.6's MFLAG_MAX_OPT_LENGTH and
// MFLAG_MAX_OPAQUE_LENGTH.
const (
	// maxMetaTokens is the most tokens a meta line may have, counting the
	// command, the key, the flags and memcached's terminal token.
	maxMetaTokens = 20
	// MaxOpaqueLen is the longest opaque token (O and its value).
	MaxOpaqueLen = 32
)

// The meta commands' error replies, as memcached 1.6.18 words them.
var (
	ErrMetaDuplicateFlag = &TextError{"CLIENT_ERROR duplicate flag"}
	ErrMetaInvalidFlag   = &TextError{"CLIENT_ERROR invalid flag"}
	ErrMetaBadFlag       = &TextError{"CLIENT_ERROR invalid or duplicate flag"}
	ErrMetaBadToken      = &TextError{"CLIENT_ERROR bad token in command line format"}
	ErrMetaDecodeKey     = &TextError{"CLIENT_ERROR error decoding key"}
	ErrMetaModeLength    = &TextError{"CLIENT_ERROR incorrect length for M token"}
	ErrMetaInitial       = &TextError{"CLIENT_ERROR invalid numeric initial value"}
	ErrMetaDelta         = &TextError{"CLIENT_ERROR invalid numeric delta value"}
	ErrMetaOpaque        = &TextError{"CLIENT_ERROR opaque token too long"}
	ErrMetaGetTooLong    = &TextError{"CLIENT_ERROR options flags are too long"}
	ErrMetaTooLong       = &TextError{"CLIENT_ERROR options flags too long"}
	ErrMetaSetMode       = &TextError{"CLIENT_ERROR invalid mode for ms M token"}
	ErrMetaArithMode     = &TextError{"CLIENT_ERROR invalid mode for ma M token"}
)

// MetaArgs are the flags of a meta command (mg, ms, md, ma), decoded. The
// flags that only shape the reply are left in Flags for the caller to walk in
// order, as memcached answers them in the order they were asked.
type MetaArgs struct {
	// Flags are the flag tokens after the key (after the data length for
	// ms), in request order, each its letter followed by its argument.
	// They point into the TextReader's buffers and are valid until the
	// next call to Next.
	Flags [][]byte
	// Base64 (b): the key was sent base64-encoded; Request.Keys[0] holds
	// it decoded, and replies encode it again.
	Base64 bool
	// Quiet (q): the common reply is to be left out.
	Quiet bool
	// Value (v): mg and ma return the value.
	Value bool
	// NoBump (u): mg does not bump the item in the LRU.
	NoBump bool
	// Invalidate (I): ms and md mark the item stale instead.
	Invalidate bool
	// HasTTL and TTL (T): the new exptime, as a client sends it.
	HasTTL bool
	TTL    int64
	// HasVivify and Vivify (N): create on a miss, with this exptime.
	HasVivify bool
	Vivify    int64
	// HasRecache and Recache (R): win the recache token when the TTL left
	// is below this exptime.
	HasRecache bool
	Recache    int64
	// ClientFlags (F) are ms's client flags.
	ClientFlags uint32
	// HasCAS and CAS (C): compare with this CAS unique.
	HasCAS bool
	CAS    uint64
	// HasNewCAS and NewCAS (E): the item a command modifies gets this CAS
	// unique instead of a fresh one. memcached 1.6.18 refuses E; later
	// versions, and memcluster, accept it on every meta command.
	HasNewCAS bool
	NewCAS    uint64
	// RemoveValue (x): md empties the item's value instead of removing
	// the item. memcached 1.6.18 refuses x; later versions, and
	// memcluster, accept it.
	RemoveValue bool
	// Mode (M) is the mode switch's letter, or 0.
	Mode byte
	// Delta (D) is ma's delta; 1 if not given.
	Delta uint64
	// Initial (J) is ma's initial value for N; 0 if not given.
	Initial uint64
}

// isMeta reports whether name is a meta command other than mn.
func isMeta(name []byte) bool {
	if len(name) != 2 || name[0] != 'm' {
		return false
	}
	switch name[1] {
	case 'g', 's', 'd', 'a', 'e':
		return true
	}
	return false
}

// parseMeta decodes mg, ms, md, ma and me as memcached 1.6.18 does, and
// also accepts the flags later versions added: E and x.
func (tr *TextReader) parseMeta(req *Request, line []byte) error {
	// ms reads its data over the read buffer, and b decodes the key: keep
	// the line in a buffer of the reader's own.
	tr.metaLine = append(tr.metaLine[:0], line...)
	tokens, _ := tr.tokenize(tr.metaLine)
	ntokens := len(tokens) + 1
	name := tokens[0]
	switch name[1] {
	case 'g':
		req.Command = CmdMetaGet
	case 's':
		req.Command = CmdMetaSet
	case 'd':
		req.Command = CmdMetaDelete
	case 'a':
		req.Command = CmdMetaArith
	case 'e':
		req.Command = CmdMetaDebug
		return tr.parseMetaDebug(req, tokens, ntokens)
	}
	m := &req.Meta
	m.Flags = tr.metaFlags[:0]
	m.Delta = 1
	if ntokens < 3 {
		return ErrUnknownCommand
	}
	key := tokens[1]
	if len(key) > MaxKeyLen {
		return ErrBadFormat
	}
	first := 2
	var vlen int64
	if req.Command == CmdMetaSet {
		if ntokens == 3 {
			return ErrBadFormat
		}
		if ntokens > maxMetaTokens {
			return ErrMetaTooLong
		}
		n, ok := parseInt32(tokens[2])
		if !ok || n < 0 || n > 1<<31-1-2 {
			return ErrBadFormat
		}
		vlen = n
		first = 3
	} else if ntokens > maxMetaTokens {
		if req.Command == CmdMetaGet {
			return ErrMetaGetTooLong
		}
		return ErrMetaTooLong
	}
	m.Flags = append(m.Flags, tokens[first:]...)
	tr.metaFlags = m.Flags[:0]
	err := tr.parseMetaFlags(req, key)
	if err != nil && (req.Command == CmdMetaDelete || req.Command == CmdMetaArith) {
		err = ErrMetaBadFlag
	}
	if err == nil {
		err = checkOpaque(m.Flags)
	}
	if err == nil {
		switch req.Command {
		case CmdMetaSet:
			switch m.Mode {
			case 0, 'E', 'A', 'P', 'R', 'S':
			default:
				err = ErrMetaSetMode
			}
		case CmdMetaArith:
			switch m.Mode {
			case 0, 'I', '+', 'D', '-':
			default:
				err = ErrMetaArithMode
			}
		}
	}
	if req.Command != CmdMetaSet {
		return err
	}
	if err != nil {
		// memcached swallows the data block after an error.
		if _, derr := tr.br.Discard(int(vlen) + 2); derr != nil {
			return derr
		}
		return err
	}
	return tr.readData(req, int(vlen))
}

// checkOpaque checks the length of an O token.
func checkOpaque(flags [][]byte) error {
	for _, f := range flags {
		if f[0] == 'O' && len(f) > MaxOpaqueLen {
			return ErrMetaOpaque
		}
	}
	return nil
}

// parseMetaFlags is memcached's _meta_flag_preparse: a duplicate or unknown
// flag ends the parse at once; a bad argument is reported once every flag
// has been seen, with the message of the last bad one. E and x are parsed
// as memcached versions after 1.6.18 parse them (1.6.18 answers "invalid flag").
func (tr *TextReader) parseMetaFlags(req *Request, key []byte) error {
	m := &req.Meta
	var seen [128]bool
	var failed error
	req.Keys = append(req.Keys, key)
	for _, f := range m.Flags {
		o := f[0]
		if o >= 127 || seen[o] {
			return ErrMetaDuplicateFlag
		}
		seen[o] = true
		arg := f[1:]
		switch o {
		case 'b':
			n, err := base64.StdEncoding.Decode(tr.keyBuf[:], key)
			if err != nil || n == 0 {
				failed = ErrMetaDecodeKey
				n = 0
			}
			req.Keys[0] = tr.keyBuf[:n]
			m.Base64 = true
		case 'N', 'T', 'R':
			v, ok := parseInt32(arg)
			if !ok {
				failed = ErrMetaBadToken
				continue
			}
			switch o {
			case 'N':
				m.HasVivify, m.Vivify = true, v
			case 'T':
				m.HasTTL, m.TTL = true, v
			default:
				m.HasRecache, m.Recache = true, v
			}
		case 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'h', 'l':
		case 'v':
			m.Value = true
		case 'u':
			m.NoBump = true
		case 'q':
			m.Quiet = true
		case 'F':
			v, ok := parseUint32(arg)
			if !ok {
				if failed == nil {
					failed = ErrBadFormat
				}
				continue
			}
			m.ClientFlags = v
		case 'C':
			v, ok := parseUint64(arg)
			if !ok {
				failed = ErrMetaBadToken
				continue
			}
			m.HasCAS, m.CAS = true, v
		case 'E':
			v, ok := parseUint64(arg)
			if !ok {
				failed = ErrMetaBadToken
				continue
			}
			m.HasNewCAS, m.NewCAS = true, v
		case 'x':
			m.RemoveValue = true
		case 'M':
			if len(f) != 2 {
				failed = ErrMetaModeLength
				continue
			}
			m.Mode = f[1]
		case 'J':
			v, ok := parseUint64(arg)
			if !ok {
				failed = ErrMetaInitial
				continue
			}
			m.Initial = v
		case 'D':
			v, ok := parseUint64(arg)
			if !ok {
				failed = ErrMetaDelta
				continue
			}
			m.Delta = v
		case 'I':
			m.Invalidate = true
		default:
			return ErrMetaInvalidFlag
		}
	}
	return failed
}

// parseMetaDebug decodes "me <key> [b]".
func (tr *TextReader) parseMetaDebug(req *Request, tokens [][]byte, ntokens int) error {
	if ntokens < 3 || len(tokens[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	key := tokens[1]
	if ntokens >= 4 && string(tokens[2]) == "b" {
		n, err := base64.StdEncoding.Decode(tr.keyBuf[:], key)
		if err != nil || n == 0 {
			return ErrBadFormat
		}
		key = tr.keyBuf[:n]
		req.Meta.Base64 = true
	}
	req.Keys = append(req.Keys, key)
	return nil
}

// readData reads a data block of length bytes and its "\r\n" into
// req.Data; a block larger than MaxValue is discarded and answered
// ErrTooLarge. The reader's data buffer grows only as the block's bytes
// arrive (see appendArrived): a client that announces a large block and
// stalls holds no more than it has sent.
func (tr *TextReader) readData(req *Request, length int) error {
	n := length + 2
	maxValue := tr.MaxValue
	if maxValue <= 0 {
		maxValue = 1 << 20
	}
	if length > maxValue {
		if _, err := tr.br.Discard(n); err != nil {
			return err
		}
		return ErrTooLarge
	}
	// The block's "\r\n" is read apart, so that the buffer is exactly the
	// value: one the store keeps (TakeData) is then no larger than it
	// counts, where two bytes more made the allocator round a 1 MiB
	// value up by a page.
	data, err := appendArrived(tr.br, tr.data[:0], length)
	tr.data = data
	if err != nil {
		return err
	}
	end, err := tr.br.Peek(2)
	if err != nil {
		_, _ = tr.br.Discard(len(end))
		return eofUnexpected(err)
	}
	_, _ = tr.br.Discard(2)
	if end[0] != '\r' || end[1] != '\n' {
		return ErrBadDataChunk
	}
	req.Data = data
	return nil
}

// AppendMetaKey appends a meta reply's k flag: " k<key>", and " b" with the
// key base64-encoded if b is set.
func AppendMetaKey(dst, key []byte, b bool) []byte {
	dst = append(dst, " k"...)
	if !b {
		return append(dst, key...)
	}
	dst = base64.StdEncoding.AppendEncode(dst, key)
	return append(dst, " b"...)
}
