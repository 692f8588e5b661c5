// Package httptransport is Skyring's "http" transport: it delivers a fired
// timer as an HTTP request to callback.uri (API.md section 3).
//
//   - Method: callback.method, case-insensitive, one of post, put, patch,
//     delete, get, options, head. Any other is ErrBadMethod, marked
//     transports.ErrPermanent (retrying cannot fix it).
//   - URI: callback.uri, an absolute http or https URL with a host; any
//     other is ErrBadURI, marked transports.ErrPermanent.
//   - Validate (transports.Validator) applies the method and URI rules when
//     a timer is created or updated, so a callback that can never be sent is
//     a 400 then rather than a failure when the timer fires.
//   - Body: string data verbatim as "text/plain; charset=utf-8", object data
//     as "application/json", no data an empty body with no Content-Type. This
//     holds for every method, GET and HEAD included.
//   - Headers: "User-Agent: skyring/<version>", "x-skyring-timer-id: <id>"
//     "x-skyring-attempt: <n>", the 1-based delivery attempt, and
//     "x-skyring-fence: <f>", the fencing token (skyring.Timer.Fence).
//   - Signature (Options.Signer, the node's --webhook:secret): the Standard
//     Webhooks headers (https://www.standardwebhooks.com/)
//     "webhook-id: msg_<timer id>_<created ns>" (the same for every attempt
//     of one timer generation, see MessageID), "webhook-timestamp: <Unix
//     seconds of the attempt>" and "webhook-signature: v1,<sig> [v1,<sig>
//     ...]", one per secret, where sig is the standard base64 of
//     HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>"). Without
//     a Signer none of the three is sent.
//   - A 2xx answer is success; any other status is a *StatusError (matching
//     ErrStatus), redirects included (they are not followed); a network error
//     or the timeout is an error too. A 4xx other than 408 and 429 also
//     matches transports.ErrPermanent (retrying cannot help); the node
//     retries the others. A Retry-After header (seconds or an HTTP date) on
//     a retryable answer is carried as a *transports.RetryAfterError.
//
// All deliveries share one http.Client with keep-alive and a bounded pool per
// host (Options.MaxConnsPerHost), so a burst of timers due at the same
// instant queues for connections instead of opening one socket each and
// running out of file descriptors. Response bodies are drained (up to 64 KiB)
// and closed so connections go back to the pool.
//
// Its Go API is meant for embedders (node wiring, custom binaries) and is kept
// stable.
package httptransport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/internal/webhook"
	"github.com/skyring/skyring/transports"
)

// Name is the name clients put in callback.transport.
const Name = "http"

// Defaults of Options.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxConnsPerHost = 256
	DefaultMaxIdleConns    = 1024             // idle keep-alive connections over all hosts
	DefaultIdleConnTimeout = 90 * time.Second // an idle connection is closed after this
	DefaultVersion         = "dev"
)

// Header names and content types the transport sends.
const (
	HeaderTimerID          = "X-Skyring-Timer-Id"    // canonical form of x-skyring-timer-id
	HeaderAttempt          = "X-Skyring-Attempt"     // canonical form of x-skyring-attempt
	HeaderFence            = "X-Skyring-Fence"       // canonical form of x-skyring-fence
	HeaderWebhookID        = webhook.HeaderID        // canonical form of webhook-id
	HeaderWebhookTimestamp = webhook.HeaderTimestamp // canonical form of webhook-timestamp
	HeaderWebhookSignature = webhook.HeaderSignature // canonical form of webhook-signature
	ContentTypeText        = "text/plain; charset=utf-8"
	ContentTypeJSON        = "application/json"
)

// drainLimit bounds how much of a response body is read so the connection
// can be reused; a longer body costs the connection instead.
const drainLimit = 64 << 10

var (
	// ErrBadMethod: callback.method is not one the http transport knows. The
	// error is also marked transports.ErrPermanent.
	ErrBadMethod = errors.New("httptransport: unsupported method")
	// ErrBadURI: callback.uri is not an absolute http or https URL. The
	// error is also marked transports.ErrPermanent.
	ErrBadURI = errors.New("httptransport: bad callback uri")
	// ErrStatus is matched by every *StatusError: the receiver answered
	// with a status other than 2xx.
	ErrStatus = errors.New("httptransport: non-2xx status")
)

// StatusError is a delivery the receiver answered with a non-2xx status.
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("httptransport: status %d %s", e.Code, http.StatusText(e.Code))
}

