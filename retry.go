package skyring

import (
	"encoding/json"
	"math"
)

// Retry is a timer's delivery retry policy, callback.retry in the API: how
// many delivery attempts it gets and how long the node waits between them.
// A zero field takes the node's default (node.Options.DeliveryAttempts,
// DeliveryMinBackoff, DeliveryMaxBackoff).
type Retry struct {
	// Attempts is how many deliveries are tried at most, the first one
	// included: 1 means no retry. 1 to MaxRetryAttempts.
	Attempts int `json:"attempts,omitempty"`
	// MinBackoff is the shortest wait before a retry, in ms: 1 to
	// MaxBackoffLimit.
	MinBackoff int64 `json:"min_backoff,omitempty"`
	// MaxBackoff is the longest wait before a retry, in ms: 1 to
	// MaxBackoffLimit, and not below MinBackoff when both are given.
	MaxBackoff int64 `json:"max_backoff,omitempty"`
}

// Bounds of a retry policy.
const (
	// MaxRetryAttempts is the largest callback.retry.attempts accepted.
	MaxRetryAttempts = 100
	// MaxBackoffLimit is the largest backoff accepted, in ms: 2^31-1, about
	// 24.8 days, the default largest timeout.
	MaxBackoffLimit int64 = math.MaxInt32
)

// parseRetry reads callback.retry: absent or null is the zero policy (the
// node's defaults); each member is optional and may be null.
func parseRetry(raw json.RawMessage) (Retry, error) {
	var r Retry
	if raw[0] != '{' {
		return r, invalid("callback.retry", "callback.retry must be an object")
	}
	o := scanObject(raw) // valid: the whole body was checked
	attempts, err := retryField(o, "attempts", MaxRetryAttempts)
	if err != nil {
		return r, err
	}
	r.Attempts = int(attempts)
	if r.MinBackoff, err = retryField(o, "min_backoff", MaxBackoffLimit); err != nil {
		return r, err
	}
	if r.MaxBackoff, err = retryField(o, "max_backoff", MaxBackoffLimit); err != nil {
		return r, err
	}
	if r.MinBackoff > 0 && r.MaxBackoff > 0 && r.MaxBackoff < r.MinBackoff {
		return r, invalid("callback.retry.max_backoff", "callback.retry.max_backoff must not be less than callback.retry.min_backoff")
	}
	return r, nil
}

// retryField reads an optional integer member of callback.retry, 1 to max;
// absent or null is 0.
func retryField(o object, name string, max int64) (int64, error) {
	raw, ok := o.get(name)
	if !ok || isNull(raw) {
		return 0, nil
	}
	v, ok := parseNumber(raw, false)
	if !ok || v != math.Trunc(v) || v < 1 || v > float64(max) {
		unit := ""
		if name != "attempts" {
			unit = " milliseconds"
		}
		return 0, invalid("callback.retry."+name, "callback.retry.%s must be an integer between 1 and %d%s", name, max, unit)
	}
	return int64(v), nil
}
