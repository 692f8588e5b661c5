package skyring

import (
	"encoding/base64"
	"strconv"
)

// Listing: GET /timer and the NATS subject <prefix>.timer.list page through
// the timers of the whole cluster in ascending id order.

// Bounds of a list page.
const (
	DefaultListLimit = 100  // timers in a page when the request gives no limit
	MaxListLimit     = 1000 // the largest limit accepted
)

// ListQuery asks for one page of timers.
type ListQuery struct {
	// State keeps the timers in that state (a state name: pending,
	// retrying, delivered, failed, cancelled); "" keeps all.
	State string
	// DueAfter, DueBefore, Prefix and Host narrow the listing further:
	// see Filter.
	DueAfter, DueBefore int64
	Prefix, Host        string
	// After is where the page starts: the timers whose id sorts after it.
	// It is the decoded cursor of the previous page; "" for the first.
	After string
	// Limit is the most timers the page holds, 1 to MaxListLimit.
	Limit int
}

// ListPage is one page of a listing. A page may hold fewer than the limit,
// even none, while more follow: the listing goes on as long as Cursor is
// not empty.
type ListPage struct {
	Timers []Info `json:"timers"`
	// Cursor is the opaque cursor of the next page; "" on the last page.
	Cursor string `json:"cursor,omitempty"`
}

// EncodeCursor turns the last id of a page into the opaque cursor of the
// next one.
func EncodeCursor(after string) string {
	if after == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(after))
}

// DecodeCursor reads what EncodeCursor wrote; a cursor it cannot read is a
// *ValidationError.
func DecodeCursor(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) == 0 || len(b) > MaxIDLen {
		return "", invalid("cursor", "cursor is not one this service handed out")
	}
	return string(b), nil
}

// ParseListQuery reads a list request's parameters, given as strings (a
// URL query, or the members of a NATS list message): state, limit (empty:
// DefaultListLimit) and cursor. Bad values are a *ValidationError.
func ParseListQuery(state, limit, cursor string) (ListQuery, error) {
	q := ListQuery{State: state, Limit: DefaultListLimit}
	if state != "" && !ValidStateName(state) {
		return q, invalid("state", "state must be one of pending, retrying, delivered, failed, cancelled")
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxListLimit {
			return q, invalid("limit", "limit must be an integer from 1 to %d", MaxListLimit)
		}
		q.Limit = n
	}
	var err error
	q.After, err = DecodeCursor(cursor)
	return q, err
}
