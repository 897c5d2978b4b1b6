package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// SASL (-S) with libmemcached's memccp and memccat, which authenticate
// through Cyrus SASL's client plugins (Debian's libsasl2-modules), against
// the daemon. memcached is no control here: its SASL needs a Cyrus server
// configuration, where memcluster reads memcached's MEMCACHED_SASL_PWDB
// format itself; package node checks the exchanges byte by byte.

const (
	memccpPath   = "/usr/bin/memccp"
	memccatPath  = "/usr/bin/memccat"
	memcstatPath = "/usr/bin/memcstat"
)

// saslMechs are the mechanisms the daemon offers, each tested alone.
var saslMechs = []string{"PLAIN", "CRAM-MD5", "SCRAM-SHA-256"}

// The users of the tests' credentials files.
const (
	saslUser     = "alice"
	saslPassword = "alice's secret"
	saslVerUser  = "vera" // a SCRAM-SHA-256 verifier from --sasl-verifier
	saslVerPass  = "vera's secret"
)

// saslCreds are a user name and password given to a tool; no user means
// no -u and -p.
type saslCreds struct{ user, password string }

func (c saslCreds) String() string {
	if c.user == "" {
		return "no credentials"
	}
	return fmt.Sprintf("%s/%q", c.user, c.password)
}

// saslTools runs memccp, memccat and memcstat against one server.
type saslTools struct {
	srv *servertest.Server
	dir string // where memccp's files are written
}

func newSASLTools(t *testing.T, srv *servertest.Server) *saslTools {
	t.Helper()
	for _, p := range []string{memccpPath, memccatPath, memcstatPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is not installed (%v); install libmemcached-tools and libsasl2-modules", p, err)
		}
	}
	return &saslTools{srv: srv, dir: t.TempDir()}
}

// run runs tool with the binary protocol against the server, as creds,
// and returns its stdout, stderr and exit code.
func (s *saslTools) run(t *testing.T, tool string, creds saslCreds, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := []string{"-b", "-s", s.srv.Addr}
	if creds.user != "" {
		argv = append(argv, "-u", creds.user, "-p", creds.password)
	}
	cmd := exec.CommandContext(ctx, tool, append(argv, args...)...)
	cmd.Dir = s.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within 30s", tool, strings.Join(cmd.Args[1:], " "))
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("running %s: %v", tool, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// write writes a file for memccp to copy, its name the key.
func (s *saslTools) write(t *testing.T, key, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, key), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyAndCat copies a file with memccp as creds and reads it back with
// memccat as creds; both must succeed.
func (s *saslTools) copyAndCat(t *testing.T, creds saslCreds, key string) {
	t.Helper()
	content := fmt.Sprintf("%s, copied by %s\n", key, creds.user)
	s.write(t, key, content)
	if out, errOut, code := s.run(t, memccpPath, creds, key); code != 0 {
		t.Fatalf("memccp as %v: exit %d, stdout %q, stderr %q", creds, code, out, errOut)
	}
	s.cat(t, creds, key, content)
}

// cat reads key with memccat as creds, which must succeed and print
// content.
func (s *saslTools) cat(t *testing.T, creds saslCreds, key, content string) {
	t.Helper()
	out, errOut, code := s.run(t, memccatPath, creds, key)
	// memccat ends each value with a newline of its own.
	if code != 0 || out != content+"\n" {
		t.Fatalf("memccat %s as %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", key, creds, code, out, errOut, content+"\n")
	}
}

// refused checks that creds can neither copy a new file (which is not
// stored) nor read key, which exists.
func (s *saslTools) refused(t *testing.T, creds, good saslCreds, key string) {
	t.Helper()
	if out, errOut, code := s.run(t, memccatPath, creds, key); code == 0 || out != "" {
		t.Errorf("memccat as %v: exit %d, stdout %q, stderr %q; want a failure and no output", creds, code, out, errOut)
	}
	newKey := fmt.Sprintf("refused-%d", time.Now().UnixNano())
	s.write(t, newKey, "must not be stored\n")
	if out, errOut, code := s.run(t, memccpPath, creds, newKey); code == 0 || out != "" {
		t.Errorf("memccp as %v: exit %d, stdout %q, stderr %q; want a failure and no output", creds, code, out, errOut)
	}
	// The refused copy stored nothing.
	if out, errOut, code := s.run(t, memccatPath, good, newKey); code == 0 || out != "" {
		t.Errorf("memccat as %v of the file memccp as %v was refused: exit %d, stdout %q, stderr %q; want a miss", good, creds, code, out, errOut)
	}
}

// authStats returns auth_cmds and auth_errors, read with memcstat as creds
// (which counts its own authentication, never as an error).
func (s *saslTools) authStats(t *testing.T, creds saslCreds) (cmds, errs int) {
	t.Helper()
	out, errOut, code := s.run(t, memcstatPath, creds)
	if code != 0 {
		t.Fatalf("memcstat as %v: exit %d, stdout %q, stderr %q", creds, code, out, errOut)
	}
	got := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if n, err := strconv.Atoi(value); ok && err == nil {
			got[name] = n
		}
	}
	c, ok1 := got["auth_cmds"]
	e, ok2 := got["auth_errors"]
	if !ok1 || !ok2 {
		t.Fatalf("memcstat printed no auth_cmds or auth_errors:\n%s", out)
	}
	return c, e
}

// saslVerifierLine runs the daemon with --sasl-verifier=user and the
// password on standard input and returns the line it prints.
func saslVerifierLine(t *testing.T, user, password string) string {
	t.Helper()
	bin, err := servertest.MemclusterBinary()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--sasl-verifier", user)
	cmd.Stdin = strings.NewReader(password + "\n")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("memcluster --sasl-verifier %s: %v\n%s", user, err, errOut.String())
	}
	line := strings.TrimSuffix(string(out), "\n")
	if !strings.HasPrefix(line, user+":SCRAM-SHA-256$") || strings.Contains(line, "\n") || strings.Contains(line, password) {
		t.Fatalf("memcluster --sasl-verifier %s printed %q, want one line %s:SCRAM-SHA-256$... without the password", user, out, user)
	}
	return line
}

