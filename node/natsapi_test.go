package node_test

// Conformance of the public NATS API (API.md section 4) with the HTTP API
// (section 2): every validation and lifecycle case is sent to one node over
// both, and must end with the same status and the same reason text
// (x-skyring-reason on HTTP, "error" on NATS), with the reply shapes of
// section 4.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/node"
)

// apiWait bounds every wait of these tests (requests, polls, events).
const apiWait = 10 * time.Second

// recCallback names the recorder transport that setup registers as "rec".
const recCallback = `{"transport":"rec","method":"post","uri":"x"}`

// apiReq is one API command, described once for both interfaces. In id and
// body, "{side}" becomes "h" on HTTP and "n" on NATS, so that the two runs of
// a case work on distinct timers of the same node.
type apiReq struct {
	op   string // create, update, cancel, get
	id   string // HTTP: x-timer-id (create) or the path's :id; NATS: the "id" field
	body string // the create or update body
	// raw sends body on NATS as it is, without adding "id" (bodies that are
	// not JSON objects, or that hold their own "id").
	raw bool
}

func (r apiReq) on(side string) apiReq {
	r.id = strings.ReplaceAll(r.id, "{side}", side)
	r.body = strings.ReplaceAll(r.body, "{side}", side)
	return r
}

// apiResult is what one interface answered.
type apiResult struct {
	status int
	reason string          // error text; empty on success
	id     string          // the id a create, update or cancel answered for
	timer  json.RawMessage // a get's timer JSON
}

// okStatus is the success status of each operation.
var okStatus = map[string]int{"create": 201, "update": 200, "cancel": 202, "get": 200}

type apiSide interface {
	name() string // "h" or "n", the {side} substitution
	do(t *testing.T, r apiReq) apiResult
}

// httpSide speaks the HTTP API of API.md section 2.
type httpSide struct {
	base string
	c    *http.Client
}

func (httpSide) name() string { return "h" }

func (s httpSide) do(t *testing.T, r apiReq) apiResult {
	t.Helper()
	var method, path string
	var body io.Reader
	switch r.op {
	case "create":
		method, path, body = http.MethodPost, "/timer", strings.NewReader(r.body)
	case "update":
		method, path, body = http.MethodPut, "/timer/"+url.PathEscape(r.id), strings.NewReader(r.body)
	case "cancel":
		method, path = http.MethodDelete, "/timer/"+url.PathEscape(r.id)
	case "get":
		method, path = http.MethodGet, "/timer/"+url.PathEscape(r.id)
	default:
		t.Fatalf("unknown op %q", r.op)
	}
	req, err := http.NewRequest(method, s.base+path, body)
	require.NoError(t, err)
	if r.op == "create" && r.id != "" {
		req.Header.Set("x-timer-id", r.id)
	}
	resp, err := s.c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	res := apiResult{status: resp.StatusCode, reason: resp.Header.Get("X-Skyring-Reason")}
	if res.status >= 400 {
		require.NotEmpty(t, res.reason, "HTTP %d without x-skyring-reason", res.status)
		return res
	}
	require.Equal(t, okStatus[r.op], res.status, "HTTP success status of %s", r.op)
	require.Empty(t, res.reason, "x-skyring-reason on a success")
	switch r.op {
	case "create":
		require.Empty(t, got, "a 201 has an empty body")
		loc := resp.Header.Get("Location")
		require.True(t, strings.HasPrefix(loc, "/timer/"), "Location %q", loc)
		res.id, err = url.PathUnescape(strings.TrimPrefix(loc, "/timer/"))
		require.NoError(t, err)
	case "update", "cancel":
		require.Empty(t, got, "a %d has an empty body", res.status)
		res.id = r.id
	case "get":
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		res.timer = got
	}
	return res
}

// natsSide speaks the NATS API of API.md section 4, request-reply.
type natsSide struct {
	nc     *nats.Conn
	prefix string
}

func (natsSide) name() string { return "n" }

// natsPayload is the NATS twin of an HTTP request: the body plus "id".
func natsPayload(t *testing.T, r apiReq) []byte {
	t.Helper()
	switch r.op {
	case "cancel", "get":
		return []byte(`{"id":` + quote(r.id) + `}`)
	}
	if r.raw || r.id == "" {
		return []byte(r.body)
	}
	return []byte(withID(t, r.body, r.id))
}

// withID adds an "id" field in front of the JSON object body, leaving the
// rest of it byte for byte.
func withID(t testing.TB, body, id string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(body, "{")
	require.True(t, ok, "body %q is not an object; mark the case raw", body)
	if strings.TrimSpace(rest) == "}" {
		return `{"id":` + quote(id) + `}`
	}
	return `{"id":` + quote(id) + `,` + rest
}

