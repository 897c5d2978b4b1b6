// Package tlsconf is a node's TLS configuration: the settings of
// memcached's -Z and ssl_* options, the certificates, key and CAs loaded
// from their files and reloaded in place (SIGHUP, refresh_certs), and what
// "stats" and "stats settings" show of them. The handshake itself is the
// connections' (node/netserve). Come here to change what TLS accepts or how
// its files are read.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/node/stats"
)

// DefaultHandshakeTimeout bounds a TLS handshake unless
// Config.HandshakeTimeout says otherwise.
const DefaultHandshakeTimeout = 10 * time.Second

// Config configures TLS on a node's TCP listeners, as memcached's -Z with
// -o ssl_chain_cert, ssl_key, ssl_keyformat, ssl_ca_cert, ssl_verify_mode,
// ssl_min_version and ssl_session_cache. Every TCP listener serves TLS
// except those NoTLSAddrs names; the unix socket stays plain, as in
// memcached.
//
// The files are read when the node first listens or serves, and again by
// node.Server.Reload: new connections get the certificates loaded last, and
// established ones keep those they began with.
type Config struct {
	// CertFile is the server's certificate chain in PEM (ssl_chain_cert):
	// the server's certificate first, then the intermediates, if any.
	// Required.
	CertFile string

	// KeyFile is the server's private key (ssl_key). If empty, the key is
	// read from CertFile, which must then hold it too.
	KeyFile string

	// KeyDER says the key file holds the key in DER (ASN.1, PKCS #1,
	// PKCS #8 or SEC 1), memcached's ssl_keyformat=2. If false, the key is
	// in PEM.
	KeyDER bool

	// CAFile holds, in PEM, the certificate authorities client
	// certificates must chain to (ssl_ca_cert). If empty, no client
	// certificate verifies, as in memcached: with ClientAuth
	// tls.RequireAndVerifyClientCert every client is refused, and with
	// tls.VerifyClientCertIfGiven every client that sends a certificate.
	CAFile string

	// ClientAuth is the policy for client certificates (ssl_verify_mode):
	// tls.NoClientCert (0, the zero value), tls.VerifyClientCertIfGiven
	// (1) or tls.RequireAndVerifyClientCert (2 and 3).
	ClientAuth tls.ClientAuthType

	// MinVersion is the oldest TLS version accepted (ssl_min_version), a
	// crypto/tls version such as tls.VersionTLS13. If zero, defaults to
	// tls.VersionTLS12, as memcached.
	MinVersion uint16

	// SessionCache lets clients resume sessions (ssl_session_cache), with
	// session tickets. If false, every connection makes a full handshake.
	SessionCache bool

	// HandshakeTimeout bounds the handshake of each connection, so that a
	// client that connects and says nothing does not hold one of
	// the node's -c for long. If zero, defaults to
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// NoTLSAddrs are entries of the node's ListenAddrs, written exactly as
	// there, whose listeners serve plain TCP (memcached's "notls:" prefix
	// of -l).
	NoTLSAddrs []string
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	c.NoTLSAddrs = slices.Clone(c.NoTLSAddrs)
	return c
}

// keyFile returns the file the private key is read from.
func (c *Config) keyFile() string {
	if c.KeyFile != "" {
		return c.KeyFile
	}
	return c.CertFile
}

// A FileError reports a TLS file that could not be loaded. Its message is
// memcached's: "Error loading the <what>: <file> : <reason>".
type FileError struct {
	// What is the file's role: "certificate chain", "key" or "CA
	// certificate".
	What string
	// File is the file's path; "" if none was given.
	File string
	// Err says what is wrong.
	Err error
}

// Error returns memcached's message for the fault.
func (e *FileError) Error() string {
	if e.File == "" {
		return "Error loading the " + e.What + ": " + e.Err.Error()
	}
	reason := e.Err.Error()
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		reason = pe.Err.Error() // the path is already in the message
	}
	return "Error loading the " + e.What + ": " + e.File + " : " + reason
}

// Unwrap returns Err, so that errors.Is finds, say, fs.ErrNotExist.
func (e *FileError) Unwrap() error { return e.Err }

// errNoFile is the reason given when a required file is not named.
var errNoFile = errors.New("no file given")

// State is a server's TLS: its settings and the material loaded from
// their files. Its methods are safe for concurrent use.
type State struct {
	cfg Config
	// config is what the listeners' connections are made with. Its
	// GetConfigForClient hands each new connection the current material.
	config *tls.Config

	loadMu  sync.Mutex // serializes loads, so the last to finish is the newest
	current atomic.Pointer[material]
}

