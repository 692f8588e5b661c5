package http

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skyring/skyring"
)

// recordingService remembers the timer of the last Create and refuses the
// id "exists" as a duplicate.
type recordingService struct {
	nopService
	last *skyring.Timer
}

func (s *recordingService) Create(ctx context.Context, t *skyring.Timer) error {
	s.last = t
	return s.nopService.Create(ctx, t)
}

const fuzzMaxBody = 4096

// FuzzCreateBody sends arbitrary bodies and x-timer-id values to POST /timer
// through NewHandler: it must never panic (the recover middleware would turn
// a panic into a 500, which fails the status check), must answer 201, 400,
// 409 or 413, must give every error a one-line reason, and must only hand
// valid timers to the Service.
func FuzzCreateBody(f *testing.F) {
	cb := `"callback":{"transport":"http","method":"post","uri":"http://x/y"}`
	for _, body := range []string{
		validBody,
		`{"timeout":1000,` + cb + `}`,
		`{"timeout":"1000",` + cb + `}`,
		`{"timeout":"1e3",` + cb + `}`,
		`{"timeout":" 1000",` + cb + `}`,
		`{"timeout":1.9,` + cb + `}`,
		`{"timeout":0.5,` + cb + `}`,
		`{"timeout":0,` + cb + `}`,
		`{"timeout":-1,` + cb + `}`,
		`{"timeout":2147483647,` + cb + `}`,
		`{"timeout":2147483648,` + cb + `}`,
		`{"timeout":"soon",` + cb + `}`,
		`{"timeout":true,` + cb + `}`,
		`{"timeout":[1],` + cb + `}`,
		`{"timeout":null,` + cb + `}`,
		`{` + cb + `}`,
		`{"timeout":1000,"data":{"a":[1,{"b":null}]},` + cb + `}`,
		`{"timeout":1000,"data":null,` + cb + `}`,
		`{"timeout":1000,"data":1,` + cb + `}`,
		`{"timeout":1000,"data":[1],` + cb + `}`,
		`{"timeout":1000,"data":false,` + cb + `}`,
		`{"timeout":1000}`,
		`{"timeout":1000,"callback":"x"}`,
		`{"timeout":1000,"callback":{"transport":"http","method":"post"}}`,
		`{"timeout":1000,"callback":{"transport":1,"method":"post","uri":"u"}}`,
		`{"at":"2030-01-02T04:00:00Z",` + cb + `}`,
		`{"at":"2030-01-02T04:00:00.123456789+02:00",` + cb + `}`,
		`{"at":1893553200000,` + cb + `}`,
		`{"at":"1893553200000",` + cb + `}`,
		`{"at":"2000-01-01T00:00:00Z",` + cb + `}`,
		`{"at":"9999-12-31T23:59:59Z",` + cb + `}`,
		`{"timeout":1000,"at":1893553200000,` + cb + `}`,
		`{`, `[]`, `null`, `"x"`, `42`, ``, "\xff\xfe", `{"timeout":1000,"data":"\ud800",` + cb + `}`,
		strings.Repeat(" ", fuzzMaxBody+1),
	} {
		for _, id := range []string{"", "my-id", "exists", "a b", "a/b", strings.Repeat("x", 257), "%2F", "line\nbreak"} {
			f.Add(id, []byte(body))
		}
	}

	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		svc := &recordingService{nopService: nopService{exists: "exists"}}
		h := NewHandler(svc, Options{
			MaxBodyBytes: fuzzMaxBody,
			Now:          func() time.Time { return now },
			Logger:       testLogger(t),
		})
		req := httptest.NewRequest(http.MethodPost, "/timer", bytes.NewReader(body))
		if id != "" {
			req.Header[headerTimerID] = []string{id}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		status := rec.Code
		switch status {
		case http.StatusCreated, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d (reason %q)", status, rec.Header().Get(headerReason))
		}
		reasons := rec.Header()[headerReason]
		if status == http.StatusCreated {
			if len(reasons) != 0 || rec.Body.Len() != 0 {
				t.Fatalf("201 with reason %q or body %q", reasons, rec.Body.String())
			}
		} else {
			if len(reasons) != 1 || reasons[0] == "" {
				t.Fatalf("status %d without a single reason: %q", status, reasons)
			}
			for _, c := range []byte(reasons[0]) {
				if c < ' ' || c == 0x7f {
					t.Fatalf("reason %q is not one clean line", reasons[0])
				}
			}
		}
		idErr := skyring.ValidateID(id)
		loc := rec.Header().Get(headerLocation)
		if id != "" && idErr != nil {
			if status != http.StatusBadRequest || loc != "" || svc.last != nil {
				t.Fatalf("invalid id %q: status %d, Location %q, service called %v", id, status, loc, svc.last != nil)
			}
			return
		}
		// A valid or absent id: the body limit holds, and Location is set
		// whatever the body.
		if len(body) > fuzzMaxBody && status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d-byte body answered %d", len(body), status)
		}
		locID, err := url.PathUnescape(strings.TrimPrefix(loc, timerPathS))
		if !strings.HasPrefix(loc, timerPathS) || err != nil || skyring.ValidateID(locID) != nil {
			t.Fatalf("Location %q", loc)
		}
		if id != "" && locID != id {
			t.Fatalf("Location %q for id %q", loc, id)
		}
		if status == http.StatusConflict && locID != "exists" {
			t.Fatalf("409 for id %q", locID)
		}
		if status == http.StatusCreated || status == http.StatusConflict {
			tm := svc.last
			if tm == nil {
				t.Fatalf("%d without a Create", status)
			}
			if tm.ID != locID || tm.Created != now.UnixNano() || tm.Due <= tm.Created ||
				tm.Due-tm.Created > skyring.DefaultMaxTimeout*int64(time.Millisecond) ||
				tm.Callback.Transport == "" || tm.Callback.Method == "" || tm.Callback.URI == "" {
				t.Fatalf("invalid timer accepted: %+v", tm)
			}
			if len(tm.Data) > 0 && tm.Data[0] != '"' && tm.Data[0] != '{' {
				t.Fatalf("invalid data accepted: %s", tm.Data)
			}
		} else if svc.last != nil {
			t.Fatalf("status %d after the Service was called", status)
		}
	})
}