func (s natsSide) do(t *testing.T, r apiReq) apiResult {
	t.Helper()
	msg, err := s.nc.Request(s.prefix+".timer."+r.op, natsPayload(t, r), apiWait)
	require.NoError(t, err, "NATS %s", r.op)
	return checkReply(t, r.op, msg.Data)
}

// checkReply decodes a NATS API reply and checks that its shape is exactly
// that of API.md section 4 for op.
func checkReply(t *testing.T, op string, data []byte) apiResult {
	t.Helper()
	var rep map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &rep), "reply %s", data)
	keys := make([]string, 0, len(rep))
	for k := range rep {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var res apiResult
	require.NoError(t, json.Unmarshal(rep["status"], &res.status), "reply %s", data)
	if res.status >= 400 {
		require.Equal(t, []string{"error", "status"}, keys, "error reply %s", data)
		require.NoError(t, json.Unmarshal(rep["error"], &res.reason), "reply %s", data)
		require.NotEmpty(t, res.reason, "reply %s", data)
		return res
	}
	require.Equal(t, okStatus[op], res.status, "NATS success status of %s: %s", op, data)
	switch op {
	case "get":
		require.Equal(t, []string{"status", "timer"}, keys, "get reply %s", data)
		res.timer = rep["timer"]
	default:
		require.Equal(t, []string{"id", "status"}, keys, "%s reply %s", op, data)
		require.NoError(t, json.Unmarshal(rep["id"], &res.id), "reply %s", data)
	}
	return res
}

