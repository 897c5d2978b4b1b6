package command

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/node/tlsconf"
	"github.com/memcluster/memcluster/protocol"
)

// tlsConfig returns a TLS configuration for f's server certificate.
func tlsConfig(f *tlstest.Files) *tlsconf.Config {
	return &tlsconf.Config{CertFile: f.CertFile, KeyFile: f.KeyFile}
}

// quietLogger discards the logs of servers whose tests provoke failed
// handshakes.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serveTLSForTest serves a node for cfg with TLS tc on a loopback port until
// the test ends.
func serveTLSForTest(t *testing.T, cfg Config, tc *tlsconf.Config) (*testServer, string) {
	t.Helper()
	cfg.TLS = tc
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	return serveForTest(t, cfg)
}

// dialTLS connects to addr over TLS with cfg and completes the handshake,
// with a deadline on every exchange.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, *bufio.Reader, error) {
	t.Helper()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { nc.Close() })
	tc := nc.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc, bufio.NewReader(tc), nil
}

// mustDialTLS is dialTLS failing the test on an error.
func mustDialTLS(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	tc, r, err := dialTLS(t, addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	return tc, r
}

// tlsVersionCommand connects over TLS with cfg and sends "version". It
// returns nil if the node answers, or the error that stopped it: under TLS
// 1.3 a server refuses a client certificate after the client's handshake
// is done, so the refusal may come on the first read.
func tlsVersionCommand(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	tc, r, err := dialTLS(t, addr, cfg)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(tc, "version\r\n"); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "VERSION "+Version+"\r\n" {
		t.Fatalf("version over TLS: got %q", line)
	}
	return nil
}

// peerSerial returns the serial number of the server's certificate.
func peerSerial(tc *tls.Conn) *big.Int {
	return tc.ConnectionState().PeerCertificates[0].SerialNumber
}

func TestTLSTextRoundTrip(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	_, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	tc, r := mustDialTLS(t, addr, f.ClientConfig(nil))
	if got, want := roundTrip(t, tc, r, "set k 5 0 5\r\nhello\r\nget k\r\n", 4), "STORED\r\nVALUE k 5 5\r\nhello\r\nEND\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := roundTrip(t, tc, r, "append k 0 0 1\r\n!\r\nget k\r\n", 4), "STORED\r\nVALUE k 5 6\r\nhello!\r\nEND\r\n"; got != want {
		t.Errorf("append: got %q, want %q", got, want)
	}
	if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %x, want TLS 1.3 (%x)", v, tls.VersionTLS13)
	}

	stats, _ := readStats(t, tc, r, "stats\r\n")
	wantStats(t, "stats", stats, map[string]string{"ssl_handshake_errors": "0", "cmd_get": "2"})
	if _, ok := stats["ssl_new_sessions"]; ok {
		t.Errorf("stats: ssl_new_sessions printed without the session cache")
	}
	settings, _ := readStats(t, tc, r, "stats settings\r\n")
	wantStats(t, "stats settings", settings, map[string]string{
		"ssl_enabled": "yes", "ssl_chain_cert": f.CertFile, "ssl_key": f.KeyFile, "ssl_verify_mode": "0",
		"ssl_keyformat": "1", "ssl_ca_cert": "NULL", "ssl_session_cache": "no", "ssl_min_version": "tlsv1.2",
	})
}

func TestTLSBinaryRoundTrip(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	_, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	tc, _ := mustDialTLS(t, addr, f.ClientConfig(nil))
	c := &binClient{t: t, nc: tc, r: bufio.NewReaderSize(tc, 1<<16)}
	steps := []binStep{
		{send: binReq(protocol.OpSet, 1, 0, binStorageExtras(7, 0), "k", "value"), want: [][]byte{binOK(protocol.OpSet, 1, binAnyCAS)}},
		{send: binReq(protocol.OpGetK, 2, 0, "", "k", ""), want: [][]byte{binHit(protocol.OpGetK, 2, 7, "k", "value")}},
		{send: binReq(protocol.OpDelete, 3, 0, "", "k", ""), want: [][]byte{binOK(protocol.OpDelete, 3, 0)}},
		{send: binReq(protocol.OpGet, 4, 0, "", "k", ""), want: [][]byte{binErr(protocol.OpGet, protocol.StatusKeyNotFound, 4)}},
	}
	for i, st := range steps {
		c.check(i, st)
	}
}

