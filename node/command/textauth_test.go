package command

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/sasl"
)

// memcached's ASCII authentication (-Y) at the node: the gate that lets
// nothing execute before a connection authenticates, reloading the file,
// and -Y together with -S. (Its replies are compared with memcached's in
// e2e.)

const (
	textAuthUnauthenticated = "CLIENT_ERROR unauthenticated\r\n"
	textAuthTokenFormat     = "CLIENT_ERROR bad authentication token format\r\n"
	textAuthFailure         = "CLIENT_ERROR authentication failure\r\n"
)

// textAuthWriteFile writes a -Y file holding lines ("user:password") to
// path.
func textAuthWriteFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// textAuthFile writes a -Y file holding lines into a temporary directory
// and returns its path.
func textAuthFile(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth")
	textAuthWriteFile(t, path, lines...)
	return path
}

// textAuthAttempt is an authentication attempt for user and password.
func textAuthAttempt(user, password string) string {
	block := user + " " + password
	return fmt.Sprintf("set auth 0 0 %d\r\n%s\r\n", len(block), block)
}

// textAuthTry sends an attempt for user and password on a new connection to
// addr and returns the reply and the connection.
func textAuthTry(t *testing.T, addr, user, password string) (string, net.Conn, *bufio.Reader) {
	t.Helper()
	c, r := dialForTest(t, addr)
	return roundTrip(t, c, r, textAuthAttempt(user, password), 1), c, r
}

// textAuthLogin returns a connection to addr authenticated as user.
func textAuthLogin(t *testing.T, addr, user, password string) (net.Conn, *bufio.Reader) {
	t.Helper()
	got, c, r := textAuthTry(t, addr, user, password)
	if got != "STORED\r\n" {
		t.Fatalf("authenticating as %s: got %q, want STORED", user, got)
	}
	return c, r
}

// textAuthStats returns the values of "stats" or "stats settings" read on
// an authenticated connection.
func textAuthStats(t *testing.T, c net.Conn, r *bufio.Reader, cmd string) map[string]string {
	t.Helper()
	if _, err := io.WriteString(c, cmd); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading %q: %v", cmd, err)
		}
		if line == "END\r\n" {
			return m
		}
		name, value, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(line, "\r\n"), "STAT "), " ")
		if !ok {
			t.Fatalf("reading %q: got %q, want a STAT line", cmd, line)
		}
		m[name] = value
	}
}

