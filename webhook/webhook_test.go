package webhook_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qqgate/qqgate/event"
	"github.com/qqgate/qqgate/gatewaytest"
	"github.com/qqgate/qqgate/webhook"
	"github.com/qqgate/qqgate/wire"
)

// The official docs' validation example.
func TestDocsFixture(t *testing.T) {
	key, err := webhook.KeyFromSecret("DG5g3B4j9X2KOErG")
	require.NoError(t, err)
	assert.Equal(t, "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d01bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706",
		webhook.SignValidation(key, "1725442341", "Arq0D5A61EgUu4OxUvOp"))

	// Served: the same answer through the handler.
	b := newBot(t, t.TempDir(), testApp, "DG5g3B4j9X2KOErG", newRecorder())
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"op":13,"d":{"plain_token":"Arq0D5A61EgUu4OxUvOp","event_ts":"1725442341"}}`))
	rec := httptest.NewRecorder()
	b.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"plain_token":"Arq0D5A61EgUu4OxUvOp","signature":"87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d01bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"}`, rec.Body.String())
}

// The docs' signing example: the seed is the secret repeated and cut.
func TestKeyDerivation(t *testing.T) {
	key, err := webhook.KeyFromSecret("naOC0ocQE3shWLAfffVLB1rhYPG7")
	require.NoError(t, err)
	assert.Equal(t, []byte("naOC0ocQE3shWLAfffVLB1rhYPG7naOC"), []byte(key.Seed()))
	pub := key.Public().(ed25519.PublicKey)
	assert.Equal(t, []byte{215, 195, 98, 254}, []byte(pub[:4]))
	short, err := webhook.KeyFromSecret("ab")
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("ab", 16), string(short.Seed()))
	_, err = webhook.KeyFromSecret("")
	assert.ErrorIs(t, err, webhook.ErrEmptySecret)
	_, err = webhook.NewBot(webhook.BotConfig{AppID: testApp, Handler: newRecorder(), Inbox: webhook.InboxConfig{Dir: t.TempDir()}})
	assert.ErrorIs(t, err, webhook.ErrEmptySecret)
}

func TestValidationThroughTheFake(t *testing.T) {
	b := newBot(t, t.TempDir(), testApp, testSecret, newRecorder())
	srv := httptest.NewServer(b)
	defer srv.Close()
	p := serve(t, srv, testApp, testSecret)
	require.NoError(t, p.Validate(context.Background(), true))
	require.NoError(t, p.Validate(context.Background(), false))
	// A signed validation with a bad signature is refused.
	wrong := serve(t, srv, testApp, "another secret")
	err := wrong.Validate(context.Background(), true)
	require.ErrorIs(t, err, gatewaytest.ErrValidation)
	assert.Contains(t, err.Error(), "401")
	assert.Equal(t, uint64(1), b.Stats().Rejected[webhook.RejectBadSignature])
}

func TestPushHandledInOrderWithDataUnchanged(t *testing.T) {
	rec := newRecorder()
	b := newBot(t, t.TempDir(), testApp, testSecret, rec)
	run(t, b)
	srv := httptest.NewServer(b)
	defer srv.Close()
	p := serve(t, srv, testApp, testSecret)
	d := json.RawMessage(`{ "id" : "ROBOT1.0_x", "content":"hi",  "author":{"user_openid":"U1"} }`)
	res := p.Push(context.Background(), wire.EventC2CMessageCreate, d, gatewaytest.PushFault{})
	require.True(t, res.Acked)
	assert.JSONEq(t, `{"op":12,"d":0}`, string(res.Attempts[0].Body))
	ev := <-rec.got
	assert.Equal(t, []byte(d), []byte(ev.Data), "d is handed over byte for byte")
	assert.Equal(t, res.ID, ev.ID)
	assert.Equal(t, wire.EventC2CMessageCreate, ev.Type)
	assert.Equal(t, uint64(1), ev.Seq)
	assert.Equal(t, testApp, ev.AccountID)
	m, err := ev.Message()
	require.NoError(t, err)
	assert.Equal(t, "hi", m.Content)
	for i := range 5 {
		_, err := p.PushMessage(context.Background(), wire.EventGroupAtMessageCreate, gatewaytest.PushFault{})
		require.NoError(t, err)
		ev := <-rec.got
		assert.Equal(t, uint64(i+2), ev.Seq)
	}
}