// TestTLSWithSASL checks that SASL's gate stands over TLS as it does over
// plain TCP: the binary protocol only, and nothing before authentication.
func TestTLSWithSASL(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	_, addr := serveTLSForTest(t, Config{SASL: true}, tlsConfig(f))
	tc, _ := mustDialTLS(t, addr, f.ClientConfig(nil))
	c := &binClient{t: t, nc: tc, r: bufio.NewReaderSize(tc, 1<<16)}
	c.check(0, binStep{send: binReq(protocol.OpVersion, 1, 0, "", "", ""),
		want: [][]byte{binResp(protocol.OpVersion, protocol.StatusOK, 1, 0, "", "", Version)}, end: binEndQuiet})
	c.check(1, binStep{send: binReq(protocol.OpGet, 2, 0, "", "k", ""),
		want: [][]byte{binErr(protocol.OpGet, protocol.StatusAuthError, 2)}, end: binEndClosed})
}

func TestTLSGomemcache(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	_, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	mc := memcache.New(addr)
	mc.Timeout = 5 * time.Second
	mc.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := tls.Dialer{Config: &tls.Config{RootCAs: f.CA.Pool}}
		return d.DialContext(ctx, network, addr)
	}
	defer mc.Close()

	for _, k := range []string{"a", "b", "c"} {
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte("value of " + k), Flags: 42}); err != nil {
			t.Fatalf("Set(%s): %v", k, err)
		}
	}
	it, err := mc.Get("a")
	if err != nil {
		t.Fatalf("Get(a): %v", err)
	}
	if string(it.Value) != "value of a" || it.Flags != 42 {
		t.Errorf("Get(a) = %q flags %d, want %q flags 42", it.Value, it.Flags, "value of a")
	}
	got, err := mc.GetMulti([]string{"a", "b", "c", "missing"})
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	if len(got) != 3 || string(got["b"].Value) != "value of b" || string(got["c"].Value) != "value of c" {
		t.Errorf("GetMulti = %v, want a, b and c", got)
	}
	if err := mc.Delete("b"); err != nil {
		t.Fatalf("Delete(b): %v", err)
	}
	if _, err := mc.Get("b"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Errorf("Get(b) after Delete: got %v, want ErrCacheMiss", err)
	}
	if err := mc.Delete("b"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Errorf("second Delete(b): got %v, want ErrCacheMiss", err)
	}
}