// apiCase is one row of the conformance table.
type apiCase struct {
	name string
	pre  []apiReq // run first on the same interface; each must succeed
	req  apiReq
	want int
	// reasonHas, if set, must appear in the error text (case-insensitive).
	reasonHas string
	// For a successful create or update, the timer as GET then shows it
	// (zero values are not checked).
	timeout int64  // ms
	data    string // JSON
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func tbody(timeout string) string {
	return `{"timeout":` + timeout + `,"callback":` + recCallback + `}`
}

func atBody(at string) string {
	return `{"at":` + at + `,"callback":` + recCallback + `}`
}

func dataBody(data string) string {
	return `{"timeout":1000,"data":` + data + `,"callback":` + recCallback + `}`
}

func cbBody(cb string) string {
	return `{"timeout":1000,"callback":` + cb + `}`
}

// sizedBody is a valid create body of exactly n bytes once "{side}" is
// replaced; it holds its own "id" (big-{side}), which NATS reads and HTTP
// ignores (HTTP takes x-timer-id).
func sizedBody(n int) string {
	head := `{"id":"big-{side}","timeout":1000,"callback":` + recCallback + `,"data":"`
	tail := `"}`
	pad := n - (len(head) - len("{side}") + 1) - len(tail)
	return head + strings.Repeat("x", pad) + tail
}

// apiCases is the conformance table: API.md section 1's validation rules
// and section 2's lifecycle, for a node whose clock reads t0 and stands
// still.
func apiCases() []apiCase {
	ms := func(d time.Duration) string { return strconv.FormatInt(t0.Add(d).UnixMilli(), 10) }
	rfc := func(d time.Duration, layout string, loc *time.Location) string {
		return quote(t0.Add(d).In(loc).Format(layout))
	}
	plus1 := time.FixedZone("+01:00", 3600)
	maxMS := time.Duration(2147483647) * time.Millisecond

	create := func(id, body string) apiReq { return apiReq{op: "create", id: id, body: body} }
	update := func(id, body string) apiReq { return apiReq{op: "update", id: id, body: body} }
	cancel := func(id string) apiReq { return apiReq{op: "cancel", id: id} }
	get := func(id string) apiReq { return apiReq{op: "get", id: id} }
	raw := func(body string) apiReq { return apiReq{op: "create", body: body, raw: true} }
	valid := tbody("1000")

	long256 := strings.Repeat("a", 255) + "{side}"
	long257 := strings.Repeat("a", 256) + "{side}"

	return []apiCase{
		// timeout: forms
		{name: "timeout number", req: create("to-num-{side}", tbody("1000")), want: 201, timeout: 1000},
		{name: "timeout numeric string", req: create("to-str-{side}", tbody(`"1000"`)), want: 201, timeout: 1000},
		{name: "timeout exponent string", req: create("to-exps-{side}", tbody(`"1e3"`)), want: 201, timeout: 1000},
		{name: "timeout exponent number", req: create("to-expn-{side}", tbody(`1e3`)), want: 201, timeout: 1000},
		{name: "timeout fraction cut", req: create("to-frac-{side}", tbody("1500.9")), want: 201, timeout: 1500},
		{name: "timeout fraction string cut", req: create("to-fracs-{side}", tbody(`"1500.9"`)), want: 201, timeout: 1500},
		{name: "timeout lower bound", req: create("to-min-{side}", tbody("1")), want: 201, timeout: 1},
		{name: "timeout upper bound", req: create("to-max-{side}", tbody("2147483647")), want: 201, timeout: 2147483647},
		{name: "timeout upper bound string", req: create("to-maxs-{side}", tbody(`"2147483647"`)), want: 201, timeout: 2147483647},
		// timeout: rejected
		{name: "timeout zero", req: create("", tbody("0")), want: 400, reasonHas: "timeout"},
		{name: "timeout under one after cut", req: create("", tbody("0.9")), want: 400, reasonHas: "timeout"},
		{name: "timeout negative", req: create("", tbody("-1")), want: 400, reasonHas: "timeout"},
		{name: "timeout over bound", req: create("", tbody("2147483648")), want: 400, reasonHas: "timeout"},
		{name: "timeout over bound string", req: create("", tbody(`"2147483648"`)), want: 400, reasonHas: "timeout"},
		{name: "timeout huge", req: create("", tbody("1e999")), want: 400, reasonHas: "timeout"},
		{name: "timeout leading space", req: create("", tbody(`" 1000"`)), want: 400, reasonHas: "timeout"},
		{name: "timeout trailing space", req: create("", tbody(`"1000 "`)), want: 400, reasonHas: "timeout"},
		{name: "timeout word", req: create("", tbody(`"soon"`)), want: 400, reasonHas: "timeout"},
		{name: "timeout empty string", req: create("", tbody(`""`)), want: 400, reasonHas: "timeout"},
		{name: "timeout hex string", req: create("", tbody(`"0x10"`)), want: 400, reasonHas: "timeout"},
		{name: "timeout boolean", req: create("", tbody("true")), want: 400, reasonHas: "timeout"},
		{name: "timeout array", req: create("", tbody("[1000]")), want: 400, reasonHas: "timeout"},
		{name: "timeout object", req: create("", tbody(`{"ms":1000}`)), want: 400, reasonHas: "timeout"},
		{name: "timeout null", req: create("", tbody("null")), want: 400, reasonHas: "timeout"},
		{name: "timeout missing", req: create("", `{"callback":`+recCallback+`}`), want: 400, reasonHas: "timeout"},

		// at
		{name: "at RFC 3339", req: create("at-rfc-{side}", atBody(rfc(time.Hour, time.RFC3339, time.UTC))), want: 201, timeout: 3600000},
		{name: "at RFC 3339 fraction and offset", req: create("at-frac-{side}", atBody(rfc(time.Hour+250*time.Millisecond, "2006-01-02T15:04:05.000Z07:00", plus1))), want: 201, timeout: 3600250},
		{name: "at Unix ms number", req: create("at-ms-{side}", atBody(ms(time.Minute))), want: 201, timeout: 60000},
		{name: "at Unix ms string", req: create("at-mss-{side}", atBody(quote(ms(time.Minute)))), want: 201, timeout: 60000},
		{name: "at upper bound", req: create("at-max-{side}", atBody(ms(maxMS))), want: 201, timeout: 2147483647},
		{name: "at with null timeout", req: create("at-nullto-{side}", `{"timeout":null,"at":`+ms(time.Second)+`,"callback":`+recCallback+`}`), want: 201, timeout: 1000},
		{name: "timeout with null at", req: create("to-nullat-{side}", `{"timeout":1000,"at":null,"callback":`+recCallback+`}`), want: 201, timeout: 1000},
		{name: "at now", req: create("", atBody(ms(0))), want: 400, reasonHas: "at"},
		{name: "at past", req: create("", atBody(ms(-time.Second))), want: 400, reasonHas: "at"},
		{name: "at past RFC 3339", req: create("", atBody(rfc(-time.Hour, time.RFC3339, time.UTC))), want: 400, reasonHas: "at"},
		{name: "at over bound", req: create("", atBody(ms(maxMS+time.Millisecond))), want: 400, reasonHas: "at"},
		{name: "at word", req: create("", atBody(`"tomorrow"`)), want: 400, reasonHas: "at"},
		{name: "at boolean", req: create("", atBody("true")), want: 400, reasonHas: "at"},
		{name: "at and timeout", req: create("", `{"timeout":1000,"at":`+ms(time.Minute)+`,"callback":`+recCallback+`}`), want: 400, reasonHas: "at"},

		// data
		{name: "data string", req: create("d-str-{side}", dataBody(`"hello, world"`)), want: 201, data: `"hello, world"`},
		{name: "data empty string", req: create("d-empty-{side}", dataBody(`""`)), want: 201, data: `""`},
		{name: "data object", req: create("d-obj-{side}", dataBody(`{ "a" : 1, "b" : {"c":[1,2]} }`)), want: 201, data: `{"a":1,"b":{"c":[1,2]}}`},
		{name: "data null", req: create("d-null-{side}", dataBody("null")), want: 201, data: "null"},
		{name: "data absent", req: create("d-none-{side}", valid), want: 201, data: "null"},
		{name: "data number", req: create("", dataBody("5")), want: 400, reasonHas: "data"},
		{name: "data array", req: create("", dataBody(`["a"]`)), want: 400, reasonHas: "data"},
		{name: "data boolean", req: create("", dataBody("false")), want: 400, reasonHas: "data"},

		// callback
		{name: "callback missing", req: create("", `{"timeout":1000}`), want: 400, reasonHas: "callback"},
		{name: "callback null", req: create("", cbBody("null")), want: 400, reasonHas: "callback"},
		{name: "callback string", req: create("", cbBody(`"http://example.com"`)), want: 400, reasonHas: "callback"},
		{name: "callback array", req: create("", cbBody(`["rec","post","x"]`)), want: 400, reasonHas: "callback"},
		{name: "callback without transport", req: create("", cbBody(`{"method":"post","uri":"x"}`)), want: 400, reasonHas: "transport"},
		{name: "callback without method", req: create("", cbBody(`{"transport":"rec","uri":"x"}`)), want: 400, reasonHas: "method"},
		{name: "callback without uri", req: create("", cbBody(`{"transport":"rec","method":"post"}`)), want: 400, reasonHas: "uri"},
		{name: "callback uri number", req: create("", cbBody(`{"transport":"rec","method":"post","uri":5}`)), want: 400, reasonHas: "uri"},
		{name: "callback method empty", req: create("", cbBody(`{"transport":"rec","method":"","uri":"x"}`)), want: 400, reasonHas: "method"},
		{name: "callback unknown transport", req: create("", cbBody(`{"transport":"carrier-pigeon","method":"post","uri":"x"}`)), want: 400, reasonHas: "carrier-pigeon"},
		{name: "callback transport not enabled", req: create("", cbBody(`{"transport":"nats","method":"publish","uri":"x"}`)), want: 400, reasonHas: "nats"},
		{name: "other fields ignored", req: create("extra-{side}", `{"timeout":1000,"created":1,"foo":[1],"callback":{"transport":"rec","method":"post","uri":"x","extra":true}}`), want: 201, timeout: 1000},

		// the body as a whole
		{name: "invalid JSON", req: raw(`{"timeout":`), want: 400, reasonHas: "json"},
		{name: "not JSON", req: raw(`timeout=1000`), want: 400, reasonHas: "json"},
		{name: "trailing garbage", req: raw(valid + `x`), want: 400, reasonHas: "json"},
		{name: "empty body", req: raw(``), want: 400, reasonHas: "json"},
		{name: "array body", req: raw(`[` + valid + `]`), want: 400, reasonHas: "object"},
		{name: "string body", req: raw(`"hello"`), want: 400, reasonHas: "object"},
		{name: "number body", req: raw(`42`), want: 400, reasonHas: "object"},
		{name: "null body", req: raw(`null`), want: 400, reasonHas: "object"},
		{name: "body at the limit", req: apiReq{op: "create", id: "big-{side}", body: sizedBody(1 << 20), raw: true}, want: 201, timeout: 1000},
		{name: "body over the limit", req: create("huge-{side}", sizedBody(1<<20+1)), want: 413},

		// ids
		{name: "server-chosen id", req: create("", valid), want: 201},
		{name: "id of 256 bytes", req: create(long256, valid), want: 201},
		{name: "id of 257 bytes", req: create(long257, valid), want: 400, reasonHas: "id"},
		{name: "id with slash", req: create("a/{side}", valid), want: 400, reasonHas: "id"},
		{name: "id with space", req: create("a {side}", valid), want: 400, reasonHas: "id"},
		{name: "id not ASCII", req: create("caf\u00e9-{side}", valid), want: 400, reasonHas: "id"},
		{name: "id with URL characters", req: create("q?x#y%z&{side}", valid), want: 201},
		{name: "get id with URL characters", pre: []apiReq{create("g?x#y%z&{side}", valid)}, req: get("g?x#y%z&{side}"), want: 200},
		{name: "update id of 257 bytes", req: update(long257, valid), want: 400, reasonHas: "id"},
		{name: "update id with slash", req: update("a/{side}", valid), want: 400, reasonHas: "id"},
		{name: "update id with space", req: update("a {side}", valid), want: 400, reasonHas: "id"},
		{name: "cancel id of 257 bytes", req: cancel(long257), want: 400, reasonHas: "id"},
		{name: "cancel id with slash", req: cancel("a/{side}"), want: 400, reasonHas: "id"},
		{name: "cancel id with space", req: cancel("a {side}"), want: 400, reasonHas: "id"},
		{name: "get id of 257 bytes", req: get(long257), want: 400, reasonHas: "id"},
		{name: "get id with slash", req: get("a/{side}"), want: 400, reasonHas: "id"},
		{name: "get id with space", req: get("a {side}"), want: 400, reasonHas: "id"},

		// lifecycle
		{name: "create", req: create("life-{side}", dataBody(`{"job":1}`)), want: 201, timeout: 1000, data: `{"job":1}`},
		{name: "create duplicate", pre: []apiReq{create("dup-{side}", valid)}, req: create("dup-{side}", valid), want: 409},
		{name: "create after cancel", pre: []apiReq{create("again-{side}", valid), cancel("again-{side}")}, req: create("again-{side}", valid), want: 201},
		{name: "get", pre: []apiReq{create("get-{side}", dataBody(`{"job":2}`))}, req: get("get-{side}"), want: 200},
		{name: "get unknown", req: get("nobody-{side}"), want: 404},
		{name: "update", pre: []apiReq{create("upd-{side}", dataBody(`"old"`))}, req: update("upd-{side}", `{"timeout":"2500","data":"new","callback":`+recCallback+`}`), want: 200, timeout: 2500, data: `"new"`},
		{name: "update with at", pre: []apiReq{create("upd-at-{side}", valid)}, req: update("upd-at-{side}", atBody(ms(time.Minute))), want: 200, timeout: 60000},
		{name: "update unknown", req: update("nobody-{side}", valid), want: 404},
		{name: "update unknown invalid body", req: update("nobody-{side}", tbody("0")), want: 400, reasonHas: "timeout"},
		{name: "update invalid body", pre: []apiReq{create("upd-bad-{side}", valid)}, req: update("upd-bad-{side}", tbody(`"soon"`)), want: 400, reasonHas: "timeout"},
		{name: "update invalid JSON", pre: []apiReq{create("upd-json-{side}", valid)}, req: apiReq{op: "update", id: "upd-json-{side}", body: `{"timeout":`, raw: true}, want: 400, reasonHas: "json"},
		{name: "update unknown transport", pre: []apiReq{create("upd-tr-{side}", valid)}, req: update("upd-tr-{side}", cbBody(`{"transport":"carrier-pigeon","method":"post","uri":"x"}`)), want: 400, reasonHas: "carrier-pigeon"},
		{name: "update body over the limit", pre: []apiReq{create("upd-huge-{side}", valid)}, req: update("upd-huge-{side}", sizedBody(1<<20+1)), want: 413},
		{name: "update cancelled", pre: []apiReq{create("upd-gone-{side}", valid), cancel("upd-gone-{side}")}, req: update("upd-gone-{side}", valid), want: 404},
		{name: "cancel", pre: []apiReq{create("cxl-{side}", valid)}, req: cancel("cxl-{side}"), want: 202},
		{name: "cancel twice", pre: []apiReq{create("cxl2-{side}", valid), cancel("cxl2-{side}")}, req: cancel("cxl2-{side}"), want: 404},
		{name: "cancel unknown", req: cancel("nobody-{side}"), want: 404},
		{name: "get cancelled", pre: []apiReq{create("get-gone-{side}", valid), cancel("get-gone-{side}")}, req: get("get-gone-{side}"), want: 200}, // its fate, during the retention period
	}
}

// apiBundle is a node with an HTTP client and a NATS connection to it.
type apiBundle struct {
	*bundle
	http httpSide
	nats natsSide
}

func setupAPI(t *testing.T, opts ...node.Option) *apiBundle {
	t.Helper()
	b := setup(t, nil, opts...)
	nc, err := nats.Connect(b.node.NATSURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	prefix := node.DefaultPrefix
	var o node.Options
	for _, opt := range opts {
		require.NoError(t, opt(&o))
	}
	if o.Prefix != "" {
		prefix = o.Prefix
	}
	return &apiBundle{
		bundle: b,
		http:   httpSide{base: "http://" + b.node.HTTPAddr().String(), c: &http.Client{Transport: tr, Timeout: apiWait}},
		nats:   natsSide{nc: nc, prefix: prefix},
	}
}

// httpGet reads a timer's JSON with GET /timer/:id, or nil on 404.
func (a *apiBundle) httpGet(t *testing.T, id string) json.RawMessage {
	t.Helper()
	res := a.http.do(t, apiReq{op: "get", id: id})
	if res.status == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, res.status, res.reason)
	return res.timer
}

// stateOf is the state GET /timer/:id shows for id, "" for a 404.
func (a *apiBundle) stateOf(t *testing.T, id string) string {
	t.Helper()
	raw := a.httpGet(t, id)
	if raw == nil {
		return ""
	}
	return decodeInfo(t, raw)["state"].(string)
}

func decodeInfo(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "timer %s", raw)
	return m
}

