package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skyring/skyring"
)

// Service is what the edge hands validated commands to. The node implements
// it. Errors are mapped to status codes with [skyring.Status]: for example
// skyring.ErrTimerExists is a 409, a *skyring.ValidationError (an unknown
// transport included) a 400, skyring.ErrTimerNotFound a 404,
// skyring.ErrNoOwner and skyring.ErrClosed a 503. Any other error is a 500
// and is logged.
type Service interface {
	// Create stores and arms a new timer (POST /timer).
	Create(ctx context.Context, t *skyring.Timer) error
	// Update replaces the pending timer t.ID (PUT /timer/:id).
	Update(ctx context.Context, t *skyring.Timer) error
	// Cancel cancels the pending timer id (DELETE /timer/:id).
	Cancel(ctx context.Context, id string) error
	// Get describes the pending timer id (GET /timer/:id).
	Get(ctx context.Context, id string) (skyring.Info, error)
	// List pages through the timers of the whole cluster (GET /timer).
	List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error)
	// CancelMatching cancels every pending or retrying timer f matches
	// and drops every failed one, in the whole cluster, and returns how
	// many (DELETE /timer?filters).
	CancelMatching(ctx context.Context, f skyring.Filter) (int, error)
	// Retry re-arms the failed timer id now with a fresh attempt budget
	// (POST /timer/:id/retry).
	Retry(ctx context.Context, id string) error
}

// Options configure [NewHandler] and [NewServer]. The zero value is usable.
type Options struct {
	// Addr is the listen address of a Server. Default ":3000", every
	// interface on skyring.DefaultHTTPPort.
	Addr string
	// MaxBodyBytes is the largest accepted request body; a larger one is a
	// 413. Default skyring.DefaultMaxBodyBytes (1 MiB); zero or negative
	// means the default.
	MaxBodyBytes int64
	// MaxTimeout is the largest accepted timeout in ms, passed to
	// skyring.ParseTimer. Zero means skyring.DefaultMaxTimeout.
	MaxTimeout int64
	// Now is the clock timeouts count from. Default time.Now.
	Now func() time.Time
	// Logger receives internal failures (500s, panics) and server errors.
	// Default slog.Default().
	Logger *slog.Logger
	// Extra holds additional GET routes by exact path, e.g. "/cluster".
	// They cannot shadow the timer routes or /ping.
	Extra map[string]http.Handler
	// Public holds GET routes by exact path that need no token: pages and
	// assets that carry no data (the dashboard). The Origin rule still
	// applies. They cannot shadow the timer routes or /ping.
	Public map[string]http.Handler
	// Tokens, when set, are the bearer tokens the API accepts
	// (Authorization: Bearer <token>); a request without one of them is a
	// 401. /ping stays open. Several tokens allow a rotation.
	Tokens []string
	// AllowOrigins are the browser origins ("https://app.example.com")
	// whose cross-site requests the API serves; a request with another
	// Origin header is a 403, so that no web page can create timers
	// through a visitor's browser. "*" allows any. Requests without an
	// Origin (curl, servers) and pages of the node itself are not
	// affected.
	AllowOrigins []string
	// TLSCertFile and TLSKeyFile, when set, make a Server serve HTTPS with
	// that PEM certificate (chain) and key (TLS 1.2 or later).
	TLSCertFile, TLSKeyFile string
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = ":" + strconv.Itoa(skyring.DefaultHTTPPort)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = skyring.DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Header keys, in canonical form so that they can be set by direct map
// assignment.
const (
	headerReason      = "X-Skyring-Reason"
	headerTimerID     = "X-Timer-Id"
	headerLocation    = "Location"
	headerContentType = "Content-Type"

	timerPath  = "/timer"
	timerPathS = "/timer/"
	pingPath   = "/ping"

	reasonNotFound = "Not Found"
)

var notFoundBody = []byte(`{"message":"Not Found"}`)

// NewHandler returns the HTTP API of API.md section 2 in front of svc.
func NewHandler(svc Service, opts Options) http.Handler {
	opts = opts.withDefaults()
	extra := make(map[string]http.Handler, len(opts.Extra)+len(opts.Public))
	public := make(map[string]bool, len(opts.Public))
	for path, h := range opts.Extra {
		if h != nil {
			extra[path] = h
		}
	}
	for path, h := range opts.Public {
		if h != nil {
			extra[path] = h
			public[path] = true
		}
	}
	return newGuard(&handler{
		svc:        svc,
		maxBody:    opts.MaxBodyBytes,
		maxTimeout: opts.MaxTimeout,
		now:        opts.Now,
		log:        opts.Logger.With("component", "http"),
		extra:      extra,
	}, opts.Tokens, opts.AllowOrigins, public)
}

type handler struct {
	svc        Service
	maxBody    int64
	maxTimeout int64
	now        func() time.Time
	log        *slog.Logger
	extra      map[string]http.Handler
}

// ServeHTTP routes by hand on the path (no regexp, no mux): the timer routes
// are few and POST /timer is the hot path.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer h.recoverPanic(w, r)

	path := r.URL.Path
	switch {
	case path == timerPath:
		switch r.Method {
		case http.MethodPost:
			h.create(w, r)
			return
		case http.MethodGet:
			h.list(w, r)
			return
		case http.MethodDelete:
			h.cancelMatching(w, r)
			return
		}
	case strings.HasPrefix(path, timerPathS):
		if r.Method != http.MethodPut && r.Method != http.MethodDelete &&
			r.Method != http.MethodGet && r.Method != http.MethodPost {
			break
		}
		id, sub, ok := timerRoute(r.URL)
		if !ok || (sub == routeRetry) != (r.Method == http.MethodPost) {
			// POST only on /timer/:id/retry, which takes nothing else.
			break
		}
		if err := skyring.ValidateID(id); err != nil {
			h.fail(w, r, err)
			return
		}
		switch r.Method {
		case http.MethodPut:
			h.update(w, r, id)
		case http.MethodDelete:
			h.cancel(w, r, id)
		case http.MethodPost:
			h.retry(w, r, id)
		default:
			h.get(w, r, id)
		}
		return
	case path == pingPath:
		if r.Method == http.MethodGet {
			w.WriteHeader(http.StatusOK)
			return
		}
	default:
		if r.Method == http.MethodGet {
			if eh, ok := h.extra[path]; ok {
				eh.ServeHTTP(w, r)
				return
			}
		}
	}
	notFound(w)
}

