package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRetryDeliversAfterFailures runs the real binary against a real
// receiver on 127.0.0.1 that answers 500, 500, then 200: the timer is
// delivered on attempt 3, each attempt carries x-skyring-attempt, the node
// publishes retry events for attempts 1 and 2 and then success, and no
// attempt comes before the next attempt time its retry event announced.
func TestRetryDeliversAfterFailures(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var attempts []string
	var at []time.Time
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, r.Header.Get("x-skyring-attempt"))
		at = append(at, time.Now())
		if len(attempts) <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	p := startNode(t, "--delivery:min-backoff", "200ms", "--delivery:max-backoff", "1s")
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")
	id, _ := p.createTimer(t, map[string]any{
		"timeout": 50,
		"callback": map[string]any{
			"transport": "http", "method": "post", "uri": rcv.URL + "/hook",
			"retry": map[string]any{"attempts": 5},
		},
	})
	succ := ev.wait(t, "skyring.events.success", id, eventWait)
	requireEvent(t, succ, "success", id, p.Node)
	require.EqualValues(t, 3, succ.Fields["attempt"])
	retries := ev.find("skyring.events.retry", id)
	require.Len(t, retries, 2)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"1", "2", "3"}, attempts)
	for i, r := range retries {
		require.EqualValues(t, i+1, r.Fields["attempt"])
		require.Contains(t, r.Fields["error"], "500")
		next := time.UnixMilli(int64(r.Fields["next"].(float64)))
		require.False(t, at[i+1].Before(next), "attempt %d at %v, before its next attempt time %v", i+2, at[i+1], next)
		require.GreaterOrEqual(t, at[i+1].Sub(at[i]), 200*time.Millisecond, "at least the min backoff between attempts")
	}
	require.Empty(t, ev.find("skyring.events.fail", id))
	info := p.requireState(t, id, "delivered", "after attempt 3")
	require.Equal(t, 3, info.Attempts)
	require.Equal(t, 500, info.LastStatus, "the last failed attempt's status")
	require.Contains(t, info.LastError, "500")
	require.GreaterOrEqual(t, info.DeliveredAt, info.Due)
}

// TestRetryFinalFailureIsADeadLetter: a receiver that answers 400 fails the
// timer at once (one attempt, a fail event); GET shows it failed with its
// status and error; GET /timer?state=failed lists it; a retry while the
// receiver is still broken fails it again; once the receiver is fixed, POST
// /timer/:id/retry delivers it (attempt 1 of a fresh budget) and it is
// delivered, and a further retry is a 409. Another dead letter is dropped
// with DELETE.
func TestRetryFinalFailureIsADeadLetter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	fixed := false
	var attempts []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, r.URL.Path+"#"+r.Header.Get("x-skyring-attempt"))
		if fixed {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(rcv.Close)
	p := startNode(t)
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")
	mk := func(path string) string {
		id, _ := p.createTimer(t, map[string]any{
			"timeout":  50,
			"callback": map[string]any{"transport": "http", "method": "post", "uri": rcv.URL + path},
		})
		return id
	}
	id, drop := mk("/a"), mk("/b")
	for _, x := range []string{id, drop} {
		f := ev.wait(t, "skyring.events.fail", x, eventWait)
		require.EqualValues(t, 1, f.Fields["attempt"], "a 400 is final: one attempt")
	}
	info := p.requireState(t, id, "failed", "after a 400")
	require.Equal(t, 1, info.Attempts)
	require.Equal(t, 400, info.LastStatus)
	require.Contains(t, info.LastError, "400")
	require.NotZero(t, info.FinishedAt)

	listed := func() []string {
		r := p.do(t, http.MethodGet, "/timer?state=failed&limit=1", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var page struct {
			Timers []timerInfo `json:"timers"`
			Cursor string      `json:"cursor"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &page))
		var ids []string
		for _, tm := range page.Timers {
			require.Equal(t, "failed", tm.State)
			ids = append(ids, tm.ID)
		}
		for page.Cursor != "" {
			r = p.do(t, http.MethodGet, "/timer?state=failed&limit=1&cursor="+page.Cursor, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			page.Timers, page.Cursor = nil, ""
			require.NoError(t, json.Unmarshal(r.Body, &page))
			for _, tm := range page.Timers {
				ids = append(ids, tm.ID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	want := []string{id, drop}
	slices.Sort(want)
	require.Equal(t, want, listed(), "both dead letters, a page of one at a time")

	// Still broken: the retry fails again, back to failed.
	r := p.do(t, http.MethodPost, timerPath(id)+"/retry", nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
	require.Eventually(t, func() bool { return len(ev.find("skyring.events.fail", id)) == 2 }, eventWait, 5*time.Millisecond)
	p.requireState(t, id, "failed", "a retry against a receiver still broken")

	mu.Lock()
	fixed = true
	mu.Unlock()
	r = p.do(t, http.MethodPost, timerPath(id)+"/retry", nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
	succ := ev.wait(t, "skyring.events.success", id, eventWait)
	require.EqualValues(t, 1, succ.Fields["attempt"], "a fresh attempt budget")
	require.Eventually(t, func() bool {
		r := p.do(t, http.MethodGet, timerPath(id), nil)
		var i timerInfo
		return r.Status == http.StatusOK && json.Unmarshal(r.Body, &i) == nil && i.State == "delivered"
	}, eventWait, 5*time.Millisecond)
	requireError(t, p.do(t, http.MethodPost, timerPath(id)+"/retry", nil), http.StatusConflict, "retry of a delivered timer")
	requireError(t, p.do(t, http.MethodPost, timerPath("nobody-"+id)+"/retry", nil), http.StatusNotFound, "retry of an unknown timer")

	// Drop the other one.
	r = p.do(t, http.MethodDelete, timerPath(drop), nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
	requireError(t, p.do(t, http.MethodGet, timerPath(drop), nil), http.StatusNotFound, "a dropped dead letter")
	require.Empty(t, listed())
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"/a#1", "/a#1", "/a#1"}, filterPrefix(attempts, "/a"), "each run of /a was attempt 1 of its budget")
	require.Equal(t, []string{"/b#1"}, filterPrefix(attempts, "/b"), "the dropped one ran once")
}

func filterPrefix(ss []string, prefix string) []string {
	var out []string
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}
