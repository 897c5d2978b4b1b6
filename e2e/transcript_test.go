package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
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
//     kept only for the statistics in statValues and statValuePattern (and
//     the server's own port shown as <port>); stats conns' file descriptor
//     numbers become <fd>;
//   - "VERSION anything" becomes "VERSION <version>";
//   - in meta replies, CAS uniques (c flags, me's cas=) become <cas#N> too,
//     and a VA line's data block is cut by its length;
//   - the lines of "stats cachedump" (ITEM) and "lru_crawler metadump"
//     (key=…, each ended by a bare "\n") are sorted, as the servers list
//     items in different orders, with their times (expiry, last access)
//     shown as <time> and non-zero CAS uniques as <cas>.
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
	"cmd_get": true, "cmd_set": true, "cmd_flush": true, "cmd_touch": true, "cmd_meta": true,
	"get_hits": true, "get_misses": true, "get_expired": true, "get_flushed": true,
	"delete_misses": true, "delete_hits": true,
	"incr_misses": true, "incr_hits": true, "decr_misses": true, "decr_hits": true,
	"cas_misses": true, "cas_hits": true, "cas_badval": true,
	"touch_hits": true, "touch_misses": true,
	"auth_cmds": true, "auth_errors": true,
	// stats settings
	"maxbytes": true, "maxconns": true, "tcpport": true, "udpport": true,
	"inter": true, "verbosity": true, "domain_socket": true, "umask": true,
	"shutdown_command": true, "cas_enabled": true, "flush_enabled": true,
	"item_size_max": true, "binding_protocol": true, "auth_enabled_sasl": true,
	"tcp_backlog": true, "num_threads": true, "reqs_per_event": true,
	"idle_timeout": true, "maxconns_fast": true, "evictions_setting": true,
	"growth_factor": true, "chunk_size": true, "stat_key_prefix": true,
	"detail_enabled": true, "auth_enabled_ascii": true, "track_sizes": true,
	"ssl_enabled": true,
	// stats settings that memcached's memory commands set (cache_memlimit,
	// slabs automove, lru)
	"slab_automove": true, "slab_automove_ratio": true, "slab_chunk_max": true,
	"lru_segmented": true, "hot_lru_pct": true, "warm_lru_pct": true,
	"hot_max_factor": true, "warm_max_factor": true, "temp_lru": true, "temporary_ttl": true,
	// stats sizes
	"sizes_status": true,
}

// statValuePattern matches the per-class statistics of stats items and
// stats slabs whose values two servers must agree on: they show that an
// item is filed in memcached's size class and counted at memcached's size.
// The command counters of stats slabs show that each command is counted in
// memcached's class.
var statValuePattern = regexp.MustCompile(`^(items:[0-9]+:(number|mem_requested)|` +
	`[0-9]+:(chunk_size|chunks_per_page|used_chunks|get_hits|cmd_set|delete_hits|incr_hits|decr_hits|cas_hits|cas_badval|touch_hits))$`)

// connStat matches the names of stats conns lines, "<fd>:<field>".
var connStat = regexp.MustCompile(`^[0-9]+:(addr|listen_addr|state|secs_since_last_cmd)$`)

// normalize returns the normalized lines of one reply. Each line keeps its
// terminator, so a missing "\r\n" or a bare "\n" shows.
func (n *normalizer) normalize(reply []byte) []string {
	var out []string
	var stats []string // pending STAT block
	var items []string // pending ITEM block
	flushStats := func() {
		if items != nil {
			slices.Sort(items)
			out = append(out, items...)
			items = nil
		}
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
		if strings.HasPrefix(line, "ITEM ") {
			items = append(items, cachedumpLine.ReplaceAllString(line, "$1<time> s]")+"\r\n")
			continue
		}
		flushStats()
		switch {
		case strings.HasPrefix(line, "key="):
			// Metadump lines end in "\n" alone: this line runs on to the
			// "\r\n" of the END after them.
			lines := strings.Split(line, "\n")
			dump := lines[:len(lines)-1]
			for i, l := range dump {
				dump[i] = normalizeMetadump(l) + "\n"
			}
			slices.Sort(dump)
			out = append(out, dump...)
			out = append(out, lines[len(lines)-1]+"\r\n")
		case strings.HasPrefix(line, "VALUE "):
			hdr, size, ok := n.value(line)
			if !ok || size+2 > len(reply) {
				out = append(out, line+"\r\n")
				continue
			}
			out = append(out, hdr+"\r\n", string(reply[:size+2]))
			reply = reply[size+2:]
		case isMetaReply(line):
			hdr, size := n.meta(line)
			out = append(out, hdr+"\r\n")
			if size >= 0 && size+2 <= len(reply) {
				out = append(out, string(reply[:size+2]))
				reply = reply[size+2:]
			}
		case strings.HasPrefix(line, "VERSION ") && len(line) > len("VERSION ") && !strings.ContainsAny(line[len("VERSION "):], " \t"):
			out = append(out, "VERSION <version>\r\n")
		default:
			out = append(out, line+"\r\n")
		}
	}
	flushStats()
	return out
}

