package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// dialer dials the nodes, for the Selector, gomemcache and stats: in plain
// TCP, or with TLS (-tls).
type dialer struct {
	tls *tls.Config // nil: plain TCP
}

// DialContext dials address, with TLS if d has it.
func (d dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.tls == nil {
		var nd net.Dialer
		return nd.DialContext(ctx, network, address)
	}
	td := tls.Dialer{Config: d.tls}
	return td.DialContext(ctx, network, address)
}

// tlsOptions are the -tls flags.
type tlsOptions struct {
	on                bool
	caFile            string // -tls-ca
	certFile, keyFile string // -tls-cert, -tls-key
}

// config returns the TLS configuration the options ask for: nil without
// -tls (or a -tls-* file, which implies it); the nodes verified against
// -tls-ca, or the system's roots; the certificate of -tls-cert and -tls-key
// offered to nodes that ask for one (ssl_verify_mode).
func (o tlsOptions) config() (*tls.Config, error) {
	if !o.on && o.caFile == "" && o.certFile == "" && o.keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca: %s: %w", o.caFile, errors.New("no PEM certificate found"))
		}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, usagef("-tls-cert and -tls-key go together")
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
