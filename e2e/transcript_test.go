package e2e

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A normalizer turns the replies of one connection into lines that are
// equal for two servers that behave the same, hiding what legitimately
// differs between runs and implementations:
//
//   - CAS uniques in VALUE lines become <cas#N>, N counting distinct uniques
//     in order of first appearance on the connection, so "the same item
//     keeps its unique" and "a new store gets a new one" still compare
//     (0, memcached's unique with CAS off, stays 0);
//   - a block of STAT lines becomes the sorted set of its names, with values
//     kept only for the statistics in statValues (and the server's own port
//     shown as <port>); stats conns' file descriptor numbers become <fd>;
//   - "VERSION anything" becomes "VERSION <version>".
//
// Every other byte is kept. Data blocks are cut by their announced length,
// so their contents are never mistaken for reply lines.
type normalizer struct {
	port    string            // the server's TCP port, shown as <port>
	casIDs  map[string]int    // CAS unique → N of <cas#N>
	lastCAS map[string]string // key → last CAS unique seen for it
}

func newNormalizer(port int) *normalizer {
	return &normalizer{
		port:    strconv.Itoa(port),
		casIDs:  map[string]int{},
		lastCAS: map[string]string{},
	}
}

// statValues are the statistics whose values two servers given the same
// flags and commands must agree on. Other statistics are compared by name.
var statValues = map[string]bool{
	// stats
	"pointer_size": true, "max_connections": true, "threads": true,
	"limit_maxbytes": true, "accepting_conns": true,
	"curr_items": true, "total_items": true, "evictions": true,
	"cmd_get": true, "cmd_set": true, "cmd_flush": true, "cmd_touch": true,
	"get_hits": true, "get_misses": true, "get_expired": true, "get_flushed": true,
	"delete_misses": true, "delete_hits": true,
	"incr_misses": true, "incr_hits": true, "decr_misses": true, "decr_hits": true,
	"cas_misses": true, "cas_hits": true, "cas_badval": true,
	"touch_hits": true, "touch_misses": true,
	// stats settings
	"maxbytes": true, "maxconns": true, "tcpport": true, "udpport": true,
	"inter": true, "verbosity": true, "domain_socket": true, "umask": true,
	"shutdown_command": true, "cas_enabled": true, "flush_enabled": true,
	"item_size_max": true, "binding_protocol": true, "auth_enabled_sasl": true,
	"tcp_backlog": true, "num_threads": true, "reqs_per_event": true,
	"idle_timeout": true, "maxconns_fast": true, "evictions_setting": true,
	// stats sizes
	"sizes_status": true,
}

// connStat matches the names of stats conns lines, "<fd>:<field>".
var connStat = regexp.MustCompile(`^[0-9]+:(addr|listen_addr|state|secs_since_last_cmd)$`)

// normalize returns the normalized lines of one reply. Each line keeps its
// terminator, so a missing "\r\n" or a bare "\n" shows.
func (n *normalizer) normalize(reply []byte) []string {
	var out []string
	var stats []string // pending STAT block
	flushStats := func() {
		if stats == nil {
			return
		}
		slices.Sort(stats)
		out = append(out, slices.Compact(stats)...)
		stats = nil
	}
	for len(reply) > 0 {
		i := bytes.Index(reply, []byte("\r\n"))
		if i < 0 {
			flushStats()
			out = append(out, string(reply)) // unterminated tail
			break
		}
		line := string(reply[:i])
		reply = reply[i+2:]
		if strings.HasPrefix(line, "STAT ") {
			stats = append(stats, n.stat(line))
			continue
		}
		flushStats()
		switch {
		case strings.HasPrefix(line, "VALUE "):
			hdr, size, ok := n.value(line)
			if !ok || size+2 > len(reply) {
				out = append(out, line+"\r\n")
				continue
			}
			out = append(out, hdr+"\r\n", string(reply[:size+2]))
			reply = reply[size+2:]
		case strings.HasPrefix(line, "VERSION ") && len(line) > len("VERSION ") && !strings.ContainsAny(line[len("VERSION "):], " \t"):
			out = append(out, "VERSION <version>\r\n")
		default:
			out = append(out, line+"\r\n")
		}
	}
	flushStats()
	return out
}

// value normalizes a VALUE line, returning it and its data length.
func (n *normalizer) value(line string) (string, int, bool) {
	f := strings.Split(line, " ")
	if len(f) != 4 && len(f) != 5 {
		return "", 0, false
	}
	size, err := strconv.Atoi(f[3])
	if err != nil || size < 0 {
		return "", 0, false
	}
	if len(f) == 5 && f[4] != "0" { // 0: CAS is off (-C), shown as is
		cas := f[4]
		n.lastCAS[f[1]] = cas
		id, ok := n.casIDs[cas]
		if !ok {
			id = len(n.casIDs) + 1
			n.casIDs[cas] = id
		}
		f[4] = fmt.Sprintf("<cas#%d>", id)
	}
	return strings.Join(f, " "), size, true
}

