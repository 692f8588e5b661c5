package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// creator sends creates. Implementations are safe for concurrent use.
type creator interface {
	// create sends the create of timer seq (id, JSON body); it reports
	// success or a one-line reason. It owns body.
	create(ctx context.Context, seq int, id string, body []byte) (ok bool, reason string)
	// finish completes what is buffered (NATS publish: flush).
	finish(ctx context.Context) error
	// close releases connections.
	close()
	// measuresLatency reports whether create's duration is a create latency.
	measuresLatency() bool
}

// newHTTPClient returns a client over one shared keep-alive transport that
// keeps up to perHost idle connections per host (and at most maxPerHost open,
// 0 for no limit), never follows redirects (so it cannot be sent off the
// loopback) and bounds each request, and each dial, by timeout.
func newHTTPClient(perHost, maxPerHost int, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: loopback only
		DialContext:         dialer.DialContext,
		MaxIdleConns:        0, // no global limit; per host below
		MaxIdleConnsPerHost: perHost,
		MaxConnsPerHost:     maxPerHost,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// drain reads the rest of a response body (so the connection is reused)
// and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
}

// httpCreator POSTs /timer round-robin over the targets.
type httpCreator struct {
	client *http.Client
	urls   []string // .../timer
	auth   []string // Authorization header value, nil without a token
}

func newHTTPCreator(targets []string, concurrency int, timeout time.Duration, token string) (*httpCreator, error) {
	h := &httpCreator{client: newHTTPClient(concurrency, 0, timeout)}
	if token != "" {
		h.auth = []string{"Bearer " + token}
	}
	for _, t := range targets {
		u, err := parseTarget(t)
		if err != nil {
			return nil, err
		}
		h.urls = append(h.urls, u)
	}
	return h, nil
}

var jsonContentType = []string{"application/json"}

func (h *httpCreator) create(ctx context.Context, seq int, id string, body []byte) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.urls[seq%len(h.urls)], bytes.NewReader(body))
	if err != nil {
		return false, err.Error()
	}
	req.Header["X-Timer-Id"] = []string{id}
	req.Header["Content-Type"] = jsonContentType
	if h.auth != nil {
		req.Header["Authorization"] = h.auth
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false, oneLine(err.Error())
	}
	drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return false, fmt.Sprintf("status %d: %s", resp.StatusCode, oneLine(resp.Header.Get("X-Skyring-Reason")))
	}
	return true, ""
}

func (h *httpCreator) finish(context.Context) error { return nil }
func (h *httpCreator) close()                       { h.client.CloseIdleConnections() }
func (h *httpCreator) measuresLatency() bool        { return true }

// preflight checks that every target answers HTTP at all (GET /ping; any
// status will do), so a run against a stopped node fails at once.
func preflight(ctx context.Context, client *http.Client, targets []string) error {
	for _, t := range targets {
		u, err := parseTarget(t)
		if err != nil {
			return err
		}
		u = strings.TrimSuffix(u, "/timer") + "/ping"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return fmt.Errorf("target %s: %w", t, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("target %s is not answering: %w", t, err)
		}
		drain(resp)
	}
	return nil
}

// natsCreator sends creates over NATS on a few shared connections.
//
// Fire-and-forget publishes get no answer, so a publish proves nothing: in
// publish mode the creator also counts the create events (published by the
// node once a timer is stored) of this run's timers, and finish waits for
// them. The creates that count are those stored, at the rate they were
// stored; a publish the node never stored (a NATS slow consumer drops
// messages) is a create error. finish gives up once no create event came
// for the request timeout: a busy machine may pause the node for seconds,
// and a store that comes late is not a drop.
type natsCreator struct {
	conns   []*nats.Conn
	subject string
	publish bool
	timeout time.Duration // each request, connect and flush; store quiet

	idPrefix  string
	events    *nats.Subscription
	published atomic.Int64
	stored    atomic.Int64
	lastStore atomic.Int64 // Unix ns of the latest create event
}

