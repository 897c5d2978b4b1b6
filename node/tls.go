package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memcluster/memcluster/protocol"
)

// DefaultTLSHandshakeTimeout bounds a TLS handshake unless
// TLSConfig.HandshakeTimeout says otherwise.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// TLSConfig configures TLS on a node's TCP listeners, as memcached's -Z with
// -o ssl_chain_cert, ssl_key, ssl_keyformat, ssl_ca_cert, ssl_verify_mode,
// ssl_min_version and ssl_session_cache. Every TCP listener serves TLS
// except those NoTLSAddrs names; the unix socket stays plain, as in
// memcached.
//
// The files are read when the node first listens or serves, and again by
// Server.Reload: new connections get the certificates loaded last, and
// established ones keep those they began with.
type TLSConfig struct {
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
	// Config.MaxConns for long. If zero, defaults to
	// DefaultTLSHandshakeTimeout.
	HandshakeTimeout time.Duration

	// NoTLSAddrs are entries of Config.ListenAddrs, written exactly as
	// there, whose listeners serve plain TCP (memcached's "notls:" prefix
	// of -l).
	NoTLSAddrs []string
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c TLSConfig) withDefaults() TLSConfig {
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	c.NoTLSAddrs = slices.Clone(c.NoTLSAddrs)
	return c
}

// keyFile returns the file the private key is read from.
func (c *TLSConfig) keyFile() string {
	if c.KeyFile != "" {
		return c.KeyFile
	}
	return c.CertFile
}

// A TLSFileError reports a TLS file that could not be loaded. Its message is
// memcached's: "Error loading the <what>: <file> : <reason>".
type TLSFileError struct {
	// What is the file's role: "certificate chain", "key" or "CA
	// certificate".
	What string
	// File is the file's path; "" if none was given.
	File string
	// Err says what is wrong.
	Err error
}

