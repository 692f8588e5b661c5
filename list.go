package skyring

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
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

// Filter selects timers by their fields, for a listing (ListQuery) and a
// bulk cancel. Its conditions combine: a timer matches when it meets every
// one that is set. The zero Filter matches every timer.
type Filter struct {
	// State keeps the timers in that state (a state name); "" keeps all.
	State string
	// DueAfter keeps the timers due at or after it, in Unix ms; 0: no
	// lower bound.
	DueAfter int64
	// DueBefore keeps the timers due before it, in Unix ms; 0: no upper
	// bound. With DueAfter, the range is [DueAfter, DueBefore).
	DueBefore int64
	// Prefix keeps the timers whose id begins with it; "" keeps all.
	Prefix string
	// Host keeps the timers whose callback URI names that host
	// ("api.example.com", matched case-insensitively whatever the port)
	// or that host and port ("api.example.com:8443"); "" keeps all.
	Host string
}

// IsZero reports whether f sets no condition.
func (f Filter) IsZero() bool { return f == Filter{} }

// Match reports whether t meets every condition of f. The state compared
// is t.StateName (a pending timer with a failed attempt is "retrying").
func (f Filter) Match(t *Timer) bool {
	if f.State != "" && t.StateName() != f.State {
		return false
	}
	due := t.Due / 1e6
	if f.DueAfter != 0 && due < f.DueAfter || f.DueBefore != 0 && due >= f.DueBefore {
		return false
	}
	if !strings.HasPrefix(t.ID, f.Prefix) {
		return false
	}
	return f.Host == "" || callbackHostIs(t.Callback.URI, f.Host)
}

// callbackHostIs reports whether the callback URI uri names host, a host
// name alone or a host:port.
func callbackHostIs(uri, host string) bool {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return false
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return strings.EqualFold(u.Host, host)
	}
	return strings.EqualFold(u.Hostname(), strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}

// Filter returns the conditions of q.
func (q ListQuery) Filter() Filter {
	return Filter{State: q.State, DueAfter: q.DueAfter, DueBefore: q.DueBefore, Prefix: q.Prefix, Host: q.Host}
}

// The names of the filter parameters, in a GET or DELETE /timer query
// string and in a NATS list or cancel message.
const (
	ParamState     = "state"
	ParamDueAfter  = "due_after"
	ParamDueBefore = "due_before"
	ParamPrefix    = "prefix"
	ParamHost      = "host"
	ParamLimit     = "limit"
	ParamCursor    = "cursor"
	ParamAll       = "all"
)

// ParseFilter reads a filter from its parameters, get returning each one's
// value by name ("" when absent; url.Values.Get fits): state, due_after
// and due_before (Unix ms, or an RFC 3339 time), prefix and host. Bad
// values are a *ValidationError naming the parameter.
func ParseFilter(get func(name string) string) (Filter, error) {
	f := Filter{State: get(ParamState), Prefix: get(ParamPrefix), Host: get(ParamHost)}
	if f.State != "" && !ValidStateName(f.State) {
		return f, invalid(ParamState, "state must be one of pending, retrying, delivered, failed, cancelled")
	}
	var err error
	if f.DueAfter, err = parseDueBound(ParamDueAfter, get(ParamDueAfter)); err != nil {
		return f, err
	}
	if f.DueBefore, err = parseDueBound(ParamDueBefore, get(ParamDueBefore)); err != nil {
		return f, err
	}
	if f.DueAfter != 0 && f.DueBefore != 0 && f.DueAfter >= f.DueBefore {
		return f, invalid(ParamDueBefore, "due_before must be later than due_after")
	}
	if len(f.Prefix) > MaxIDLen {
		return f, invalid(ParamPrefix, "prefix must be at most %d bytes long", MaxIDLen)
	}
	if f.Host != "" && (strings.ContainsAny(f.Host, "/?#@ ") || len(f.Host) > 255) {
		return f, invalid(ParamHost, "host must be a host name or host:port, e.g. api.example.com or api.example.com:8443")
	}
	return f, nil
}

// parseDueBound reads a due_after or due_before value: Unix ms (a positive
// integer) or an RFC 3339 time; "" is 0 (no bound).
func parseDueBound(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0, invalid(name, "%s must be a positive Unix time in ms or an RFC 3339 time, e.g. 2030-01-01T00:00:00Z", name)
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || t.UnixMilli() <= 0 {
		return 0, invalid(name, "%s must be a Unix time in ms or an RFC 3339 time, e.g. 2030-01-01T00:00:00Z", name)
	}
	return t.UnixMilli(), nil
}

// ParseListParams reads a list request's parameters by name (see
// ParseFilter; get may be url.Values.Get): the filter, limit and cursor.
func ParseListParams(get func(name string) string) (ListQuery, error) {
	q, err := ParseListQuery(get(ParamState), get(ParamLimit), get(ParamCursor))
	if err != nil {
		return q, err
	}
	f, err := ParseFilter(get)
	if err != nil {
		return q, err
	}
	q.DueAfter, q.DueBefore, q.Prefix, q.Host = f.DueAfter, f.DueBefore, f.Prefix, f.Host
	return q, nil
}

// CancelStates are the states a bulk cancel acts on: a pending or
// retrying timer is cancelled, a failed one (a dead letter) dropped.
// Delivered and cancelled timers are left as they are.
func CancelStates() []string {
	return []string{StateNamePending, StateNameRetrying, StateNameFailed}
}

// ParseCancelFilter reads the parameters of a bulk cancel by name: a
// filter as ParseFilter, whose state, if given, must be pending, retrying
// or failed, and all. A filter that sets nothing is refused unless all is
// "true", so that nobody cancels every timer by accident.
func ParseCancelFilter(get func(name string) string) (Filter, error) {
	f, err := ParseFilter(get)
	if err != nil {
		return f, err
	}
	if f.State != "" && !slices.Contains(CancelStates(), f.State) {
		return f, invalid(ParamState, "a bulk cancel takes state pending, retrying or failed (delivered and cancelled timers are already done)")
	}
	all := get(ParamAll)
	if all != "" && all != "true" && all != "false" {
		return f, invalid(ParamAll, "all must be true or false")
	}
	if f.IsZero() && all != "true" {
		return f, invalid(ParamAll, "a bulk cancel needs a filter (state, due_after, due_before, prefix, host), or all=true to cancel every timer")
	}
	return f, nil
}

// CancelResult is the answer of a bulk cancel: how many timers it
// cancelled or dropped.
type CancelResult struct {
	Cancelled int `json:"cancelled"`
}

// PartialCancelError is the error of a bulk cancel that some ring member
// did not answer: Cancelled timers were cancelled on the members that did.
// It matches ErrNoOwner (HTTP 503) and its reason says how many were
// cancelled.
func PartialCancelError(cancelled int, members []string) error {
	return &reasonError{err: ErrNoOwner, reason: fmt.Sprintf(
		"Cancelled %d timers on the members that answered; %s did not answer: cancel again once the ring is whole",
		cancelled, strings.Join(members, ", "))}
}
