package httptransport_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
)

// script is a receiver answering its statuses in turn (the last one from
// then on) and recording the x-skyring-attempt header of each request.
type script struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header // sent with every answer
	attempts []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, r.Header.Get("x-skyring-attempt"))
	code := s.statuses[min(len(s.attempts), len(s.statuses))-1]
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.WriteHeader(code)
}

// TestRetryClassification sends a timer the way the node retries it, to a
// real receiver answering 500, 500, 200: each attempt carries its number,
// the failures are retryable (not permanent, no Retry-After), the third
// succeeds.
func TestRetryClassification(t *testing.T) {
	t.Parallel()
	rcv := &script{statuses: []int{500, 500, 200}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	tr := newTransport(t, httptransport.Options{})
	tm := timer("retry-1", "post", srv.URL+"/hook", `"x"`)
	for attempt := 1; attempt <= 3; attempt++ {
		tm.Attempts = attempt - 1
		err := tr.Execute(ctx(t), tm)
		if attempt < 3 {
			var se *httptransport.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 500, se.Code)
			require.NotErrorIs(t, err, transports.ErrPermanent)
			_, ok := transports.RetryAfter(err)
			require.False(t, ok)
			continue
		}
		require.NoError(t, err)
	}
	require.Equal(t, []string{"1", "2", "3"}, rcv.attempts)
}

// TestRetryAfter: a 429 or 503 with Retry-After carries the wait, in
// seconds or as an HTTP date; a 404 is final whatever it says.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   int
		value  string
		min    time.Duration
		max    time.Duration
		wantRA bool
	}{
		{429, "7", 7 * time.Second, 7 * time.Second, true},
		{503, "0", 0, 0, true},
		{429, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), 85 * time.Second, 90 * time.Second, true},
		{429, "soon", 0, 0, false},
		{404, "5", 0, 0, false},
	} {
		rcv := &script{statuses: []int{tc.code}, header: http.Header{"Retry-After": {tc.value}}}
		srv := httptest.NewServer(rcv)
		tr := newTransport(t, httptransport.Options{})
		err := tr.Execute(ctx(t), timer("ra", "post", srv.URL, ""))
		srv.Close()
		require.ErrorIs(t, err, httptransport.ErrStatus)
		require.Equal(t, tc.code == 404, errors.Is(err, transports.ErrPermanent), "%d", tc.code)
		d, ok := transports.RetryAfter(err)
		require.Equal(t, tc.wantRA, ok, "%d %q", tc.code, tc.value)
		require.GreaterOrEqual(t, d, tc.min)
		require.LessOrEqual(t, d, tc.max)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		" 3 ":                           3 * time.Second,
		"Fri, 01 Mar 2024 12:00:30 GMT": 30 * time.Second,
		"Fri, 01 Mar 2024 11:00:00 GMT": 0, // in the past
		"99999999999999999999":          -1,
		"":                              -1,
		"-5":                            -1,
		"1.5":                           -1,
	} {
		d, ok := httptransport.ParseRetryAfter(v, now)
		if want < 0 {
			require.False(t, ok, v)
			continue
		}
		require.True(t, ok, v)
		require.Equal(t, want, d, v)
	}
	d, ok := httptransport.ParseRetryAfter(strconv.FormatUint(1<<62, 10), now)
	require.True(t, ok)
	require.Positive(t, d, "a huge number of seconds saturates, it does not wrap")
}