// StatusCode returns the HTTP status (transports.StatusCoder).
func (e *StatusError) StatusCode() int { return e.Code }

// Is makes every StatusError match ErrStatus, and a 4xx other than 408
// (Request Timeout) and 429 (Too Many Requests) match
// transports.ErrPermanent too.
func (e *StatusError) Is(target error) bool {
	return target == ErrStatus || target == transports.ErrPermanent && e.Permanent()
}

// Permanent reports whether retrying cannot help: a 4xx other than 408 and
// 429.
func (e *StatusError) Permanent() bool {
	return e.Code >= 400 && e.Code <= 499 && e.Code != http.StatusRequestTimeout && e.Code != http.StatusTooManyRequests
}

// ParseRetryAfter reads a Retry-After header value (RFC 9110 section
// 10.2.3): a number of seconds, or an HTTP date, taken relative to now (a
// date in the past is 0). ok is false for an empty or unreadable value.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 63); err == nil {
		const maxSecs = uint64(1<<63-1) / uint64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// Signer signs deliveries (Options.Signer) with the Standard Webhooks
// scheme: one "v1,<sig>" per secret, the first secret the current one. It
// never prints its secrets.
type Signer = webhook.Signer

// NewSigner parses secrets, each "whsec_<base64>" decoding to at least 24
// bytes; the error names a bad secret by its position only. No secrets give
// a nil Signer (no signing).
func NewSigner(secrets []string) (*Signer, error) { return webhook.NewSigner(secrets) }

// MessageID is the webhook-id of a delivery of tm: "msg_<timer id>_<created
// ns>". Every attempt of one timer generation (retries, a retry on request,
// after a hand-off or a restart) has the same id, so a receiver can drop
// duplicates by it; an update, or a new create reusing the timer id, is a new
// generation with a new Created and so a new id.
func MessageID(tm *skyring.Timer) string { return webhook.MessageID(tm.ID, tm.Created) }

// Options configure a Transport. Zero fields take their defaults.
type Options struct {
	// Timeout bounds each delivery, connection wait, dial and response
	// headers included; the Execute ctx's deadline applies too, whichever
	// is earlier. Default DefaultTimeout (10s).
	Timeout time.Duration
	// MaxConnsPerHost bounds the connections (dialing, active and idle) to
	// one host; deliveries beyond it wait for a free connection. Default
	// DefaultMaxConnsPerHost (256).
	MaxConnsPerHost int
	// MaxIdleConnsPerHost is how many idle keep-alive connections are kept
	// per host. Default MaxConnsPerHost, so a burst leaves a warm pool.
	MaxIdleConnsPerHost int
	// MaxIdleConns caps the idle keep-alive connections over all hosts, so
	// callbacks to many hosts do not keep a socket open each. Default
	// DefaultMaxIdleConns (1024).
	MaxIdleConns int
	// IdleConnTimeout closes a keep-alive connection idle this long.
	// Default DefaultIdleConnTimeout (90s).
	IdleConnTimeout time.Duration
	// Version is the Skyring version, sent as User-Agent "skyring/<Version>".
	// Default DefaultVersion ("dev").
	Version string
	// UserAgent overrides the whole User-Agent header.
	UserAgent string
	// DialContext, if set, opens the transport's connections instead of a
	// net.Dialer with a Timeout connect timeout; use it to restrict where
	// callbacks may go or to observe connections. Ignored with Client.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Policy, if set, says where callbacks may go (see Policy): checked at
	// create (Validate) and on the resolved address of every dial. Ignored
	// with DialContext or Client.
	Policy *Policy
	// Client, if set, is used instead of the transport's own client; the
	// pool options above are then ignored and the caller owns the client
	// (Shutdown leaves it alone). Its CheckRedirect decides about redirects.
	Client *http.Client
	// Signer, if set, signs every delivery (the webhook-* headers); nil
	// sends none.
	Signer *Signer
}

// Transport is the "http" transport. It is safe for concurrent use.
type Transport struct {
	client    *http.Client
	own       *http.Transport // nil when Options.Client was given
	timeout   time.Duration
	userAgent []string
	signer    atomic.Pointer[Signer]
	policy    *Policy // nil: no callback policy
	now       func() time.Time
	closed    atomic.Bool
}

