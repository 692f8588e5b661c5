package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

const (
	cbJSON    = `{"transport":"http","method":"post","uri":"http://127.0.0.1:9/hook"}`
	validBody = `{"timeout":1000,"data":"hello","callback":` + cbJSON + `}`
)

// testNow is the injected clock of every test server.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)

type bundle struct {
	svc    *memService
	srv    *Server
	base   string
	client *http.Client
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// setup starts a real Server on 127.0.0.1:0 in front of a memService, with
// the fixed clock testNow, and a client whose connections are closed at
// cleanup.
func setup(t *testing.T, mods ...func(*Options)) *bundle {
	t.Helper()
	svc := newMemService()
	opts := Options{
		Addr:   "127.0.0.1:0",
		Now:    func() time.Time { return testNow },
		Logger: testLogger(t),
	}
	for _, m := range mods {
		m(&opts)
	}
	srv := NewServer(svc, opts)
	require.NoError(t, srv.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, srv.Close(context.Background())) })
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &bundle{
		svc:    svc,
		srv:    srv,
		base:   "http://" + srv.Addr().String(),
		client: &http.Client{Transport: tr},
	}
}

type result struct {
	status int
	header http.Header
	body   string
}

func (r result) reason() string { return r.header.Get("x-skyring-reason") }

// do sends method path (path as it goes on the wire, percent-encoding kept)
// with body and header pairs k, v, ...
func (b *bundle) do(t *testing.T, method, path string, body io.Reader, kv ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

func (b *bundle) post(t *testing.T, body string, kv ...string) result {
	t.Helper()
	return b.do(t, http.MethodPost, "/timer", strings.NewReader(body), kv...)
}

// requireError checks an error answer: status, a non-empty one-line reason
// (containing want, when given).
func requireError(t *testing.T, r result, status int, want string) {
	t.Helper()
	require.Equal(t, status, r.status, "reason %q", r.reason())
	reason := r.reason()
	require.NotEmpty(t, reason)
	require.NotContains(t, reason, "\n")
	require.Len(t, r.header.Values("x-skyring-reason"), 1)
	if want != "" {
		require.Contains(t, reason, want)
	}
	// The body says the same as the header, as JSON.
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var body struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &body), "body %q", r.body)
	require.Equal(t, reason, body.Message)
}

func idFromLocation(t *testing.T, r result) string {
	t.Helper()
	loc := r.header.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/timer/"), "Location %q", loc)
	id, err := url.PathUnescape(strings.TrimPrefix(loc, "/timer/"))
	require.NoError(t, err)
	return id
}

func withTimeout(v string) string {
	return `{"timeout":` + v + `,"callback":` + cbJSON + `}`
}

func TestCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.post(t, validBody)
	require.Equal(t, http.StatusCreated, r.status)
	require.Empty(t, r.body)
	require.Empty(t, r.reason())
	id := idFromLocation(t, r)
	require.NoError(t, skyring.ValidateID(id))
	require.Len(t, id, 36) // a UUID

	tm, ok := b.svc.timer(id)
	require.True(t, ok)
	require.Equal(t, testNow.UnixNano(), tm.Created)
	require.Equal(t, testNow.Add(time.Second).UnixNano(), tm.Due)
	require.Equal(t, skyring.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:9/hook"}, tm.Callback)
	s, ok := tm.DataString()
	require.True(t, ok)
	require.Equal(t, "hello", s)

	// Two creates without x-timer-id get two ids.
	r2 := b.post(t, validBody)
	require.Equal(t, http.StatusCreated, r2.status)
	require.NotEqual(t, id, idFromLocation(t, r2))
}

func TestCreateIgnoresContentType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/octet-stream", ""} {
		r := b.post(t, validBody, "Content-Type", ct)
		require.Equal(t, http.StatusCreated, r.status, "content type %q", ct)
	}
}

func TestCreateTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		timeout string
		ms      int64 // 0: expect 400
	}{
		{"1000", 1000},
		{"1", 1},
		{"2147483647", 2147483647},
		{`"1000"`, 1000},
		{`"1e3"`, 1000},
		{"1e3", 1000},
		{"1.9", 1},
		{`"2.5"`, 2},
		{"0", 0},
		{"-1", 0},
		{"2147483648", 0},
		{"0.5", 0},
		{"-0.5", 0},
		{"1e400", 0},
		{`" 1000"`, 0},
		{`"1000 "`, 0},
		{`"0x10"`, 0},
		{`""`, 0},
		{`"soon"`, 0},
		{"true", 0},
		{"false", 0},
		{"[1000]", 0},
		{`{"ms":1000}`, 0},
		{"null", 0},
	} {
		r := b.post(t, withTimeout(tc.timeout))
		if tc.ms == 0 {
			requireError(t, r, http.StatusBadRequest, "timeout")
			idFromLocation(t, r) // a 400 to a POST carries Location too
			continue
		}
		require.Equal(t, http.StatusCreated, r.status, "timeout %s: %s", tc.timeout, r.reason())
		tm, ok := b.svc.timer(idFromLocation(t, r))
		require.True(t, ok)
		require.Equal(t, tc.ms*int64(time.Millisecond), tm.Due-tm.Created, "timeout %s", tc.timeout)
	}

	// Missing timeout (and no at).
	r := b.post(t, `{"callback":`+cbJSON+`}`)
	requireError(t, r, http.StatusBadRequest, "timeout")
}