// withoutID is a timer's JSON object minus its id.
func withoutID(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	m := decodeInfo(t, raw)
	delete(m, "id")
	return m
}

func TestNATSAPIMatchesHTTP(t *testing.T) {
	t.Parallel()
	a := setupAPI(t)
	sides := []apiSide{a.http, a.nats}
	for _, c := range apiCases() {
		t.Run(c.name, func(t *testing.T) {
			got := make(map[string]apiResult, 2)
			reqs := make(map[string]apiReq, 2)
			for _, s := range sides {
				for _, p := range c.pre {
					res := s.do(t, p.on(s.name()))
					require.Less(t, res.status, 300, "%s: setup %s %q: %s", s.name(), p.op, p.on(s.name()).id, res.reason)
				}
				reqs[s.name()] = c.req.on(s.name())
				got[s.name()] = s.do(t, reqs[s.name()])
			}
			h, n := got["h"], got["n"]
			require.Equal(t, c.want, h.status, "HTTP status (reason %q)", h.reason)
			require.Equal(t, c.want, n.status, "NATS status (error %q)", n.reason)
			require.Equal(t, h.reason, n.reason, "x-skyring-reason and the NATS error differ")
			if c.reasonHas != "" {
				require.Contains(t, strings.ToLower(h.reason), strings.ToLower(c.reasonHas))
			}
			if c.want >= 300 {
				return
			}

			switch c.req.op {
			case "create", "update", "cancel":
				for side, res := range got {
					if want := reqs[side].id; want != "" {
						require.Equal(t, want, res.id, "%s: id answered", side)
					} else {
						require.Regexp(t, uuidRE, res.id, "%s: a server-chosen id is a UUID", side)
					}
				}
			case "get":
				// The same JSON as HTTP GET: the NATS reply's timer equals
				// what GET /timer/:id shows for that timer...
				require.JSONEq(t, string(a.httpGet(t, reqs["n"].id)), string(n.timer))
				// ...and, but for the id, what the HTTP twin shows.
				require.Equal(t, withoutID(t, h.timer), withoutID(t, n.timer))
				require.Equal(t, reqs["n"].id, decodeInfo(t, n.timer)["id"])
				return
			}
			if c.req.op == "cancel" {
				require.Equal(t, "cancelled", a.stateOf(t, h.id), "cancelled over HTTP")
				require.Equal(t, "cancelled", a.stateOf(t, n.id), "cancelled over NATS")
				return
			}

			// A create or update: both interfaces stored the same timer.
			hi, ni := a.httpGet(t, h.id), a.httpGet(t, n.id)
			require.NotNil(t, hi, "HTTP timer %q", h.id)
			require.NotNil(t, ni, "NATS timer %q", n.id)
			nget := a.nats.do(t, apiReq{op: "get", id: n.id})
			require.JSONEq(t, string(ni), string(nget.timer), "NATS get and HTTP GET of one timer")
			require.Equal(t, withoutID(t, hi), withoutID(t, ni), "HTTP and NATS stored different timers")
			info := decodeInfo(t, ni)
			require.Equal(t, n.id, info["id"])
			require.Equal(t, a.node.ID(), info["node"])
			require.EqualValues(t, t0.UnixMilli(), info["created"], "created is when the node accepted it")
			if c.timeout != 0 {
				require.EqualValues(t, c.timeout, info["timeout"])
				require.EqualValues(t, t0.UnixMilli()+c.timeout, info["due"])
			}
			if c.data != "" {
				d, err := json.Marshal(info["data"])
				require.NoError(t, err)
				require.JSONEq(t, c.data, string(d))
			}
		})
	}
}

