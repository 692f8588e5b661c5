package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/skyring/skyring"
)

// Callback says how a fired timer is delivered: through which transport,
// with which method, to which address.
type Callback = skyring.Callback

// TimerSpec is what to schedule: the body of a create or an update.
type TimerSpec struct {
	// ID is the timer's id on Create; empty lets the server generate a
	// UUID. On Update it must be empty or equal to the id argument.
	ID string
	// Timeout is the delay from the moment the server accepts the request.
	// It is cut to whole milliseconds, and the server requires at least
	// 1ms. Exactly one of Timeout and At must be set.
	Timeout time.Duration
	// At is the absolute due time (sent as RFC 3339 with nanoseconds); it
	// must lie in the future. Exactly one of Timeout and At must be set.
	At time.Time
	// Data is the payload delivered with the callback:
	//   - nil: no data;
	//   - a string or a []byte: sent verbatim as a JSON string;
	//   - a json.RawMessage: sent as is (it must be valid JSON);
	//   - anything else: encoded with encoding/json (HTML characters left
	//     unescaped).
	// The server accepts a string, an object or null: a value that encodes
	// to a number, an array or a boolean is rejected with ErrInvalid.
	Data any
	// Callback names the transport, method and URI of the delivery.
	Callback Callback
}

// Client is what both the HTTP and the NATS client offer.
type Client interface {
	// Create schedules a new timer and returns its id: spec.ID, or the one
	// the server generated. skyring.ErrTimerExists if spec.ID is taken.
	Create(ctx context.Context, spec TimerSpec) (id string, err error)
	// Update replaces the pending timer id with spec; its timeout counts
	// again from now. skyring.ErrTimerNotFound if no timer id is pending.
	Update(ctx context.Context, id string, spec TimerSpec) error
	// Cancel cancels the pending timer id: its callback will not run.
	// skyring.ErrTimerNotFound if no timer id is pending (never created,
	// fired or cancelled).
	Cancel(ctx context.Context, id string) error
	// Get describes the timer id: a pending one, or one whose fate is
	// sealed (delivered, failed, cancelled) while the cluster keeps it;
	// Info.State tells which. skyring.ErrTimerNotFound if the cluster
	// knows no timer id.
	Get(ctx context.Context, id string) (skyring.Info, error)
	// List returns one page of the cluster's timers in id order: those in
	// the state q.State ("" for all), whose id sorts after q.After ("" to
	// start from the first), at most q.Limit of them (0 for the server's
	// default, skyring.DefaultListLimit; at most skyring.MaxListLimit). A
	// page may hold fewer timers, even none, while more follow: the
	// listing goes on as long as the page's Cursor is not empty. Cursor is
	// opaque; the next page's After is skyring.DecodeCursor(page.Cursor).
	// ListAll does the paging.
	List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error)
	// Retry re-arms the failed timer id: it is delivered again at once,
	// with a fresh attempt budget. It returns when the timer is re-armed;
	// Get tells the outcome later. skyring.ErrTimerNotFound if the cluster
	// knows no timer id, skyring.ErrNotFailed if the timer has not failed
	// (pending, retrying, delivered or cancelled).
	Retry(ctx context.Context, id string) error
	// CancelMatching cancels every pending or retrying timer of the
	// cluster that f matches and drops every failed one; the zero Filter
	// cancels every timer. It returns how many. When a ring member does
	// not answer, the error matches skyring.ErrNoOwner and its reason
	// says how many were cancelled on the others.
	CancelMatching(ctx context.Context, f skyring.Filter) (int, error)
}