// TestTLSPlainClientGetsNoService sends a plain-text request to a TLS
// port: the node closes the connection without executing it.
func TestTLSPlainClientGetsNoService(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	s, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	c, r := dialForTest(t, addr)
	if _, err := io.WriteString(c, "set k 0 0 1\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if len(b) != 0 {
		t.Errorf("plain client got %q, want nothing", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("plain client: connection still open after 10s")
	}
	if got := s.counters.SSLHandshakeErrors.Load(); got != 1 {
		t.Errorf("ssl_handshake_errors = %d, want 1", got)
	}
	tc, tr := mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := roundTrip(t, tc, tr, "get k\r\n", 1); got != "END\r\n" {
		t.Errorf("get k after the plain set: got %q, want END (the set must not run)", got)
	}
	// A client that connects and leaves without a word is no failed
	// handshake.
	quiet, _ := dialForTest(t, addr)
	quiet.Close()
	testutil.WaitFor(t, 5*time.Second, "s.net.OpenConns() == 1", func() bool { return s.net.OpenConns() == 1 })
	if got := s.counters.SSLHandshakeErrors.Load(); got != 1 {
		t.Errorf("ssl_handshake_errors after a silent client = %d, want 1", got)
	}
}

func TestTLSClientCertificates(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	good := f.CA.Client(t, "good client")
	other := tlstest.NewCA(t, "another CA")
	stranger := other.Client(t, "stranger")
	withCert := func(l *tlstest.Leaf) *tls.Config {
		c := f.ClientConfig(nil)
		if l != nil {
			// Sent whatever CAs the server names: crypto/tls would
			// otherwise keep back a certificate of another CA.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &l.TLS, nil }
		}
		return c
	}
	tests := []struct {
		name   string
		auth   tls.ClientAuthType
		caFile string
		client *tlstest.Leaf
		ok     bool
	}{
		{"required, none sent", tls.RequireAndVerifyClientCert, f.CAFile, nil, false},
		{"required, signed by the CA", tls.RequireAndVerifyClientCert, f.CAFile, good, true},
		{"required, signed by another CA", tls.RequireAndVerifyClientCert, f.CAFile, stranger, false},
		{"required, no CA file", tls.RequireAndVerifyClientCert, "", good, false},
		{"if given, none sent", tls.VerifyClientCertIfGiven, f.CAFile, nil, true},
		{"if given, signed by the CA", tls.VerifyClientCertIfGiven, f.CAFile, good, true},
		{"if given, signed by another CA", tls.VerifyClientCertIfGiven, f.CAFile, stranger, false},
		{"not asked, sent anyway", tls.NoClientCert, f.CAFile, stranger, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := tlsConfig(f)
			tc.ClientAuth, tc.CAFile = tt.auth, tt.caFile
			s, addr := serveTLSForTest(t, Config{}, tc)
			err := tlsVersionCommand(t, addr, withCert(tt.client))
			if tt.ok && err != nil {
				t.Errorf("client refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Errorf("client served, want it refused")
			}
			// The client may see the refusal before the server has
			// counted it.
			want := boolCount(!tt.ok)
			testutil.WaitFor(t, 5*time.Second, "s.counters.SSLHandshakeErrors.Load() == want", func() bool { return s.counters.SSLHandshakeErrors.Load() == want })
		})
	}
}

func boolCount(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestTLSMinVersion(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	client := func(minV, maxV uint16) *tls.Config {
		c := f.ClientConfig(nil)
		c.MinVersion, c.MaxVersion = minV, maxV
		return c
	}
	tests := []struct {
		name       string
		min        uint16
		clientMin  uint16
		clientMax  uint16
		ok         bool
		wantStat   string
		negotiated uint16
	}{
		{"TLS 1.3 refuses a TLS 1.2 client", tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS12, false, "tlsv1.3", 0},
		{"TLS 1.3 serves a TLS 1.3 client", tls.VersionTLS13, tls.VersionTLS13, tls.VersionTLS13, true, "tlsv1.3", tls.VersionTLS13},
		{"the default refuses a TLS 1.1 client", 0, tls.VersionTLS10, tls.VersionTLS11, false, "tlsv1.2", 0},
		{"the default serves a TLS 1.2 client", 0, tls.VersionTLS12, tls.VersionTLS12, true, "tlsv1.2", tls.VersionTLS12},
		{"TLS 1.0 serves a TLS 1.1 client", tls.VersionTLS10, tls.VersionTLS10, tls.VersionTLS11, true, "tlsv1.0", tls.VersionTLS11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := tlsConfig(f)
			tc.MinVersion = tt.min
			s, addr := serveTLSForTest(t, Config{}, tc)
			conn, r, err := dialTLS(t, addr, client(tt.clientMin, tt.clientMax))
			if !tt.ok {
				if err == nil {
					t.Fatalf("handshake succeeded with TLS %x, want it refused", conn.ConnectionState().Version)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if v := conn.ConnectionState().Version; v != tt.negotiated {
				t.Errorf("negotiated %x, want %x", v, tt.negotiated)
			}
			settings, _ := readStats(t, conn, r, "stats settings\r\n")
			wantStats(t, "stats settings", settings, map[string]string{"ssl_min_version": tt.wantStat})
			if got := s.counters.SSLHandshakeErrors.Load(); got != 0 {
				t.Errorf("ssl_handshake_errors = %d, want 0", got)
			}
		})
	}
}

func TestTLSReload(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	s, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	first := f.Server.Cert.SerialNumber

	old, oldR := mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := peerSerial(old); got.Cmp(first) != 0 {
		t.Fatalf("served serial %v, want %v", got, first)
	}
	if got := roundTrip(t, old, oldR, "set k 0 0 1\r\n1\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("got %q", got)
	}

	// A new certificate: new connections get it, the old one goes on.
	second := f.CA.Server(t)
	second.WriteFiles(t, f.Dir, "server")
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	c, r := mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := peerSerial(c); got.Cmp(second.Cert.SerialNumber) != 0 {
		t.Errorf("after Reload: served serial %v, want the new %v (old %v)", got, second.Cert.SerialNumber, first)
	}
	if got := roundTrip(t, c, r, "get k\r\n", 3); got != "VALUE k 0 1\r\n1\r\nEND\r\n" {
		t.Errorf("new connection: got %q", got)
	}
	if got := roundTrip(t, old, oldR, "get k\r\n", 3); got != "VALUE k 0 1\r\n1\r\nEND\r\n" {
		t.Errorf("old connection after Reload: got %q", got)
	}
	if got := peerSerial(old); got.Cmp(first) != 0 {
		t.Errorf("old connection's serial changed to %v", got)
	}

	// Broken files: Reload fails and the last good certificate stays.
	third := f.CA.Server(t)
	for _, tt := range []struct {
		name     string
		cert     []byte
		key      []byte
		wantWhat string
	}{
		{"garbage certificate", []byte("not a certificate\n"), second.KeyPEM, "certificate chain"},
		{"key of another certificate", third.CertPEM, second.KeyPEM, "key"},
		{"truncated key", second.CertPEM, second.KeyPEM[:len(second.KeyPEM)/2], "key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tlstest.WriteFile(t, f.CertFile, tt.cert)
			tlstest.WriteFile(t, f.KeyFile, tt.key)
			err := s.Reload()
			var fe *tlsconf.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Reload: got %v, want a *tlsconf.FileError", err)
			}
			if fe.What != tt.wantWhat {
				t.Errorf("Reload error about the %s (%v), want the %s", fe.What, err, tt.wantWhat)
			}
			c, _ := mustDialTLS(t, addr, f.ClientConfig(nil))
			if got := peerSerial(c); got.Cmp(second.Cert.SerialNumber) != 0 {
				t.Errorf("after a failed Reload: served serial %v, want the last good %v", got, second.Cert.SerialNumber)
			}
		})
	}
	// Good files again: Reload takes them.
	third.WriteFiles(t, f.Dir, "server")
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	c, _ = mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := peerSerial(c); got.Cmp(third.Cert.SerialNumber) != 0 {
		t.Errorf("after repairing the files: served serial %v, want %v", got, third.Cert.SerialNumber)
	}
}

// TestTLSRefreshCerts checks memcached's refresh_certs command: it reloads
// the certificates as SIGHUP does, answering OK (silent with noreply), and a
// broken file is answered with memcached's error, noreply or not, leaving
// the last good certificate in place.
func TestTLSRefreshCerts(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	_, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	c, r := mustDialTLS(t, addr, f.ClientConfig(nil))

	second := f.CA.Server(t)
	second.WriteFiles(t, f.Dir, "server")
	if got := roundTrip(t, c, r, "refresh_certs\r\n", 1); got != "OK\r\n" {
		t.Fatalf("refresh_certs: got %q, want OK", got)
	}
	nc, _ := mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := peerSerial(nc); got.Cmp(second.Cert.SerialNumber) != 0 {
		t.Errorf("after refresh_certs: served serial %v, want the new %v", got, second.Cert.SerialNumber)
	}

	third := f.CA.Server(t)
	third.WriteFiles(t, f.Dir, "server")
	if got := roundTrip(t, c, r, "refresh_certs noreply\r\nversion\r\n", 1); got != "VERSION "+Version+"\r\n" {
		t.Fatalf("refresh_certs noreply: got %q, want no reply before VERSION", got)
	}
	nc, _ = mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := peerSerial(nc); got.Cmp(third.Cert.SerialNumber) != 0 {
		t.Errorf("after refresh_certs noreply: served serial %v, want %v", got, third.Cert.SerialNumber)
	}

	tlstest.WriteFile(t, f.CertFile, []byte("not a certificate\n"))
	for _, req := range []string{"refresh_certs\r\n", "refresh_certs noreply\r\n"} {
		got := roundTrip(t, c, r, req, 1)
		if want := "Error loading the certificate chain: " + f.CertFile + " : "; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\r\n") {
			t.Errorf("%q with a broken certificate: got %q, want a line starting %q", req, got, want)
		}
	}
	nc, _ = mustDialTLS(t, addr, f.ClientConfig(nil))
	if got := peerSerial(nc); got.Cmp(third.Cert.SerialNumber) != 0 {
		t.Errorf("after a failed refresh_certs: served serial %v, want the last good %v", got, third.Cert.SerialNumber)
	}
}