// material is what was loaded from the files at one time. It is never
// modified once stored.
type material struct {
	config *tls.Config // certificate, client CAs and policy
	loaded time.Time
}

// NewState returns the TLS of settings cfg, with their defaults applied
// (Config.WithDefaults); nothing is loaded until EnsureLoaded or Load.
func NewState(cfg Config) *State {
	t := &State{cfg: cfg}
	t.config = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := t.current.Load()
			if m == nil {
				return nil, errors.New("node: TLS certificates not loaded")
			}
			return m.config, nil
		},
	}
	return t
}

// EnsureLoaded loads the material if nothing has been loaded yet.
func (t *State) EnsureLoaded() error {
	if t.current.Load() != nil {
		return nil
	}
	t.loadMu.Lock()
	defer t.loadMu.Unlock()
	if t.current.Load() != nil {
		return nil
	}
	return t.loadLocked()
}

// Load reads the files again and, if they are good, makes them current.
// If they are not, the current material stays.
func (t *State) Load() error {
	t.loadMu.Lock()
	defer t.loadMu.Unlock()
	return t.loadLocked()
}

func (t *State) loadLocked() error {
	m, err := loadTLSMaterial(&t.cfg)
	if err != nil {
		return err
	}
	t.current.Store(m)
	return nil
}

// ClientConfig returns the configuration to dial another node of the
// cluster at host with: the node's own certificate, offered to a peer that
// asks for one (ssl_verify_mode), and the peer's verified against the CA
// file (ssl_ca_cert) if one is set, else the system's roots, for host.
func (t *State) ClientConfig(host string) (*tls.Config, error) {
	m := t.current.Load()
	if m == nil {
		return nil, errors.New("node: TLS certificates not loaded")
	}
	return &tls.Config{
		Certificates: m.config.Certificates,
		RootCAs:      m.config.ClientCAs,
		ServerName:   host,
		MinVersion:   m.config.MinVersion,
	}, nil
}

// loadTLSMaterial reads the files c names. Errors are *FileError.
func loadTLSMaterial(c *Config) (*material, error) {
	chainErr := func(err error) error { return &FileError{What: "certificate chain", File: c.CertFile, Err: err} }
	keyErr := func(err error) error { return &FileError{What: "key", File: c.keyFile(), Err: err} }
	if c.CertFile == "" {
		return nil, chainErr(errNoFile)
	}
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, chainErr(err)
	}
	if err := checkChain(certPEM); err != nil {
		return nil, chainErr(err)
	}
	keyBytes, err := os.ReadFile(c.keyFile())
	if err != nil {
		return nil, keyErr(err)
	}
	if c.KeyDER {
		// crypto/tls reads a key of any of the three DER encodings from a
		// block of this type.
		keyBytes = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyBytes})
	} else if !hasPEMKey(keyBytes) {
		if c.KeyFile == "" {
			return nil, keyErr(errors.New("no private key in the certificate file, and no key file given"))
		}
		return nil, keyErr(errors.New("no PEM private key found"))
	}
	cert, err := tls.X509KeyPair(certPEM, keyBytes)
	if err != nil {
		return nil, keyErr(err)
	}

	config := &tls.Config{
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             c.ClientAuth,
		MinVersion:             c.MinVersion,
		SessionTicketsDisabled: !c.SessionCache,
	}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, &FileError{What: "CA certificate", File: c.CAFile, Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, &FileError{What: "CA certificate", File: c.CAFile, Err: errors.New("no PEM certificate found")}
		}
		config.ClientCAs = pool
	} else if c.ClientAuth != tls.NoClientCert {
		// No CA: no client certificate verifies, as in memcached. (A nil
		// pool would mean the system's roots.)
		config.ClientCAs = x509.NewCertPool()
	}
	return &material{config: config, loaded: time.Now()}, nil
}

// checkChain reports whether b holds at least one PEM certificate, and
// every PEM certificate in it parses.
func checkChain(b []byte) error {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate found")
	}
	return nil
}

// hasPEMKey reports whether b holds a PEM private key block.
func hasPEMKey(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "PRIVATE KEY" || strings.HasSuffix(block.Type, " PRIVATE KEY") {
			return true
		}
	}
}

