// Package tlstest makes throwaway certificates for tests: a certificate
// authority, server certificates for 127.0.0.1 and localhost, and client
// certificates, each written to PEM files on request.
//
// Keys are ECDSA P-256, quick to generate. Every certificate gets a random
// serial number, so a test can tell two certificates of the same name
// apart, for example before and after a reload.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority that signs the certificates of one test.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM.
	CertPEM []byte
	// Pool holds Cert alone: the RootCAs of a client that trusts this CA,
	// or the ClientCAs of a server that does.
	Pool *x509.CertPool

	key *ecdsa.PrivateKey
}

// Leaf is a certificate signed by a CA, with its private key.
type Leaf struct {
	// Cert is the certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM.
	CertPEM []byte
	// KeyPEM is the private key in PEM (PKCS #8).
	KeyPEM []byte
	// KeyDER is the private key in DER (PKCS #8).
	KeyDER []byte
	// TLS is the certificate and key as crypto/tls takes them, for a
	// client's tls.Config.Certificates.
	TLS tls.Certificate
}

// NewCA returns a new certificate authority named cn, valid for a day.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("tlstest: creating the CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Pool:    pool,
		key:     key,
	}
}

// Server returns a new server certificate for 127.0.0.1, ::1 and
// localhost, signed by ca.
func (ca *CA) Server(t testing.TB) *Leaf {
	t.Helper()
	return ca.leaf(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client returns a new client certificate named cn, signed by ca.
func (ca *CA) Client(t testing.TB, cn string) *Leaf {
	t.Helper()
	return ca.leaf(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (ca *CA) leaf(t testing.TB, tmpl *x509.Certificate) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlstest: creating a certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return &Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		KeyDER:  keyDER,
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert},
	}
}

// WriteFiles writes the certificate and the key, in PEM, to name.pem and
// name.key in dir and returns their paths.
func (l *Leaf) WriteFiles(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+".key")
	WriteFile(t, certFile, l.CertPEM)
	WriteFile(t, keyFile, l.KeyPEM)
	return certFile, keyFile
}

// WriteFile writes the CA's certificate, in PEM, to name.pem in dir and
// returns its path.
func (ca *CA) WriteFile(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name+".pem")
	WriteFile(t, path, ca.CertPEM)
	return path
}

// WriteFile replaces the file at path with b, readable by its owner only,
// failing the test if it cannot. The file is written whole under another
// name and renamed into place, so a reader sees the old content or the new,
// never part of it.
func WriteFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generating a key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

// Files are a certificate authority and a server certificate signed by it,
// written to a test's temporary directory where a server's configuration
// names them.
type Files struct {
	// Dir is the directory the files are in.
	Dir string
	// CA is the certificate authority.
	CA *CA
	// Server is the server's certificate, for 127.0.0.1, ::1 and
	// localhost.
	Server *Leaf
	// CertFile and KeyFile are the server's certificate and key
	// (server.pem, server.key).
	CertFile, KeyFile string
	// CAFile is the CA's certificate (ca.pem).
	CAFile string
}

// NewFiles makes a CA named caName and a server certificate signed by it,
// and writes them to a new temporary directory of t's.
func NewFiles(t testing.TB, caName string) *Files {
	t.Helper()
	f := &Files{Dir: t.TempDir(), CA: NewCA(t, caName)}
	f.Server = f.CA.Server(t)
	f.CertFile, f.KeyFile = f.Server.WriteFiles(t, f.Dir, "server")
	f.CAFile = f.CA.WriteFile(t, f.Dir, "ca")
	return f
}

// ClientConfig returns a client configuration that trusts the CA and, if
// cert is not nil, presents it.
func (f *Files) ClientConfig(cert *Leaf) *tls.Config {
	cfg := &tls.Config{RootCAs: f.CA.Pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	return cfg
}
