package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

// The list filters reach the service parsed (due bounds in Unix ms or RFC
// 3339), and bad ones are a 400 naming the parameter, without a call.
func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"a-1", "a-2", "b-1"} {
		require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", id).status)
	}
	require.Equal(t, []string{"a-1", "a-2"}, pageIDs(listPage(t, b.do(t, http.MethodGet, "/timer?prefix=a-", nil))))
	b.do(t, http.MethodGet, "/timer?prefix=a-&host=api.example.com:8443&due_after=1000&due_before=2030-01-01T00:00:00Z&state=failed", nil)
	qs := b.svc.listQueries()
	due := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	require.Equal(t, skyring.ListQuery{State: "failed", Prefix: "a-", Host: "api.example.com:8443", DueAfter: 1000, DueBefore: due,
		Limit: skyring.DefaultListLimit}, qs[len(qs)-1])

	calls := b.svc.callCount()
	for _, tc := range []struct{ query, want string }{
		{"due_after=soon", "due_after"},
		{"due_after=-5", "due_after"},
		{"due_before=2030-01-01", "due_before"},
		{"due_after=2000&due_before=1000", "due_before must be later"},
		{"host=a/b", "host"},
		{"prefix=" + strings.Repeat("x", skyring.MaxIDLen+1), "prefix"},
	} {
		requireError(t, b.do(t, http.MethodGet, "/timer?"+tc.query, nil), http.StatusBadRequest, tc.want)
		requireError(t, b.do(t, http.MethodDelete, "/timer?"+tc.query, nil), http.StatusBadRequest, tc.want)
	}
	require.Equal(t, calls, b.svc.callCount(), "the service is not called")
}

// DELETE /timer cancels what its filters match and answers the count; a
// bare one, or one with only all=false, is a 400; all=true cancels
// everything.
func TestCancelMatching(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{"a-1", "a-2", "b-1", "b-2", "c-1"} {
		require.Equal(t, http.StatusCreated, b.post(t, validBody, "x-timer-id", id).status)
	}
	b.svc.setState("b-2", skyring.StateDelivered, 1)
	calls := b.svc.callCount()
	for _, path := range []string{"/timer", "/timer?", "/timer?all=false", "/timer?other=1", "/timer?state=delivered", "/timer?all=yes"} {
		requireError(t, b.do(t, http.MethodDelete, path, nil), http.StatusBadRequest, "")
	}
	require.Equal(t, calls, b.svc.callCount(), "the service is not called")

	count := func(path string) int {
		t.Helper()
		r := b.do(t, http.MethodDelete, path, nil)
		require.Equal(t, http.StatusOK, r.status, r.reason())
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var res skyring.CancelResult
		require.NoError(t, json.Unmarshal([]byte(r.body), &res), r.body)
		require.JSONEq(t, `{"cancelled":`+strconv.Itoa(res.Cancelled)+`}`, r.body)
		return res.Cancelled
	}
	require.Equal(t, 2, count("/timer?prefix=a-"))
	require.Equal(t, 0, count("/timer?prefix=a-"))
	require.Equal(t, 2, count("/timer?all=true"), "b-1 and c-1; b-2 was delivered")
	require.Equal(t, []string{"b-2"}, pageIDs(listPage(t, b.do(t, http.MethodGet, "/timer", nil))))
}
