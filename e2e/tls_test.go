package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/tlstest"
)

// TLS: both servers started with memcached's -Z and -o ssl_* options, as
// an operator would start memcached.

// tlsCerts are a throwaway CA and a server certificate for 127.0.0.1
// written to a test's temporary directory, and a client certificate.
type tlsCerts struct {
	*tlstest.Files
	client *tlstest.Leaf
}

func newTLSCerts(t *testing.T) *tlsCerts {
	t.Helper()
	f := tlstest.NewFiles(t, "e2e CA")
	return &tlsCerts{Files: f, client: f.CA.Client(t, "e2e client")}
}

// flags returns -Z with the server's certificate, and extra -o options.
func (c *tlsCerts) flags(extra ...string) []string {
	return []string{"-Z", "-o", strings.Join(append([]string{"ssl_chain_cert=" + c.CertFile, "ssl_key=" + c.KeyFile}, extra...), ",")}
}

// tlsVersionOf sends "version" over TLS and returns the serial of the
// server's certificate, or the error that stopped the exchange (a server
// that refuses a client certificate under TLS 1.3 does so after the
// client's handshake, on the first read).
func tlsVersionOf(addr string, cfg *tls.Config) (*big.Int, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, "version\r\n"); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return nil, fmt.Errorf("version: got %q", line)
	}
	return nc.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestGomemcacheTLS runs the gomemcache suite over gomemcache's TLS
// dialing, and checks that a plain client on the TLS port is not served.
func TestGomemcacheTLS(t *testing.T) {
	t.Parallel()
	certs := newTLSCerts(t)
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name, certs.flags()...)
			c := memcache.New(srv.Addr)
			c.Timeout = 5 * time.Second
			c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := tls.Dialer{Config: &tls.Config{RootCAs: certs.CA.Pool}}
				return d.DialContext(ctx, network, addr)
			}
			defer c.Close()
			testGomemcache(t, c)

			raw := srv.Raw(t)
			raw.SendString("set plain 0 0 1\r\nx\r\n")
			if got, closed := raw.WaitClosed(5 * time.Second); !closed || len(got) != 0 {
				t.Errorf("plain client on the TLS port: got %q, closed %v; want nothing and closed", got, closed)
			}
			if _, err := c.Get("plain"); err != memcache.ErrCacheMiss {
				t.Errorf("Get(plain) after a plain set: %v, want a miss", err)
			}
		})
	}
}

// TestTLSClientCertificates starts both servers requiring a client
// certificate signed by the CA (ssl_verify_mode=2, ssl_ca_cert).
func TestTLSClientCertificates(t *testing.T) {
	t.Parallel()
	certs := newTLSCerts(t)
	stranger := tlstest.NewCA(t, "another CA").Client(t, "stranger")
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			srv := servertest.Start(t, name, certs.flags("ssl_verify_mode=2", "ssl_ca_cert="+certs.CAFile)...)
			if _, err := tlsVersionOf(srv.Addr, certs.ClientConfig(certs.client)); err != nil {
				t.Errorf("client with a certificate of the CA refused: %v", err)
			}
			if _, err := tlsVersionOf(srv.Addr, certs.ClientConfig(nil)); err == nil {
				t.Errorf("client without a certificate served")
			}
			cfg := certs.ClientConfig(nil)
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger.TLS, nil }
			if _, err := tlsVersionOf(srv.Addr, cfg); err == nil {
				t.Errorf("client with a certificate of another CA served")
			}
			old := certs.ClientConfig(certs.client)
			old.MaxVersion = tls.VersionTLS11
			old.MinVersion = tls.VersionTLS10
			if _, err := tlsVersionOf(srv.Addr, old); err == nil {
				t.Errorf("TLS 1.1 client served; the default minimum is TLS 1.2")
			}
		})
	}
}

// TestTLSReloadOnSIGHUP sends SIGHUP to a running server: it serves on.
// memcluster reloads its certificate (memcached ignores the signal and
// reloads on the "refresh_certs" command instead): new connections get the
// new certificate, pooled ones go on, and a broken file on the next SIGHUP
// leaves the certificate as it was.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			certs := newTLSCerts(t)
			srv := servertest.Start(t, name, append(certs.flags(), "-v")...)
			cfg := certs.ClientConfig(nil)
			serial := func() *big.Int {
				t.Helper()
				got, err := tlsVersionOf(srv.Addr, cfg)
				if err != nil {
					t.Fatalf("TLS version: %v\noutput:\n%s", err, srv.Output())
				}
				return got
			}
			// waitFor polls cond for up to 10 s while the server runs.
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for !cond() {
					if srv.Exited() {
						t.Fatalf("%s exited on SIGHUP:\n%s", name, srv.Output())
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: not within 10s of SIGHUP:\n%s", what, srv.Output())
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			first := certs.Server.Cert.SerialNumber
			if got := serial(); got.Cmp(first) != 0 {
				t.Fatalf("serial %v, want %v", got, first)
			}
			c := memcache.New(srv.Addr)
			c.Timeout = 5 * time.Second
			c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := tls.Dialer{Config: cfg}
				return d.DialContext(ctx, network, addr)
			}
			defer c.Close()
			if err := c.Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
				t.Fatalf("Set: %v", err)
			}

			next := certs.CA.Server(t)
			next.WriteFiles(t, certs.Dir, "server")
			srv.Signal(t, syscall.SIGHUP)
			if name == "memcached" {
				// It does not act on the signal: it must not exit on
				// it, and serves the certificate it started with.
				if st := srv.Wait(300 * time.Millisecond); st != nil {
					t.Fatalf("memcached exited on SIGHUP (%v):\n%s", st, srv.Output())
				}
				if got := serial(); got.Cmp(first) != 0 {
					t.Errorf("memcached changed its certificate on SIGHUP")
				}
			} else {
				waitFor("the new certificate", func() bool { return serial().Cmp(next.Cert.SerialNumber) == 0 })
			}
			// The pooled connection, made before the signal, still serves.
			if it, err := c.Get("k"); err != nil || string(it.Value) != "v" {
				t.Errorf("Get after SIGHUP: %v", err)
			}
			if srv.Exited() {
				t.Fatalf("%s exited on SIGHUP:\n%s", name, srv.Output())
			}
			if name == "memcached" {
				return
			}

			tlstest.WriteFile(t, certs.CertFile, []byte("not a certificate\n"))
			srv.Signal(t, syscall.SIGHUP)
			waitFor("the reload error", func() bool { return strings.Contains(srv.Output(), "reload failed") })
			if got := serial(); got.Cmp(next.Cert.SerialNumber) != 0 {
				t.Errorf("after a failed reload: serial %v, want the last good %v", got, next.Cert.SerialNumber)
			}
			if st := srv.Stop(); st == nil || st.ExitCode() != 0 {
				t.Errorf("exit after SIGTERM: %v, want status 0\n%s", st, srv.Output())
			}
		})
	}
}