func TestReloadWithoutTLS(t *testing.T) {
	s := newTestServer(Config{Logger: quietLogger()})
	defer s.store.Close()
	if err := s.Reload(); err != nil {
		t.Errorf("Reload without anything to reload: %v", err)
	}
}

// TestTLSHandshakeTimeoutFreesSlot holds the only connection slot with a
// client that never begins its handshake: the handshake deadline frees it.
func TestTLSHandshakeTimeoutFreesSlot(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	tc := tlsConfig(f)
	tc.HandshakeTimeout = 300 * time.Millisecond
	s, addr := serveTLSForTest(t, Config{MaxConns: 1}, tc)
	silent, r := dialForTest(t, addr)
	start := time.Now()
	_ = silent.SetReadDeadline(start.Add(tlsconf.DefaultHandshakeTimeout / 2))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("silent client: got %v, want EOF when the handshake deadline passes", err)
	}
	t.Logf("silent client closed after %v", time.Since(start))
	testutil.WaitFor(t, 5*time.Second, "s.net.OpenConns() == 0", func() bool { return s.net.OpenConns() == 0 })
	if got := s.counters.SSLHandshakeErrors.Load(); got != 1 {
		t.Errorf("ssl_handshake_errors = %d, want 1 (the timeout)", got)
	}
	if err := tlsVersionCommand(t, addr, f.ClientConfig(nil)); err != nil {
		t.Errorf("client after the slot was freed: %v", err)
	}
}