// Timer routes below /timer/: /timer/:id (routeTimer) and
// /timer/:id/retry (routeRetry).
const (
	routeTimer = ""
	routeRetry = "retry"
)

// timerRoute splits a path below /timer/ into the percent-decoded :id and
// the route: routeTimer for /timer/:id, routeRetry for /timer/:id/retry. ok
// is false when the path is of neither shape (an empty id, another or a
// further segment), which is a 404. An id holding an encoded slash (%2F) is
// returned as is, so that it fails the id rules (400) instead of looking
// like another route: /timer/a%2Fb is the id "a/b", /timer/a%2Fb/retry a
// retry of it, and /timer/a/b (two real segments) no route.
func timerRoute(u *url.URL) (id, route string, ok bool) {
	id = u.Path[len(timerPathS):]
	if id == "" {
		return "", "", false
	}
	if strings.IndexByte(id, '/') < 0 {
		return id, routeTimer, true // the hot path: /timer/:id, no slash
	}
	// Path is decoded, so a '/' in it is either a real segment separator
	// or an encoded %2F inside the id. The escaped path keeps the
	// original encoding (RawPath, when set): real separators are the only
	// '/' in it. Split it, and decode each segment.
	segs := strings.Split(u.EscapedPath(), "/")
	// segs[0] is "" (the path starts with '/'), segs[1] spells "timer".
	switch {
	case len(segs) == 3:
		route = routeTimer
	case len(segs) == 4 && unescape(segs[3]) == routeRetry:
		route = routeRetry
	default:
		return "", "", false
	}
	id = unescape(segs[2])
	if id == "" {
		return "", "", false
	}
	return id, route, true
}

