package main_test

import (
	"net/http"
	"net/http/httptest"
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