// TestShutdownInterruptsHandshake checks that a connection waiting for its
// handshake does not hold up Shutdown: it has begun no request.
func TestShutdownInterruptsHandshake(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	tc := tlsConfig(f)
	tc.HandshakeTimeout = time.Hour
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(Config{TLS: tc, Logger: quietLogger()})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	silent, r := dialForTest(t, l.Addr().String())
	testutil.WaitFor(t, 5*time.Second, "s.net.OpenConns() == 1 && connIdle(s, silent.LocalAddr().String())", func() bool { return s.net.OpenConns() == 1 && connIdle(s, silent.LocalAddr().String()) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v, want nil: the handshake should be interrupted", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: got %v, want ErrServerClosed", err)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("silent client after Shutdown: got %v, want EOF", err)
	}
}

// TestTLSListen checks which listeners Listen makes TLS: TCP ones but those
// of NoTLSAddrs; never the unix socket.
func TestTLSListen(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	serve := func(t *testing.T, cfg Config) []net.Listener {
		t.Helper()
		s := newTestServer(cfg)
		ls, err := s.Listen()
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		served := make(chan error, 1)
		go func() { served <- s.ServeListeners(ls) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("ServeListeners: got %v, want ErrServerClosed", err)
			}
		})
		return ls
	}

	t.Run("notls", func(t *testing.T) {
		tc := tlsConfig(f)
		tc.NoTLSAddrs = []string{"127.0.0.2:0"}
		ls := serve(t, Config{ListenAddrs: []string{"127.0.0.1:0", "127.0.0.2:0"}, TLS: tc, Logger: quietLogger()})
		if err := tlsVersionCommand(t, ls[0].Addr().String(), f.ClientConfig(nil)); err != nil {
			t.Errorf("TLS listener: %v", err)
		}
		c, r := dialForTest(t, ls[1].Addr().String())
		if got := roundTrip(t, c, r, "version\r\n", 1); got != "VERSION "+Version+"\r\n" {
			t.Errorf("notls listener: got %q", got)
		}
		settings, _ := readStats(t, c, r, "stats settings\r\n")
		wantStats(t, "stats settings", settings, map[string]string{"inter": "127.0.0.1:0,notls:127.0.0.2:0"})
	})
	t.Run("unix socket", func(t *testing.T) {
		dir, err := os.MkdirTemp("", "mctls")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		sock := filepath.Join(dir, "s.sock")
		serve(t, Config{UnixSocket: sock, TLS: tlsConfig(f), Logger: quietLogger()})
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if got := roundTrip(t, c, bufio.NewReader(c), "version\r\n", 1); got != "VERSION "+Version+"\r\n" {
			t.Errorf("unix socket with TLS on: got %q, want a plain answer", got)
		}
	})
}

