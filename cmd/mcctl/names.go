package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// memberNames are the names the nodes of a cluster go by (their memberlist
// names, from memcluster's "config get members"), by host|ip|port entry.
type memberNames map[string]string

// name returns the name of the member m, or its entry where none is known
// (a cluster of plain memcached or ElastiCache nodes).
func (n memberNames) name(m ring.Member) string {
	if s, ok := n[m.Entry()]; ok && s != "" {
		return s
	}
	return m.Entry()
}

// errNoNames is returned by askNames for a node that does not know
// "config get members".
var errNoNames = errors.New("the node does not name its members")

// maxMembersReply bounds a "config get members" reply.
const maxMembersReply = 1 << 20

// fetchNames asks the members of r, in turn, for the members' names and
// returns the first answer: none, without an error, when the nodes do not
// know the command (memcached, ElastiCache) or none answers; mcctl then
// names members by their entries.
func fetchNames(ctx context.Context, r *ring.Ring, timeout time.Duration, d dialer, login *ring.SASLLogin) memberNames {
	for _, m := range r.Members() {
		names, err := askNames(ctx, m.Addr(), timeout, d, login)
		if err == nil {
			return names
		}
		if errors.Is(err, errNoNames) || ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// askNames asks the node at addr "config get members": in the text
// protocol, or with SASL in the binary one (ConfigGet of the key
// "members").
func askNames(ctx context.Context, addr string, timeout time.Duration, d dialer, login *ring.SASLLogin) (memberNames, error) {
	if login != nil {
		n, err := dialSASL(ctx, d, addr, login, timeout)
		if err != nil {
			return nil, err
		}
		defer n.nc.Close()
		status, _, val, err := n.do(protocol.OpConfigGet, nil, []byte("members"), nil)
		if err != nil {
			return nil, err
		}
		if status != protocol.StatusOK {
			return nil, fmt.Errorf("%w: %s", errNoNames, status)
		}
		return parseMembersReply(bufio.NewReader(strings.NewReader(string(val))))
	}
	return textExchange(ctx, addr, timeout, d, "config get members\r\n", parseMembersReply)
}

// parseMembersReply reads the reply to "config get members":
//
//	CONFIG members 0 <bytes>\r\n<version>\n<entry> <name>\n...\r\nEND\r\n
func parseMembersReply(r *bufio.Reader) (memberNames, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	head = strings.TrimRight(head, "\r\n")
	f := strings.Fields(head)
	if len(f) != 4 || f[0] != "CONFIG" || f[1] != "members" {
		if strings.HasSuffix(head, "ERROR") || strings.HasPrefix(head, "ERROR") {
			return nil, fmt.Errorf("%w: %q", errNoNames, head)
		}
		return nil, fmt.Errorf("unexpected reply %q to config get members", head)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 || n > maxMembersReply {
		return nil, fmt.Errorf("bad length in %q", head)
	}
	body := make([]byte, n+len("\r\nEND\r\n"))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	if string(body[n:]) != "\r\nEND\r\n" {
		return nil, fmt.Errorf("config get members: no END after %d bytes", n)
	}
	names := memberNames{}
	lines := strings.Split(strings.TrimSuffix(string(body[:n]), "\n"), "\n")
	for _, line := range lines[1:] { // the first is the version
		entry, name, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("config get members: bad line %q", line)
		}
		names[entry] = name
	}
	return names, nil
}