func TestCreateMaxTimeoutOption(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.MaxTimeout = 5000 })
	require.Equal(t, http.StatusCreated, b.post(t, withTimeout("5000")).status)
	requireError(t, b.post(t, withTimeout("5001")), http.StatusBadRequest, "5000")
}

func TestCreateData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		field string // the "data" member, "" for none
		want  string // stored Data, "-" for a 400
	}{
		{`"data":"text"`, `"text"`},
		{`"data":""`, `""`},
		{`"data":{"a": [1, 2], "b": {"c": null}}`, `{"a":[1,2],"b":{"c":null}}`},
		{`"data":{}`, `{}`},
		{`"data":null`, ``},
		{``, ``},
		{`"data":42`, `-`},
		{`"data":1.5`, `-`},
		{`"data":[1,2]`, `-`},
		{`"data":[]`, `-`},
		{`"data":true`, `-`},
		{`"data":false`, `-`},
	} {
		body := `{"timeout":1000,"callback":` + cbJSON
		if tc.field != "" {
			body += "," + tc.field
		}
		body += "}"
		r := b.post(t, body)
		if tc.want == "-" {
			requireError(t, r, http.StatusBadRequest, "data")
			idFromLocation(t, r)
			continue
		}
		require.Equal(t, http.StatusCreated, r.status, "%s: %s", tc.field, r.reason())
		tm, ok := b.svc.timer(idFromLocation(t, r))
		require.True(t, ok)
		require.Equal(t, tc.want, string(tm.Data), tc.field)
	}
}

func TestCreateCallback(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		callback string // "" for none
		field    string // expected in the reason
	}{
		{``, "callback"},
		{`"callback":null`, "callback"},
		{`"callback":"http://x"`, "callback"},
		{`"callback":[]`, "callback"},
		{`"callback":42`, "callback"},
		{`"callback":true`, "callback"},
		{`"callback":{}`, "callback.transport"},
		{`"callback":{"method":"post","uri":"u"}`, "callback.transport"},
		{`"callback":{"transport":1,"method":"post","uri":"u"}`, "callback.transport"},
		{`"callback":{"transport":null,"method":"post","uri":"u"}`, "callback.transport"},
		{`"callback":{"transport":"http","uri":"u"}`, "callback.method"},
		{`"callback":{"transport":"http","method":["post"],"uri":"u"}`, "callback.method"},
		{`"callback":{"transport":"http","method":"post"}`, "callback.uri"},
		{`"callback":{"transport":"http","method":"post","uri":{"u":1}}`, "callback.uri"},
		{`"callback":{"transport":"http","method":"post","uri":false}`, "callback.uri"},
	} {
		body := `{"timeout":1000`
		if tc.callback != "" {
			body += "," + tc.callback
		}
		body += "}"
		r := b.post(t, body)
		requireError(t, r, http.StatusBadRequest, tc.field)
		idFromLocation(t, r)
	}

	// A transport the cluster does not know: 400 from the Service.
	r := b.post(t, `{"timeout":1000,"callback":{"transport":"carrier-pigeon","method":"post","uri":"u"}}`)
	requireError(t, r, http.StatusBadRequest, "Unknown transport")
	idFromLocation(t, r)
}

func TestCreateBadBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct{ body, want string }{
		{``, "JSON"},
		{`{`, "JSON"},
		{`{"timeout":1000,}`, "JSON"},
		{`timeout=1000`, "JSON"},
		{validBody + `x`, "JSON"},
		{`[]`, "object"},
		{`[` + validBody + `]`, "object"},
		{`"text"`, "object"},
		{`42`, "object"},
		{`true`, "object"},
		{`null`, "object"},
	} {
		r := b.post(t, tc.body)
		requireError(t, r, http.StatusBadRequest, tc.want)
		idFromLocation(t, r)
	}
	// Other fields are ignored, and so is a client-sent created.
	r := b.post(t, `{"timeout":1000,"created":1,"extra":[1],"callback":`+cbJSON+`}`)
	require.Equal(t, http.StatusCreated, r.status)
	tm, ok := b.svc.timer(idFromLocation(t, r))
	require.True(t, ok)
	require.Equal(t, testNow.UnixNano(), tm.Created)
}

func TestCreateAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inOneHour := testNow.Add(time.Hour)
	ms := inOneHour.UnixMilli()
	for _, tc := range []struct {
		at  string
		due time.Time // zero: expect 400
	}{
		{`"` + inOneHour.Format(time.RFC3339) + `"`, inOneHour.Truncate(time.Second)},
		{`"` + inOneHour.Format(time.RFC3339Nano) + `"`, inOneHour},
		{`"` + inOneHour.In(time.FixedZone("x", -5*3600)).Format(time.RFC3339Nano) + `"`, inOneHour},
		{fmt.Sprint(ms), time.UnixMilli(ms)},
		{fmt.Sprintf(`"%d"`, ms), time.UnixMilli(ms)},
		{fmt.Sprintf(`%d.9`, ms), time.UnixMilli(ms)},
		{`"` + testNow.Add(-time.Second).Format(time.RFC3339Nano) + `"`, time.Time{}},
		{`"` + testNow.Format(time.RFC3339Nano) + `"`, time.Time{}}, // not strictly in the future
		{fmt.Sprint(testNow.Add(-time.Hour).UnixMilli()), time.Time{}},
		{`0`, time.Time{}},
		{`-1`, time.Time{}},
		{`"` + testNow.Add(time.Duration(skyring.DefaultMaxTimeout+1)*time.Millisecond).Format(time.RFC3339Nano) + `"`, time.Time{}},
		{`"2030-01-02 04:00:00"`, time.Time{}},
		{`"tomorrow"`, time.Time{}},
		{`true`, time.Time{}},
		{`[1]`, time.Time{}},
		{`{}`, time.Time{}},
	} {
		r := b.post(t, `{"at":`+tc.at+`,"callback":`+cbJSON+`}`)
		if tc.due.IsZero() {
			requireError(t, r, http.StatusBadRequest, "at")
			idFromLocation(t, r)
			continue
		}
		require.Equal(t, http.StatusCreated, r.status, "at %s: %s", tc.at, r.reason())
		tm, ok := b.svc.timer(idFromLocation(t, r))
		require.True(t, ok)
		require.Equal(t, tc.due.UnixNano(), tm.Due, "at %s", tc.at)
		require.Equal(t, testNow.UnixNano(), tm.Created)
	}

	// Both timeout and at.
	r := b.post(t, `{"timeout":1000,"at":`+fmt.Sprint(ms)+`,"callback":`+cbJSON+`}`)
	requireError(t, r, http.StatusBadRequest, "")
	idFromLocation(t, r)
}

// TestCreateAtFarFuture: an `at` about 584 years ahead must be a 400, not a
// timer due in an hour (time.Time.UnixNano wraps for dates after 2262).
func TestCreateAtFarFuture(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// testNow + 1h + 2^64 ns: UnixNano wraps to testNow + 1h.
	base := testNow.Add(time.Hour).UnixNano()
	far := time.Unix(base/1e9+18446744073, base%1e9+709551616).UTC()
	r := b.post(t, `{"at":"`+far.Format(time.RFC3339Nano)+`","callback":`+cbJSON+`}`)
	requireError(t, r, http.StatusBadRequest, "at")
	// Beyond year 9999 RFC 3339 cannot even be written; far past likewise.
	requireError(t, b.post(t, `{"at":"1000-01-01T00:00:00Z","callback":`+cbJSON+`}`), http.StatusBadRequest, "at")
}

func TestCreateTimerID(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, id := range []string{
		"my-timer",
		"a",
		strings.Repeat("x", 256),
		"a%b",
		"100%25",
		"q?x=1",
		"h#frag",
		`!"$&'()*+,;:<=>@[\]^_{|}~` + "`",
	} {
		r := b.post(t, validBody, "x-timer-id", id)
		require.Equal(t, http.StatusCreated, r.status, "id %q: %s", id, r.reason())
		require.Equal(t, id, idFromLocation(t, r))
		_, ok := b.svc.timer(id)
		require.True(t, ok, id)

		// The Location leads back to the timer.
		g := b.do(t, http.MethodGet, r.header.Get("Location"), nil)
		require.Equal(t, http.StatusOK, g.status, "GET %s: %s", r.header.Get("Location"), g.reason())
		var info skyring.Info
		require.NoError(t, json.Unmarshal([]byte(g.body), &info))
		require.Equal(t, id, info.ID)
	}

	// An empty header counts as absent: the server picks the id.
	r := b.post(t, validBody, "x-timer-id", "")
	require.Equal(t, http.StatusCreated, r.status)
	require.Len(t, idFromLocation(t, r), 36)

	for _, id := range []string{
		strings.Repeat("x", 257),
		"a b",
		"a/b",
		"/",
		"é",
	} {
		calls := b.svc.callCount()
		r := b.post(t, validBody, "x-timer-id", id)
		requireError(t, r, http.StatusBadRequest, "id")
		require.Empty(t, r.header.Get("Location"), "no Location for an invalid id")
		require.Equal(t, calls, b.svc.callCount(), "the service is not called")
	}

	// Control characters cannot go through Go's client; straight to the
	// handler.
	h := NewHandler(b.svc, Options{Logger: testLogger(t)})
	for _, id := range []string{"tab\there", "a\x7f", "nul\x00", "line\nbreak"} {
		req := httptest.NewRequest(http.MethodPost, "/timer", strings.NewReader(validBody))
		req.Header["X-Timer-Id"] = []string{id}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		requireError(t, result{status: rec.Code, header: rec.Header(), body: rec.Body.String()}, http.StatusBadRequest, "id")
		require.Empty(t, rec.Header().Get("Location"))
	}
}

func TestCreateConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", "dup").status)
	r := b.post(t, validBody, "x-timer-id", "dup")
	requireError(t, r, http.StatusConflict, "already exists")
	require.Equal(t, "/timer/dup", r.header.Get("Location"))
}

// padded returns validBody padded with spaces to exactly n bytes.
func padded(n int) string {
	return validBody[:len(validBody)-1] + strings.Repeat(" ", n-len(validBody)) + "}"
}

// noLen hides the length of a reader so that the client sends it chunked.
type noLen struct{ r io.Reader }

func (n noLen) Read(p []byte) (int, error) { return n.r.Read(p) }

func TestCreateBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// Exactly 1 MiB is fine, with or without Content-Length.
	body := padded(1 << 20)
	require.Len(t, body, 1<<20)
	require.Equal(t, http.StatusCreated, b.post(t, body).status)
	require.Equal(t, http.StatusCreated,
		b.do(t, http.MethodPost, "/timer", noLen{strings.NewReader(body)}).status)

	// One byte more is a 413 with a reason, whether the Content-Length says
	// so up front or a chunked body runs over.
	over := padded(1<<20 + 1)
	r := b.post(t, over)
	requireError(t, r, http.StatusRequestEntityTooLarge, "too large")
	idFromLocation(t, r)
	r = b.do(t, http.MethodPost, "/timer", noLen{strings.NewReader(over)})
	requireError(t, r, http.StatusRequestEntityTooLarge, "too large")
	r = b.do(t, http.MethodPut, "/timer/x", noLen{strings.NewReader(over)})
	requireError(t, r, http.StatusRequestEntityTooLarge, "too large")

	// The server is still healthy afterwards.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/ping", nil).status)
}

func TestBodyLimitOption(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.MaxBodyBytes = 200 })
	require.Equal(t, http.StatusCreated, b.post(t, padded(200)).status)
	requireError(t, b.post(t, padded(201)), http.StatusRequestEntityTooLarge, "")
}

func TestServiceErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{"no owner", skyring.ErrNoOwner, 503, "No ring member"},
		{"closed", fmt.Errorf("node: %w", skyring.ErrClosed), 503, "shutting down"},
		{"exists", skyring.ErrTimerExists, 409, "already exists"},
		{"not found", skyring.ErrTimerNotFound, 404, "not found"},
		{"not failed", skyring.ErrNotFailed, 409, "Only a failed timer can be retried"},
		{"validation", &skyring.ValidationError{Field: "x", Reason: "bad\nthing"}, 400, "bad thing"},
		{"status", &skyring.StatusError{Status: 502, Reason: "upstream"}, 502, "upstream"},
		{"status no reason", &skyring.StatusError{Status: 504}, 504, "Gateway Timeout"},
		{"status not an error", &skyring.StatusError{Status: 204, Reason: "odd"}, 500, "Internal error"},
		{"status invalid", &skyring.StatusError{Status: 7, Reason: "odd"}, 500, "Internal error"},
		{"internal", errors.New("disk on fire"), 500, "disk on fire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.svc.setErr(tc.err)
			r := b.post(t, validBody, "x-timer-id", "t1")
			requireError(t, r, tc.status, tc.reason)
			require.Equal(t, "/timer/t1", r.header.Get("Location"))
			requireError(t, b.do(t, http.MethodPut, "/timer/t1", strings.NewReader(validBody)), tc.status, tc.reason)
			requireError(t, b.do(t, http.MethodDelete, "/timer/t1", nil), tc.status, tc.reason)
			g := b.do(t, http.MethodGet, "/timer/t1", nil)
			requireError(t, g, tc.status, tc.reason)
			l := b.do(t, http.MethodGet, "/timer?state=failed", nil)
			requireError(t, l, tc.status, tc.reason)
			requireError(t, b.do(t, http.MethodPost, "/timer/t1/retry", nil), tc.status, tc.reason)
		})
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", "u1").status)

	r := b.do(t, http.MethodPut, "/timer/u1", strings.NewReader(`{"timeout":"5000","data":{"k":"v"},"callback":{"transport":"http","method":"put","uri":"http://b"}}`))
	require.Equal(t, http.StatusOK, r.status, r.reason())
	require.Empty(t, r.body)
	require.Empty(t, r.header.Get("Location"))
	tm, ok := b.svc.timer("u1")
	require.True(t, ok)
	require.Equal(t, "u1", tm.ID)
	require.Equal(t, testNow.UnixNano(), tm.Created)
	require.Equal(t, testNow.Add(5*time.Second).UnixNano(), tm.Due)
	require.JSONEq(t, `{"k":"v"}`, string(tm.Data))
	require.Equal(t, skyring.Callback{Transport: "http", Method: "put", URI: "http://b"}, tm.Callback)

	// Unknown id: 404 with a reason (new: the original sends none).
	requireError(t, b.do(t, http.MethodPut, "/timer/nope", strings.NewReader(validBody)), http.StatusNotFound, "not found")
	// Invalid body: 400, and the timer is untouched.
	requireError(t, b.do(t, http.MethodPut, "/timer/u1", strings.NewReader(withTimeout("0"))), http.StatusBadRequest, "timeout")
	requireError(t, b.do(t, http.MethodPut, "/timer/u1", strings.NewReader(`nope`)), http.StatusBadRequest, "JSON")
	tm2, _ := b.svc.timer("u1")
	require.Same(t, tm, tm2)
	// at works on PUT too.
	at := testNow.Add(time.Minute)
	r = b.do(t, http.MethodPut, "/timer/u1", strings.NewReader(`{"at":"`+at.Format(time.RFC3339Nano)+`","callback":`+cbJSON+`}`))
	require.Equal(t, http.StatusOK, r.status, r.reason())
	tm, _ = b.svc.timer("u1")
	require.Equal(t, at.UnixNano(), tm.Due)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", "c1").status)

	r := b.do(t, http.MethodDelete, "/timer/c1", nil)
	require.Equal(t, http.StatusAccepted, r.status)
	require.Empty(t, r.body)
	_, ok := b.svc.timer("c1")
	require.False(t, ok)

	// Already cancelled, or never there: 404 with a reason.
	requireError(t, b.do(t, http.MethodDelete, "/timer/c1", nil), http.StatusNotFound, "not found")
	requireError(t, b.do(t, http.MethodDelete, "/timer/never", nil), http.StatusNotFound, "not found")
}

func TestGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.post(t, `{"timeout":2500,"callback":`+cbJSON+`}`, "x-timer-id", "g1").status)

	r := b.do(t, http.MethodGet, "/timer/g1", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.JSONEq(t, fmt.Sprintf(`{
		"id":"g1","timeout":2500,"data":null,
		"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:9/hook"},
		"created":%d,"due":%d,"node":"node-1","state":"pending","attempts":0}`,
		testNow.UnixMilli(), testNow.Add(2500*time.Millisecond).UnixMilli()), r.body)

	// A failed timer answers too, with its fate.
	b.svc.setState("g1", skyring.StateFailed, 3)
	r = b.do(t, http.MethodGet, "/timer/g1", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, fmt.Sprintf(`{
		"id":"g1","timeout":2500,"data":null,
		"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:9/hook"},
		"created":%d,"due":%d,"node":"node-1","state":"failed","attempts":3,
		"last_error":"receiver answered 503","last_status":503,"finished_at":%d}`,
		testNow.UnixMilli(), testNow.Add(2500*time.Millisecond).UnixMilli(), testNow.UnixMilli()), r.body)

	g := b.do(t, http.MethodGet, "/timer/missing", nil)
	requireError(t, g, http.StatusNotFound, "not found")
}

func TestPathIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", "a%20b").status)

	// The path is percent-decoded: /timer/a%2520b is the id "a%20b";
	// /timer/a%20b would be "a b" (invalid).
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/timer/a%2520b", nil).status)
	requireError(t, b.do(t, http.MethodGet, "/timer/a%20b", nil), http.StatusBadRequest, "id")
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", "tilde~x").status)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/timer/tilde%7Ex", nil).status)

	// An encoded slash is part of the id, which makes it invalid: 400.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		requireError(t, b.do(t, m, "/timer/a%2Fb", strings.NewReader(validBody)), http.StatusBadRequest, "id")
		requireError(t, b.do(t, m, "/timer/%2f", strings.NewReader(validBody)), http.StatusBadRequest, "id")
		requireError(t, b.do(t, m, "/timer/"+strings.Repeat("y", 257), strings.NewReader(validBody)), http.StatusBadRequest, "id")
	}
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", strings.Repeat("y", 256)).status)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/timer/"+strings.Repeat("y", 256), nil).status)
}

func TestPing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do(t, http.MethodGet, "/ping", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Empty(t, r.body)
	require.Empty(t, r.reason())
}

func TestNotFoundRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) {
		o.Extra = map[string]http.Handler{
			"/cluster": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"nodes":1}`)
			}),
			"/nil": nil,
		}
	})
	require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", "known").status)

	r := b.do(t, http.MethodGet, "/cluster", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"nodes":1}`, r.body)

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/nope"},
		{http.MethodPut, "/timer"},
		{http.MethodPatch, "/timer"},
		{http.MethodOptions, "/timer"},
		{http.MethodGet, "/timer/known/retry"},
		{http.MethodPut, "/timer/known/retry"},
		{http.MethodDelete, "/timer/known/retry"},
		{http.MethodPatch, "/timer/known/retry"},
		{http.MethodPost, "/timer/known/retry/"},
		{http.MethodPost, "/timer/known/retry/x"},
		{http.MethodPost, "/timer/known/Retry"},
		{http.MethodPost, "/timer/known/retryx"},
		{http.MethodPost, "/timer//retry"},
		{http.MethodPost, "/timer/retry"},
		{http.MethodPost, "/timer/a/b/retry"},
		{http.MethodPost, "/timers/known/retry"},
		{http.MethodPost, "/timer/"},
		{http.MethodGet, "/timer/"},
		{http.MethodPost, "/timer/known"},
		{http.MethodPatch, "/timer/known"},
		{http.MethodOptions, "/timer/known"},
		{http.MethodGet, "/timer/known/"},
		{http.MethodGet, "/timer/known/x"},
		{http.MethodDelete, "/timer//known"},
		{http.MethodGet, "/timers/known"},
		{http.MethodPost, "/timerx"},
		{http.MethodPost, "/ping"},
		{http.MethodDelete, "/ping"},
		{http.MethodGet, "/ping/"},
		{http.MethodGet, "/pingx"},
		{http.MethodPost, "/cluster"},
		{http.MethodGet, "/cluster/"},
		{http.MethodGet, "/nil"},
	} {
		r := b.do(t, tc.method, tc.path, strings.NewReader(validBody))
		require.Equal(t, http.StatusNotFound, r.status, "%s %s", tc.method, tc.path)
		require.Equal(t, "Not Found", r.reason(), "%s %s", tc.method, tc.path)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.JSONEq(t, `{"message":"Not Found"}`, r.body, "%s %s", tc.method, tc.path)
		require.Empty(t, r.header.Get("Location"))
	}
	// HEAD is not a route either (no body on the wire for HEAD).
	for _, path := range []string{"/ping", "/timer", "/timer/known", "/timer/known/retry"} {
		r = b.do(t, http.MethodHead, path, nil)
		require.Equal(t, http.StatusNotFound, r.status, path)
		require.Equal(t, "Not Found", r.reason(), path)
	}
	require.Equal(t, 1, b.svc.callCount(), "only the create reached the service")
}

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc.setHook(func(_ context.Context, op string) {
		if op == "create" {
			panic("boom")
		}
	})
	r := b.post(t, validBody)
	requireError(t, r, http.StatusInternalServerError, "panicked")
	require.Empty(t, r.header.Get("Location"))
	// The server keeps serving.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/ping", nil).status)
}

func TestHeaderLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		status int
		want   string
	}{
		{"fine", 400, "fine"},
		{"two\r\nlines", 400, "two  lines"},
		{"nul\x00 and del\x7f", 400, "nul  and del"},
		{"", 404, "Not Found"},
		{"  \n ", 409, "Conflict"},
		{"", 599, "Status 599"},
		{"ünïcode", 400, "ünïcode"},
	} {
		require.Equal(t, tc.want, headerLine(tc.in, tc.status), "%q", tc.in)
	}
}