// The NATS API also reads "id" where HTTP has no twin: these are its own
// 400s, with the same reply shape.
func TestNATSAPIIDField(t *testing.T) {
	t.Parallel()
	a := setupAPI(t)
	for _, c := range []struct{ op, payload, reasonHas string }{
		{"create", `{"id":5,"timeout":1000,"callback":` + recCallback + `}`, "id"},
		{"update", tbody("1000"), "id"},
		{"update", `{"id":null,"timeout":1000,"callback":` + recCallback + `}`, "id"},
		{"cancel", `{}`, "id"},
		{"cancel", `{"id":["x"]}`, "id"},
		{"get", `{"id":""}`, "id"},
		{"get", `[]`, "object"},
		{"cancel", `{"id":`, "json"},
	} {
		msg, err := a.nats.nc.Request("skyring.timer."+c.op, []byte(c.payload), apiWait)
		require.NoError(t, err)
		res := checkReply(t, c.op, msg.Data)
		require.Equal(t, http.StatusBadRequest, res.status, "%s %s", c.op, c.payload)
		require.Contains(t, strings.ToLower(res.reason), c.reasonHas, "%s %s", c.op, c.payload)
	}
}

// A lifecycle driven over NATS alone, read back over HTTP at each step.
func TestNATSAPILifecycle(t *testing.T) {
	t.Parallel()
	a := setupAPI(t)
	n := a.nats
	body := func(data string) string { return dataBody(data) }

	res := n.do(t, apiReq{op: "create", id: "cycle", body: body(`"one"`)})
	require.Equal(t, apiResult{status: 201, id: "cycle"}, res)
	require.Equal(t, 409, n.do(t, apiReq{op: "create", id: "cycle", body: body(`"two"`)}).status)
	got := n.do(t, apiReq{op: "get", id: "cycle"})
	require.JSONEq(t, string(a.httpGet(t, "cycle")), string(got.timer))
	require.JSONEq(t, `{"id":"cycle","timeout":1000,"data":"one","callback":{"transport":"rec","method":"post","uri":"x"},`+
		`"created":`+jsonNum(t0.UnixMilli())+`,"due":`+jsonNum(t0.UnixMilli()+1000)+`,"node":`+quote(a.node.ID())+`,"state":"pending","attempts":0}`, string(got.timer))

	// Time passes; an update's timeout counts from then.
	a.advanceTo(t, t0.Add(400*time.Millisecond))
	require.Equal(t, apiResult{status: 200, id: "cycle"}, n.do(t, apiReq{op: "update", id: "cycle", body: body(`{"v":2}`)}))
	info := decodeInfo(t, a.httpGet(t, "cycle"))
	require.EqualValues(t, t0.Add(400*time.Millisecond).UnixMilli(), info["created"])
	require.EqualValues(t, t0.Add(1400*time.Millisecond).UnixMilli(), info["due"])
	require.Equal(t, map[string]any{"v": float64(2)}, info["data"])

	require.Equal(t, apiResult{status: 202, id: "cycle"}, n.do(t, apiReq{op: "cancel", id: "cycle"}))
	for _, op := range []string{"cancel", "update"} {
		res := n.do(t, apiReq{op: op, id: "cycle", body: body(`"x"`)})
		require.Equal(t, 404, res.status, op)
		require.Equal(t, "Timer not found", res.reason, op)
	}
	// Get answers for a cancelled timer during the retention period.
	got = n.do(t, apiReq{op: "get", id: "cycle"})
	require.Equal(t, 200, got.status)
	require.Equal(t, "cancelled", decodeInfo(t, got.timer)["state"])
	require.JSONEq(t, string(a.httpGet(t, "cycle")), string(got.timer))
	a.advanceTo(t, t0.Add(2*time.Second))
	require.Equal(t, 0, a.rec.Count(), "a cancelled timer fired")
}

