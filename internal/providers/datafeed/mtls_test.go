package datafeed_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

// clientCert writes a self-signed client certificate and its key as PEM
// files and returns their paths and the certificate.
func clientCert(t *testing.T, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

func writePEM(t *testing.T, path, typ string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The partner takes calls only over mutual TLS: a server that verifies
// client certificates, as the partner's does, lets in the client with the
// configured certificate (and CA for the server) and no other.
func TestMutualTLSIsRequiredAndWorks(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := clientCert(t, dir, "etl")
	otherCert, otherKey, _ := clientCert(t, dir, "stranger")
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{RequireClientCert: true})
	srv := httptest.NewUnstartedServer(sb)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(dir, "server-ca.pem")
	writePEM(t, caFile, "CERTIFICATE", srv.Certificate().Raw)

	h := httpx.Config{MaxAttempts: 1}
	tests := []struct {
		name      string
		cert, key string
		ok        bool
	}{
		{"the configured certificate", certFile, keyFile, true},
		{"no certificate", "", "", false},
		{"a certificate the partner did not sign", otherCert, otherKey, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := datafeed.New(datafeed.Config{BaseURL: srv.URL, ClientCertFile: tc.cert, ClientKeyFile: tc.key, CAFile: caFile, HTTP: h})
			if err != nil {
				t.Fatal(err)
			}
			res := c.Send(context.Background(), ops(2), nil)
			if got := res[0].Outcome == partner.OK; got != tc.ok {
				t.Fatalf("outcome %s %v; want ok=%v", res[0].Outcome, res[0].Err, tc.ok)
			}
		})
	}
	if st := sb.State(); len(st.Customers) != 2 || st.Sessions != 1 {
		t.Fatalf("state %+v: want the session and the customers of the certified client only", st)
	}
}

// A sandbox configured to require a client certificate refuses plain HTTP
// (and TLS without a certificate) with 403, whatever the session.
func TestSandboxRequiresAClientCertificateWhenConfigured(t *testing.T) {
	srv := httptest.NewServer(datafeed.NewSandbox(datafeed.SandboxOptions{Token: token, RequireClientCert: true}))
	defer srv.Close()
	status, out := post(t, srv.URL, token, []byte(`{"customers":[]}`))
	if status != http.StatusForbidden {
		t.Fatalf("HTTP %d %s; want 403", status, out)
	}
}