func TestTLSSessionCache(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	for _, cache := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[cache]
		t.Run(name, func(t *testing.T) {
			tc := tlsConfig(f)
			tc.SessionCache = cache
			_, addr := serveTLSForTest(t, Config{}, tc)
			client := f.ClientConfig(nil)
			client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			var resumed []bool
			var stats map[string]string
			for range 2 {
				c, r := mustDialTLS(t, addr, client)
				// The read takes in the session ticket, which TLS 1.3
				// sends after the handshake.
				stats, _ = readStats(t, c, r, "stats\r\n")
				resumed = append(resumed, c.ConnectionState().DidResume)
				c.Close()
			}
			if resumed[0] || resumed[1] != cache {
				t.Errorf("resumed = %v, want [false %v]", resumed, cache)
			}
			if cache {
				wantStats(t, "stats", stats, map[string]string{"ssl_new_sessions": "1"})
			} else if _, ok := stats["ssl_new_sessions"]; ok {
				t.Errorf("ssl_new_sessions printed without the session cache")
			}
		})
	}
}

func TestTLSStatsReset(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	s, addr := serveTLSForTest(t, Config{}, tlsConfig(f))
	s.counters.SSLHandshakeErrors.Store(3)
	c, r := mustDialTLS(t, addr, f.ClientConfig(nil))
	before, _ := readStats(t, c, r, "stats\r\n")
	wantStats(t, "before reset", before, map[string]string{"ssl_handshake_errors": "3"})
	if _, ok := before["time_since_server_cert_refresh"]; !ok {
		t.Errorf("time_since_server_cert_refresh missing")
	}
	roundTrip(t, c, r, "stats reset\r\n", 1)
	after, _ := readStats(t, c, r, "stats\r\n")
	wantStats(t, "after reset", after, map[string]string{"ssl_handshake_errors": "0"})
}

func TestStatsWithoutTLS(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	stats, _ := readStats(t, c, r, "stats\r\n")
	for name := range stats {
		if strings.HasPrefix(name, "ssl_") || name == "time_since_server_cert_refresh" {
			t.Errorf("stats prints %s without TLS", name)
		}
	}
	// stats settings shows memcached's TLS settings without TLS.
	settings, _ := readStats(t, c, r, "stats settings\r\n")
	wantStats(t, "stats settings", settings, map[string]string{
		"ssl_enabled": "no", "ssl_chain_cert": "(null)", "ssl_key": "(null)", "ssl_verify_mode": "0",
		"ssl_keyformat": "1", "ssl_ciphers": "NULL", "ssl_ca_cert": "NULL", "ssl_wbuf_size": "16384",
		"ssl_session_cache": "no", "ssl_kernel_tls": "no", "ssl_min_version": "tlsv1.2",
	})
}

