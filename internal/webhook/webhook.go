// Package webhook holds the Standard Webhooks primitives
// (https://www.standardwebhooks.com/) that the http transport signs with and
// client.VerifyWebhook checks with: secret parsing, the signature and the
// message id.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "Webhook-Id"        // canonical form of webhook-id
	HeaderTimestamp = "Webhook-Timestamp" // canonical form of webhook-timestamp
	HeaderSignature = "Webhook-Signature" // canonical form of webhook-signature
)

// SecretPrefix starts every secret: "whsec_" then the key in base64.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest key accepted, decoded (192 bits, the lower
// bound the specification recommends).
const MinSecretBytes = 24

// ErrBadSecret is wrapped by every ParseSecret error. The errors never hold
// the secret itself.
var ErrBadSecret = errors.New("bad webhook secret")

// ParseSecret returns the HMAC key of a secret "whsec_<base64>": the
// base64 (standard alphabet, padding optional) decoded, at least
// MinSecretBytes long.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: want %q followed by base64", ErrBadSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrBadSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes decoded, want at least %d", ErrBadSecret, len(key), MinSecretBytes)
	}
	return key, nil
}

// ParseSecrets parses each secret; the error names the position (1-based),
// never the value.
func ParseSecrets(secrets []string) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		k, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("webhook secret #%d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Signature returns the base64 (standard) HMAC-SHA256 of
// "<id>.<timestamp>.<body>" with key, without the "v1," prefix.
func Signature(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// MessageID is the webhook-id of a timer generation: "msg_<timer id>_<created
// ns>". Every delivery attempt of one generation (retries, a retry on
// request, after a hand-off or a restart) carries the same id; an update or
// a new create under the same timer id sets a new Created and so a new id.
func MessageID(timerID string, created int64) string {
	return "msg_" + timerID + "_" + strconv.FormatInt(created, 10)
}

// Signer signs deliveries with one or more keys (rotation: the first is the
// current one). Its zero value and nil sign nothing. It never prints its
// keys.
type Signer struct {
	keys [][]byte
}

// NewSigner parses secrets ("whsec_<base64>" each); none gives a nil Signer.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	keys, err := ParseSecrets(secrets)
	if err != nil {
		return nil, err
	}
	return &Signer{keys: keys}, nil
}

// Enabled reports whether s signs anything.
func (s *Signer) Enabled() bool { return s != nil && len(s.keys) > 0 }

// Sign returns the webhook-signature value: "v1,<sig>" per key, in the
// order of the secrets, separated by a space.
func (s *Signer) Sign(id string, timestamp int64, body []byte) string {
	var b strings.Builder
	for i, k := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(Signature(k, id, timestamp, body))
	}
	return b.String()
}

// String hides the keys.
func (s *Signer) String() string {
	if s == nil {
		return "webhook.Signer(none)"
	}
	return fmt.Sprintf("webhook.Signer(%d secrets, redacted)", len(s.keys))
}

// GoString hides the keys from %#v too.
func (s *Signer) GoString() string { return s.String() }