func TestBadAndMissingSignaturesHandleNothing(t *testing.T) {
	rec := newRecorder()
	b := newBot(t, t.TempDir(), testApp, testSecret, rec)
	srv := httptest.NewServer(b)
	defer srv.Close()
	p := serve(t, srv, testApp, testSecret)
	p2, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: testApp, Secret: testSecret, Retries: -1})
	require.NoError(t, err)
	defer p2.Close()
	_ = p
	ctx := context.Background()
	for _, f := range []gatewaytest.PushFault{{BadSignature: true}, {NoSignature: true}} {
		res, err := p2.PushMessage(ctx, wire.EventC2CMessageCreate, f)
		require.NoError(t, err)
		assert.False(t, res.Acked)
		assert.Equal(t, http.StatusUnauthorized, res.Attempts[0].Status)
	}
	// A valid signature over other bytes: the body was altered.
	key, _ := webhook.KeyFromSecret(testSecret)
	body := []byte(`{"id":"C2C_MESSAGE_CREATE:1","op":0,"d":{"content":"a"},"t":"C2C_MESSAGE_CREATE"}`)
	sig := webhook.Sign(key, "1800000000", body)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(bytes.Replace(body, []byte(`"a"`), []byte(`"b"`), 1)))
	req.Header.Set(webhook.HeaderSignature, sig)
	req.Header.Set(webhook.HeaderTimestamp, "1800000000")
	w := httptest.NewRecorder()
	b.ServeHTTP(w, req)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	// A signature that is not hex, or short.
	for _, s := range []string{"zz", strings.Repeat("g", 128), sig[:126]} {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set(webhook.HeaderSignature, s)
		req.Header.Set(webhook.HeaderTimestamp, "1800000000")
		w := httptest.NewRecorder()
		b.ServeHTTP(w, req)
		assert.Equal(t, http.StatusUnauthorized, w.Code)
	}
	st := b.Stats()
	assert.Equal(t, 0, st.Inbox.Depth)
	assert.Equal(t, uint64(0), st.Accepted)
	assert.Equal(t, uint64(5), st.Rejected[webhook.RejectBadSignature])
	assert.Equal(t, uint64(1), st.Rejected[webhook.RejectMissingSignature])
	// Nothing reaches the handler: one good push afterwards is seq 1.
	run(t, b)
	res, err := p.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	require.True(t, res.Acked)
	assert.Equal(t, uint64(1), (<-rec.got).Seq)
	assert.Len(t, rec.events(), 1)
}

func TestMaxAgeAndBodyBound(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	b := newBot(t, t.TempDir(), testApp, testSecret, newRecorder(), func(c *webhook.BotConfig) {
		c.MaxAge = 5 * time.Minute
		c.Now = now
		c.MaxBodyBytes = 4096
	})
	srv := httptest.NewServer(b)
	defer srv.Close()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: testApp, Secret: testSecret, Retries: -1, Now: now})
	require.NoError(t, err)
	defer p.Close()
	res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{StaleBy: 10 * time.Minute})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, res.Attempts[0].Status)
	res, err = p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{StaleBy: time.Minute})
	require.NoError(t, err)
	assert.True(t, res.Acked)
	big := p.Push(context.Background(), "C2C_MESSAGE_CREATE", json.RawMessage(`"`+strings.Repeat("x", 5000)+`"`), gatewaytest.PushFault{})
	assert.Equal(t, http.StatusRequestEntityTooLarge, big.Attempts[0].Status)
	st := b.Stats()
	assert.Equal(t, uint64(1), st.Rejected[webhook.RejectStale])
	assert.Equal(t, uint64(1), st.Rejected[webhook.RejectTooLarge])
	assert.Equal(t, 1, st.Inbox.Depth)
}

