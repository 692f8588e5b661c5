package http

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files and returns their paths and the certificate.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skyring test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile, cert
}

// With a certificate and key the server speaks HTTPS only; a bad pair
// fails at Listen with a clear error.
func TestServerTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, cert := writeSelfSigned(t)
	s := NewServer(newMemService(), Options{Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := c.Get("https://" + s.Addr().String() + "/ping")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	plain := &http.Client{Timeout: 5 * time.Second}
	res, err = plain.Get("http://" + s.Addr().String() + "/ping")
	if err == nil {
		res.Body.Close()
		require.NotEqual(t, http.StatusOK, res.StatusCode, "plain HTTP is not served")
	}

	bad := NewServer(newMemService(), Options{Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: certFile})
	err = bad.Start(context.Background())
	require.ErrorContains(t, err, "TLS certificate and key")
}
