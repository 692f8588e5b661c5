package main_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/client"
)

// e2e webhook secrets: the current one and the one being rotated out.
var (
	e2eKeyNew    = []byte("e2e-current-secret-32-bytes-long")
	e2eKeyOld    = []byte("e2e-previous-secret-32-bytes-lon")
	e2eSecretNew = "whsec_" + base64.StdEncoding.EncodeToString(e2eKeyNew)
	e2eSecretOld = "whsec_" + base64.StdEncoding.EncodeToString(e2eKeyOld)
)

type signedArrival struct {
	header http.Header
	body   []byte
	at     time.Time
}

// hmacByHand is the Standard Webhooks v1 signature, computed with the
// standard library only.
func hmacByHand(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestWebhookSignedDeliveryAndRetry runs the real binary with two
// --webhook:secret (a rotation) against a receiver on 127.0.0.1 that answers
// 500 then 200: both attempts carry the same webhook-id
// (msg_<timer id>_<created ns>), a current webhook-timestamp and one v1
// signature per secret, current first, each checked by hand and with
// client.VerifyWebhook; the secrets show neither in the node's output nor
// in /cluster.
func TestWebhookSignedDeliveryAndRetry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []signedArrival
	done := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, signedArrival{r.Header.Clone(), b, time.Now()})
		if len(got) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if len(got) == 2 {
			close(done)
		}
	}))
	t.Cleanup(rcv.Close)

	p := startNode(t, "--webhook:secret", e2eSecretNew, "--webhook:secret", e2eSecretOld,
		"--delivery:min-backoff", "100ms", "--delivery:max-backoff", "200ms")
	id, _ := p.createTimer(t, map[string]any{
		"timeout": 50,
		"data":    map[string]any{"order": 42},
		"callback": map[string]any{
			"transport": "http", "method": "post", "uri": rcv.URL + "/hook",
			"retry": map[string]any{"attempts": 3},
		},
	})
	select {
	case <-done:
	case <-time.After(deliverWait + 10*time.Second):
		t.Fatal("no second attempt")
	}
	// The receiver saw attempt 2 before its answer reached the node.
	require.Eventually(t, func() bool { return p.getTimer(t, id).State == "delivered" }, 10*time.Second, 20*time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	msgID := got[0].header.Get("webhook-id")
	require.True(t, strings.HasPrefix(msgID, "msg_"+id+"_"), "webhook-id %q", msgID)
	_, err := strconv.ParseInt(strings.TrimPrefix(msgID, "msg_"+id+"_"), 10, 64)
	require.NoError(t, err, "webhook-id ends in the created ns")
	for i, a := range got {
		require.Equal(t, strconv.Itoa(i+1), a.header.Get("x-skyring-attempt"))
		require.Equal(t, msgID, a.header.Get("webhook-id"), "attempt %d: the same webhook-id", i+1)
		ts := a.header.Get("webhook-timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		require.NoError(t, err)
		require.InDelta(t, a.at.Unix(), sec, 2, "attempt %d: webhook-timestamp is the attempt's time", i+1)
		require.JSONEq(t, `{"order":42}`, string(a.body))
		sigs := strings.Split(a.header.Get("webhook-signature"), " ")
		require.Equal(t, []string{hmacByHand(e2eKeyNew, msgID, ts, a.body), hmacByHand(e2eKeyOld, msgID, ts, a.body)}, sigs)
		for _, s := range []string{e2eSecretNew, e2eSecretOld} {
			require.NoError(t, client.VerifyWebhook([]string{s}, a.header, a.body, time.Minute, a.at))
		}
	}

	cl := p.do(t, http.MethodGet, "/cluster", nil)
	require.Equal(t, http.StatusOK, cl.Status)
	for _, s := range []string{e2eSecretNew, e2eSecretOld} {
		require.NotContains(t, string(cl.Body), s[len("whsec_"):])
		require.NotContains(t, p.Output(), s[len("whsec_"):])
	}
}

// TestWebhookSecretFromEnv: SKYRING_WEBHOOK_SECRET signs too.
func TestWebhookSecretFromEnv(t *testing.T) {
	t.Parallel()
	ch := make(chan signedArrival, 1)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- signedArrival{r.Header.Clone(), b, time.Now()}
	}))
	t.Cleanup(rcv.Close)
	p := startNodeConfig(t, nodeConfig{Env: []string{"SKYRING_WEBHOOK_SECRET=" + e2eSecretNew}})
	p.createTimer(t, map[string]any{
		"timeout": 50, "data": "hi",
		"callback": map[string]any{"transport": "http", "method": "post", "uri": rcv.URL},
	})
	select {
	case a := <-ch:
		require.Equal(t, hmacByHand(e2eKeyNew, a.header.Get("webhook-id"), a.header.Get("webhook-timestamp"), a.body), a.header.Get("webhook-signature"))
	case <-time.After(deliverWait + 10*time.Second):
		t.Fatal("no delivery")
	}
}

// TestWebhookBadSecret: a malformed secret stops the start with a message
// naming the flag, never the secret.
func TestWebhookBadSecret(t *testing.T) {
	t.Parallel()
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("only-16-bytes-ok"))
	for _, bad := range []string{"not-prefixed-secret-value", "whsec_***not base64***", short} {
		args := []string{"run", "-p", "-1", "--nats:port", "-1", "--channel:port", "-1", "--storage:path", t.TempDir(), "--webhook:secret", bad}
		_, errOut, code := runCLI(t, 15*time.Second, nil, args...)
		require.NotEqual(t, -1, code, "%s: still running", bad)
		require.NotEqual(t, 0, code, "%s: exit 0", bad)
		require.Contains(t, errOut, "webhook:secret", bad)
		require.NotContains(t, errOut, "skyring ready")
		require.NotContains(t, errOut, strings.TrimPrefix(bad, "whsec_"))
	}
}