func TestRoutingByAppID(t *testing.T) {
	dir := t.TempDir()
	r1, r2 := newRecorder(), newRecorder()
	b1 := newBot(t, dir, "111", "secret-one", r1)
	b2 := newBot(t, dir, "222", "secret-two", r2)
	run(t, b1)
	run(t, b2)
	s := webhook.NewServer()
	require.NoError(t, s.Add(b1))
	srv := httptest.NewServer(s)
	defer srv.Close()
	p1 := serve(t, srv, "111", "secret-one")
	p2 := serve(t, srv, "222", "secret-two")
	ctx := context.Background()
	// One bot: no X-Bot-Appid is fine.
	res, err := p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{NoAppID: true})
	require.NoError(t, err)
	require.True(t, res.Acked)
	<-r1.got
	require.NoError(t, s.Add(b2))
	require.ErrorIs(t, s.Add(b2), webhook.ErrDuplicateApp)
	require.NoError(t, p1.Validate(ctx, true))
	require.NoError(t, p2.Validate(ctx, true))
	res1, err := p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	res2, err := p2.PushMessage(ctx, wire.EventGroupAtMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	require.True(t, res1.Acked && res2.Acked)
	assert.Equal(t, res1.ID, (<-r1.got).ID)
	ev2 := <-r2.got
	assert.Equal(t, res2.ID, ev2.ID)
	assert.Equal(t, "222", ev2.AccountID)
	// Bot 1 signing for bot 2's app id: bad signature.
	res, err = p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{AppID: "222"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, res.Attempts[0].Status)
	res, err = p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{AppID: "333"})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, res.Attempts[0].Status)
	res, err = p1.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{NoAppID: true})
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, res.Attempts[0].Status)
	unknown, noID := s.Unrouted()
	assert.Equal(t, uint64(4), unknown) // each retried 3 times after the first
	assert.Equal(t, uint64(4), noID)
	s.Remove(b2)
	assert.Equal(t, 1, s.Len())
	// The two inboxes are apart.
	assert.NotEqual(t, b1.Inbox().Dir(), b2.Inbox().Dir())
}

func TestRetriesDedupedAlsoAfterRestart(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder()
	b := newBot(t, dir, testApp, testSecret, rec)
	stop := run(t, b)
	srv := httptest.NewServer(b)
	p := serve(t, srv, testApp, testSecret)
	ctx := context.Background()
	res, err := p.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{Deliveries: 4})
	require.NoError(t, err)
	require.Len(t, res.Attempts, 4)
	for _, a := range res.Attempts {
		assert.Equal(t, http.StatusOK, a.Status)
		assert.Equal(t, res.ID, a.ID)
	}
	<-rec.got
	assert.Equal(t, uint64(3), b.Stats().Duplicates)
	stop()
	srv.Close()

	// A new process: the same id again is acknowledged, not handled.
	rec2 := newRecorder()
	b2 := newBot(t, dir, testApp, testSecret, rec2)
	run(t, b2)
	srv2 := httptest.NewServer(b2)
	defer srv2.Close()
	p2 := serve(t, srv2, testApp, testSecret)
	again := p2.Push(ctx, wire.EventC2CMessageCreate, json.RawMessage(`{"content":"x"}`), gatewaytest.PushFault{ID: res.ID})
	require.True(t, again.Acked)
	assert.Equal(t, uint64(1), b2.Stats().Duplicates)
	next, err := p2.PushMessage(ctx, wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	ev := <-rec2.got
	assert.Equal(t, next.ID, ev.ID, "the retried push was not handled again")
	assert.Equal(t, uint64(2), ev.Seq, "seqs keep increasing across a restart")
	assert.Len(t, rec.events(), 1)
}

