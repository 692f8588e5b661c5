package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
)

// Defaults of NATSClient.
const (
	// DefaultPrefix starts every subject of the NATS API, as the server's
	// --nats:prefix default.
	DefaultPrefix = skyring.DefaultPrefix
	// DefaultTimeout bounds each request when its context has no earlier
	// deadline.
	DefaultTimeout = 5 * time.Second
)

// NATSClient talks to the NATS API of a Skyring cluster (API.md section 4)
// over a connection the caller owns. Any node subscribed to the subjects
// answers for every timer. It is safe for concurrent use.
type NATSClient struct {
	nc      *nats.Conn
	prefix  string
	timeout time.Duration

	subjCreate, subjUpdate, subjCancel, subjGet, subjList, subjRetry string
}

// NATSOption configures NewNATS.
type NATSOption func(*NATSClient) error

// WithPrefix sets the subject prefix, the server's --nats:prefix. Default
// "skyring".
func WithPrefix(prefix string) NATSOption {
	return func(c *NATSClient) error {
		if prefix == "" || strings.ContainsAny(prefix, " \t\r\n*>") ||
			strings.HasPrefix(prefix, ".") || strings.HasSuffix(prefix, ".") || strings.Contains(prefix, "..") {
			return fmt.Errorf("client: invalid NATS subject prefix %q", prefix)
		}
		c.prefix = prefix
		return nil
	}
}

// WithTimeout bounds each request whose context has no earlier deadline.
// Default 5s.
func WithTimeout(d time.Duration) NATSOption {
	return func(c *NATSClient) error {
		if d <= 0 {
			return fmt.Errorf("client: NATS request timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// NewNATS returns a client of the Skyring NATS API over nc. The caller
// keeps ownership of nc: the client never closes it.
func NewNATS(nc *nats.Conn, opts ...NATSOption) (*NATSClient, error) {
	if nc == nil {
		return nil, errors.New("client: nil *nats.Conn")
	}
	c := &NATSClient{nc: nc, prefix: DefaultPrefix, timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	c.subjCreate = c.prefix + ".timer.create"
	c.subjUpdate = c.prefix + ".timer.update"
	c.subjCancel = c.prefix + ".timer.cancel"
	c.subjGet = c.prefix + ".timer.get"
	c.subjList = c.prefix + ".timer.list"
	c.subjRetry = c.prefix + ".timer.retry"
	return c, nil
}

// apiReply is the JSON answer of the NATS API.
type apiReply struct {
	ID     string        `json:"id"`
	Status int           `json:"status"`
	Timer  *skyring.Info `json:"timer"`
	Error  string        `json:"error"`
	// A list page.
	Timers []skyring.Info `json:"timers"`
	Cursor string         `json:"cursor"`
}

type idBody struct {
	ID string `json:"id"`
}

// listBody is the payload of a list request.
type listBody struct {
	State  string `json:"state,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// Create requests <prefix>.timer.create and returns the id of the new
// timer.
func (c *NATSClient) Create(ctx context.Context, spec TimerSpec) (string, error) {
	body, err := encodeSpec(spec, true)
	if err != nil {
		return "", opError("create", spec.ID, err)
	}
	rep, err := c.request(ctx, c.subjCreate, body)
	if err != nil {
		return "", opError("create", spec.ID, err)
	}
	if rep.ID == "" {
		return "", opError("create", spec.ID, errors.New("the reply carries no id"))
	}
	return rep.ID, nil
}

// Update requests <prefix>.timer.update.
func (c *NATSClient) Update(ctx context.Context, id string, spec TimerSpec) error {
	if err := checkUpdate(id, spec); err != nil {
		return opError("update", id, err)
	}
	spec.ID = id
	body, err := encodeSpec(spec, true)
	if err != nil {
		return opError("update", id, err)
	}
	if _, err := c.request(ctx, c.subjUpdate, body); err != nil {
		return opError("update", id, err)
	}
	return nil
}

// Cancel requests <prefix>.timer.cancel.
func (c *NATSClient) Cancel(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return opError("cancel", id, err)
	}
	body, err := marshal(idBody{ID: id})
	if err != nil {
		return opError("cancel", id, err)
	}
	if _, err := c.request(ctx, c.subjCancel, body); err != nil {
		return opError("cancel", id, err)
	}
	return nil
}

// Get requests <prefix>.timer.get.
func (c *NATSClient) Get(ctx context.Context, id string) (skyring.Info, error) {
	if err := checkID(id); err != nil {
		return skyring.Info{}, opError("get", id, err)
	}
	body, err := marshal(idBody{ID: id})
	if err != nil {
		return skyring.Info{}, opError("get", id, err)
	}
	rep, err := c.request(ctx, c.subjGet, body)
	if err != nil {
		return skyring.Info{}, opError("get", id, err)
	}
	if rep.Timer == nil {
		return skyring.Info{}, opError("get", id, errors.New("the reply carries no timer"))
	}
	return *rep.Timer, nil
}

// List requests <prefix>.timer.list: the cursor is q.After encoded with
// skyring.EncodeCursor; state and limit are left out when empty or zero.
func (c *NATSClient) List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	body, err := marshal(listBody{State: q.State, Limit: q.Limit, Cursor: skyring.EncodeCursor(q.After)})
	if err != nil {
		return skyring.ListPage{}, listError(err)
	}
	rep, err := c.request(ctx, c.subjList, body)
	if err != nil {
		return skyring.ListPage{}, listError(err)
	}
	if rep.Timers == nil {
		return skyring.ListPage{}, listError(errors.New("the reply carries no timers"))
	}
	return skyring.ListPage{Timers: rep.Timers, Cursor: rep.Cursor}, nil
}

// Retry requests <prefix>.timer.retry.
func (c *NATSClient) Retry(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return opError("retry", id, err)
	}
	body, err := marshal(idBody{ID: id})
	if err != nil {
		return opError("retry", id, err)
	}
	if _, err := c.request(ctx, c.subjRetry, body); err != nil {
		return opError("retry", id, err)
	}
	return nil
}

// Publish creates a timer fire-and-forget: it publishes on
// <prefix>.timer.create without a reply subject and returns at once with
// the timer's id, spec.ID or one generated here with skyring.NewID. Nothing
// tells whether a node carried it out (a rejected create is only logged by
// the server); use Create to know. Like any nats.Conn publish, the message
// is buffered: call nc.Flush to make sure it left.
func (c *NATSClient) Publish(spec TimerSpec) (string, error) {
	if spec.ID == "" {
		spec.ID = skyring.NewID()
	}
	body, err := encodeSpec(spec, true)
	if err != nil {
		return "", opError("publish", spec.ID, err)
	}
	if err := c.nc.Publish(c.subjCreate, body); err != nil {
		return "", opError("publish", spec.ID, err)
	}
	return spec.ID, nil
}

// request sends body on subj, waits for the reply within ctx and the
// client's timeout, and maps an error status to the root sentinels.
func (c *NATSClient) request(ctx context.Context, subj string, body []byte) (*apiReply, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, subj, body)
	if err != nil {
		return nil, err
	}
	var rep apiReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return nil, fmt.Errorf("decoding the reply: %w", err)
	}
	if rep.Status == 0 {
		return nil, fmt.Errorf("the reply carries no status: %.200q", msg.Data)
	}
	if err := skyring.ErrorFromStatus(rep.Status, rep.Error); err != nil {
		return nil, err
	}
	return &rep, nil
}