// unescape percent-decodes one escaped path segment; "" if it cannot (it
// came out of a parsed URL, so it always can).
func unescape(seg string) string {
	s, err := url.PathUnescape(seg)
	if err != nil {
		return ""
	}
	return s
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var id string
	if v := r.Header[headerTimerID]; len(v) > 0 && v[0] != "" {
		id = v[0]
		if err := skyring.ValidateID(id); err != nil {
			// No Location: an invalid id names no timer URL (and may
			// not be fit for a header).
			h.fail(w, r, err)
			return
		}
	} else {
		id = skyring.NewID()
	}
	// As the original, Location is set before the body is validated, so a
	// 400 to a POST carries it too.
	w.Header()[headerLocation] = []string{timerPathS + url.PathEscape(id)}

	t, err := h.parse(w, r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.svc.Create(r.Context(), t); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, id string) {
	t, err := h.parse(w, r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.svc.Update(r.Context(), t); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request, id string) {
	if err := h.svc.Cancel(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, id string) {
	info, err := h.svc.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	b, err := json.Marshal(info)
	if err != nil {
		h.fail(w, r, fmt.Errorf("encoding timer %q: %w", id, err))
		return
	}
	w.Header()[headerContentType] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// list answers GET /timer?state=&due_after=&due_before=&prefix=&host=&limit=&cursor=
// (all optional; skyring.ParseListParams) with one page of the cluster's
// timers in id order: 200, JSON skyring.ListPage, whose "timers"
// is [] (never null) for an empty page and whose "cursor" is left out on
// the last page. A bad parameter, or a query string that does not parse,
// is a 400. A parameter given twice counts with its first value; others
// are ignored.
func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.fail(w, r, errBadQuery)
		return
	}
	q, err := skyring.ParseListParams(params.Get)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page, err := h.svc.List(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if page.Timers == nil {
		page.Timers = []skyring.Info{}
	}
	b, err := json.Marshal(page)
	if err != nil {
		h.fail(w, r, fmt.Errorf("encoding a list page: %w", err))
		return
	}
	w.Header()[headerContentType] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// cancelMatching answers DELETE /timer?state=&due_after=&due_before=&prefix=&host=&all=
// (skyring.ParseCancelFilter: at least one filter, or all=true): 200 with
// {"cancelled": N}. A member that did not answer makes it a 503 whose
// reason says how many were cancelled on the others.
func (h *handler) cancelMatching(w http.ResponseWriter, r *http.Request) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.fail(w, r, errBadQuery)
		return
	}
	f, err := skyring.ParseCancelFilter(params.Get)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := h.svc.CancelMatching(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	b, _ := json.Marshal(skyring.CancelResult{Cancelled: n}) // cannot fail
	w.Header()[headerContentType] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// errBadQuery is a list query string that does not parse (a bad
// percent-encoding, a ';').
var errBadQuery = &skyring.ValidationError{Reason: "Invalid query string"}

// retry answers POST /timer/:id/retry: the failed timer id is re-armed to
// fire now with a fresh attempt budget. 202 Accepted with an empty body,
// as DELETE: the delivery itself happens later, and its outcome is seen on
// GET /timer/:id. An unknown id is a 404, a timer that has not failed
// (pending, retrying, delivered, cancelled) a 409. A request body is
// ignored.
func (h *handler) retry(w http.ResponseWriter, r *http.Request, id string) {
	if err := h.svc.Retry(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// parse reads the body of a create or update and validates it. The body
// buffer goes back to the pool before parse returns: ParseTimer copies what
// it keeps (its json.RawMessage and string fields do not alias the input).
func (h *handler) parse(w http.ResponseWriter, r *http.Request, id string) (*skyring.Timer, error) {
	bp, err := h.readBody(w, r)
	if bp != nil {
		defer putBuf(bp)
	}
	if err != nil {
		return nil, err
	}
	return skyring.ParseTimer(*bp, skyring.ParseParams{
		Now:        h.now(),
		MaxTimeout: h.maxTimeout,
		ID:         id,
	})
}

// errReadBody is a body that could not be read (client gone, read timeout):
// a 400, since the request as received is incomplete.
var errReadBody = &skyring.ValidationError{Reason: "Could not read the request body"}

// readBody reads the whole body into a pooled buffer, at most h.maxBody
// bytes. It returns the buffer even on error (to be put back).
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (*[]byte, error) {
	if r.ContentLength > h.maxBody {
		return nil, skyring.ErrBodyTooLarge
	}
	bp := getBuf()
	buf := (*bp)[:0]
	if cl := r.ContentLength; cl >= 0 && cl+1 > int64(cap(buf)) {
		// +1 so that the read that sees io.EOF needs no growth.
		buf = make([]byte, 0, cl+1)
	}
	if r.Body == nil || r.Body == http.NoBody {
		*bp = buf
		return bp, nil
	}
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = buf
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return bp, skyring.ErrBodyTooLarge
			}
			return bp, fmt.Errorf("%w: %w", errReadBody, err)
		}
	}
	*bp = buf
	return bp, nil
}

// Body buffers. Typical timer bodies are a few hundred bytes; buffers that
// grew past maxPooledBuf for a rare big body are left to the GC.
const (
	initialBufSize = 2 << 10
	maxPooledBuf   = 64 << 10
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, initialBufSize)
	return &b
}}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}