// cachedumpLine matches the expiry time of a cachedump ITEM line, unless 0.
var cachedumpLine = regexp.MustCompile(`^(ITEM .* \[[0-9]+ b; )[1-9][0-9]* s\]$`)

// normalizeMetadump normalizes a metadump line: the expiry time unless -1
// (never), the last access time and a CAS unique other than 0.
func normalizeMetadump(line string) string {
	f := strings.Split(line, " ")
	for i, field := range f {
		name, v, _ := strings.Cut(field, "=")
		switch {
		case name == "exp" && v != "-1", name == "la":
			f[i] = name + "=<time>"
		case name == "cas" && v != "0":
			f[i] = "cas=<cas>"
		}
	}
	return strings.Join(f, " ")
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

// isMetaReply reports whether line is a meta command's reply line.
func isMetaReply(line string) bool {
	code, _, _ := strings.Cut(line, " ")
	switch code {
	case "HD", "VA", "EN", "NS", "EX", "NF", "ME":
		return true
	}
	return false
}

// meta normalizes a meta reply line: the CAS unique of a c flag (and of
// me's cas=) becomes <cas#N> as in VALUE lines, remembered for the key of
// the line's k flag and for "@", the last meta CAS unique seen. It returns
// the line and the length of the data block a VA line announces, or -1.
func (n *normalizer) meta(line string) (string, int) {
	f := strings.Split(line, " ")
	size := -1
	if f[0] == "VA" && len(f) > 1 {
		if v, err := strconv.Atoi(f[1]); err == nil && v >= 0 {
			size = v
		}
	}
	key := ""
	if f[0] == "ME" && len(f) > 1 {
		key = f[1]
	}
	for _, t := range f[1:] {
		if f[0] != "ME" && strings.HasPrefix(t, "k") {
			key = t[1:]
		}
	}
	for i, t := range f {
		if i == 0 {
			continue
		}
		prefix := "c"
		if f[0] == "ME" {
			prefix = "cas="
		}
		cas, ok := strings.CutPrefix(t, prefix)
		if !ok || cas == "" || cas == "0" || strings.Trim(cas, "0123456789") != "" {
			continue
		}
		n.lastCAS["@"] = cas
		if key != "" {
			n.lastCAS[key] = cas
		}
		id, seen := n.casIDs[cas]
		if !seen {
			id = len(n.casIDs) + 1
			n.casIDs[cas] = id
		}
		f[i] = fmt.Sprintf("%s<cas#%d>", prefix, id)
	}
	return strings.Join(f, " "), size
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
	if !statValues[key] && !statValuePattern.MatchString(name) {
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

// The stats policy. memcluster prints every name memcached prints, in the
// same groups and, for a class, under the same number; the values of the
// statistics that must agree are compared (statValues, statValuePattern),
// the others by name. A STAT block of memcluster's is held to that rule
// rather than compared line for line with memcached's block for the same
// command, because which classes memcached's slabs list depends on its
// slab allocator:
//
//   - every name memcluster prints, memcached prints too: no invented stats;
//   - the names the kind of block requires (statsKinds) are printed by both:
//     every name of "stats" and "stats settings", every field of each class
//     memcached's "stats items" lists, and every field of each class that
//     holds chunks in memcached's "stats slabs" (memcached also lists the
//     classes its large items' chunks came from, which memcluster, whose
//     items are not chunked, does not);
//   - the values the normalizer keeps agree.
//
// statsView applies the rule by cutting memcached's blocks down to the
// names memcluster's print and the required ones: the two replies are then
// equal exactly when the rule holds, and their diff shows each breach.
// Blocks of other kinds (stats conns, stats sizes) are compared whole.
// (TestStatsNamesInOrder in stats_test.go checks the order of the names.)

// statsKind is one kind of STAT block under the policy.
type statsKind struct {
	name string
	// is reports whether memcached's block (its names and kept values)
	// is of this kind.
	is func(ref map[string]string) bool
	// required returns the names both servers must print, given
	// memcached's block.
	required func(ref map[string]string) []string
}

// allNames requires every name of memcached's block.
func allNames(ref map[string]string) []string {
	return slices.Collect(maps.Keys(ref))
}

var slabClassStat = regexp.MustCompile(`^([0-9]+):used_chunks$`)

var statsKinds = []statsKind{
	{
		name:     "stats",
		is:       func(ref map[string]string) bool { _, ok := ref["pid"]; return ok },
		required: allNames,
	},
	{
		name:     "stats settings",
		is:       func(ref map[string]string) bool { _, ok := ref["maxbytes"]; return ok },
		required: allNames,
	},
	{
		// Every class memcached lists holds items: memcluster must list
		// it too, under the same number, with all its fields.
		name: "stats items",
		is: func(ref map[string]string) bool {
			for name := range ref {
				if strings.HasPrefix(name, "items:") {
					return true
				}
			}
			return false
		},
		required: allNames,
	},
	{
		// memcached lists every class that ever had a slab page; the
		// classes that hold chunks now must be listed by both, with all
		// their fields.
		name: "stats slabs",
		is:   func(ref map[string]string) bool { _, ok := ref["active_slabs"]; return ok },
		required: func(ref map[string]string) []string {
			out := []string{"active_slabs", "total_malloced"}
			for name, v := range ref {
				if m := slabClassStat.FindStringSubmatch(name); m != nil && v != "0" {
					for field := range ref {
						if strings.HasPrefix(field, m[1]+":") {
							out = append(out, field)
						}
					}
				}
			}
			return out
		},
	},
}

// statName returns the name and kept value of a normalized STAT line.
func statName(line string) (name, value string) {
	rest := strings.TrimSuffix(strings.TrimPrefix(line, "STAT "), "\r\n")
	name, value, _ = strings.Cut(rest, " ")
	return name, value
}

// statBlocks returns the STAT blocks of normalized lines, keyed by how many
// other lines come before each: the k-th block of one reply pairs with the
// block of the other reply that the same lines precede.
func statBlocks(lines []string) map[int][2]int {
	blocks := map[int][2]int{}
	others := 0
	for i := 0; i < len(lines); {
		if !strings.HasPrefix(lines[i], "STAT ") {
			others++
			i++
			continue
		}
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "STAT ") {
			j++
		}
		blocks[others] = [2]int{i, j}
		i = j
	}
	return blocks
}

// statsCheck is the policy's verdict on one pair of blocks.
type statsCheck struct {
	kind              string
	invented, missing []string
	view              []string // memcached's block cut down as statsView does
}

// checkStats applies the policy to each pair of STAT blocks of ref
// (memcached's normalized reply) and got (memcluster's), keyed as
// statBlocks keys them. Blocks of no policy kind are left out.
func checkStats(ref, got []string) map[int]statsCheck {
	out := map[int]statsCheck{}
	gotBlocks := statBlocks(got)
	for k, rb := range statBlocks(ref) {
		gb, ok := gotBlocks[k]
		if !ok {
			continue
		}
		refStats := map[string]string{}
		for _, l := range ref[rb[0]:rb[1]] {
			name, value := statName(l)
			refStats[name] = value
		}
		var kind *statsKind
		for i := range statsKinds {
			if statsKinds[i].is(refStats) {
				kind = &statsKinds[i]
				break
			}
		}
		if kind == nil {
			continue
		}
		c := statsCheck{kind: kind.name}
		gotNames := map[string]bool{}
		for _, l := range got[gb[0]:gb[1]] {
			name, _ := statName(l)
			gotNames[name] = true
			if _, ok := refStats[name]; !ok {
				c.invented = append(c.invented, name)
			}
		}
		keep := maps.Clone(gotNames)
		for _, name := range kind.required(refStats) {
			keep[name] = true
			if !gotNames[name] {
				c.missing = append(c.missing, name)
			}
		}
		slices.Sort(c.missing)
		for _, l := range ref[rb[0]:rb[1]] {
			if name, _ := statName(l); keep[name] {
				c.view = append(c.view, l)
			}
		}
		out[k] = c
	}
	return out
}

// statsView returns ref with each STAT block that the policy covers cut
// down to the names got's matching block prints and the required ones.
func statsView(ref, got []string) []string {
	checks := checkStats(ref, got)
	if len(checks) == 0 {
		return ref
	}
	blocks := statBlocks(ref)
	var out []string
	for i := 0; i < len(ref); {
		found := false
		for k, b := range blocks {
			if b[0] == i {
				if c, ok := checks[k]; ok {
					out = append(out, c.view...)
					i = b[1]
					found = true
				}
				break
			}
		}
		if !found {
			out = append(out, ref[i])
			i++
		}
	}
	return out
}

// statsProblems describes the breaches of the policy in got, memcluster's
// reply, against ref, memcached's: invented and missing names. (Values that
// differ show in the diff.)
func statsProblems(ref, got []string) []string {
	checks := checkStats(ref, got)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(checks)) {
		c := checks[k]
		if len(c.invented) > 0 {
			out = append(out, fmt.Sprintf("%s: memcluster prints names memcached does not (invented): %s", c.kind, strings.Join(c.invented, " ")))
		}
		if len(c.missing) > 0 {
			out = append(out, fmt.Sprintf("%s: required names memcluster does not print: %s", c.kind, strings.Join(c.missing, " ")))
		}
	}
	return out
}

// TestStatsPolicy checks the stats policy's verdicts on made-up blocks, so
// that the comparison suite cannot pass because the policy hides a
// difference.
func TestStatsPolicy(t *testing.T) {
	lines := func(ls ...string) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l + "\r\n"
		}
		return out
	}
	item := func(class string, number, requested string) []string {
		p := "STAT items:" + class + ":"
		return lines(p+"age", p+"evicted", p+"evicted_unfetched", p+"expired_unfetched",
			p+"mem_requested "+requested, p+"number "+number, p+"reclaimed")
	}
	without := func(ls []string, name string) []string {
		return slices.DeleteFunc(slices.Clone(ls), func(l string) bool { n, _ := statName(l); return n == name })
	}
	end := lines("END")
	ref := slices.Concat(item("1", "1", "61"), end)
	slab := func(class, used string) []string {
		p := "STAT " + class + ":"
		return lines(p+"chunk_size 96", p+"get_hits 0", p+"used_chunks "+used)
	}
	slabsRef := slices.Concat(slab("1", "1"), slab("2", "0"), lines("STAT active_slabs", "STAT total_malloced"), end)
	slabsOurs := slices.Concat(slab("1", "1"), lines("STAT active_slabs", "STAT total_malloced"), end)
	for _, tc := range []struct {
		name     string
		ref, got []string
		equal    bool
		problems []string // substrings of the problems, in order
	}{
		{"same", ref, ref, true, nil},
		{"name missing", ref, without(ref, "items:1:age"), false,
			[]string{"required names memcluster does not print: items:1:age"}},
		{"invented name", ref, slices.Concat(ref[:len(ref)-1], lines("STAT items:1:zzz"), end), false,
			[]string{"invented): items:1:zzz"}},
		{"wrong class", ref, slices.Concat(item("2", "1", "61"), end), false,
			[]string{"invented): items:2:age", "not print: items:1:age"}},
		{"value differs", ref, slices.Concat(item("1", "2", "61"), end), false, nil},
		{"block of no policy kind compared whole", lines("STAT <fd>:addr", "STAT <fd>:state", "END"),
			lines("STAT <fd>:addr", "END"), false, nil},
		{"blocks paired by the lines before them", slices.Concat(end, ref), slices.Concat(ref, ref), false,
			nil},
		{"second block of two", slices.Concat(lines("OK"), ref), slices.Concat(lines("OK"), ref), true, nil},
		{"slabs: a class without chunks may be left out", slabsRef, slabsOurs, true, nil},
		{"slabs: a class with chunks may not", slabsRef, slices.Concat(slab("2", "0"), lines("STAT active_slabs", "STAT total_malloced"), end), false,
			[]string{"not print: 1:chunk_size 1:get_hits 1:used_chunks"}},
		{"slabs: every field of a class with chunks", slabsRef, without(slabsOurs, "1:get_hits"), false,
			[]string{"not print: 1:get_hits"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			view := statsView(tc.ref, tc.got)
			if eq := slices.Equal(view, tc.got); eq != tc.equal {
				t.Errorf("statsView equal to memcluster's reply: got %v, want %v\nview %q\ngot  %q", eq, tc.equal, view, tc.got)
			}
			problems := statsProblems(tc.ref, tc.got)
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems: got %q, want %d matching %q", problems, len(tc.problems), tc.problems)
			}
			for i, p := range tc.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %d: got %q, want it to mention %q", i, problems[i], p)
				}
			}
		})
	}

	// Every name of "stats" and "stats settings" is required.
	for _, first := range []string{"pid", "maxbytes"} {
		refStats := slices.Concat(lines("STAT "+first, "STAT libevent", "STAT zzz"), end)
		p := statsProblems(refStats, lines("STAT "+first, "END"))
		if len(p) != 1 || !strings.Contains(p[0], "required names") || !strings.Contains(p[0], "libevent zzz") {
			t.Errorf("a block with only %s: problems %q, want the other names missing", first, p)
		}
	}
}
