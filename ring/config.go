package ring

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ElastiCache's Auto Discovery: `config get cluster` answers
//
//	CONFIG cluster 0 <bytes>\r\n
//	<version>\n
//	<host>|<ip>|<port> <host>|<ip>|<port> ...\n
//	\r\n
//	END\r\n
//
// where <bytes> counts the two payload lines, newlines included.

// MaxConfigSize is the largest cluster config payload ParseClusterConfig
// accepts, in bytes.
const MaxConfigSize = 1 << 20

// maxConfigLine bounds the line that opens a reply: CONFIG's header, or an
// error line.
const maxConfigLine = 1024

// ErrNoClusterConfig is returned by ParseClusterConfig when the server
// answers ERROR or an empty END: it is not a cluster node (plain memcached
// answers ERROR to `config get cluster`).
var ErrNoClusterConfig = errors.New("ring: server has no cluster config")

// ConfigError is returned by ParseClusterConfig for a reply that breaks the
// Auto Discovery format. The reader is then at an unknown place in the
// stream: the connection should be closed.
type ConfigError struct {
	Reason string
}

// Error returns the reason, prefixed "ring: malformed cluster config: ".
func (e *ConfigError) Error() string { return "ring: malformed cluster config: " + e.Reason }

// ServerError is returned by ParseClusterConfig when the server answers
// `config get cluster` with CLIENT_ERROR or SERVER_ERROR.
type ServerError struct {
	Line string // the line, without its \r\n
}

// Error returns the server's line, quoted.
func (e *ServerError) Error() string { return "ring: server replied " + strconv.Quote(e.Line) }

// FormatClusterConfig returns the full reply to `config get cluster`: the
// CONFIG framing around version and the members' entries, ordered by Name
// (an empty Name counting as Entry(), as in New). Members must pass
// Validate and have distinct entries, or ParseClusterConfig refuses the
// reply. FormatClusterConfig does not keep members and may be called
// concurrently.
func FormatClusterConfig(version uint64, members []Member) []byte {
	return AppendClusterConfig(nil, version, members)
}

// AppendClusterConfig is FormatClusterConfig appending to dst, for a
// connection's write buffer.
func AppendClusterConfig(dst []byte, version uint64, members []Member) []byte {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.key(), b.key()) })
	size := len(strconv.FormatUint(version, 10)) + 2
	for i, m := range ms {
		if i > 0 {
			size++
		}
		size += len(m.Host) + len(m.IP) + 2 + len(strconv.Itoa(m.Port))
	}
	dst = append(dst, "CONFIG cluster 0 "...)
	dst = strconv.AppendInt(dst, int64(size), 10)
	dst = append(dst, "\r\n"...)
	dst = strconv.AppendUint(dst, version, 10)
	dst = append(dst, '\n')
	for i, m := range ms {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, m.Host...)
		dst = append(dst, '|')
		dst = append(dst, m.IP...)
		dst = append(dst, '|')
		dst = strconv.AppendInt(dst, int64(m.Port), 10)
	}
	return append(dst, "\n\r\nEND\r\n"...)
}