// A message without a reply subject is carried out all the same.
func TestNATSAPIFireAndForget(t *testing.T) {
	t.Parallel()
	a := setupAPI(t)
	nc := a.nats.nc
	publish := func(op, payload string) {
		t.Helper()
		require.NoError(t, nc.Publish("skyring.timer."+op, []byte(payload)))
		require.NoError(t, nc.Flush())
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(apiWait)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("fire-and-forget: %s did not happen within %s", what, apiWait)
			}
			time.Sleep(time.Millisecond) // polling, with a deadline
		}
	}
	dataOf := func(id string) any {
		raw := a.httpGet(t, id)
		if raw == nil {
			return nil
		}
		return decodeInfo(t, raw)["data"]
	}

	// An invalid message has no one to answer to; it is dropped and the
	// API keeps serving.
	publish("create", `{"id":"ff-bad","timeout":0,"callback":`+recCallback+`}`)
	publish("create", `not json`)

	publish("create", `{"id":"ff","timeout":1000,"data":"first","callback":`+recCallback+`}`)
	waitFor("the create", func() bool { return dataOf("ff") == "first" })
	publish("update", `{"id":"ff","timeout":1000,"data":"second","callback":`+recCallback+`}`)
	waitFor("the update", func() bool { return dataOf("ff") == "second" })

	publish("create", `{"id":"ff-cancel","timeout":500,"callback":`+recCallback+`}`)
	waitFor("the second create", func() bool { return a.httpGet(t, "ff-cancel") != nil })
	publish("cancel", `{"id":"ff-cancel"}`)
	waitFor("the cancel", func() bool { return a.stateOf(t, "ff-cancel") == "cancelled" })

	require.Nil(t, a.httpGet(t, "ff-bad"), "an invalid fire-and-forget create was stored")
	a.advanceTo(t, t0.Add(2*time.Second))
	got := a.rec.Wait(t, 1)
	require.Equal(t, []string{"ff"}, a.rec.IDs())
	s, ok := got[0].DataString()
	require.True(t, ok)
	require.Equal(t, "second", s)
}

