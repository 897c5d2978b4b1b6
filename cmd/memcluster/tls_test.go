package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/node"
	"golang.org/x/sys/unix"
)

// testCerts are a CA and a server certificate written to a temporary
// directory, plus files that are not what they claim to be.
type testCerts struct {
	*tlstest.Files
	garbage, otherKey string
	missing           string
}

func newTestCerts(t *testing.T) *testCerts {
	t.Helper()
	c := &testCerts{Files: tlstest.NewFiles(t, "daemon test CA")}
	_, c.otherKey = c.CA.Server(t).WriteFiles(t, c.Dir, "other")
	c.garbage = filepath.Join(c.Dir, "garbage")
	tlstest.WriteFile(t, c.garbage, []byte("garbage\n"))
	c.missing = filepath.Join(c.Dir, "missing.pem")
	return c
}

// TestRunTLSStartErrors starts the daemon with -Z and files it cannot use:
// it exits as memcached does, with memcached's message and EX_USAGE.
func TestRunTLSStartErrors(t *testing.T) {
	keepGlobals(t)
	c := newTestCerts(t)
	port := freePort(t)
	tests := []struct {
		name   string
		ssl    string // the -o value
		stderr string
	}{
		{"no certificate", "ssl_key=" + c.KeyFile,
			"memcluster: Error loading the certificate chain: no file given; name it with -o ssl_chain_cert=<file>\n" +
				"Try 'memcluster --help' for more information.\n"},
		{"missing certificate file", "ssl_chain_cert=" + c.missing + ",ssl_key=" + c.KeyFile,
			"memcluster: Error loading the certificate chain: " + c.missing + " : no such file or directory\n"},
		{"not a certificate", "ssl_chain_cert=" + c.garbage + ",ssl_key=" + c.KeyFile,
			"memcluster: Error loading the certificate chain: " + c.garbage + " : no PEM certificate found\n"},
		{"missing key file", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.missing,
			"memcluster: Error loading the key: " + c.missing + " : no such file or directory\n"},
		{"not a key", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.garbage,
			"memcluster: Error loading the key: " + c.garbage + " : no PEM private key found\n"},
		{"another certificate's key", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.otherKey,
			"memcluster: Error loading the key: " + c.otherKey + " : tls: private key does not match public key\n"},
		{"no key", "ssl_chain_cert=" + c.CertFile,
			"memcluster: Error loading the key: " + c.CertFile + " : no private key in the certificate file, and no key file given\n"},
		{"unknown key format", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.KeyFile + ",ssl_keyformat=3",
			"memcluster: Error loading the key: " + c.KeyFile + " : ssl_keyformat=3 is neither 1 (PEM) nor 2 (ASN.1, DER)\n" +
				"Try 'memcluster --help' for more information.\n"},
		{"missing CA file", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.KeyFile + ",ssl_ca_cert=" + c.missing,
			"memcluster: Error loading the CA certificate: " + c.missing + " : no such file or directory\n"},
		{"not a CA file", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.KeyFile + ",ssl_ca_cert=" + c.garbage,
			"memcluster: Error loading the CA certificate: " + c.garbage + " : no PEM certificate found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr testutil.LockedBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(context.Background(), context.Background(), []string{"-Z", "-o", tt.ssl, "-l", "127.0.0.1", "-p", port, "--no-cluster"}, nil, &stdout, &stderr)
			}()
			select {
			case code := <-done:
				if code != exitUsage {
					t.Errorf("exit status %d, want %d (EX_USAGE, as memcached)", code, exitUsage)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return on bad TLS files")
			}
			if got := stderr.String(); got != tt.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, tt.stderr)
			}
		})
	}
}