// Error returns memcached's message for the fault.
func (e *TLSFileError) Error() string {
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
func (e *TLSFileError) Unwrap() error { return e.Err }

// errNoFile is the reason given when a required file is not named.
var errNoFile = errors.New("no file given")

// tlsState is a server's TLS: its settings and the material loaded from
// their files. Its methods are safe for concurrent use.
type tlsState struct {
	cfg TLSConfig
	// config is what the listeners' connections are made with. Its
	// GetConfigForClient hands each new connection the current material.
	config *tls.Config

	loadMu  sync.Mutex // serializes loads, so the last to finish is the newest
	current atomic.Pointer[tlsMaterial]
}

// tlsMaterial is what was loaded from the files at one time. It is never
// modified once stored.
type tlsMaterial struct {
	config *tls.Config // certificate, client CAs and policy
	loaded time.Time
}

func newTLSState(cfg TLSConfig) *tlsState {
	t := &tlsState{cfg: cfg}
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

// ensureLoaded loads the material if nothing has been loaded yet.
func (t *tlsState) ensureLoaded() error {
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

// load reads the files again and, if they are good, makes them current.
// If they are not, the current material stays.
func (t *tlsState) load() error {
	t.loadMu.Lock()
	defer t.loadMu.Unlock()
	return t.loadLocked()
}

func (t *tlsState) loadLocked() error {
	m, err := loadTLSMaterial(&t.cfg)
	if err != nil {
		return err
	}
	t.current.Store(m)
	return nil
}

// loadTLSMaterial reads the files c names. Errors are *TLSFileError.
func loadTLSMaterial(c *TLSConfig) (*tlsMaterial, error) {
	chainErr := func(err error) error { return &TLSFileError{What: "certificate chain", File: c.CertFile, Err: err} }
	keyErr := func(err error) error { return &TLSFileError{What: "key", File: c.keyFile(), Err: err} }
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
			return nil, &TLSFileError{What: "CA certificate", File: c.CAFile, Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, &TLSFileError{What: "CA certificate", File: c.CAFile, Err: errors.New("no PEM certificate found")}
		}
		config.ClientCAs = pool
	} else if c.ClientAuth != tls.NoClientCert {
		// No CA: no client certificate verifies, as in memcached. (A nil
		// pool would mean the system's roots.)
		config.ClientCAs = x509.NewCertPool()
	}
	return &tlsMaterial{config: config, loaded: time.Now()}, nil
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

// plainListener marks a TCP listener that serves plain connections while
// TLS is on ("notls:").
type plainListener struct{ net.Listener }

// servesTLS reports whether connections accepted on l are TLS: with TLS on,
// those of every TCP listener but the plain ones.
func (s *Server) servesTLS(l net.Listener) bool {
	if s.tls == nil {
		return false
	}
	if _, ok := l.(plainListener); ok {
		return false
	}
	return l.Addr().Network() == "tcp"
}

// handshake runs the TLS handshake of the connection, bounded by the
// handshake timeout, and reports whether it succeeded. A failure is counted
// in ssl_handshake_errors, unless the client left before sending anything.
// Shutdown may interrupt a handshake, as it does an idle connection: no
// request has begun.
func (c *conn) handshake(tc *tls.Conn) bool {
	s := c.srv
	_ = c.raw.SetDeadline(time.Now().Add(s.tls.cfg.HandshakeTimeout))
	c.idle.Store(true)
	if s.shuttingDown.Load() {
		c.idle.Store(false)
		return false
	}
	err := tc.Handshake()
	c.idle.Store(false)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.counters.sslHandshakeErrors.Add(1)
			s.log.Info("TLS handshake failed", "remote", c.raw.RemoteAddr().String(), "err", err)
		}
		return false
	}
	_ = c.raw.SetDeadline(time.Time{})
	if s.tls.cfg.SessionCache && !tc.ConnectionState().DidResume {
		s.counters.sslNewSessions.Add(1)
	}
	return true
}

// tlsStats returns the TLS statistics of "stats": memcached's, but for
// ssl_new_sessions counting the full handshakes (each starts a session a
// client may resume), printed as in memcached only with the session cache
// on.
func (s *Server) tlsStats() []Stat {
	if s.tls == nil {
		return nil
	}
	var out []Stat
	if s.tls.cfg.SessionCache {
		out = append(out, Stat{"ssl_new_sessions", strconv.FormatUint(s.counters.sslNewSessions.Load(), 10)})
	}
	out = append(out, Stat{"ssl_handshake_errors", strconv.FormatUint(s.counters.sslHandshakeErrors.Load(), 10)})
	if m := s.tls.current.Load(); m != nil {
		out = append(out, Stat{"time_since_server_cert_refresh", strconv.FormatInt(int64(time.Since(m.loaded).Seconds()), 10)})
	}
	return out
}

// tlsSettings returns the TLS settings of "stats settings", under
// memcached's names and in its order. ssl_ciphers, ssl_wbuf_size and
// ssl_kernel_tls tune OpenSSL, which the node does not use: they are
// present for compatibility with memcached's defaults. Without TLS they
// are memcached's settings without TLS.
func (s *Server) tlsSettings() []Stat {
	if s.tls == nil {
		return []Stat{
			{"ssl_enabled", "no"},
			{"ssl_chain_cert", compatStat("(null)")},
			{"ssl_key", compatStat("(null)")},
			{"ssl_verify_mode", compatStat("0")},
			{"ssl_keyformat", compatStat("1")},
			{"ssl_ciphers", compatStat("NULL")},
			{"ssl_ca_cert", compatStat("NULL")},
			{"ssl_wbuf_size", compatStat("16384")},
			{"ssl_session_cache", compatStat("no")},
			{"ssl_kernel_tls", compatStat("no")},
			{"ssl_min_version", compatStat("tlsv1.2")},
		}
	}
	c := &s.tls.cfg
	ca := "NULL"
	if c.CAFile != "" {
		ca = c.CAFile
	}
	keyFormat := "1" // memcached's SSL_FILETYPE_PEM
	if c.KeyDER {
		keyFormat = "2" // SSL_FILETYPE_ASN1
	}
	return []Stat{
		{"ssl_enabled", "yes"},
		{"ssl_chain_cert", c.CertFile},
		{"ssl_key", c.keyFile()},
		{"ssl_verify_mode", verifyModeName(c.ClientAuth)},
		{"ssl_keyformat", keyFormat},
		{"ssl_ciphers", compatStat("NULL")},
		{"ssl_ca_cert", ca},
		{"ssl_wbuf_size", compatStat("16384")},
		{"ssl_session_cache", yesNo(c.SessionCache)},
		{"ssl_kernel_tls", compatStat("no")},
		{"ssl_min_version", tlsVersionName(c.MinVersion)},
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

// refreshCerts answers memcached's refresh_certs: the TLS certificate, key
// and CAs are read again now, as on SIGHUP. As memcached: "OK" (not with
// noreply) when they load; otherwise the error, which noreply does not
// silence, and the old material stays.
func (c *conn) refreshCerts(req *protocol.Request) {
	s := c.srv
	if s.tls == nil {
		c.out = protocol.AppendLine(c.out, "Error TLS not enabled")
		return
	}
	if err := s.tls.load(); err != nil {
		s.log.Error("refresh_certs: keeping the certificates loaded before", "err", err)
		msg := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, err.Error())
		c.out = protocol.AppendLine(c.out, msg)
		return
	}
	s.log.Info("refresh_certs: certificates reloaded")
	c.reply(req, protocol.ReplyOK)
}