// --nats:prefix: the API answers under the configured prefix only.
func TestNATSAPICustomPrefix(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, node.WithPrefix("other"))
	nc := a.nats.nc
	events := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("other.events.create", events)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())

	payload := withID(t, tbody("1000"), "pfx")
	msg, err := nc.Request("other.timer.create", []byte(payload), apiWait)
	require.NoError(t, err)
	require.Equal(t, apiResult{status: 201, id: "pfx"}, checkReply(t, "create", msg.Data))
	msg, err = nc.Request("other.timer.get", []byte(`{"id":"pfx"}`), apiWait)
	require.NoError(t, err)
	require.JSONEq(t, string(a.httpGet(t, "pfx")), string(checkReply(t, "get", msg.Data).timer))

	for _, op := range []string{"create", "update", "cancel", "get"} {
		_, err = nc.Request("skyring.timer."+op, []byte(payload), apiWait)
		require.True(t, errors.Is(err, nats.ErrNoResponders), "skyring.timer.%s under prefix other: %v", op, err)
	}

	select {
	case m := <-events:
		var ev map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &ev))
		require.Equal(t, "create", ev["type"])
		require.Equal(t, "pfx", ev["timer"])
	case <-time.After(apiWait):
		t.Fatal("no create event on other.events.create")
	}
}