func TestParseTLS(t *testing.T) {
	tests := []struct {
		args []string
		want *node.TLSConfig
		warn []string // in the log
	}{
		{[]string{"-o", "ssl_chain_cert=/c.pem"}, nil, nil},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem,ssl_key=/k.pem"}, &node.TLSConfig{CertFile: "/c.pem", KeyFile: "/k.pem"}, nil},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem,ssl_keyformat=2,ssl_verify_mode=3,ssl_ca_cert=/ca.pem,ssl_min_version=3,ssl_session_cache"},
			&node.TLSConfig{CertFile: "/c.pem", KeyDER: true, CAFile: "/ca.pem", ClientAuth: tls.RequireAndVerifyClientCert,
				MinVersion: tls.VersionTLS13, SessionCache: true}, nil},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem,ssl_keyformat=1,ssl_verify_mode=1,ssl_ca_cert=/ca.pem,ssl_min_version=0"},
			&node.TLSConfig{CertFile: "/c.pem", CAFile: "/ca.pem", ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS10}, nil},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem", "-l", "notls:127.0.0.1:1,127.0.0.1:2,notls:10.0.0.1"},
			&node.TLSConfig{CertFile: "/c.pem", NoTLSAddrs: []string{"127.0.0.1:1", "10.0.0.1"}}, nil},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem,ssl_ciphers=HIGH,ssl_wbuf_size=32,ssl_kernel_tls"},
			&node.TLSConfig{CertFile: "/c.pem"},
			[]string{`option="-o ssl_ciphers"`, `option="-o ssl_wbuf_size"`, `option="-o ssl_kernel_tls"`}},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem,ssl_verify_mode=2"},
			&node.TLSConfig{CertFile: "/c.pem", ClientAuth: tls.RequireAndVerifyClientCert},
			[]string{"no ssl_ca_cert is given"}},
		{[]string{"-Z", "-o", "ssl_chain_cert=/c.pem", "-s", "/tmp/mc.sock"},
			&node.TLSConfig{CertFile: "/c.pem"}, []string{"TLS has no effect"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, logged, err := parse(tt.args...)
			if err != nil {
				t.Fatalf("parseArgs: %v", err)
			}
			if !reflect.DeepEqual(o.cfg.TLS, tt.want) {
				t.Errorf("cfg.TLS = %+v, want %+v", o.cfg.TLS, tt.want)
			}
			for _, w := range tt.warn {
				if !strings.Contains(logged, w) {
					t.Errorf("log does not hold %q:\n%s", w, logged)
				}
			}
			if len(tt.warn) == 0 && logged != "" {
				t.Errorf("unexpected log:\n%s", logged)
			}
		})
	}
}

// tlsSerial connects to addr over TLS, trusting ca, checks that the node
// answers, and returns the serial number of the certificate it presented.
func tlsSerial(addr string, ca *tlstest.CA) (*big.Int, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: ca.Pool}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, "version\r\n"); err != nil {
		return nil, err
	}
	if _, err := bufio.NewReader(nc).ReadString('\n'); err != nil {
		return nil, err
	}
	return nc.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestRunReloadsOnSIGHUP serves TLS from the daemon, replaces the
// certificate and signals this process with SIGHUP: the daemon serves the
// new certificate and keeps running; a broken file on the next SIGHUP is
// logged as an error and the certificate stays. Both are logged at the
// default level.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	keepGlobals(t)
	c := newTestCerts(t)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.LockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, context.Background(), []string{"-Z", "-o", "ssl_chain_cert=" + c.CertFile + ",ssl_key=" + c.KeyFile,
			"-l", "127.0.0.1", "-p", port, "--no-cluster"}, nil, &stdout, &stderr)
	}()

	// waitServing polls until the node presents the certificate with
	// serial want.
	waitServing := func(want *big.Int, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := tlsSerial(addr, c.CA)
			if err == nil && got.Cmp(want) == 0 {
				return
			}
			select {
			case code := <-done:
				t.Fatalf("run returned %d; stderr:\n%s", code, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: serial %v (%v) after 10s, want %v; stderr:\n%s", what, got, err, want, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLogged := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("stderr does not hold %q after 10s:\n%s", want, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hup := func() {
		t.Helper()
		if err := unix.Kill(os.Getpid(), unix.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitServing(c.Server.Cert.SerialNumber, "at start")

	next := c.CA.Server(t)
	next.WriteFiles(t, c.Dir, "server")
	hup()
	waitServing(next.Cert.SerialNumber, "after SIGHUP")
	waitLogged(`level=INFO msg="SIGHUP: reloaded"`)

	tlstest.WriteFile(t, c.CertFile, []byte("garbage\n"))
	hup()
	waitLogged(`level=ERROR msg="SIGHUP: reload failed; keeping what was loaded before"`)
	if got, err := tlsSerial(addr, c.CA); err != nil || got.Cmp(next.Cert.SerialNumber) != 0 {
		t.Errorf("after a failed reload: serial %v (%v), want the last good %v", got, err, next.Cert.SerialNumber)
	}
	if logged := stderr.String(); !strings.Contains(logged, "Error loading the certificate chain: "+c.CertFile+" : no PEM certificate found") {
		t.Errorf("the reload error does not say what is wrong:\n%s", logged)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("run did not return after the signal; stderr:\n%s", stderr.String())
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}