// TestASCIIAuthNothingExecutesBeforeAuth sends every kind of command on a
// connection that has not authenticated, and checks that each is refused
// and that none of them changed an item, a setting or a counter.
func TestASCIIAuthNothingExecutesBeforeAuth(t *testing.T) {
	file := textAuthFile(t, "alice:secret", "bob:hunter2")
	s, addr := serveForTest(t, Config{AuthFile: file, Protocol: "ascii", EnableShutdown: true})

	admin, ar := textAuthLogin(t, addr, "alice", "secret")
	if got := roundTrip(t, admin, ar, "set d 0 0 1\r\nD\r\nset n 0 0 1\r\n5\r\nset t 0 0 1\r\nT\r\n", 3); got != strings.Repeat("STORED\r\n", 3) {
		t.Fatalf("storing the items: got %q", got)
	}
	before := textAuthStats(t, admin, ar, "stats\r\n")

	u, f := textAuthUnauthenticated, textAuthTokenFormat
	requests := []struct {
		req     string
		replies []string // each line of the request is answered
	}{
		// Attempts whose block is no "<user> <password>": nothing stored.
		{"set k 0 0 1\r\nx\r\n", []string{f}},
		{"set d 0 0 1 noreply\r\nX\r\n", []string{f}},
		// Other commands: refused line by line, their data blocks too.
		{"add k 0 0 1\r\nx\r\n", []string{u, u}},
		{"replace d 0 0 1\r\nR\r\n", []string{u, u}},
		{"append d 0 0 1\r\nA\r\n", []string{u, u}},
		{"prepend d 0 0 1\r\nP\r\n", []string{u, u}},
		{"cas d 0 0 1 1\r\nC\r\n", []string{u, u}},
		{"incr n 1\r\n", []string{u}},
		{"decr n 1\r\n", []string{u}},
		{"delete d\r\n", []string{u}},
		{"delete d noreply\r\n", []string{u}},
		{"touch t 1\r\n", []string{u}},
		{"gat -1 t\r\n", []string{u}},
		{"get d\r\n", []string{u}},
		{"gets d\r\n", []string{u}},
		{"flush_all\r\n", []string{u}},
		{"flush_all noreply\r\n", []string{u}},
		{"ms k 1\r\nx\r\n", []string{u, u}},
		{"ms d 1 I\r\nx\r\n", []string{u, u}},
		{"md d\r\n", []string{u}},
		{"ma n\r\n", []string{u}},
		{"mg d v\r\n", []string{u}},
		{"verbosity 2\r\n", []string{u}},
		{"stats reset\r\n", []string{u}},
		{"stats detail on\r\n", []string{u}},
		{"shutdown\r\n", []string{u}},
		{"config get cluster\r\n", []string{u}},
		// A binary delete of d, read as a line.
		{"\x80\x04\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00d\r\n", []string{u}},
		{"quit\r\n", []string{u}},
	}
	c, r := dialForTest(t, addr)
	var all strings.Builder
	var allReplies []string
	for _, rq := range requests {
		want := strings.Join(rq.replies, "")
		if got := roundTrip(t, c, r, rq.req, len(rq.replies)); got != want {
			t.Errorf("%q before authenticating: got %q, want %q", rq.req, got, want)
		}
		all.WriteString(rq.req)
		allReplies = append(allReplies, rq.replies...)
	}
	// All of them again in one write: each line is answered, in order.
	// (memcached 1.6.18 writes only the last reply of a read here.)
	if got, want := roundTrip(t, c, r, all.String(), len(allReplies)), strings.Join(allReplies, ""); got != want {
		t.Errorf("the requests pipelined before authenticating:\n got %q\nwant %q", got, want)
	}

	// Nothing happened: no counter moved, no setting changed, no item.
	after := textAuthStats(t, admin, ar, "stats\r\n")
	for _, name := range strings.Fields(`cmd_get cmd_set cmd_flush cmd_touch get_hits get_misses
		get_expired get_flushed delete_misses delete_hits incr_misses incr_hits decr_misses
		decr_hits cas_misses cas_hits cas_badval touch_hits touch_misses curr_items total_items
		auth_cmds auth_errors`) {
		if after[name] != before[name] {
			t.Errorf("stats %s: %q after the refused commands, want %q as before", name, after[name], before[name])
		}
	}
	if v := s.Verbosity(); v != 0 {
		t.Errorf("verbosity after a refused verbosity 2: %d, want 0", v)
	}
	if s.counters.Detail.Enabled() {
		t.Error("stats detail is on after a refused stats detail on")
	}
	if got, want := roundTrip(t, admin, ar, "get d n t k\r\n", 7), "VALUE d 0 1\r\nD\r\nVALUE n 0 1\r\n5\r\nVALUE t 0 1\r\nT\r\nEND\r\n"; got != want {
		t.Errorf("the items after the refused commands: got %q, want %q", got, want)
	}

	// The connection is still open and can authenticate; then its
	// commands execute.
	if got := roundTrip(t, c, r, textAuthAttempt("bob", "hunter2"), 1); got != "STORED\r\n" {
		t.Fatalf("authenticating after the refused commands: got %q, want STORED", got)
	}
	if got, want := roundTrip(t, c, r, "get d k\r\n", 3), "VALUE d 0 1\r\nD\r\nEND\r\n"; got != want {
		t.Errorf("get once authenticated: got %q, want %q", got, want)
	}
}

// TestASCIIAuthReload checks that Reload reads a changed -Y file: a user
// added can authenticate, a user removed cannot, a connection that has
// authenticated stays so, and a file that does not parse leaves the last
// good one in force.
func TestASCIIAuthReload(t *testing.T) {
	file := textAuthFile(t, "alice:secret", "bob:hunter2")
	s, addr := serveForTest(t, Config{AuthFile: file, Protocol: "ascii"})

	alice, ar := textAuthLogin(t, addr, "alice", "secret")
	if got, _, _ := textAuthTry(t, addr, "carol", "pw3"); got != textAuthFailure {
		t.Fatalf("carol before she is added: got %q, want %q", got, textAuthFailure)
	}

	// alice removed, carol added, bob's password changed.
	textAuthWriteFile(t, file, "bob:hunter3", "carol:pw3")
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, tc := range []struct{ user, password, want string }{
		{"alice", "secret", textAuthFailure},
		{"carol", "pw3", "STORED\r\n"},
		{"bob", "hunter2", textAuthFailure},
		{"bob", "hunter3", "STORED\r\n"},
	} {
		if got, _, _ := textAuthTry(t, addr, tc.user, tc.password); got != tc.want {
			t.Errorf("after the reload, %s with %q: got %q, want %q", tc.user, tc.password, got, tc.want)
		}
	}
	if got := roundTrip(t, alice, ar, "set a 0 0 1\r\nx\r\n", 1); got != "STORED\r\n" {
		t.Errorf("alice's connection, authenticated before her removal: got %q, want STORED", got)
	}

	// A file that does not parse: Reload says so, and the last good file
	// stays in force.
	textAuthWriteFile(t, file, "dave:pw4", "dave:pw5")
	err := s.Reload()
	var pe *sasl.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Reload of a file with a user twice: got %v, want a *sasl.ParseError", err)
	}
	if strings.Contains(err.Error(), "pw4") || strings.Contains(err.Error(), "pw5") {
		t.Errorf("Reload error %q shows a password", err)
	}
	if got, _, _ := textAuthTry(t, addr, "carol", "pw3"); got != "STORED\r\n" {
		t.Errorf("carol after a failed reload: got %q, want STORED", got)
	}
	if got, _, _ := textAuthTry(t, addr, "dave", "pw4"); got != textAuthFailure {
		t.Errorf("dave, from the file that failed to load: got %q, want %q", got, textAuthFailure)
	}
	// A file that is gone: the same.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a removed file: got %v, want an error wrapping os.ErrNotExist", err)
	}
	if got, _, _ := textAuthTry(t, addr, "carol", "pw3"); got != "STORED\r\n" {
		t.Errorf("carol after the file was removed: got %q, want STORED", got)
	}
}