// saslFile writes a credentials file of lines and returns its path.
func saslFile(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSASLMemccp runs memccp and memccat against a daemon offering one
// mechanism at a time: the right password copies a file and reads it
// back; a wrong password, an unknown user and no credentials are refused
// (non-zero exit, nothing on stdout, nothing stored); a user whose entry is
// a verifier from --sasl-verifier authenticates with PLAIN and
// SCRAM-SHA-256 but not CRAM-MD5, which needs the password. auth_cmds and
// auth_errors count along.
func TestSASLMemccp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwdb := saslFile(t, dir, "pwdb", saslUser+":"+saslPassword, saslVerifierLine(t, saslVerUser, saslVerPass))
	alice := saslCreds{saslUser, saslPassword}
	vera := saslCreds{saslVerUser, saslVerPass}
	for _, mech := range saslMechs {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			srv := servertest.StartMemcluster(t, "-S", "--sasl-pwdb", pwdb, "--sasl-mechs", mech)
			tools := newSASLTools(t, srv)

			cmds0, errs0 := tools.authStats(t, alice)
			tools.copyAndCat(t, alice, "alice-file")
			cmds1, errs1 := tools.authStats(t, alice)
			if errs1 != errs0 || cmds1 <= cmds0 {
				t.Errorf("after alice's copy and cat: auth_cmds %d → %d, auth_errors %d → %d; want more commands and no error", cmds0, cmds1, errs0, errs1)
			}

			cmds, errs := cmds1, errs1
			for _, bad := range []saslCreds{
				{saslUser, "wrong"},
				{saslUser, ""},
				{"mallory", saslPassword},
			} {
				tools.refused(t, bad, alice, "alice-file")
				c, e := tools.authStats(t, alice)
				if e <= errs || c <= cmds {
					t.Errorf("after %v's attempts: auth_cmds %d → %d, auth_errors %d → %d; want both to grow", bad, cmds, c, errs, e)
				}
				cmds, errs = c, e
			}
			tools.refused(t, saslCreds{}, alice, "alice-file")
			if _, e := tools.authStats(t, alice); e != errs {
				t.Errorf("after attempts without credentials: auth_errors %d → %d, want no change (no AUTH was sent)", errs, e)
			}

			if mech == "CRAM-MD5" {
				tools.refused(t, vera, alice, "alice-file")
			} else {
				tools.copyAndCat(t, vera, "vera-file")
				tools.cat(t, alice, "vera-file", "vera-file, copied by vera\n")
				tools.refused(t, saslCreds{saslVerUser, "wrong"}, alice, "vera-file")
			}
		})
	}
}