func TestTLSLoadErrors(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	other := f.CA.Server(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(f.Dir, name)
		tlstest.WriteFile(t, p, b)
		return p
	}
	garbage := write("garbage", []byte("garbage\n"))
	otherKey := write("other.key", other.KeyPEM)
	missing := filepath.Join(f.Dir, "missing.pem")
	tests := []struct {
		name string
		cfg  tlsconf.Config
		what string
		file string
		msg  string
	}{
		{"no certificate file", tlsconf.Config{KeyFile: f.KeyFile}, "certificate chain", "",
			"Error loading the certificate chain: no file given"},
		{"missing certificate file", tlsconf.Config{CertFile: missing, KeyFile: f.KeyFile}, "certificate chain", missing,
			"Error loading the certificate chain: " + missing + " : no such file or directory"},
		{"garbage certificate", tlsconf.Config{CertFile: garbage, KeyFile: f.KeyFile}, "certificate chain", garbage,
			"Error loading the certificate chain: " + garbage + " : no PEM certificate found"},
		{"missing key file", tlsconf.Config{CertFile: f.CertFile, KeyFile: missing}, "key", missing,
			"Error loading the key: " + missing + " : no such file or directory"},
		{"garbage key", tlsconf.Config{CertFile: f.CertFile, KeyFile: garbage}, "key", garbage,
			"Error loading the key: " + garbage + " : no PEM private key found"},
		{"no key anywhere", tlsconf.Config{CertFile: f.CertFile}, "key", f.CertFile,
			"Error loading the key: " + f.CertFile + " : no private key in the certificate file, and no key file given"},
		{"key of another certificate", tlsconf.Config{CertFile: f.CertFile, KeyFile: otherKey}, "key", otherKey,
			"Error loading the key: " + otherKey + " : tls: private key does not match public key"},
		{"PEM key read as DER", tlsconf.Config{CertFile: f.CertFile, KeyFile: f.KeyFile, KeyDER: true}, "key", f.KeyFile, ""},
		{"missing CA file", tlsconf.Config{CertFile: f.CertFile, KeyFile: f.KeyFile, CAFile: missing}, "CA certificate", missing,
			"Error loading the CA certificate: " + missing + " : no such file or directory"},
		{"garbage CA file", tlsconf.Config{CertFile: f.CertFile, KeyFile: f.KeyFile, CAFile: garbage}, "CA certificate", garbage,
			"Error loading the CA certificate: " + garbage + " : no PEM certificate found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(Config{ListenAddrs: []string{"127.0.0.1:0"}, TLS: &tt.cfg, Logger: quietLogger()})
			defer s.store.Close()
			ls, err := s.Listen()
			for _, l := range ls {
				l.Close()
			}
			var fe *tlsconf.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Listen: got %v, want a *tlsconf.FileError", err)
			}
			if fe.What != tt.what || fe.File != tt.file {
				t.Errorf("error about the %s %q, want the %s %q", fe.What, fe.File, tt.what, tt.file)
			}
			if tt.msg != "" && fe.Error() != tt.msg {
				t.Errorf("message %q, want %q", fe.Error(), tt.msg)
			}
			if strings.HasPrefix(tt.name, "missing") && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
			}
		})
	}
}

func TestTLSKeyFiles(t *testing.T) {
	f := tlstest.NewFiles(t, "memcluster test CA")
	both := filepath.Join(f.Dir, "both.pem")
	tlstest.WriteFile(t, both, append(append([]byte(nil), f.Server.CertPEM...), f.Server.KeyPEM...))
	der := filepath.Join(f.Dir, "server.der")
	tlstest.WriteFile(t, der, f.Server.KeyDER)
	for _, tt := range []struct {
		name string
		cfg  tlsconf.Config
		key  string // ssl_key in stats settings
		fmt  string // ssl_keyformat
	}{
		{"key in the certificate file", tlsconf.Config{CertFile: both}, both, "1"},
		{"DER key", tlsconf.Config{CertFile: f.CertFile, KeyFile: der, KeyDER: true}, der, "2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := serveTLSForTest(t, Config{}, &tt.cfg)
			c, r := mustDialTLS(t, addr, f.ClientConfig(nil))
			if got := peerSerial(c); got.Cmp(f.Server.Cert.SerialNumber) != 0 {
				t.Errorf("served serial %v, want %v", got, f.Server.Cert.SerialNumber)
			}
			settings, _ := readStats(t, c, r, "stats settings\r\n")
			wantStats(t, "stats settings", settings, map[string]string{"ssl_key": tt.key, "ssl_keyformat": tt.fmt})
		})
	}
}

// TestTLSConfigNotModified checks that the node copies the caller's TLS
// configuration.
func TestTLSConfigNotModified(t *testing.T) {
	tc := &tlsconf.Config{CertFile: "c", NoTLSAddrs: []string{"a"}}
	s := newTestServer(Config{TLS: tc, Logger: quietLogger()})
	defer s.store.Close()
	if tc.MinVersion != 0 || tc.HandshakeTimeout != 0 {
		t.Errorf("New wrote defaults into the caller's tlsconf.Config: %+v", tc)
	}
	tc.NoTLSAddrs[0] = "b"
	if got := s.cfg.TLS.NoTLSAddrs[0]; got != "a" {
		t.Errorf("the node shares NoTLSAddrs with the caller: %q", got)
	}
	if s.cfg.TLS.MinVersion != tls.VersionTLS12 || s.cfg.TLS.HandshakeTimeout != tlsconf.DefaultHandshakeTimeout {
		t.Errorf("defaults: MinVersion %x, HandshakeTimeout %v", s.cfg.TLS.MinVersion, s.cfg.TLS.HandshakeTimeout)
	}
}