var (
	_ transports.Transport  = (*Transport)(nil)
	_ transports.Shutdowner = (*Transport)(nil)
	_ transports.Validator  = (*Transport)(nil)
	_ transports.Keyer      = (*Transport)(nil)
)

// New returns a Transport configured by opts.
func New(opts Options) *Transport {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxConnsPerHost <= 0 {
		opts.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = opts.MaxConnsPerHost
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = DefaultMaxIdleConns
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "skyring/" + opts.Version
	}
	t := &Transport{
		timeout:   opts.Timeout,
		userAgent: []string{opts.UserAgent},
		client:    opts.Client,
		now:       time.Now,
	}
	if opts.Client == nil && opts.DialContext == nil {
		t.policy = opts.Policy
	}
	t.SetSigner(opts.Signer)
	if t.client == nil {
		dial := opts.DialContext
		if dial == nil {
			d := &net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}
			dial = d.DialContext
			if opts.Policy != nil {
				dial = opts.Policy.dialer(d)
			}
		}
		t.own = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			MaxConnsPerHost:       opts.MaxConnsPerHost,
			MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
			MaxIdleConns:          opts.MaxIdleConns,
			IdleConnTimeout:       opts.IdleConnTimeout,
			TLSHandshakeTimeout:   opts.Timeout,
			ExpectContinueTimeout: time.Second,
			// The answer's body is thrown away: do not ask for gzip.
			DisableCompression: true,
		}
		t.client = &http.Client{
			Transport: t.own,
			// A 3xx is an answer like any other non-2xx: a failure. Following
			// it would turn a POST into a GET without its body.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return t
}

// Factory builds the transport for a transports.Catalog with default options,
// taking Timeout and Version from deps.
func Factory(deps transports.Deps) (transports.Transport, error) {
	return NewFactory(Options{})(deps)
}

// NewFactory returns a transports.Factory building a Transport from opts,
// with deps.Timeout and deps.Version filling Timeout and Version when opts
// leaves them zero.
func NewFactory(opts Options) transports.Factory {
	return func(deps transports.Deps) (transports.Transport, error) {
		o := opts
		if o.Timeout == 0 {
			o.Timeout = deps.Timeout
		}
		if o.Version == "" {
			o.Version = deps.Version
		}
		if o.Policy == nil {
			p, err := NewPolicy(deps.CallbackDeny, deps.CallbackAllow)
			if err != nil {
				return nil, err
			}
			o.Policy = p
		}
		return New(o), nil
	}
}

// SetSigner replaces the Signer (nil: sign nothing); later deliveries use
// it. The node sets it from its WebhookSecrets before any delivery.
func (t *Transport) SetSigner(s *Signer) {
	if !s.Enabled() {
		s = nil
	}
	t.signer.Store(s)
}

// Name returns "http".
func (t *Transport) Name() string { return Name }