// fail answers err: the status and reason of skyring.Status, the reason in
// x-skyring-reason and in a JSON body {"message": reason}. Internal failures (5xx other than the
// known 503s) are logged.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, reason := errorStatus(err)
	if status == http.StatusInternalServerError {
		level := slog.LevelError
		if r.Context().Err() != nil {
			// The client is gone; the failure is most likely its cancel.
			level = slog.LevelDebug
		}
		h.log.Log(r.Context(), level, "request failed",
			"method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	writeError(w, status, reason)
}

// errorStatus is skyring.Status made safe for an HTTP answer: the status is
// an error status (4xx or 5xx; anything else from a misbehaving Service is a
// 500) and the reason is one non-empty line of header-safe text.
func errorStatus(err error) (int, string) {
	status, reason := skyring.Status(err)
	if status < 400 || status > 599 {
		reason = fmt.Sprintf("Internal error: status %d for error: %s", status, reason)
		status = http.StatusInternalServerError
	}
	return status, headerLine(reason, status)
}

// writeError is the one place error answers are written: the reason in
// x-skyring-reason, and the same reason as a JSON body {"message": reason}
// so that a client that shows only the body (curl -s) sees it too.
func writeError(w http.ResponseWriter, status int, reason string) {
	hdr := w.Header()
	hdr[headerReason] = []string{reason}
	hdr[headerContentType] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(reason))
}

// errorBody is {"message": reason} (reason JSON-escaped).
func errorBody(reason string) []byte {
	b, err := json.Marshal(errorMessage{Message: reason})
	if err != nil { // a string always marshals
		return []byte(`{"message":"error"}`)
	}
	return b
}

// errorMessage is the body of every error answer.
type errorMessage struct {
	Message string `json:"message"`
}

func notFound(w http.ResponseWriter) {
	hdr := w.Header()
	hdr[headerReason] = []string{reasonNotFound}
	hdr[headerContentType] = []string{"application/json"}
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(notFoundBody)
}

// headerLine makes reason fit a header value on one line: control
// characters become spaces, surrounding spaces go, and an empty reason is
// replaced by the status text.
func headerLine(reason string, status int) string {
	clean := true
	for i := 0; i < len(reason); i++ {
		if c := reason[i]; c < ' ' || c == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		reason = strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, reason)
	}
	if len(reason) > 0 && (reason[0] == ' ' || reason[len(reason)-1] == ' ') {
		reason = strings.TrimSpace(reason)
	}
	if reason == "" {
		reason = http.StatusText(status)
		if reason == "" {
			reason = fmt.Sprintf("Status %d", status)
		}
	}
	return reason
}

// recoverPanic is the last line of defence: a panic in a handler (or the
// Service) is logged with its stack and answered 500 with a reason, instead
// of the connection being dropped. http.ErrAbortHandler keeps its meaning.
func (h *handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
		panic(v)
	}
	h.log.Error("panic serving request",
		"method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
	hdr := w.Header()
	delete(hdr, headerLocation)
	delete(hdr, headerContentType)
	writeError(w, http.StatusInternalServerError, "Internal error: the server panicked")
}