// TestParseTimerDoesNotAliasBody guards what the pooled body buffers rely
// on: the timer ParseTimer returns shares no memory with the body, so the
// buffer can be reused as soon as ParseTimer returns.
func TestParseTimerDoesNotAliasBody(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"timeout":1000,"data":"some text","callback":{"transport":"http","method":"post","uri":"http://a/b"}}`,
		`{"timeout":1000,"data":{"k": "v"},"callback":{"transport":"http","method":"post","uri":"http://a/b"}}`,
		`{"timeout":1000,"data":{"k":"v"},"callback":{"transport":"http","method":"post","uri":"http://a/b"}}`,
	} {
		buf := []byte(body)
		tm, err := skyring.ParseTimer(buf, skyring.ParseParams{Now: testNow, ID: "x"})
		require.NoError(t, err)
		before := skyring.Timer{ // deep copy
			ID:      strings.Clone(tm.ID),
			Created: tm.Created,
			Due:     tm.Due,
			Data:    append([]byte(nil), tm.Data...),
			Callback: skyring.Callback{
				Transport: strings.Clone(tm.Callback.Transport),
				Method:    strings.Clone(tm.Callback.Method),
				URI:       strings.Clone(tm.Callback.URI),
			},
			Relative: tm.Relative,
		}
		for i := range buf {
			buf[i] = 'Z'
		}
		require.Equal(t, before, *tm, body)
	}
}

// listPage decodes a GET /timer answer, checking its status and headers.
func listPage(t *testing.T, r result) skyring.ListPage {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, r.reason())
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Empty(t, r.reason())
	var page skyring.ListPage
	require.NoError(t, json.Unmarshal([]byte(r.body), &page))
	return page
}

func pageIDs(page skyring.ListPage) []string {
	ids := make([]string, 0, len(page.Timers))
	for _, i := range page.Timers {
		ids = append(ids, i.ID)
	}
	return ids
}

func TestListEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/timer", "/timer?", "/timer?state=failed", "/timer?other=1"} {
		r := b.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.status, path)
		require.JSONEq(t, `{"timers":[]}`, r.body, "an empty page is [] and has no cursor")
	}
	// The defaults reach the service.
	require.Equal(t, skyring.ListQuery{Limit: skyring.DefaultListLimit}, b.svc.listQueries()[0])
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var all []string
	for i := range 25 {
		id := fmt.Sprintf("t%02d", i)
		all = append(all, id)
		require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", id).status)
	}
	failed := []string{"t03", "t07", "t11", "t19"}
	for _, id := range failed {
		b.svc.setState(id, skyring.StateFailed, 5)
	}
	b.svc.setState("t04", skyring.StateDelivered, 1)
	b.svc.setState("t05", skyring.StatePending, 2) // retrying

	// Default: one page holds all 25, no cursor.
	r := b.do(t, http.MethodGet, "/timer", nil)
	page := listPage(t, r)
	require.Equal(t, all, pageIDs(page))
	require.Empty(t, page.Cursor)
	require.NotContains(t, r.body, `"cursor"`)
	require.Equal(t, "failed", page.Timers[3].State)
	require.Equal(t, "delivered", page.Timers[4].State)
	require.Equal(t, "retrying", page.Timers[5].State)
	// The timers are the same Info as GET /timer/:id.
	g := b.do(t, http.MethodGet, "/timer/t03", nil)
	var info skyring.Info
	require.NoError(t, json.Unmarshal([]byte(g.body), &info))
	require.Equal(t, info, page.Timers[3])

	// Paging through all with limit 10, following the cursor.
	var got []string
	path := "/timer?limit=10"
	pages := 0
	for {
		page := listPage(t, b.do(t, http.MethodGet, path, nil))
		pages++
		require.LessOrEqual(t, len(page.Timers), 10)
		got = append(got, pageIDs(page)...)
		if page.Cursor == "" {
			break
		}
		path = "/timer?limit=10&cursor=" + url.QueryEscape(page.Cursor)
	}
	require.Equal(t, all, got)
	require.Equal(t, 3, pages)

	// The state filter, with paging.
	got = nil
	path = "/timer?state=failed&limit=3"
	for {
		page := listPage(t, b.do(t, http.MethodGet, path, nil))
		for _, i := range page.Timers {
			require.Equal(t, "failed", i.State)
			require.Equal(t, 5, i.Attempts)
		}
		got = append(got, pageIDs(page)...)
		if page.Cursor == "" {
			break
		}
		path = "/timer?limit=3&state=failed&cursor=" + page.Cursor // cursors are URL-safe
	}
	require.Equal(t, failed, got)
	require.Equal(t, []string{"t05"}, pageIDs(listPage(t, b.do(t, http.MethodGet, "/timer?state=retrying", nil))))
	require.Empty(t, listPage(t, b.do(t, http.MethodGet, "/timer?state=cancelled", nil)).Timers)

	// What the service was given: parsed and decoded.
	b.do(t, http.MethodGet, "/timer?state=pending&limit=1000&cursor="+skyring.EncodeCursor("t20"), nil)
	qs := b.svc.listQueries()
	require.Equal(t, skyring.ListQuery{State: "pending", After: "t20", Limit: 1000}, qs[len(qs)-1])
	// A parameter given twice counts with its first value.
	require.Len(t, listPage(t, b.do(t, http.MethodGet, "/timer?limit=2&limit=5", nil)).Timers, 2)
	// A request body is ignored.
	require.Len(t, listPage(t, b.do(t, http.MethodGet, "/timer?limit=1", strings.NewReader(`{"limit":5}`))).Timers, 1)
}

func TestListBadParams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	calls := b.svc.callCount()
	for _, tc := range []struct{ query, want string }{
		{"state=dead", "state"},
		{"state=FAILED", "state"},
		{"state=failed%20", "state"},
		{"limit=0", "limit"},
		{"limit=-1", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"limit=1.5", "limit"},
		{"limit=1e2", "limit"},
		{"limit=99999999999999999999", "limit"},
		{"cursor=!!!", "cursor"},
		{"cursor=" + skyring.EncodeCursor("x") + "=", "cursor"},
		{"cursor=" + skyring.EncodeCursor(strings.Repeat("x", skyring.MaxIDLen+1)), "cursor"},
		{"state=%zz", "query"},
		{"limit=%", "query"},
		{"a=1;b=2", "query"},
	} {
		r := b.do(t, http.MethodGet, "/timer?"+tc.query, nil)
		require.Equal(t, http.StatusBadRequest, r.status, tc.query)
		requireError(t, r, http.StatusBadRequest, tc.want)
	}
	require.Equal(t, calls, b.svc.callCount(), "the service is not called")
}

func TestRetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"r1", "r2", "retry", "a%b"} {
		require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", id).status)
	}
	b.svc.setState("r1", skyring.StateFailed, 5)
	b.svc.setState("retry", skyring.StateFailed, 1)
	b.svc.setState("a%b", skyring.StateFailed, 1)

	r := b.do(t, http.MethodPost, "/timer/r1/retry", nil)
	require.Equal(t, http.StatusAccepted, r.status, r.reason())
	require.Empty(t, r.body)
	require.Empty(t, r.reason())
	require.Empty(t, r.header.Get("Location"))
	tm, _ := b.svc.timer("r1")
	require.Equal(t, skyring.StatePending, tm.State)
	require.Zero(t, tm.Attempts)

	// Retried once, it is pending: 409 as any timer that has not failed.
	requireError(t, b.do(t, http.MethodPost, "/timer/r1/retry", nil), http.StatusConflict, "failed")
	requireError(t, b.do(t, http.MethodPost, "/timer/r2/retry", nil), http.StatusConflict, "failed")
	b.svc.setState("r2", skyring.StateDelivered, 1)
	requireError(t, b.do(t, http.MethodPost, "/timer/r2/retry", nil), http.StatusConflict, "failed")
	// Unknown: 404.
	r = b.do(t, http.MethodPost, "/timer/nope/retry", nil)
	requireError(t, r, http.StatusNotFound, "not found")

	// An id may be "retry"; ids are percent-decoded; a body is ignored.
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/timer/retry/retry", strings.NewReader("{")).status)
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, "/timer/a%25b/retry", nil).status)
	// A retry route with an encoded final segment is still the retry route.
	requireError(t, b.do(t, http.MethodPost, "/timer/a%25b/%72etry", nil), http.StatusConflict, "failed")
}

func TestRetryIDs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	calls := b.svc.callCount()
	// The id of /timer/:id/retry follows the id rules: an encoded slash
	// stays in the id (400), it never makes another route.
	for _, path := range []string{
		"/timer/a%2Fb/retry",
		"/timer/%2F/retry",
		"/timer/a%20b/retry",  // a space
		"/timer/%C3%A9/retry", // not ASCII
		"/timer/" + strings.Repeat("y", 257) + "/retry",
	} {
		requireError(t, b.do(t, http.MethodPost, path, nil), http.StatusBadRequest, "id")
	}
	// "/timer/a%2Fretry" is the id "a/retry", not a retry of "a": a POST
	// to it is no route (404, as POST /timer/:id), a GET an invalid id
	// (400).
	for _, path := range []string{"/timer/a%2Fretry", "/timer/a%2Fb%2Fretry"} {
		require.Equal(t, http.StatusNotFound, b.do(t, http.MethodPost, path, nil).status, path)
		requireError(t, b.do(t, http.MethodGet, path, nil), http.StatusBadRequest, "id")
	}
	require.Equal(t, calls, b.svc.callCount(), "the service is not called")
}

func TestTimerRoute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw       string
		id, route string
		ok        bool
	}{
		{"/timer/x", "x", routeTimer, true},
		{"/timer/x/retry", "x", routeRetry, true},
		{"/timer/x%2Fy", "x/y", routeTimer, true},
		{"/timer/x%2Fy/retry", "x/y", routeRetry, true},
		{"/timer/x%2fretry", "x/retry", routeTimer, true},
		{"/timer/x%252F", "x%2F", routeTimer, true},
		{"/timer/retry", "retry", routeTimer, true},
		{"/timer/retry/retry", "retry", routeRetry, true},
		{"/timer/x/%72etry", "x", routeRetry, true},
		{"/%74imer/x/retry", "x", routeRetry, true},
		{"/timer/", "", "", false},
		{"/timer//retry", "", "", false},
		{"/timer/x/", "", "", false},
		{"/timer/x/y", "", "", false},
		{"/timer/x/retry/", "", "", false},
		{"/timer/x/retry/retry", "", "", false},
		{"/timer/x/y%2Fretry", "", "", false},
	} {
		u, err := url.Parse(tc.raw)
		require.NoError(t, err, tc.raw)
		id, route, ok := timerRoute(u)
		require.Equal(t, tc.ok, ok, tc.raw)
		require.Equal(t, tc.id, id, tc.raw)
		require.Equal(t, tc.route, route, tc.raw)
	}
}
