package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/skyring/skyring/client"
)

// A receiver checks a signed delivery: the headers and body of the request,
// the node's secret (or both secrets during a rotation).
func ExampleVerifyWebhook() {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("an example secret, 32 bytes long"))
	body := []byte(`{"order":42}`)
	now := time.Unix(1_800_000_000, 0)

	// What a node started with --webhook:secret sends.
	h := http.Header{}
	h.Set("webhook-id", "msg_order-42_1799999999000000000")
	h.Set("webhook-timestamp", "1800000000")
	m := hmac.New(sha256.New, []byte("an example secret, 32 bytes long"))
	m.Write([]byte("msg_order-42_1799999999000000000.1800000000." + string(body)))
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))

	fmt.Println(client.VerifyWebhook([]string{secret}, h, body, 5*time.Minute, now))
	err := client.VerifyWebhook([]string{secret}, h, []byte(`{"order":43}`), 5*time.Minute, now)
	fmt.Println(errors.Is(err, client.ErrWebhookSignature))
	err = client.VerifyWebhook([]string{secret}, h, body, 5*time.Minute, now.Add(time.Hour))
	fmt.Println(errors.Is(err, client.ErrWebhookTimestamp))
	// Output:
	// <nil>
	// true
	// true
}
