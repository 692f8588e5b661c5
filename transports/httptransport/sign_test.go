package httptransport_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/transports/httptransport"
)

// Two secrets of 32 bytes each, as an operator would generate them.
var (
	keyA    = []byte("0123456789abcdef0123456789abcdef")
	keyB    = []byte("fedcba9876543210fedcba9876543210")
	secretA = "whsec_" + base64.StdEncoding.EncodeToString(keyA)
	secretB = "whsec_" + base64.StdEncoding.EncodeToString(keyB)
)

type received struct {
	header http.Header
	body   []byte
}

// recorder is a receiver answering 200 and handing each request over.
func recorder(t *testing.T) (string, <-chan received) {
	t.Helper()
	ch := make(chan received, 16)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- received{header: r.Header.Clone(), body: b}
	}))
	t.Cleanup(s.Close)
	return s.URL, ch
}

// byHand computes the Standard Webhooks signature with the standard library
// only, independent of the transport's code.
func byHand(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestSignatureByHand: with one secret, a delivery carries webhook-id
// msg_<id>_<created ns>, a current webhook-timestamp and one v1 signature
// equal to the HMAC computed by hand over the received body.
func TestSignatureByHand(t *testing.T) {
	t.Parallel()
	url, ch := recorder(t)
	signer, err := httptransport.NewSigner([]string{secretA})
	require.NoError(t, err)
	tr := newTransport(t, httptransport.Options{Signer: signer})

	tm := timer("sig-1", "post", url, `{"hello":"world"}`)
	tm.Created = 1700000000123456789
	before := time.Now().Unix()
	require.NoError(t, tr.Execute(ctx(t), tm))
	got := <-ch

	id := got.header.Get("webhook-id")
	require.Equal(t, "msg_sig-1_1700000000123456789", id)
	ts := got.header.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, sec, before)
	require.LessOrEqual(t, sec, time.Now().Unix())
	require.Equal(t, `{"hello":"world"}`, string(got.body))
	require.Equal(t, byHand(keyA, id, ts, got.body), got.header.Get("webhook-signature"))
	// The skyring headers stay as they are.
	require.Equal(t, "sig-1", got.header.Get("x-skyring-timer-id"))
	require.Equal(t, "1", got.header.Get("x-skyring-attempt"))
}

// TestSignatureRotation: with two secrets the header holds two v1 entries,
// the current secret's first, each valid for its own secret only.
func TestSignatureRotation(t *testing.T) {
	t.Parallel()
	url, ch := recorder(t)
	signer, err := httptransport.NewSigner([]string{secretA, secretB})
	require.NoError(t, err)
	tr := newTransport(t, httptransport.Options{Signer: signer})

	require.NoError(t, tr.Execute(ctx(t), timer("sig-2", "put", url, "plain text")))
	got := <-ch
	id, ts := got.header.Get("webhook-id"), got.header.Get("webhook-timestamp")
	sigs := strings.Split(got.header.Get("webhook-signature"), " ")
	require.Len(t, sigs, 2)
	require.Equal(t, byHand(keyA, id, ts, got.body), sigs[0])
	require.Equal(t, byHand(keyB, id, ts, got.body), sigs[1])
	require.NotEqual(t, sigs[0], sigs[1])
}

// TestSignatureSameIDAcrossAttempts: every attempt of a generation carries
// the same webhook-id; a new generation (another Created) another one.
func TestSignatureSameIDAcrossAttempts(t *testing.T) {
	t.Parallel()
	url, ch := recorder(t)
	signer, err := httptransport.NewSigner([]string{secretA})
	require.NoError(t, err)
	tr := newTransport(t, httptransport.Options{Signer: signer})

	tm := timer("sig-3", "post", url, "")
	require.NoError(t, tr.Execute(ctx(t), tm))
	first := <-ch
	tm.Attempts, tm.Fence = 3, 7
	require.NoError(t, tr.Execute(ctx(t), tm))
	retry := <-ch
	require.Equal(t, first.header.Get("webhook-id"), retry.header.Get("webhook-id"))
	require.Equal(t, "4", retry.header.Get("x-skyring-attempt"))
	// An empty body is signed as empty.
	require.Equal(t, byHand(keyA, retry.header.Get("webhook-id"), retry.header.Get("webhook-timestamp"), nil), retry.header.Get("webhook-signature"))

	tm.Created++
	require.NoError(t, tr.Execute(ctx(t), tm))
	next := <-ch
	require.NotEqual(t, first.header.Get("webhook-id"), next.header.Get("webhook-id"))
}

// TestNoSignatureWithoutSecret: no secret, no webhook-* header; SetSigner
// turns signing on and off.
func TestNoSignatureWithoutSecret(t *testing.T) {
	t.Parallel()
	url, ch := recorder(t)
	tr := newTransport(t, httptransport.Options{})
	require.NoError(t, tr.Execute(ctx(t), timer("nosig", "post", url, "x")))
	got := <-ch
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		require.Empty(t, got.header.Values(h), h)
	}

	signer, err := httptransport.NewSigner([]string{secretA})
	require.NoError(t, err)
	tr.SetSigner(signer)
	require.NoError(t, tr.Execute(ctx(t), timer("nosig", "post", url, "x")))
	require.NotEmpty(t, (<-ch).header.Get("webhook-signature"))
	tr.SetSigner(nil)
	require.NoError(t, tr.Execute(ctx(t), timer("nosig", "post", url, "x")))
	require.Empty(t, (<-ch).header.Values("webhook-signature"))
}

// TestNewSignerErrors: malformed secrets are errors that never show the
// secret; none is a nil Signer.
func TestNewSignerErrors(t *testing.T) {
	t.Parallel()
	s, err := httptransport.NewSigner(nil)
	require.NoError(t, err)
	require.Nil(t, s)
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("too-short-key"))
	for _, bad := range []string{
		base64.StdEncoding.EncodeToString(keyA), // no prefix
		"whsec_not*base64!!",
		short,
		"whsec_",
	} {
		_, err := httptransport.NewSigner([]string{secretA, bad})
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "#2")
		if len(bad) > len("whsec_") {
			require.NotContains(t, err.Error(), bad[len("whsec_"):])
		}
	}
	signer, err := httptransport.NewSigner([]string{secretA})
	require.NoError(t, err)
	require.NotContains(t, signer.String(), secretA[6:])
}