func newNATSCreator(cfg Config, ids idScheme) (*natsCreator, error) {
	n := &natsCreator{
		subject:  cfg.Prefix + ".timer.create",
		publish:  cfg.NATSMode == NATSPublish,
		timeout:  cfg.RequestTimeout,
		idPrefix: ids.prefix,
	}
	for range cfg.NATSConns {
		nc, err := nats.Connect(cfg.NATSURL,
			nats.Name("skyring-bench"),
			// Stay on the servers given: a cluster may advertise others.
			nats.IgnoreDiscoveredServers(),
			nats.Timeout(cfg.RequestTimeout),
			nats.Token(cfg.Token), // ignored when empty
		)
		if err != nil {
			n.close()
			return nil, fmt.Errorf("connecting to NATS at %s: %w", cfg.NATSURL, err)
		}
		n.conns = append(n.conns, nc)
	}
	if n.publish {
		sub, err := n.conns[0].Subscribe(cfg.Prefix+".events.create", func(m *nats.Msg) {
			var ev struct {
				Timer string `json:"timer"`
			}
			if json.Unmarshal(m.Data, &ev) == nil && strings.HasPrefix(ev.Timer, n.idPrefix) {
				n.stored.Add(1)
				n.lastStore.Store(time.Now().UnixNano())
			}
		})
		if err == nil {
			err = sub.SetPendingLimits(-1, -1)
		}
		if err == nil {
			err = n.conns[0].Flush()
		}
		if err != nil {
			n.close()
			return nil, fmt.Errorf("subscribing to create events: %w", err)
		}
		n.events = sub
	}
	return n, nil
}

type natsReply struct {
	ID     string `json:"id"`
	Status int    `json:"status"`
	Error  string `json:"error"`
}

func (n *natsCreator) create(ctx context.Context, seq int, _ string, body []byte) (bool, string) {
	nc := n.conns[seq%len(n.conns)]
	if n.publish {
		if err := nc.Publish(n.subject, body); err != nil {
			return false, oneLine(err.Error())
		}
		n.published.Add(1)
		return true, ""
	}
	rctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	msg, err := nc.RequestWithContext(rctx, n.subject, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return false, "no responders on " + n.subject
		}
		return false, oneLine(err.Error())
	}
	var rep natsReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return false, "invalid reply: " + oneLine(string(msg.Data))
	}
	if rep.Status != http.StatusCreated {
		return false, fmt.Sprintf("status %d: %s", rep.Status, oneLine(rep.Error))
	}
	return true, ""
}

func (n *natsCreator) finish(ctx context.Context) error {
	for _, nc := range n.conns {
		fctx, cancel := context.WithTimeout(ctx, n.timeout)
		err := nc.FlushWithContext(fctx)
		cancel()
		if err != nil {
			return fmt.Errorf("flushing NATS publishes: %w", err)
		}
	}
	if !n.publish {
		return nil
	}
	// Wait until every publish was stored, or the node went quiet.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, since := n.stored.Load(), time.Now()
	for n.stored.Load() < n.published.Load() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("awaiting the stores of published creates: %w", ctx.Err())
		case <-tick.C:
		}
		if s := n.stored.Load(); s != last {
			last, since = s, time.Now()
		} else if time.Since(since) > n.timeout {
			return fmt.Errorf("%d of %d published creates were not stored within %s of the last store (dropped)",
				n.published.Load()-s, n.published.Load(), n.timeout)
		}
	}
	return nil
}

// storedResult reports, in publish mode, how many creates were stored and
// when the last one was.
func (n *natsCreator) storedResult() (stored, published int64, last time.Time, ok bool) {
	if !n.publish {
		return 0, 0, time.Time{}, false
	}
	return n.stored.Load(), n.published.Load(), time.Unix(0, n.lastStore.Load()), true
}

func (n *natsCreator) close() {
	for _, nc := range n.conns {
		nc.Close()
	}
}

func (n *natsCreator) measuresLatency() bool { return !n.publish }

func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}
