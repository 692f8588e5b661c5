package http

import (
	"bytes"
	"context"
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
