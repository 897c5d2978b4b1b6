package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/memcluster/memcluster/sasl"
)

// saslPasswordEnv names memcached's environment variable for the SASL
// credentials file; --sasl-pwdb takes precedence over it.
const saslPasswordEnv = "MEMCACHED_SASL_PWDB"

// authFlagDefs are memcluster's own authentication options. They have long
// forms only, so they can never clash with a memcached letter.
var authFlagDefs = []flagDef{
	{0, "sasl-pwdb", requiredArg, setSASLPasswordFile},
	{0, "sasl-mechs", requiredArg, setSASLMechanisms},
	{0, "sasl-verifier", requiredArg, setSASLVerifier},
}

// setSASLPasswordFile sets --sasl-pwdb: the SASL credentials file.
func setSASLPasswordFile(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("invalid value \"\" for %s: want a file", opt)
	}
	p.o.cfg.SASLPasswordFile = val
	return nil
}

// setSASLMechanisms sets --sasl-mechs: the mechanisms offered, a list
// separated by ',' or ' ', strongest first.
func setSASLMechanisms(p *parser, opt, val string) error {
	known := sasl.Mechanisms()
	var mechs []string
	for _, m := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' }) {
		m = strings.ToUpper(m)
		ok := false
		for _, k := range known {
			ok = ok || k == m
		}
		if !ok {
			return fmt.Errorf("invalid mechanism %q for %s: want some of %s", m, opt, strings.Join(known, ","))
		}
		mechs = append(mechs, m)
	}
	if len(mechs) == 0 {
		return fmt.Errorf("invalid value %q for %s: want some of %s", val, opt, strings.Join(known, ","))
	}
	p.o.cfg.SASLMechanisms = mechs
	return nil
}

// setSASLVerifier sets --sasl-verifier=<user>: print a credentials-file
// line for user with a SCRAM-SHA-256 verifier of the password read from
// standard input, and exit.
func setSASLVerifier(p *parser, opt, val string) error {
	if val == "" || strings.ContainsAny(val, ":\r\n\x00") || len(val) > sasl.MaxUsernameLen {
		return fmt.Errorf("invalid user name %q for %s: want 1 to %d bytes without ':', NUL or line breaks", val, opt, sasl.MaxUsernameLen)
	}
	p.o.verifierUser = val
	return nil
}

// writeVerifierEntry reads a password, the first line of in, and writes
// the credentials-file line "<user>:SCRAM-SHA-256$..." that lets user
// authenticate with it, without the password in the clear.
func writeVerifierEntry(user string, in io.Reader, out io.Writer) error {
	if in == nil {
		return errors.New("--sasl-verifier: no password on standard input")
	}
	line, err := bufio.NewReaderSize(in, sasl.MaxPasswordLen+2).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return fmt.Errorf("--sasl-verifier: reading the password from standard input: %w", err)
	}
	password := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	v, err := sasl.NewSCRAMVerifier(password, 0, nil)
	if err != nil {
		return fmt.Errorf("--sasl-verifier: %w", err)
	}
	_, err = fmt.Fprintf(out, "%s:%s\n", user, v)
	return err
}

// authUsage is the -h text of the authentication options.
const authUsage = `
Authentication options (memcluster's own; long forms only):
    --sasl-pwdb=<file>    SASL (-S) credentials: user:password lines, as
                          memcached's $` + saslPasswordEnv + ` (which is read when
                          this is not given), or user:SCRAM-SHA-256$... lines
                          from --sasl-verifier. -Y takes the same format.
                          Re-read on SIGHUP
    --sasl-mechs=<list>   SASL mechanisms to offer, strongest first
                          (default: SCRAM-SHA-256,CRAM-MD5,PLAIN)
    --sasl-verifier=<user> read a password from standard input, print the
                          credentials line that lets <user> authenticate with
                          it (a salted SCRAM-SHA-256 verifier, no password in
                          the clear), and exit
`