// Key implements transports.Keyer: a callback's destination is its URL's
// host and port, lower case, the port defaulted from the scheme
// ("example.com:443"). A URI that does not parse has the key "": the
// transport's, shared by all such callbacks (they fail at once anyway).
func (t *Transport) Key(cb skyring.Callback) string {
	u, err := url.Parse(cb.URI)
	if err != nil || u.Host == "" {
		return ""
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// methods maps the accepted callback methods, lower case, to HTTP methods.
var methods = map[string]string{
	"post":    http.MethodPost,
	"put":     http.MethodPut,
	"patch":   http.MethodPatch,
	"delete":  http.MethodDelete,
	"get":     http.MethodGet,
	"options": http.MethodOptions,
	"head":    http.MethodHead,
}

// methodList names the accepted methods in errors and reasons.
const methodList = "post, put, patch, delete, get, options, head"

// Method returns the HTTP method for a callback method (case-insensitive),
// or an error wrapping ErrBadMethod (and transports.ErrPermanent).
func Method(m string) (string, error) {
	if hm, ok := methods[m]; ok {
		return hm, nil
	}
	if hm, ok := methods[strings.ToLower(m)]; ok {
		return hm, nil
	}
	return "", transports.Permanent(fmt.Errorf("%w %q (want one of %s)", ErrBadMethod, m, methodList))
}

// parseURI parses a callback uri as Execute needs it: an absolute http or
// https URL with a host. The error wraps ErrBadURI (and
// transports.ErrPermanent).
func parseURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, transports.Permanent(fmt.Errorf("%w: %w", ErrBadURI, err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, transports.Permanent(fmt.Errorf("%w %q: want an absolute http or https URL", ErrBadURI, u.Redacted()))
	}
	return u, nil
}

// Validate implements transports.Validator: it accepts exactly the callbacks
// Execute can send, checking their form only (no DNS, no connection).
//
//   - callback.method: one of post, put, patch, delete, get, options, head,
//     in any case (API.md section 3); else a *skyring.ValidationError with
//     Field "callback.method" wrapping ErrBadMethod.
//   - callback.uri: a URL (net/url) whose scheme is http or https, in any
//     case, with a non-empty host (user info, port, path, query and fragment
//     are allowed); else Field "callback.uri", wrapping ErrBadURI.
func (t *Transport) Validate(cb skyring.Callback) error {
	if _, err := Method(cb.Method); err != nil {
		return &skyring.ValidationError{
			Field:  "callback.method",
			Reason: fmt.Sprintf("callback.method %s is not supported by the http transport; want one of %s", transports.Quote(cb.Method), methodList),
			Err:    ErrBadMethod,
		}
	}
	u, err := parseURI(cb.URI)
	if err == nil {
		if perr := t.policy.CheckHost(u.Hostname()); perr != nil {
			return &skyring.ValidationError{
				Field:  "callback.uri",
				Reason: fmt.Sprintf("callback.uri %s is refused by the callback policy: %v", transports.Quote(u.Redacted()), perr),
				Err:    ErrDenied,
			}
		}
	}
	if err != nil {
		shown := cb.URI
		if u, perr := url.Parse(cb.URI); perr == nil && u.User != nil {
			shown = u.Redacted() // no password in the answer or in logs
		}
		return &skyring.ValidationError{
			Field:  "callback.uri",
			Reason: fmt.Sprintf("callback.uri %s is not an absolute http or https URL", transports.Quote(shown)),
			Err:    ErrBadURI,
		}
	}
	return nil
}

// Execute delivers tm: it sends the request and waits for the status line and
// headers, then drains and closes the body. A nil error means a 2xx answer.
func (t *Transport) Execute(ctx context.Context, tm *skyring.Timer) error {
	if t.closed.Load() {
		return fmt.Errorf("httptransport: timer %s: %w", tm.ID, skyring.ErrClosed)
	}
	method, err := Method(tm.Callback.Method)
	if err != nil {
		return err
	}
	u, err := parseURI(tm.Callback.URI)
	if err != nil {
		return err
	}

	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > t.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}

	body, isJSON := tm.Body()
	req := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       u.Host,
		Header: http.Header{
			"User-Agent":  t.userAgent,
			HeaderTimerID: {tm.ID},
			HeaderAttempt: {strconv.Itoa(tm.Attempt())},
			HeaderFence:   {strconv.FormatUint(tm.Fence, 10)},
		},
	}
	if len(body) > 0 {
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		if isJSON {
			req.Header["Content-Type"] = contentTypeJSON
		} else {
			req.Header["Content-Type"] = contentTypeText
		}
	} else {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	if s := t.signer.Load(); s != nil {
		id := MessageID(tm)
		ts := t.now().Unix()
		req.Header[HeaderWebhookID] = []string{id}
		req.Header[HeaderWebhookTimestamp] = []string{strconv.FormatInt(ts, 10)}
		req.Header[HeaderWebhookSignature] = []string{s.Sign(id, ts, body)}
	}
	req = req.WithContext(ctx)

	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("httptransport: timer %s: %w", tm.ID, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError(tm.ID, resp)
	}
	return nil
}

// statusError is the error of a non-2xx answer: a *StatusError, carrying
// the answer's Retry-After when retrying may help.
func statusError(id string, resp *http.Response) error {
	se := &StatusError{Code: resp.StatusCode}
	err := fmt.Errorf("httptransport: timer %s: %w", id, se)
	if se.Permanent() {
		return err
	}
	if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return transports.WithRetryAfter(err, d)
	}
	return err
}

var (
	contentTypeJSON = []string{ContentTypeJSON}
	contentTypeText = []string{ContentTypeText}
)

// Shutdown closes the idle connections of the transport's own pool and makes
// later Execute calls fail with skyring.ErrClosed. It does not wait for
// deliveries in flight (the node drains them before it calls Shutdown). It
// is idempotent.
func (t *Transport) Shutdown(ctx context.Context) error {
	t.closed.Store(true)
	if t.own != nil {
		t.own.CloseIdleConnections()
	}
	return nil
}