// stat normalizes one STAT line.
func (n *normalizer) stat(line string) string {
	rest := strings.TrimPrefix(line, "STAT ")
	name, value, _ := strings.Cut(rest, " ")
	if connStat.MatchString(name) {
		_, field, _ := strings.Cut(name, ":")
		return "STAT <fd>:" + field + "\r\n"
	}
	key := name
	if strings.HasPrefix(line, "STAT evictions ") && (value == "on" || value == "off") {
		key = "evictions_setting" // stats settings' evictions is on/off
	}
	if !statValues[key] {
		return "STAT " + name + "\r\n"
	}
	if value == n.port {
		value = "<port>"
	}
	return "STAT " + name + " " + value + "\r\n"
}

// expand replaces {cas:KEY} in a request with the last CAS unique this
// connection saw for KEY. A key never seen expands to "0", and ok is false.
func (n *normalizer) expand(req string) (string, bool) {
	ok := true
	for {
		i := strings.Index(req, "{cas:")
		if i < 0 {
			return req, ok
		}
		j := strings.IndexByte(req[i:], '}')
		if j < 0 {
			return req, ok
		}
		key := req[i+len("{cas:") : i+j]
		cas, found := n.lastCAS[key]
		if !found {
			cas, ok = "0", false
		}
		req = req[:i] + cas + req[i+j+1:]
	}
}

// quoteLines renders lines for a message, shortening long runs.
func quoteLines(lines []string, indent string) string {
	if len(lines) == 0 {
		return indent + "(nothing)\n"
	}
	var b strings.Builder
	show := func(l string) { b.WriteString(indent + quote(l) + "\n") }
	if len(lines) <= 40 {
		for _, l := range lines {
			show(l)
		}
		return b.String()
	}
	for _, l := range lines[:30] {
		show(l)
	}
	fmt.Fprintf(&b, "%s… %d lines …\n", indent, len(lines)-35)
	for _, l := range lines[len(lines)-5:] {
		show(l)
	}
	return b.String()
}

// quote renders bytes as a Go string, cut to a readable length.
func quote(s string) string {
	if len(s) > 300 {
		return strconv.Quote(s[:200]) + fmt.Sprintf("…(%d bytes)…", len(s)-280) + strconv.Quote(s[len(s)-80:])
	}
	return strconv.Quote(s)
}

// diffLines returns a line diff of want (memcached) and got (memcluster):
// "  " common, "- " only memcached, "+ " only memcluster.
func diffLines(want, got []string, indent string) string {
	if len(want)*len(got) > 4_000_000 {
		// Too large for the quadratic diff: show the first difference.
		i := 0
		for i < len(want) && i < len(got) && want[i] == got[i] {
			i++
		}
		lo := max(0, i-3)
		var b strings.Builder
		fmt.Fprintf(&b, "%sfirst difference at line %d of %d (memcached) / %d (memcluster):\n", indent, i+1, len(want), len(got))
		for k := lo; k < i; k++ {
			b.WriteString(indent + "  " + quote(want[k]) + "\n")
		}
		for k := i; k < min(i+3, len(want)); k++ {
			b.WriteString(indent + "- " + quote(want[k]) + "\n")
		}
		for k := i; k < min(i+3, len(got)); k++ {
			b.WriteString(indent + "+ " + quote(got[k]) + "\n")
		}
		return b.String()
	}
	// Longest common subsequence.
	m, n := len(want), len(got)
	lcs := make([][]int, m+1)
	for i := range lcs {
		lcs[i] = make([]int, n+1)
	}
	for i := m - 1; i >= 0; i-- {
		for j := n - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var lines []string
	i, j := 0, 0
	for i < m || j < n {
		switch {
		case i < m && j < n && want[i] == got[j]:
			lines = append(lines, "  "+quote(want[i]))
			i++
			j++
		case i < m && (j == n || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, "- "+quote(want[i]))
			i++
		default:
			lines = append(lines, "+ "+quote(got[j]))
			j++
		}
	}
	// Elide long runs of common lines.
	var b strings.Builder
	for k := 0; k < len(lines); k++ {
		if strings.HasPrefix(lines[k], "  ") {
			e := k
			for e < len(lines) && strings.HasPrefix(lines[e], "  ") {
				e++
			}
			if e-k > 8 {
				for _, l := range lines[k : k+3] {
					b.WriteString(indent + l + "\n")
				}
				fmt.Fprintf(&b, "%s  … %d equal lines …\n", indent, e-k-6)
				for _, l := range lines[e-3 : e] {
					b.WriteString(indent + l + "\n")
				}
				k = e - 1
				continue
			}
		}
		b.WriteString(indent + lines[k] + "\n")
	}
	return b.String()
}
