package transports

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// ErrPermanent marks a delivery failure that retrying cannot fix: the
// callback itself is wrong (a method the transport does not know, an address
// it cannot parse), or the receiver refused it for good (an HTTP 4xx other
// than 408 and 429). The node branches on it with errors.Is to fail the
// timer without retrying. Build such errors with Permanent.
var ErrPermanent = errors.New("transports: permanent failure")

// Permanent marks err as permanent: errors.Is(Permanent(err), ErrPermanent)
// holds, and err stays reachable through errors.Is/As. The message is err's.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// ErrNotReady marks a delivery the node could not attempt because the
// transport cannot send yet (its connection is not up). It is the node's
// condition, not the receiver's: the node tries again later without
// counting an attempt.
var ErrNotReady = errors.New("transports: transport not ready")

// Classification of a failed delivery, as the node reads it:
//
//   - errors.Is(err, ErrPermanent): final, the timer fails without a retry
//     (a callback that cannot be sent, an HTTP 4xx other than 408 and 429);
//   - errors.Is(err, ErrNotReady) or skyring.ErrClosed: the node's own
//     condition; tried again later, no attempt counted;
//   - anything else (a network error, a timeout, an HTTP 5xx, 408 or 429,
//     a panic): a failed attempt, retried while the timer has attempts
//     left, after RetryAfter if the error carries one.

// RetryAfterError is a failed delivery whose receiver said how long to wait
// before trying again (HTTP Retry-After). Build it with WithRetryAfter.
type RetryAfterError struct {
	Err   error
	After time.Duration // never negative
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// WithRetryAfter marks err with the wait its receiver asked for; a
// negative d counts as 0. WithRetryAfter(nil, d) is nil.
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: max(d, 0)}
}

// RetryAfter returns the wait a failed delivery's receiver asked for, if
// err (or an error it wraps) is a *RetryAfterError.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// StatusCoder is implemented by delivery errors that carry the status the
// receiver answered with (httptransport.StatusError: the HTTP status). The
// node stores it as the timer's last_status.
type StatusCoder interface {
	StatusCode() int
}

// Status returns the receiver's status carried by err (or an error it
// wraps), if any.
func Status(err error) (int, bool) {
	var sc StatusCoder
	if errors.As(err, &sc) {
		return sc.StatusCode(), true
	}
	return 0, false
}

// Quote quotes a client's value for a validation reason: ASCII only (it becomes a
// header), and at most reasonQuoteMax bytes long, cut with "..." after the
// closing quote, so that a huge value does not make a huge header.
func Quote(s string) string {
	q := strconv.QuoteToASCII(s)
	if len(q) <= reasonQuoteMax {
		return q
	}
	if len(s) > reasonQuoteMax {
		cut := reasonQuoteMax
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	for {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-max(size, 1)]
		if q = strconv.QuoteToASCII(s); len(q) <= reasonQuoteMax {
			return q + "..."
		}
	}
}

const reasonQuoteMax = 128