// ListAll pages through the timers q selects with c.List, from q.After on,
// q.Limit at a time (0 for the server's default), and calls fn with each in
// id order. It stops at the first error, from a List or from fn, and
// returns it. The listing is not a snapshot: a timer created, or changing
// state, while ListAll runs may or may not be seen.
//
//	err := client.ListAll(ctx, c, skyring.ListQuery{State: "failed"}, func(info skyring.Info) error {
//		return c.Retry(ctx, info.ID)
//	})
func ListAll(ctx context.Context, c Client, q skyring.ListQuery, fn func(skyring.Info) error) error {
	for {
		page, err := c.List(ctx, q)
		if err != nil {
			return err
		}
		for _, info := range page.Timers {
			if err := fn(info); err != nil {
				return err
			}
		}
		if page.Cursor == "" {
			return nil
		}
		after, err := skyring.DecodeCursor(page.Cursor)
		if err != nil || after <= q.After {
			// A cursor that does not move on would page forever.
			return fmt.Errorf("client: list timers: the server answered a bad cursor %.100q", page.Cursor)
		}
		q.After = after
	}
}

// Compile-time checks.
var (
	_ Client = (*HTTPClient)(nil)
	_ Client = (*NATSClient)(nil)
)

// timerBody is the JSON body of a create or update (API.md section 1), plus
// the "id" field of the NATS API.
type timerBody struct {
	ID       string          `json:"id,omitempty"`
	Timeout  *int64          `json:"timeout,omitempty"`
	At       string          `json:"at,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Callback Callback        `json:"callback"`
}

// encodeSpec checks spec and returns its JSON body; withID adds the "id"
// field (NATS).
func encodeSpec(spec TimerSpec, withID bool) ([]byte, error) {
	hasTimeout, hasAt := spec.Timeout != 0, !spec.At.IsZero()
	body := timerBody{Callback: spec.Callback}
	switch {
	case hasTimeout && hasAt:
		return nil, &skyring.ValidationError{Field: "at", Reason: "Give either timeout or at, not both"}
	case hasTimeout:
		ms := spec.Timeout.Milliseconds()
		body.Timeout = &ms
	case hasAt:
		body.At = spec.At.UTC().Format(time.RFC3339Nano)
	default:
		return nil, &skyring.ValidationError{Field: "timeout", Reason: "timeout is required"}
	}
	if spec.ID != "" {
		if err := skyring.ValidateID(spec.ID); err != nil {
			return nil, err
		}
		if withID {
			body.ID = spec.ID
		}
	}
	data, err := encodeData(spec.Data)
	if err != nil {
		return nil, err
	}
	body.Data = data
	return marshal(body)
}

// encodeData turns TimerSpec.Data into its JSON value (nil for none).
func encodeData(v any) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	switch d := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		if d == nil {
			return nil, nil
		}
		if !json.Valid(d) {
			return nil, &skyring.ValidationError{Field: "data", Reason: "data is not valid JSON"}
		}
		return d, nil
	case string:
		b, err = marshal(d)
	case []byte:
		b, err = marshal(string(d))
	default:
		b, err = marshal(v)
	}
	if err != nil {
		return nil, &skyring.ValidationError{Field: "data", Reason: "data cannot be encoded as JSON: " + err.Error(), Err: err}
	}
	return b, nil
}

// marshal is json.Marshal without HTML escaping, so that a string's bytes
// reach the server (and the callback) as given.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// checkID validates an id argument of Update, Cancel or Get.
func checkID(id string) error {
	return skyring.ValidateID(id)
}

// checkUpdate validates the id argument of Update against spec.ID.
func checkUpdate(id string, spec TimerSpec) error {
	if err := checkID(id); err != nil {
		return err
	}
	if spec.ID != "" && spec.ID != id {
		return &skyring.ValidationError{Field: "id", Reason: fmt.Sprintf("spec.ID %q differs from the id %q being updated", spec.ID, id)}
	}
	return nil
}

// listError wraps an error of List.
func cancelManyError(err error) error {
	return fmt.Errorf("client: cancel matching timers: %w", err)
}

func listError(err error) error {
	return fmt.Errorf("client: list timers: %w", err)
}

// opError wraps err with the operation and, when known, the timer id.
func opError(op, id string, err error) error {
	if id == "" {
		return fmt.Errorf("client: %s timer: %w", op, err)
	}
	return fmt.Errorf("client: %s timer %q: %w", op, id, err)
}