// TestASCIIAuthSettings checks what stats settings says of -Y, as
// memcached does: the file's name, as given.
func TestASCIIAuthSettings(t *testing.T) {
	file := textAuthFile(t, "alice:secret")
	_, addr := serveForTest(t, Config{AuthFile: file, Protocol: "ascii"})
	c, r := textAuthLogin(t, addr, "alice", "secret")
	m := textAuthStats(t, c, r, "stats settings\r\n")
	for name, want := range map[string]string{
		"auth_enabled_ascii": file,
		"auth_enabled_sasl":  "no",
		"binding_protocol":   "ascii",
	} {
		if m[name] != want {
			t.Errorf("stats settings %s: got %q, want %q", name, m[name], want)
		}
	}

	_, addr = serveForTest(t, Config{})
	c, r = dialForTest(t, addr)
	if got := textAuthStats(t, c, r, "stats settings\r\n")["auth_enabled_ascii"]; got != "no" {
		t.Errorf("stats settings auth_enabled_ascii without -Y: got %q, want no", got)
	}
}

// TestASCIIAuthWithSASL checks -S with -Y as memcached runs them: the flags
// end with the ASCII protocol (see cmd/memcluster), so SASL's binary
// requests are read as text lines and ASCII authentication is the only
// way in.
func TestASCIIAuthWithSASL(t *testing.T) {
	file := textAuthFile(t, "alice:secret")
	saslFile := textAuthFile(t, "sam:sasl-secret")
	_, addr := serveForTest(t, Config{SASL: true, SASLPasswordFile: saslFile, AuthFile: file, Protocol: "ascii"})

	c, r := dialForTest(t, addr)
	// A binary SASL authentication (PLAIN, with SASL's credentials) is a
	// line without a newline: no reply until one arrives.
	body := "PLAIN\x00sam\x00sasl-secret"
	req := string([]byte{0x80, 0x21, 0, 5, 0, 0, 0, 0, 0, 0, 0, byte(len(body)), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) + body
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := r.ReadByte(); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a binary SASL request under -S -Y: got byte %q (%v), want no reply yet", b, err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if got := roundTrip(t, c, r, "\r\n", 1); got != textAuthUnauthenticated {
		t.Fatalf("the binary SASL request, ended by a newline: got %q, want %q", got, textAuthUnauthenticated)
	}
	if got := roundTrip(t, c, r, "get a\r\n", 1); got != textAuthUnauthenticated {
		t.Errorf("get after the binary SASL request: got %q, want %q", got, textAuthUnauthenticated)
	}
	if got := roundTrip(t, c, r, textAuthAttempt("sam", "sasl-secret"), 1); got != textAuthFailure {
		t.Errorf("SASL's user in an ASCII attempt: got %q, want %q", got, textAuthFailure)
	}
	if got := roundTrip(t, c, r, textAuthAttempt("alice", "secret"), 1); got != "STORED\r\n" {
		t.Fatalf("ASCII authentication: got %q, want STORED", got)
	}
	if got := roundTrip(t, c, r, "set k 0 0 1\r\nx\r\nget k\r\n", 4); got != "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n" {
		t.Errorf("commands once authenticated: got %q", got)
	}
	m := textAuthStats(t, c, r, "stats settings\r\n")
	for name, want := range map[string]string{
		"auth_enabled_ascii": file,
		"auth_enabled_sasl":  "yes",
		"binding_protocol":   "ascii",
	} {
		if m[name] != want {
			t.Errorf("stats settings %s: got %q, want %q", name, m[name], want)
		}
	}
}

// TestASCIIAuthBlockTooBig checks that before authentication a data block
// larger than the read buffer is read until the buffer's size of it has
// arrived, then closes the connection, as memcached does.
func TestASCIIAuthBlockTooBig(t *testing.T) {
	file := textAuthFile(t, "alice:secret")
	_, addr := serveForTest(t, Config{AuthFile: file, Protocol: "ascii"})
	c, r := dialForTest(t, addr)
	if _, err := fmt.Fprintf(c, "set auth 0 0 %d\r\n%s", testReadBufferSize, strings.Repeat("x", testReadBufferSize-1)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if b, err := r.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a byte short of a buffer of the block: got byte %q (%v), want the connection open and silent", b, err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "x"); err != nil {
		t.Fatal(err)
	}
	if b, err := r.ReadByte(); err == nil {
		t.Fatalf("a buffer of the block: got byte %q, want the connection closed", b)
	}
}

// testReadBufferSize is a connection's read buffer (netserve's).
const testReadBufferSize = 16 << 10
