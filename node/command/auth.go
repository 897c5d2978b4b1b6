package command

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/sasl"
)

// credentials is a credentials file the node checks users against: SASL's
// (Config.SASLPasswordFile) or ASCII authentication's (Config.AuthFile).
// The parsed file is swapped whole on reload, so a check sees the old file
// or the new one, never a mix. Its methods are safe for concurrent use.
type credentials struct {
	file string // "" when no file is set: no user exists
	// scram is set when SCRAM-SHA-256 is offered: a file loaded has its
	// password users' keys derived before it is used (see loadLocked).
	scram  bool
	loadMu sync.Mutex
	db     atomic.Pointer[sasl.PasswordDB]
}

// Lookup satisfies sasl.Credentials with the current file.
func (c *credentials) Lookup(user string) (sasl.Entry, bool) {
	if db := c.db.Load(); db != nil {
		return db.Lookup(user)
	}
	return sasl.Entry{}, false
}

// ensureLoaded loads the file if it has not been loaded yet.
func (c *credentials) ensureLoaded() error {
	if c.file == "" || c.db.Load() != nil {
		return nil
	}
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	if c.db.Load() != nil {
		return nil
	}
	return c.loadLocked()
}

// load reads the file again; if it does not parse, the old one stays.
func (c *credentials) load() error {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	return c.loadLocked()
}

func (c *credentials) loadLocked() error {
	if c.file == "" {
		return nil
	}
	db, err := sasl.ReadCredentialsFile(c.file)
	if err != nil {
		return err // a *sasl.ParseError names the file and line, never a secret
	}
	if c.scram {
		// Now, rather than on each user's first attempt, which would
		// take longer for a user who exists than for one who does
		// not; a reload derives only what changed.
		if err := db.DeriveSCRAMKeys(c.db.Load()); err != nil {
			return fmt.Errorf("node: deriving SCRAM-SHA-256 keys of %s: %w", c.file, err)
		}
	}
	c.db.Store(db)
	return nil
}

// maxAuthFailures is how many failed authentication attempts in a row a
// connection may make: the one that reaches it is answered, and the
// connection closed. memcached lets a connection fail for ever; a limit
// makes a client that guesses open a connection (and under TLS, a
// handshake) per few guesses, and lets a client that retries a wrong
// password, as a misconfigured one does, fail no more than this often
// per connection. What the node spends on each guess is bounded apart
// from this (see sasl.Limiter).
const maxAuthFailures = 8

// auth is a node's authentication: the SASL credentials and mechanisms of
// -S, and the credentials of -Y.
type auth struct {
	sasl  *credentials // nil without -S
	mechs []string     // offered to SASL clients, strongest first
	list  string       // mechs as LIST_MECHS answers them
	ascii *credentials // nil without -Y
}

// newAuth returns the authentication cfg asks for. The files are read by
// ensureLoaded.
func newAuth(cfg config.Config) (*auth, error) {
	a := &auth{}
	if cfg.SASL {
		mechs, err := saslMechanisms(cfg.SASLMechanisms)
		if err != nil {
			return nil, err
		}
		a.mechs, a.list = mechs, strings.Join(mechs, " ")
		a.sasl = &credentials{file: cfg.SASLPasswordFile, scram: slices.Contains(mechs, sasl.MechSCRAMSHA256)}
	}
	if cfg.AuthFile != "" {
		a.ascii = &credentials{file: cfg.AuthFile}
	}
	return a, nil
}

// saslMechanisms checks the mechanisms asked for against those package sasl
// knows, in upper case; none asked for means all.
func saslMechanisms(asked []string) ([]string, error) {
	known := sasl.Mechanisms()
	if len(asked) == 0 {
		return known, nil
	}
	var out []string
	for _, m := range asked {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !slices.Contains(known, m) {
			return nil, fmt.Errorf("node: SASL mechanism %q is not one of %s", m, strings.Join(known, ", "))
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// ensureLoaded reads the credentials files not read yet.
func (a *auth) ensureLoaded() error {
	for _, c := range []*credentials{a.sasl, a.ascii} {
		if c == nil {
			continue
		}
		if err := c.ensureLoaded(); err != nil {
			return err
		}
	}
	return nil
}

// offers reports whether SASL offers mech, in any case.
func (a *auth) offers(mech string) bool {
	return slices.ContainsFunc(a.mechs, func(m string) bool { return strings.EqualFold(m, mech) })
}

// checkASCII reports whether user and password authenticate under -Y. The
// check is SASL's PLAIN, so it takes the same time whether or not the user
// exists and compares secrets in constant time.
func (a *auth) checkASCII(user, password []byte) bool {
	srv, err := sasl.NewServer(sasl.MechPLAIN, a.ascii)
	if err != nil {
		return false
	}
	msg := make([]byte, 0, 2+len(user)+len(password))
	msg = append(msg, 0)
	msg = append(msg, user...)
	msg = append(msg, 0)
	msg = append(msg, password...)
	_, done, err := srv.Step(msg)
	clear(msg)
	return err == nil && done
}