// ParseClusterConfig reads one reply to `config get cluster` from r and
// returns the cluster's version and members, in the order the reply lists
// them, each named by its entry (Name = Entry()). It reads no further than
// the reply's END line.
//
// Errors: io.EOF if r ends before the reply starts, io.ErrUnexpectedEOF if
// it ends within; ErrNoClusterConfig for ERROR or END; *ServerError for
// CLIENT_ERROR or SERVER_ERROR; *ConfigError for anything else out of
// format, including a payload over MaxConfigSize, more than MaxMembers
// members, a member that fails Validate, or the same entry twice; other
// errors come from r.
//
// ParseClusterConfig keeps nothing of r's buffer: the members' strings are
// their own. Calls on different readers may run concurrently; calls on one
// reader must not.
func ParseClusterConfig(r *bufio.Reader) (version uint64, members []Member, err error) {
	line, err := readLine(r, maxConfigLine)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case line == "ERROR" || line == "END":
		return 0, nil, ErrNoClusterConfig
	case strings.HasPrefix(line, "CLIENT_ERROR") || strings.HasPrefix(line, "SERVER_ERROR"):
		return 0, nil, &ServerError{Line: line}
	}
	f := strings.Split(line, " ")
	if len(f) != 4 || f[0] != "CONFIG" || f[1] != "cluster" || !digits(f[2], 10) || !digits(f[3], 7) {
		return 0, nil, &ConfigError{"bad header " + strconv.Quote(line)}
	}
	size, _ := strconv.Atoi(f[3])
	if size > MaxConfigSize {
		return 0, nil, &ConfigError{"payload of " + f[3] + " bytes, over " + strconv.Itoa(MaxConfigSize)}
	}
	// Read what arrives rather than allocating what the header claims.
	payload, err := io.ReadAll(io.LimitReader(r, int64(size)))
	if err != nil {
		return 0, nil, err
	}
	if len(payload) < size {
		return 0, nil, io.ErrUnexpectedEOF
	}
	var end [len("\r\nEND\r\n")]byte
	if n, err := io.ReadFull(r, end[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if !bytes.HasPrefix([]byte("\r\nEND\r\n"), end[:n]) {
				return 0, nil, &ConfigError{"no END after the payload"}
			}
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	if string(end[:]) != "\r\nEND\r\n" {
		return 0, nil, &ConfigError{"no END after the payload"}
	}
	return parsePayload(payload)
}

// parsePayload parses "<version>\n<entries>\n".
func parsePayload(p []byte) (uint64, []Member, error) {
	nl := bytes.IndexByte(p, '\n')
	if nl < 0 || !digits(string(p[:nl]), 20) {
		return 0, nil, &ConfigError{"bad version line"}
	}
	version, err := strconv.ParseUint(string(p[:nl]), 10, 64)
	if err != nil {
		return 0, nil, &ConfigError{"version out of range"}
	}
	rest := p[nl+1:]
	if len(rest) == 0 || rest[len(rest)-1] != '\n' || bytes.IndexByte(rest[:len(rest)-1], '\n') >= 0 {
		return 0, nil, &ConfigError{"the entries are not one line ending in \\n"}
	}
	// Entries are separated by spaces; tolerate runs of them.
	var fields []string
	for e := range strings.SplitSeq(string(rest[:len(rest)-1]), " ") {
		if e != "" {
			fields = append(fields, e)
		}
		if len(fields) > MaxMembers {
			break
		}
	}
	if len(fields) > MaxMembers {
		return 0, nil, &ConfigError{"over " + strconv.Itoa(MaxMembers) + " members"}
	}
	members := make([]Member, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, e := range fields {
		m, err := parseEntry(e)
		if err != nil {
			return 0, nil, err
		}
		if seen[e] {
			return 0, nil, &ConfigError{"entry " + strconv.Quote(e) + " listed twice"}
		}
		seen[e] = true
		members = append(members, m)
	}
	return version, members, nil
}

// parseEntry parses host|ip|port, naming the member by the entry.
func parseEntry(e string) (Member, error) {
	host, rest, ok1 := strings.Cut(e, "|")
	ip, port, ok2 := strings.Cut(rest, "|")
	// The port in canonical form, so that Entry() gives e back.
	if !ok1 || !ok2 || !digits(port, 5) || port[0] == '0' {
		return Member{}, &ConfigError{"bad entry " + strconv.Quote(e)}
	}
	p, _ := strconv.Atoi(port)
	m := Member{Name: e, Host: host, IP: ip, Port: p}
	if err := m.Validate(); err != nil {
		return Member{}, &ConfigError{"bad entry " + strconv.Quote(e) + ": " + err.Error()}
	}
	return m, nil
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// readLine reads a line ending in \r\n of at most max bytes, and returns it
// without the \r\n.
func readLine(r *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max+2 {
			return "", &ConfigError{"line over " + strconv.Itoa(max) + " bytes"}
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", &ConfigError{"line " + strconv.Quote(string(line)) + " does not end in \\r\\n"}
	}
	return string(line[:len(line)-2]), nil
}

// memcluster's `config get ring` announces the cluster's ring mode in the
// same framing:
//
//	CONFIG ring 0 <bytes>\r\n
//	<mode>\r\n
//	END\r\n
//
// where <mode> is Mode.String() ("memcluster" or "ketama") and <bytes>
// counts it alone, as in `config get owner`.

// maxRingConfig bounds the mode name in a `config get ring` reply.
const maxRingConfig = 64

// ErrNoRingConfig is returned by ParseRingConfig when the server answers
// ERROR or an empty END: it announces no ring mode (memcached, ElastiCache
// and memcluster nodes older than ring modes answer ERROR), so its cluster
// places keys in ModeMemcluster if it is memcluster's, or as its clients
// choose if not.
var ErrNoRingConfig = errors.New("ring: server announces no ring mode")

// AppendRingConfig appends the full reply to `config get ring` announcing
// mode to dst (ModeMemcluster for the zero Mode).
func AppendRingConfig(dst []byte, mode Mode) []byte {
	return AppendConfigValue(dst, "ring", mode.String())
}

// AppendConfigValue appends to dst the reply to `config get <key>` whose
// value is one line, in Auto Discovery's framing (the count is of the
// value alone): "CONFIG <key> 0 <len>\r\n<value>\r\nEND\r\n". memcluster
// answers `config get owner` and `config get ring` so.
func AppendConfigValue(dst []byte, key, value string) []byte {
	dst = append(dst, "CONFIG "...)
	dst = append(dst, key...)
	dst = append(dst, " 0 "...)
	dst = strconv.AppendInt(dst, int64(len(value)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, value...)
	return append(dst, "\r\nEND\r\n"...)
}

// ParseRingConfig reads one reply to `config get ring` from r and returns
// the mode it announces. It reads no further than the reply's END line.
//
// Errors: io.EOF if r ends before the reply starts, io.ErrUnexpectedEOF if
// it ends within; ErrNoRingConfig for ERROR or END; *ServerError for
// CLIENT_ERROR or SERVER_ERROR; *ConfigError for anything else out of
// format; an error from ParseMode for a well-formed reply naming a mode
// this package does not know, after which r is at the reply's end; other
// errors come from r.
func ParseRingConfig(r *bufio.Reader) (Mode, error) {
	line, err := readLine(r, maxConfigLine)
	if err != nil {
		return 0, err
	}
	switch {
	case line == "ERROR" || line == "END":
		return 0, ErrNoRingConfig
	case strings.HasPrefix(line, "CLIENT_ERROR") || strings.HasPrefix(line, "SERVER_ERROR"):
		return 0, &ServerError{Line: line}
	}
	f := strings.Split(line, " ")
	if len(f) != 4 || f[0] != "CONFIG" || f[1] != "ring" || !digits(f[2], 10) || !digits(f[3], 2) {
		return 0, &ConfigError{"bad ring header " + strconv.Quote(line)}
	}
	size, _ := strconv.Atoi(f[3])
	if size > maxRingConfig {
		return 0, &ConfigError{"ring mode of " + f[3] + " bytes"}
	}
	name, err := readLine(r, maxRingConfig)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(name) != size {
		return 0, &ConfigError{"ring mode " + strconv.Quote(name) + " is not " + f[3] + " bytes"}
	}
	end, err := readLine(r, maxConfigLine)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if end != "END" {
		return 0, &ConfigError{"no END after the ring mode"}
	}
	return ParseMode(name)
}
