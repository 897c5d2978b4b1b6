package command

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/sasl"
)

// TestAuthenticationLogsNoSecret authenticates, right and wrong, by SASL
// PLAIN and by ASCII authentication on a node logging every command (-vv),
// reloads a credentials file that does not parse, and checks that no
// password, nor any part of a verifier, appears in the log.
func TestAuthenticationLogsNoSecret(t *testing.T) {
	const (
		password = "pw-that-must-not-leak"
		wrong    = "wrong-pw-must-not-leak-either"
		broken   = "broken-line-secret" // on a line without ':'
	)
	verifier, err := sasl.NewSCRAMVerifier("vera-pw-never-logged", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	saslFile, asciiFile := filepath.Join(dir, "sasl"), filepath.Join(dir, "ascii")
	saslWriteFile(t, saslFile, "alice:"+password, "vera:"+verifier)
	saslWriteFile(t, asciiFile, "alice:"+password)

	var logs testutil.LockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, addr := binStartNode(t, Config{SASL: true, SASLPasswordFile: saslFile, Verbosity: 2, Logger: logger})
	_, asciiAddr := binStartNode(t, Config{AuthFile: asciiFile, Verbosity: 2, Logger: logger})

	c := binDial(t, addr)
	c.saslExpect("wrong PLAIN", binReq(protocol.OpSASLAuth, 1, 0, "", sasl.MechPLAIN, saslPlain("alice", wrong)), protocol.StatusAuthError)
	c.saslExpect("right PLAIN", binReq(protocol.OpSASLAuth, 2, 0, "", sasl.MechPLAIN, saslPlain("alice", password)), protocol.StatusOK)
	c.saslWorks("after PLAIN", "k")

	if got, _, _ := textAuthTry(t, asciiAddr, "alice", wrong); got != protocol.ErrAuthFailure.Line+"\r\n" {
		t.Errorf("-Y with a wrong password: got %q", got)
	}
	textAuthLogin(t, asciiAddr, "alice", password)

	saslWriteFile(t, saslFile, "alice:"+password, broken)
	if err := s.Reload(); err == nil {
		t.Error("Reload of a file with a malformed line succeeded")
	} else if strings.Contains(err.Error(), broken) || strings.Contains(err.Error(), password) {
		t.Errorf("Reload's error quotes the file: %v", err)
	}

	out := logs.String()
	if !strings.Contains(out, "binary command") || !strings.Contains(out, "SASLAuth") {
		t.Fatalf("the log does not show the commands at -vv, so it proves nothing:\n%s", out)
	}
	secrets := []string{password, wrong, broken, "vera-pw-never-logged"}
	// The verifier's salt and keys, each base64 part of the entry.
	for _, part := range strings.FieldsFunc(verifier, func(r rune) bool { return r == '$' || r == ':' }) {
		if len(part) >= 16 {
			secrets = append(secrets, part)
		}
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, out)
		}
	}
}