// listRecorder remembers the query of the last List.
type listRecorder struct {
	nopService
	last *skyring.ListQuery
}

func (s *listRecorder) List(_ context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	s.last = &q
	if q.After == "" {
		return skyring.ListPage{Cursor: skyring.EncodeCursor("x")}, nil
	}
	return skyring.ListPage{Timers: []skyring.Info{{ID: q.After + "!"}}}, nil
}

// FuzzListQuery sends arbitrary query strings to GET /timer: the answer is
// a 200 with a JSON page ("timers" never null) after the Service got a
// query within bounds, or a 400 with a one-line reason and no Service call.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{
		"", "state=failed", "limit=10", "limit=1000", "limit=1001", "limit=0", "limit=-1", "limit=+5", "limit=1e3",
		"cursor=" + skyring.EncodeCursor("t1"), "cursor=!!", "cursor=", "state=dead", "state=failed&state=dead",
		"state=%zz", "a=1;b=2", "%", "&&&", "=", "limit=10&cursor=" + skyring.EncodeCursor("a b/c") + "&state=retrying",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		svc := &listRecorder{}
		h := NewHandler(svc, Options{Logger: testLogger(t)})
		req := httptest.NewRequest(http.MethodGet, "/timer", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			q := svc.last
			if q == nil {
				t.Fatalf("200 without a List")
			}
			if q.Limit < 1 || q.Limit > skyring.MaxListLimit || (q.State != "" && !skyring.ValidStateName(q.State)) ||
				len(q.After) > skyring.MaxIDLen {
				t.Fatalf("query %q gave the service %+v", rawQuery, *q)
			}
			var page struct {
				Timers []skyring.Info `json:"timers"`
				Cursor *string        `json:"cursor"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || page.Timers == nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Header().Get(headerContentType) != "application/json" {
				t.Fatalf("Content-Type %q", rec.Header().Get(headerContentType))
			}
		case http.StatusBadRequest:
			if svc.last != nil {
				t.Fatalf("400 after the Service was called with %+v", *svc.last)
			}
			requireOneReason(t, rec)
		default:
			t.Fatalf("query %q: status %d (reason %q)", rawQuery, rec.Code, rec.Header().Get(headerReason))
		}
	})
}

// routeRecorder remembers the last call and its id.
type routeRecorder struct {
	nopService
	op, id string
}

func (s *routeRecorder) Update(_ context.Context, t *skyring.Timer) error {
	s.op, s.id = "update", t.ID
	return nil
}

func (s *routeRecorder) Cancel(_ context.Context, id string) error {
	s.op, s.id = "cancel", id
	return nil
}

func (s *routeRecorder) Get(_ context.Context, id string) (skyring.Info, error) {
	s.op, s.id = "get", id
	return skyring.Info{ID: id}, nil
}

func (s *routeRecorder) Retry(_ context.Context, id string) error {
	s.op, s.id = "retry", id
	return nil
}

// FuzzTimerPath sends arbitrary escaped paths below /timer/ with each
// method: the Service only ever gets a valid id, the one the path spells
// (re-escaped, it routes to the same call), retry only for POST and a
// final "retry" segment; everything else is a 400 (bad id) or a 404 (no
// route), never a 500.
func FuzzTimerPath(f *testing.F) {
	for _, p := range []string{
		"x", "x/retry", "x%2Fy", "x%2Fy/retry", "x%2fretry", "retry", "retry/retry", "x/%72etry", "", "/retry",
		"x/", "x/y", "x/retry/", "a%20b/retry", "%C3%A9", "a%25b/retry", "%", "x/retry%2F", "..", "../retry",
	} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch} {
			f.Add(m, p)
		}
	}
	body := `{"timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://x/y"}}`
	f.Fuzz(func(t *testing.T, method, escaped string) {
		switch method {
		case http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch:
		default:
			return
		}
		u, err := url.Parse(timerPathS + escaped)
		if err != nil || u.RawQuery != "" || u.Fragment != "" || u.Host != "" || u.Opaque != "" ||
			!strings.HasPrefix(u.Path, timerPathS) {
			return
		}
		svc := &routeRecorder{}
		h := NewHandler(svc, Options{Logger: testLogger(t)})
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL = u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted:
			if svc.op == "" {
				t.Fatalf("%s %s: %d without a call", method, escaped, rec.Code)
			}
		case http.StatusBadRequest, http.StatusNotFound:
			if svc.op != "" {
				t.Fatalf("%s %s: %d after %s %q", method, escaped, rec.Code, svc.op, svc.id)
			}
			requireOneReason(t, rec)
			return
		default:
			t.Fatalf("%s %s: status %d (reason %q)", method, escaped, rec.Code, rec.Header().Get(headerReason))
		}
		if err := skyring.ValidateID(svc.id); err != nil {
			t.Fatalf("%s %s: invalid id %q reached the service", method, escaped, svc.id)
		}
		want := map[string]string{http.MethodGet: "get", http.MethodPut: "update", http.MethodDelete: "cancel", http.MethodPost: "retry"}[method]
		if svc.op != want {
			t.Fatalf("%s %s: %s", method, escaped, svc.op)
		}
		// The id is what the path spells: escaped again, it routes the same.
		again := timerPathS + url.PathEscape(svc.id)
		if svc.op == "retry" {
			again += "/retry"
		}
		u2, err := url.Parse(again)
		if err != nil {
			t.Fatalf("re-escaped %q: %v", again, err)
		}
		id2, route, ok := timerRoute(u2)
		if !ok || id2 != svc.id || (route == routeRetry) != (svc.op == "retry") {
			t.Fatalf("%s %s: id %q does not round-trip (%q %q %v)", method, escaped, svc.id, id2, route, ok)
		}
	})
}

// requireOneReason checks that an error answer has exactly one clean,
// non-empty x-skyring-reason.
func requireOneReason(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	reasons := rec.Header()[headerReason]
	if len(reasons) != 1 || reasons[0] == "" {
		t.Fatalf("status %d without a single reason: %q", rec.Code, reasons)
	}
	for _, c := range []byte(reasons[0]) {
		if c < ' ' || c == 0x7f {
			t.Fatalf("reason %q is not one clean line", reasons[0])
		}
	}
}