// Stats returns the TLS statistics of "stats": memcached's, but for
// ssl_new_sessions counting the full handshakes (each starts a session a
// client may resume), printed as in memcached only with the session cache
// on.
func (t *State) Stats(c *stats.Counters) []stats.Stat {
	if t == nil {
		return nil
	}
	var out []stats.Stat
	if t.cfg.SessionCache {
		out = append(out, stats.Stat{Name: "ssl_new_sessions", Value: stats.Uint(c.SSLNewSessions.Load())})
	}
	out = append(out, stats.Stat{Name: "ssl_handshake_errors", Value: stats.Uint(c.SSLHandshakeErrors.Load())})
	if m := t.current.Load(); m != nil {
		out = append(out, stats.Stat{Name: "time_since_server_cert_refresh", Value: strconv.FormatInt(int64(time.Since(m.loaded).Seconds()), 10)})
	}
	return out
}

// Settings returns the TLS settings of "stats settings", under
// memcached's names and in its order. ssl_ciphers, ssl_wbuf_size and
// ssl_kernel_tls tune OpenSSL, which the node does not use: they are
// present for compatibility with memcached's defaults. Without TLS they
// are memcached's settings without TLS.
func (t *State) Settings() []stats.Stat {
	if t == nil {
		return []stats.Stat{
			{Name: "ssl_enabled", Value: "no"},
			{Name: "ssl_chain_cert", Value: stats.Compat("(null)")},
			{Name: "ssl_key", Value: stats.Compat("(null)")},
			{Name: "ssl_verify_mode", Value: stats.Compat("0")},
			{Name: "ssl_keyformat", Value: stats.Compat("1")},
			{Name: "ssl_ciphers", Value: stats.Compat("NULL")},
			{Name: "ssl_ca_cert", Value: stats.Compat("NULL")},
			{Name: "ssl_wbuf_size", Value: stats.Compat("16384")},
			{Name: "ssl_session_cache", Value: stats.Compat("no")},
			{Name: "ssl_kernel_tls", Value: stats.Compat("no")},
			{Name: "ssl_min_version", Value: stats.Compat("tlsv1.2")},
		}
	}
	c := &t.cfg
	ca := "NULL"
	if c.CAFile != "" {
		ca = c.CAFile
	}
	keyFormat := "1" // memcached's SSL_FILETYPE_PEM
	if c.KeyDER {
		keyFormat = "2" // SSL_FILETYPE_ASN1
	}
	return []stats.Stat{
		{Name: "ssl_enabled", Value: "yes"},
		{Name: "ssl_chain_cert", Value: c.CertFile},
		{Name: "ssl_key", Value: c.keyFile()},
		{Name: "ssl_verify_mode", Value: verifyModeName(c.ClientAuth)},
		{Name: "ssl_keyformat", Value: keyFormat},
		{Name: "ssl_ciphers", Value: stats.Compat("NULL")},
		{Name: "ssl_ca_cert", Value: ca},
		{Name: "ssl_wbuf_size", Value: stats.Compat("16384")},
		{Name: "ssl_session_cache", Value: stats.YesNo(c.SessionCache)},
		{Name: "ssl_kernel_tls", Value: stats.Compat("no")},
		{Name: "ssl_min_version", Value: tlsVersionName(c.MinVersion)},
	}
}

// verifyModeName returns memcached's ssl_verify_mode for a client
// certificate policy; crypto/tls's name for a policy memcached lacks.
func verifyModeName(a tls.ClientAuthType) string {
	switch a {
	case tls.NoClientCert:
		return "0"
	case tls.VerifyClientCertIfGiven:
		return "1"
	case tls.RequireAndVerifyClientCert:
		return "2"
	}
	return a.String()
}

// tlsVersionName returns memcached's name for a TLS version.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "tlsv1.0"
	case tls.VersionTLS11:
		return "tlsv1.1"
	case tls.VersionTLS12:
		return "tlsv1.2"
	case tls.VersionTLS13:
		return "tlsv1.3"
	}
	return "unknown"
}

// ServerConfig is what the listeners' connections are made with: its
// GetConfigForClient hands each new connection the material loaded last.
func (t *State) ServerConfig() *tls.Config { return t.config }

// HandshakeTimeout bounds each connection's handshake.
func (t *State) HandshakeTimeout() time.Duration { return t.cfg.HandshakeTimeout }

// SessionCache reports whether clients may resume sessions.
func (t *State) SessionCache() bool { return t.cfg.SessionCache }

// NoTLSAddrs are the -l entries whose listeners serve plain TCP.
func (t *State) NoTLSAddrs() []string { return t.cfg.NoTLSAddrs }