// A push acknowledged and never handled (the process died) is handled at
// the next start, before newer ones.
func TestUnhandledPushesHandledOnStart(t *testing.T) {
	dir := t.TempDir()
	b := newBot(t, dir, testApp, testSecret, newRecorder())
	srv := httptest.NewServer(b)
	p := serve(t, srv, testApp, testSecret)
	var ids []string
	for range 3 {
		res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
		require.NoError(t, err)
		require.True(t, res.Acked)
		ids = append(ids, res.ID)
	}
	srv.Close()
	require.NoError(t, b.Close()) // no Run: nothing was handled
	rec := newRecorder()
	b2 := newBot(t, dir, testApp, testSecret, rec)
	assert.Equal(t, 3, b2.Stats().Inbox.Depth)
	run(t, b2)
	for i := range 3 {
		ev := <-rec.got
		assert.Equal(t, ids[i], ev.ID)
		assert.Equal(t, uint64(i+1), ev.Seq)
	}
}

// A handler still busy at shutdown past the timeout is cancelled; its push
// stays in the inbox and comes back at the next start.
func TestHandlerCancelledAtShutdownKeepsThePush(t *testing.T) {
	dir := t.TempDir()
	entered := make(chan struct{})
	h := event.HandlerFunc(func(ctx context.Context, ev event.Event) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	})
	b := newBot(t, dir, testApp, testSecret, h, func(c *webhook.BotConfig) { c.ShutdownTimeout = time.Millisecond })
	stop := run(t, b)
	srv := httptest.NewServer(b)
	p := serve(t, srv, testApp, testSecret)
	res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	<-entered
	stop()
	srv.Close()
	rec := newRecorder()
	b2 := newBot(t, dir, testApp, testSecret, rec)
	run(t, b2)
	assert.Equal(t, res.ID, (<-rec.got).ID)
}

func TestPushAfterStopIs503(t *testing.T) {
	b := newBot(t, t.TempDir(), testApp, testSecret, newRecorder())
	require.NoError(t, b.Close())
	srv := httptest.NewServer(b)
	defer srv.Close()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: testApp, Secret: testSecret, Retries: -1})
	require.NoError(t, err)
	defer p.Close()
	res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.Attempts[0].Status)
}

func TestInboxFullRefuses(t *testing.T) {
	b := newBot(t, t.TempDir(), testApp, testSecret, newRecorder(), func(c *webhook.BotConfig) { c.Inbox.MaxPending = 2 })
	srv := httptest.NewServer(b)
	defer srv.Close()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: testApp, Secret: testSecret, Retries: -1})
	require.NoError(t, err)
	defer p.Close()
	for i, want := range []int{200, 200, 503} {
		res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
		require.NoError(t, err)
		assert.Equal(t, want, res.Attempts[0].Status, "push %d", i)
	}
}

// TLS with a certificate made here; the fake trusts it.
func TestTLS(t *testing.T) {
	rec := newRecorder()
	b := newBot(t, t.TempDir(), testApp, testSecret, rec)
	run(t, b)
	cert, pool := selfSigned(t)
	srv := httptest.NewUnstartedServer(b)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: testApp, Secret: testSecret, Client: client})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(srv.URL, "https://"))
	require.NoError(t, p.Validate(context.Background(), true))
	res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	require.True(t, res.Acked)
	assert.Equal(t, res.ID, (<-rec.got).ID)
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "qqgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestInboxRefusesALink(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	require.NoError(t, os.Symlink(elsewhere, webhook.InboxDir(dir, testApp)))
	_, err := webhook.NewBot(webhook.BotConfig{AppID: testApp, Secret: testSecret, Handler: newRecorder(), Inbox: webhook.InboxConfig{Dir: dir}})
	require.ErrorIs(t, err, webhook.ErrUnsafePath)
	ents, _ := os.ReadDir(elsewhere)
	assert.Empty(t, ents)
}

func TestInboxFilesAndModes(t *testing.T) {
	dir := t.TempDir()
	b := newBot(t, dir, "a/b", testSecret, newRecorder(), func(c *webhook.BotConfig) { c.AccountID = "acc.1" })
	assert.Equal(t, filepath.Join(dir, "inbox-acc_1"), b.Inbox().Dir())
	fi, err := os.Stat(b.Inbox().Dir())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	ents, err := os.ReadDir(b.Inbox().Dir())
	require.NoError(t, err)
	for _, e := range ents {
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), e.Name())
	}
	// A second opener of the same inbox is refused while the first holds it.
	_, err = webhook.OpenInbox(webhook.InboxConfig{Dir: dir, AccountID: "acc.1"})
	assert.ErrorIs(t, err, webhook.ErrLocked)
	require.NoError(t, b.Close())
	// Another account with the same file name is not this inbox's.
	_, err = webhook.OpenInbox(webhook.InboxConfig{Dir: dir, AccountID: "acc_1"})
	assert.ErrorIs(t, err, webhook.ErrForeignInbox)
}

