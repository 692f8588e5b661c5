package node_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
	"github.com/skyring/skyring/node"
)

var nodeWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("node-test-secret-node-test-secret"))

// TestWebhookSecretsSignDeliveries: Options.WebhookSecrets reach the http
// transport; the delivery verifies with client.VerifyWebhook and carries
// webhook-id msg_<id>_<created ns>.
func TestWebhookSecretsSignDeliveries(t *testing.T) {
	t.Parallel()
	type got struct {
		h    http.Header
		body []byte
	}
	ch := make(chan got, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Clone(), b}
	}))
	t.Cleanup(srv.Close)

	b := setup(t, nil, func(o *node.Options) error { o.WebhookSecrets = []string{nodeWebhookSecret}; return nil })
	body := `{"timeout":1000,"data":"hello","callback":{"transport":"http","method":"post","uri":"` + srv.URL + `"}}`
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: b.clock.Now(), ID: "signed"})
	require.NoError(t, err)
	require.NoError(t, b.node.Create(context.Background(), tm))
	b.advanceTo(t, tm.DueTime())

	var r got
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	require.Equal(t, "hello", string(r.body))
	require.NoError(t, client.VerifyWebhook([]string{nodeWebhookSecret}, r.h, r.body, time.Minute, time.Now()))
	require.Equal(t, "msg_signed_"+strconv.FormatInt(tm.Created, 10), r.h.Get("webhook-id"))
}

// TestWebhookSecretMalformed: a malformed secret fails New with an error
// that does not show it.
func TestWebhookSecretMalformed(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"not-a-secret-at-all-but-long", "whsec_c2hvcnQ="} {
		_, err := node.New(func(o *node.Options) error {
			o.StorageBackend, o.WebhookSecrets = "memory", []string{nodeWebhookSecret, bad}
			return nil
		})
		require.Error(t, err)
		require.Contains(t, err.Error(), "webhook secret #2")
		require.NotContains(t, err.Error(), bad)
	}
}
