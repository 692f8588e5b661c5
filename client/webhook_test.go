package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/client"
)

var (
	whKeyOld    = []byte("old-secret-old-secret-old-secret")
	whKeyNew    = []byte("new-secret-new-secret-new-secret")
	whSecretOld = "whsec_" + base64.StdEncoding.EncodeToString(whKeyOld)
	whSecretNew = "whsec_" + base64.StdEncoding.EncodeToString(whKeyNew)
	whNow       = time.Unix(1_800_000_000, 0)
)

// signed builds the headers of a delivery by hand: one v1 signature per key.
func signed(id string, ts int64, body []byte, keys ...[]byte) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	sig := ""
	for i, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + string(body)))
		if i > 0 {
			sig += " "
		}
		sig += "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	h.Set("webhook-signature", sig)
	return h
}

func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	body := []byte(`{"order":42}`)
	id := "msg_order-42_1799999990000000000"
	ts := whNow.Unix() - 10
	verify := func(secrets []string, h http.Header, b []byte) error {
		return client.VerifyWebhook(secrets, h, b, time.Minute, whNow)
	}

	require.NoError(t, verify([]string{whSecretOld}, signed(id, ts, body, whKeyOld), body))

	t.Run("rotation", func(t *testing.T) {
		// The node signs with both (new first): a receiver on either verifies.
		both := signed(id, ts, body, whKeyNew, whKeyOld)
		require.NoError(t, verify([]string{whSecretOld}, both, body))
		require.NoError(t, verify([]string{whSecretNew}, both, body))
		// A receiver already on the new secret, listing the old one too,
		// accepts a node still signing with the old one only.
		require.NoError(t, verify([]string{whSecretNew, whSecretOld}, signed(id, ts, body, whKeyOld), body))
		// Unknown versions are skipped.
		h := signed(id, ts, body, whKeyNew)
		h.Set("webhook-signature", "v1a,AAAA "+h.Get("webhook-signature"))
		require.NoError(t, verify([]string{whSecretNew}, h, body))
	})
	t.Run("wrong secret", func(t *testing.T) {
		err := verify([]string{whSecretNew}, signed(id, ts, body, whKeyOld), body)
		require.ErrorIs(t, err, client.ErrWebhookSignature)
	})
	t.Run("tampered", func(t *testing.T) {
		h := signed(id, ts, body, whKeyOld)
		require.ErrorIs(t, verify([]string{whSecretOld}, h, []byte(`{"order":43}`)), client.ErrWebhookSignature)
		h2 := h.Clone()
		h2.Set("webhook-id", "msg_other_1")
		require.ErrorIs(t, verify([]string{whSecretOld}, h2, body), client.ErrWebhookSignature)
		h3 := h.Clone()
		h3.Set("webhook-timestamp", strconv.FormatInt(ts+1, 10))
		require.ErrorIs(t, verify([]string{whSecretOld}, h3, body), client.ErrWebhookSignature)
	})
	t.Run("stale or future timestamp", func(t *testing.T) {
		old := whNow.Add(-2 * time.Minute).Unix()
		require.ErrorIs(t, verify([]string{whSecretOld}, signed(id, old, body, whKeyOld), body), client.ErrWebhookTimestamp)
		future := whNow.Add(2 * time.Minute).Unix()
		require.ErrorIs(t, verify([]string{whSecretOld}, signed(id, future, body, whKeyOld), body), client.ErrWebhookTimestamp)
		// The default tolerance (0) is 5 minutes.
		require.NoError(t, client.VerifyWebhook([]string{whSecretOld}, signed(id, old, body, whKeyOld), body, 0, whNow))
		stale := whNow.Add(-6 * time.Minute).Unix()
		require.ErrorIs(t, client.VerifyWebhook([]string{whSecretOld}, signed(id, stale, body, whKeyOld), body, 0, whNow), client.ErrWebhookTimestamp)
	})
	t.Run("missing headers", func(t *testing.T) {
		for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			h := signed(id, ts, body, whKeyOld)
			h.Del(name)
			require.ErrorIs(t, verify([]string{whSecretOld}, h, body), client.ErrWebhookHeaders, name)
		}
		h := signed(id, ts, body, whKeyOld)
		h.Set("webhook-timestamp", "soon")
		require.ErrorIs(t, verify([]string{whSecretOld}, h, body), client.ErrWebhookHeaders)
	})
	t.Run("bad secret", func(t *testing.T) {
		h := signed(id, ts, body, whKeyOld)
		require.ErrorIs(t, verify(nil, h, body), client.ErrWebhookSecret)
		for _, bad := range []string{"old-secret", "whsec_%%%", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
			err := verify([]string{bad}, h, body)
			require.ErrorIs(t, err, client.ErrWebhookSecret)
			require.False(t, errors.Is(err, client.ErrWebhookSignature))
		}
	})
}
