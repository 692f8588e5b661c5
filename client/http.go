package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/skyring/skyring"
)

// HTTPClient talks to the HTTP API of a Skyring node (API.md section 2).
// Any node of a cluster answers for every timer. It is safe for concurrent
// use.
type HTTPClient struct {
	base   string // scheme://host[/path], no trailing slash
	client *http.Client
	auth   string // "Bearer <token>", or ""
}

// WithToken makes the client send "Authorization: Bearer <token>" with
// every request, for a node started with --http:token.
func WithToken(token string) HTTPOption {
	return func(c *HTTPClient) error {
		if token == "" {
			return errors.New("client: empty token")
		}
		c.auth = "Bearer " + token
		return nil
	}
}

// HTTPOption configures NewHTTP.
type HTTPOption func(*HTTPClient) error

// WithHTTPClient makes the client send its requests with hc instead of
// http.DefaultClient: set timeouts, TLS or a custom transport there.
func WithHTTPClient(hc *http.Client) HTTPOption {
	return func(c *HTTPClient) error {
		if hc == nil {
			return errors.New("client: nil *http.Client")
		}
		c.client = hc
		return nil
	}
}

// NewHTTP returns a client of the Skyring HTTP API at baseURL, e.g.
// "http://127.0.0.1:3000". A path in baseURL is kept as a prefix (for a node
// behind a proxy that mounts it under a path).
func NewHTTP(baseURL string, opts ...HTTPOption) (*HTTPClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: parsing base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http(s)://host[:port][/path]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q must have no query or fragment", baseURL)
	}
	c := &HTTPClient{
		base:   strings.TrimRight(u.String(), "/"),
		client: http.DefaultClient,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

const (
	timerPath     = "/timer"
	headerTimerID = "X-Timer-Id"
	headerReason  = "X-Skyring-Reason"
)

func (c *HTTPClient) timerURL(id string) string {
	return c.base + timerPath + "/" + url.PathEscape(id)
}

// Create sends POST /timer (with x-timer-id when spec.ID is set) and returns
// the id of the new timer, read from the Location header.
func (c *HTTPClient) Create(ctx context.Context, spec TimerSpec) (string, error) {
	body, err := encodeSpec(spec, false)
	if err != nil {
		return "", opError("create", spec.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+timerPath, bytes.NewReader(body))
	if err != nil {
		return "", opError("create", spec.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if spec.ID != "" {
		req.Header[headerTimerID] = []string{spec.ID}
	}
	resp, err := c.do(req)
	if err != nil {
		return "", opError("create", spec.ID, err)
	}
	if spec.ID != "" {
		return spec.ID, nil
	}
	id, err := idFromLocation(resp.Header.Get("Location"))
	if err != nil {
		return "", opError("create", "", err)
	}
	return id, nil
}

// Update sends PUT /timer/:id.
func (c *HTTPClient) Update(ctx context.Context, id string, spec TimerSpec) error {
	if err := checkUpdate(id, spec); err != nil {
		return opError("update", id, err)
	}
	spec.ID = id
	body, err := encodeSpec(spec, false)
	if err != nil {
		return opError("update", id, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.timerURL(id), bytes.NewReader(body))
	if err != nil {
		return opError("update", id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if _, err := c.do(req); err != nil {
		return opError("update", id, err)
	}
	return nil
}

// Cancel sends DELETE /timer/:id.
func (c *HTTPClient) Cancel(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return opError("cancel", id, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.timerURL(id), nil)
	if err != nil {
		return opError("cancel", id, err)
	}
	if _, err := c.do(req); err != nil {
		return opError("cancel", id, err)
	}
	return nil
}

// maxInfoBytes bounds the GET answer read into memory: a timer body is at
// most the server's body limit (1 MiB by default) plus a few fields.
const maxInfoBytes = 64 << 20

// maxListBytes bounds a GET /timer answer read into memory: a page holds
// up to skyring.MaxListLimit timers.
const maxListBytes = 1 << 30

// Get sends GET /timer/:id and decodes the answer.
func (c *HTTPClient) Get(ctx context.Context, id string) (skyring.Info, error) {
	var info skyring.Info
	if err := checkID(id); err != nil {
		return info, opError("get", id, err)
	}
	if err := c.getJSON(ctx, c.timerURL(id), maxInfoBytes, &info); err != nil {
		return info, opError("get", id, err)
	}
	return info, nil
}

// List sends GET /timer?state=&limit=&cursor= and decodes the page: the
// cursor is q.After encoded with skyring.EncodeCursor; state and limit are
// left out when empty or zero.
func (c *HTTPClient) List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	params := url.Values{}
	if q.State != "" {
		params.Set("state", q.State)
	}
	if q.Limit != 0 {
		params.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		params.Set("cursor", skyring.EncodeCursor(q.After))
	}
	u := c.base + timerPath
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var page struct {
		Timers *[]skyring.Info `json:"timers"`
		Cursor string          `json:"cursor"`
	}
	if err := c.getJSON(ctx, u, maxListBytes, &page); err != nil {
		return skyring.ListPage{}, listError(err)
	}
	if page.Timers == nil {
		return skyring.ListPage{}, listError(errors.New("the answer carries no timers"))
	}
	return skyring.ListPage{Timers: *page.Timers, Cursor: page.Cursor}, nil
}

// Retry sends POST /timer/:id/retry.
func (c *HTTPClient) Retry(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return opError("retry", id, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.timerURL(id)+"/retry", nil)
	if err != nil {
		return opError("retry", id, err)
	}
	if _, err := c.do(req); err != nil {
		return opError("retry", id, err)
	}
	return nil
}

// getJSON sends GET u and decodes the JSON answer, at most limit bytes of
// it, into v.
func (c *HTTPClient) getJSON(ctx context.Context, u string, limit int64, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		drain(resp.Body)
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return nil
}

// do sends req and turns an error status into the matching error. The body
// of the answer is read and closed; the headers are returned.
func (c *HTTPClient) do(req *http.Request) (*http.Response, error) {
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	drain(resp.Body)
	resp.Body.Close()
	if err := statusError(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// statusError maps a non-2xx answer to the root sentinels, with the reason
// of x-skyring-reason (or the status text when a proxy answered without
// one).
func statusError(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	reason := resp.Header.Get(headerReason)
	if reason == "" {
		reason = http.StatusText(resp.StatusCode)
	}
	return skyring.ErrorFromStatus(resp.StatusCode, reason)
}

// drain reads a little of what is left of a body so that the connection
// can be reused.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
}

// idFromLocation reads the id from a Location header, /timer/<id> with the
// id percent-encoded (possibly as an absolute URL, or under a path prefix).
func idFromLocation(loc string) (string, error) {
	if loc == "" {
		return "", errors.New("the answer has no Location header")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("parsing Location %q: %w", loc, err)
	}
	p := u.EscapedPath()
	i := strings.LastIndex(p, timerPath+"/")
	if i < 0 {
		return "", fmt.Errorf("the Location %q names no timer", loc)
	}
	id, err := url.PathUnescape(p[i+len(timerPath)+1:])
	if err != nil || id == "" {
		return "", fmt.Errorf("the Location %q names no timer", loc)
	}
	return id, nil
}