// Options that HTTP honours must hold for NATS too: the timeout bound
// (--timer:max) and the body limit.
func TestNATSAPICustomLimits(t *testing.T) {
	t.Parallel()
	const maxTimeout, maxBody = 60000, 4096
	a := setupAPI(t, func(o *node.Options) error {
		o.MaxTimeout, o.MaxBodyBytes = maxTimeout, maxBody
		return nil
	})
	sides := []apiSide{a.http, a.nats}
	run := func(t *testing.T, req apiReq, want int) {
		t.Helper()
		var reasons []string
		for _, s := range sides {
			res := s.do(t, req.on(s.name()))
			require.Equal(t, want, res.status, "side %s: %q", s.name(), res.reason)
			reasons = append(reasons, res.reason)
		}
		require.Equal(t, reasons[0], reasons[1])
	}
	t.Run("timeout at the raised bound", func(t *testing.T) {
		run(t, apiReq{op: "create", id: "lim-{side}", body: tbody("60000")}, 201)
	})
	t.Run("timeout over the raised bound", func(t *testing.T) {
		run(t, apiReq{op: "create", body: tbody("60001")}, 400)
	})
	t.Run("at over the raised bound", func(t *testing.T) {
		run(t, apiReq{op: "create", body: atBody(jsonNum(t0.UnixMilli() + 60001))}, 400)
	})
	t.Run("body over the limit", func(t *testing.T) {
		run(t, apiReq{op: "create", id: "lim-big-{side}", body: sizedBody(maxBody + 1)}, 413)
	})
}