// The inbox stays bounded: compaction keeps the pending pushes and the
// dedupe ids, drops the rest.
func TestInboxCompaction(t *testing.T) {
	dir := t.TempDir()
	clock := time.Unix(1_800_000_000, 0)
	cfg := webhook.InboxConfig{Dir: dir, AccountID: "a", SegmentBytes: 4096, DedupeMax: 50, DedupeTTL: time.Hour, Now: func() time.Time { return clock }}
	in, err := webhook.OpenInbox(cfg)
	require.NoError(t, err)
	var ids []string
	for i := range 300 {
		id := "C2C_MESSAGE_CREATE:" + string(rune('a'+i%26)) + strings.Repeat("x", i%7) + "-" + itoa(i)
		ids = append(ids, id)
		res, err := in.Accept(id, "C2C_MESSAGE_CREATE", []byte(`{"content":"`+strings.Repeat("y", 50)+`"}`))
		require.NoError(t, err)
		require.False(t, res.Duplicate)
		ev, ok := in.Next()
		require.True(t, ok)
		if i < 299 { // leave the last one pending
			require.NoError(t, in.Commit(ev.Seq))
		}
	}
	st := in.Stats()
	assert.Greater(t, st.Compacts, uint64(0))
	assert.Less(t, st.Segment, int64(3*4096))
	assert.Equal(t, 1, st.Depth)
	require.NoError(t, in.Close())
	ents, err := os.ReadDir(webhook.InboxDir(dir, "a"))
	require.NoError(t, err)
	var segs int
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "seg-") {
			segs++
		}
	}
	assert.Equal(t, 1, segs)

	in, err = webhook.OpenInbox(cfg)
	require.NoError(t, err)
	defer in.Close()
	ev, ok := in.Next()
	require.True(t, ok)
	assert.Equal(t, ids[299], ev.ID)
	assert.Equal(t, uint64(300), ev.Seq)
	// Recent ids are still known; the oldest were forgotten (count bound).
	res, err := in.Accept(ids[290], "C2C_MESSAGE_CREATE", []byte(`{}`))
	require.NoError(t, err)
	assert.True(t, res.Duplicate)
	res, err = in.Accept(ids[0], "C2C_MESSAGE_CREATE", []byte(`{}`))
	require.NoError(t, err)
	assert.False(t, res.Duplicate)
	assert.Equal(t, uint64(301), res.Seq)
}

func itoa(i int) string { return strconv.Itoa(i) }

// A write cut short leaves an incomplete last line: it is dropped, the
// rest is kept, and the file is usable again.
func TestInboxTornTail(t *testing.T) {
	dir := t.TempDir()
	cfg := webhook.InboxConfig{Dir: dir, AccountID: "a"}
	in, err := webhook.OpenInbox(cfg)
	require.NoError(t, err)
	_, err = in.Accept("X:1", "C2C_MESSAGE_CREATE", []byte(`{"n":1}`))
	require.NoError(t, err)
	require.NoError(t, in.Close())
	ents, _ := filepath.Glob(filepath.Join(webhook.InboxDir(dir, "a"), "seg-*.log"))
	require.Len(t, ents, 1)
	f, err := os.OpenFile(ents[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(webhook.EncodeRecord(webhook.Record{Kind: "a", Seq: 2, ID: "X:2", Type: "T", Data: []byte(`{}`)})[:20])
	require.NoError(t, err)
	require.NoError(t, f.Close())
	in, err = webhook.OpenInbox(cfg)
	require.NoError(t, err)
	ev, ok := in.Next()
	require.True(t, ok)
	assert.Equal(t, "X:1", ev.ID)
	_, ok = in.Next()
	assert.False(t, ok)
	res, err := in.Accept("X:2", "T", []byte(`{}`))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), res.Seq)
	require.NoError(t, in.Close())
	in, err = webhook.OpenInbox(cfg)
	require.NoError(t, err)
	defer in.Close()
	assert.Equal(t, 2, in.Stats().Depth)
}