// TestSASLPasswordEnv: without --sasl-pwdb the daemon reads the file
// memcached's MEMCACHED_SASL_PWDB names; with it, the flag wins. (Not
// parallel: it sets the environment the daemon inherits.)
func TestSASLPasswordEnv(t *testing.T) {
	dir := t.TempDir()
	envFile := saslFile(t, dir, "env-pwdb", saslUser+":"+saslPassword)
	flagFile := saslFile(t, dir, "flag-pwdb", "bob:bob's secret")
	alice := saslCreds{saslUser, saslPassword}
	bob := saslCreds{"bob", "bob's secret"}
	t.Setenv("MEMCACHED_SASL_PWDB", envFile)

	t.Run("env", func(t *testing.T) {
		tools := newSASLTools(t, servertest.StartMemcluster(t, "-S"))
		tools.copyAndCat(t, alice, "env-file")
		tools.refused(t, saslCreds{saslUser, "wrong"}, alice, "env-file")
		tools.refused(t, bob, alice, "env-file")
	})
	t.Run("flag wins", func(t *testing.T) {
		tools := newSASLTools(t, servertest.StartMemcluster(t, "-S", "--sasl-pwdb", flagFile))
		tools.copyAndCat(t, bob, "flag-file")
		tools.refused(t, alice, bob, "flag-file")
	})
}

// TestSASLReloadOnSIGHUP edits the credentials file of a running daemon
// and sends SIGHUP: a user added can authenticate, one removed cannot; a
// file that does not parse leaves the one loaded before.
func TestSASLReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwdb := saslFile(t, dir, "pwdb", saslUser+":"+saslPassword, "carol:carol's secret")
	srv := servertest.StartMemcluster(t, "-S", "--sasl-pwdb", pwdb, "-v")
	tools := newSASLTools(t, srv)
	alice := saslCreds{saslUser, saslPassword}
	carol := saslCreds{"carol", "carol's secret"}
	dave := saslCreds{"dave", "dave's secret"}

	// hup sends SIGHUP and waits for the daemon to log the reload's
	// outcome, which contains want.
	hup := func(want string) {
		t.Helper()
		before := strings.Count(srv.Output(), "SIGHUP: re")
		srv.Signal(t, syscall.SIGHUP)
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(srv.Output(), "SIGHUP: re") == before {
			if srv.Exited() {
				t.Fatalf("memcluster exited on SIGHUP:\n%s", srv.Output())
			}
			if time.Now().After(deadline) {
				t.Fatalf("memcluster logged no reload within 10s of SIGHUP:\n%s", srv.Output())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if out := srv.Output(); !strings.Contains(out[strings.LastIndex(out, "SIGHUP: re"):], want) {
			t.Fatalf("after SIGHUP, want %q logged:\n%s", want, out)
		}
	}

	tools.copyAndCat(t, carol, "carol-file")
	tools.refused(t, dave, alice, "carol-file")

	saslFile(t, dir, "pwdb", saslUser+":"+saslPassword, "dave:dave's secret")
	hup("SIGHUP: reloaded")
	tools.copyAndCat(t, dave, "dave-file")
	tools.refused(t, carol, alice, "dave-file")
	tools.cat(t, alice, "carol-file", "carol-file, copied by carol\n")

	saslFile(t, dir, "pwdb", "not a credentials line")
	hup("reload failed")
	tools.cat(t, dave, "dave-file", "dave-file, copied by dave\n")
	tools.refused(t, carol, alice, "dave-file")
}
