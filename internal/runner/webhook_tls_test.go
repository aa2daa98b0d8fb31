package runner

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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/wire"
)

// certFiles writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and a pool trusting the certificate.
func certFiles(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "qqgate webhook test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// The listener serves HTTPS with the given certificate; plain HTTP to it
// fails, and a path other than the configured one is 404.
func TestRunnerWebhookTLS(t *testing.T) {
	cert, key, pool := certFiles(t)
	g := newRig(t, func(o *Options) {
		o.Webhook = WebhookListener{Listen: "127.0.0.1:0", Path: "/qq/callback", TLSCertFile: cert, TLSKeyFile: key, MaxAge: 5 * time.Minute}
	}, acct{app: "101", extra: hookExtra}).start()
	g.hookRunning("101")
	require.Eventually(t, func() bool { return g.r.WebhookAddr() != nil }, waitFor, 1e6)
	base := "https://" + g.r.WebhookAddr().String()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: base + "/qq/callback", AppID: "101", Secret: apps["101"], Client: hc})
	require.NoError(t, err)
	require.NoError(t, p.Validate(context.Background(), true))
	res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	require.True(t, res.Acked)
	assert.Equal(t, res.ID, g.lines(1, "bot-101")[0].ID)
	stale, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{StaleBy: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, stale.Attempts[0].Status, "older than max_age")

	other, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: base + "/elsewhere", AppID: "101", Secret: apps["101"], Client: hc, Retries: -1})
	require.NoError(t, err)
	r2, err := other.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, r2.Attempts[0].Status)

	plain, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: "http://" + g.r.WebhookAddr().String() + "/qq/callback", AppID: "101", Secret: apps["101"], Retries: -1})
	require.NoError(t, err)
	defer plain.Close()
	r3, err := plain.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	assert.NotEqual(t, http.StatusOK, r3.Attempts[0].Status, "plain HTTP to the TLS listener is not served")
}
