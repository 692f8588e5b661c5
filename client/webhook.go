package client

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skyring/skyring/internal/webhook"
)

// Header names of a signed delivery (Standard Webhooks,
// https://www.standardwebhooks.com/), in canonical form.
const (
	HeaderWebhookID        = webhook.HeaderID
	HeaderWebhookTimestamp = webhook.HeaderTimestamp
	HeaderWebhookSignature = webhook.HeaderSignature
)

// DefaultWebhookTolerance is the tolerance VerifyWebhook applies when given
// 0: a delivery signed more than 5 minutes before (or after) now is refused.
const DefaultWebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook, matched with errors.Is.
var (
	// ErrWebhookHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is missing or unreadable.
	ErrWebhookHeaders = errors.New("client: webhook: missing or malformed webhook-* headers")
	// ErrWebhookTimestamp: webhook-timestamp lies outside the tolerance
	// (a replay, or clocks far apart).
	ErrWebhookTimestamp = errors.New("client: webhook: timestamp outside the tolerance")
	// ErrWebhookSignature: no v1 signature matches any of the secrets (a
	// wrong secret, or a changed id, timestamp or body).
	ErrWebhookSignature = errors.New("client: webhook: no valid signature")
	// ErrWebhookSecret: a secret is not "whsec_<base64>" of at least 24
	// bytes, or none was given. The error never shows the secret.
	ErrWebhookSecret = errors.New("client: webhook: bad secret")
)

// VerifyWebhook checks a delivery signed by a node started with
// --webhook:secret: header and body are the request's (read the body whole
// first, before any parsing, and verify those exact bytes).
//
//   - secrets are "whsec_<base64>" as given to the node; during a rotation
//     list both the new and the old one: a delivery is accepted when any v1
//     signature of webhook-signature is valid for any of them.
//   - webhook-timestamp (Unix seconds) must lie within tolerance of now
//     (0: DefaultWebhookTolerance; a zero now is time.Now()), so that a
//     captured request cannot be replayed later. Deduplicate retries by
//     webhook-id, which every attempt of one timer generation shares.
//   - signatures are compared in constant time.
//
// The error matches ErrWebhookHeaders, ErrWebhookTimestamp,
// ErrWebhookSignature or ErrWebhookSecret.
func VerifyWebhook(secrets []string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secret given", ErrWebhookSecret)
	}
	keys, err := webhook.ParseSecrets(secrets)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWebhookSecret, err)
	}
	id := header.Get(HeaderWebhookID)
	tsText := header.Get(HeaderWebhookTimestamp)
	sigs := header.Get(HeaderWebhookSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: want webhook-id, webhook-timestamp and webhook-signature", ErrWebhookHeaders)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not an integer", ErrWebhookHeaders, tsText)
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if now.IsZero() {
		now = time.Now()
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, now %d, tolerance %s", ErrWebhookTimestamp, ts, now.Unix(), tolerance)
	}
	for _, k := range keys {
		want := []byte(webhook.Signature(k, id, ts, body))
		for _, sig := range strings.Fields(sigs) {
			got, ok := strings.CutPrefix(sig, "v1,")
			if ok && hmac.Equal([]byte(got), want) {
				return nil
			}
		}
	}
	return ErrWebhookSignature
}