func TestParseErrorsAreTyped(t *testing.T) {
	_, err := webhook.ParsePush([]byte(`{"op":0,"d":{}}`))
	assert.True(t, errors.Is(err, webhook.ErrBadPush))
	_, err = webhook.ParseRecord([]byte(`00000000 {"k":"a"}`))
	assert.ErrorIs(t, err, webhook.ErrBadRecord)
}

// A bot reserved (starting) answers 503, which the platform retries,
// rather than 404.
func TestReservedAppIs503(t *testing.T) {
	s := webhook.NewServer()
	release := s.Reserve("111")
	srv := httptest.NewServer(s)
	defer srv.Close()
	p, err := gatewaytest.NewWebhookPlatform(gatewaytest.WebhookOptions{URL: srv.URL, AppID: "111", Secret: "x", Retries: -1})
	require.NoError(t, err)
	defer p.Close()
	res, err := p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.Attempts[0].Status)
	release()
	release()
	res, err = p.PushMessage(context.Background(), wire.EventC2CMessageCreate, gatewaytest.PushFault{})
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, res.Attempts[0].Status)
}

// The pushes waiting in memory are bounded in bytes too; one push alone
// always fits.
func TestInboxPendingBytesBound(t *testing.T) {
	in, err := webhook.OpenInbox(webhook.InboxConfig{Dir: t.TempDir(), AccountID: "a", MaxPendingBytes: 100})
	require.NoError(t, err)
	defer in.Close()
	big := []byte(`"` + strings.Repeat("x", 150) + `"`)
	_, err = in.Accept("X:1", "T", big)
	require.NoError(t, err, "a single push larger than the bound is taken")
	_, err = in.Accept("X:2", "T", []byte(`{}`))
	require.ErrorIs(t, err, webhook.ErrInboxFull)
	ev, ok := in.Next()
	require.True(t, ok)
	require.NoError(t, in.Commit(ev.Seq))
	_, err = in.Accept("X:2", "T", []byte(`{"a":1}`))
	require.NoError(t, err)
	_, err = in.Accept("X:3", "T", []byte(`{"b":2}`))
	require.NoError(t, err)
}

// A damaged line in the middle is skipped and counted; the lines around it
// are kept.
func TestInboxSkipsADamagedLine(t *testing.T) {
	dir := t.TempDir()
	cfg := webhook.InboxConfig{Dir: dir, AccountID: "a"}
	in, err := webhook.OpenInbox(cfg)
	require.NoError(t, err)
	_, err = in.Accept("X:1", "T", []byte(`{"n":1}`))
	require.NoError(t, err)
	require.NoError(t, in.Close())
	segs, _ := filepath.Glob(filepath.Join(webhook.InboxDir(dir, "a"), "seg-*.log"))
	require.Len(t, segs, 1)
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	line := webhook.EncodeRecord(webhook.Record{Kind: "a", Seq: 2, ID: "X:2", Type: "T", Data: []byte(`{"n":2}`)})
	bad := append([]byte(nil), line...)
	bad[len(bad)-3] ^= 1 // a flipped bit: the checksum no longer matches
	_, err = f.Write(append(bad, webhook.EncodeRecord(webhook.Record{Kind: "a", Seq: 3, ID: "X:3", Type: "T", Data: []byte(`{"n":3}`)})...))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	in, err = webhook.OpenInbox(cfg)
	require.NoError(t, err)
	defer in.Close()
	st := in.Stats()
	assert.Equal(t, uint64(1), st.Skipped)
	assert.Equal(t, 2, st.Depth)
	assert.Equal(t, uint64(4), st.NextSeq)
}
