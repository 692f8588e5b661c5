package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reuseCall is one callback the id-reuse receiver got.
type reuseCall struct {
	Body    string
	Attempt string
	At      time.Time
}

// reuseRecreate is what the receiver's re-create of an id saw.
type reuseRecreate struct {
	Sent   time.Time // just before the POST was sent
	Status response
	Err    error
	// From GET /timer/<id> right after the 201 (when it answered 200).
	Get  timerInfo
	GetR response
}

// reuseReceiver answers callbacks slowly; on the first delivery of an id it
// creates a timer of the same id again (with data "second-<id>", due after
// 1000 ms) before it answers, while that delivery is still under way.
type reuseReceiver struct {
	srv  *httptest.Server
	p    *proc
	slow time.Duration
	// first is the status of the first delivery of an id, answered slow
	// after it came. later says how the n-th (n ≥ 2) is answered: its
	// status, slow after it came or at once, or not at all (hang: until
	// the node gives up on it or the test ends).
	first int
	later func(id string, n int) (status int, slow, hang bool)
	stop  chan struct{}

	mu       sync.Mutex
	calls    map[string][]reuseCall
	recreate map[string]*reuseRecreate
	notify   chan struct{}
}

func newReuseReceiver(t testing.TB, p *proc, slow time.Duration, first int, later func(id string, n int) (int, bool, bool)) *reuseReceiver {
	t.Helper()
	rr := &reuseReceiver{
		p: p, slow: slow, first: first, later: later, stop: make(chan struct{}),
		calls: map[string][]reuseCall{}, recreate: map[string]*reuseRecreate{}, notify: make(chan struct{}),
	}
	rr.srv = httptest.NewServer(http.HandlerFunc(rr.serve))
	t.Cleanup(func() {
		close(rr.stop)
		rr.srv.Close()
	})
	return rr
}

func (rr *reuseReceiver) uri() string { return rr.srv.URL + "/reuse" }

// body is the create body of a generation of id.
func (rr *reuseReceiver) body(gen, id string, timeoutMS int) map[string]any {
	return map[string]any{
		"timeout": timeoutMS,
		"data":    gen + "-" + id,
		"callback": map[string]any{
			"transport": "http", "method": "post", "uri": rr.uri(),
			// Two attempts, 100 ms apart: a first generation that fails
			// would be retried by its own policy; the node must drop that
			// retry, as the id now names a new timer.
			"retry": map[string]any{"attempts": 2, "min_backoff": 100, "max_backoff": 100},
		},
	}
}

func (rr *reuseReceiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	b, _ := io.ReadAll(r.Body)
	id := r.Header.Get("x-skyring-timer-id")
	rr.mu.Lock()
	rr.calls[id] = append(rr.calls[id], reuseCall{Body: string(b), Attempt: r.Header.Get("x-skyring-attempt"), At: at})
	n := len(rr.calls[id])
	close(rr.notify)
	rr.notify = make(chan struct{})
	rr.mu.Unlock()

	status, slow, hang := rr.first, true, false
	if n == 1 && string(b) == "first-"+id {
		// Still answering the first delivery: create the id again.
		rc := &reuseRecreate{Sent: time.Now()}
		rc.Status, rc.Err = rr.p.try(http.MethodPost, "/timer", rr.body("second", id, 1000), "x-timer-id", id)
		if rc.Err == nil && rc.Status.Status == http.StatusCreated {
			rc.GetR, rc.Err = rr.p.try(http.MethodGet, timerPath(id), nil)
			if rc.Err == nil && rc.GetR.Status == http.StatusOK {
				rc.Err = json.Unmarshal(rc.GetR.Body, &rc.Get)
			}
		}
		rr.mu.Lock()
		rr.recreate[id] = rc
		rr.mu.Unlock()
	} else {
		status, slow, hang = rr.later(id, n)
	}
	switch {
	case hang:
		select {
		case <-r.Context().Done():
		case <-rr.stop:
		}
		return
	case slow:
		select {
		case <-time.After(time.Until(at.Add(rr.slow))):
		case <-rr.stop:
		}
	}
	w.WriteHeader(status)
}

// waitAll waits until every id got at least n callbacks.
func (rr *reuseReceiver) waitAll(t testing.TB, ids []string, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		rr.mu.Lock()
		var short []string
		for _, id := range ids {
			if len(rr.calls[id]) < n {
				short = append(short, fmt.Sprintf("%s:%d", id, len(rr.calls[id])))
			}
		}
		ch := rr.notify
		rr.mu.Unlock()
		if len(short) == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("not every id got %d callbacks within %v; short (id:count): %v", n, d, short)
		}
	}
}

func (rr *reuseReceiver) get(id string) ([]reuseCall, *reuseRecreate) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return append([]reuseCall(nil), rr.calls[id]...), rr.recreate[id]
}

// waitEvents waits until each of ids has at least n events on subjects
// (together).
func (e *events) waitEvents(t testing.TB, subjects []string, ids []string, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		var short []string
		for _, id := range ids {
			k := 0
			for _, subj := range subjects {
				k += len(e.find(subj, id))
			}
			if k < n {
				short = append(short, fmt.Sprintf("%s:%d", id, k))
			}
		}
		if len(short) == 0 {
			return
		}
		e.mu.Lock()
		ch := e.notify
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("not every id had %d events on %v within %v; short (id:count): %v", n, subjects, d, short)
		}
	}
}

// TestIDReuseDuringDelivery is the acceptance case of reusing an id: a
// slow receiver (about 2 s an answer), on the first delivery of id X,
// creates X again (due after 1000 ms) before it answers. The create is
// accepted as a new timer, and the old delivery's outcome does not touch
// it: both deliveries happen, the second with the second body and never
// before its own due time, no third, two success events, and afterwards X
// is not pending.
//
// Twenty ids at once make it a race rather than one lucky run. For half of
// them the second delivery is slow too, so the old delivery ends while the
// new one is under way; for the other half the new one is over first.
func TestIDReuseDuringDelivery(t *testing.T) {
	t.Parallel()
	idReuse(t, http.StatusOK)
}

// TestIDReuseOldFailureNotRetried is TestIDReuseDuringDelivery with the
// first delivery of every id answered 500, a failure its own policy would
// retry: the node must not, as the id now names a new timer (node/retry.go:
// "that retry is dropped, and its event says the timer failed"). Each id
// gets one fail event (the old generation, attempt 1), one success (the
// new one), two deliveries and no third.
func TestIDReuseOldFailureNotRetried(t *testing.T) {
	t.Parallel()
	idReuse(t, http.StatusInternalServerError)
}

// idReuse runs the scenario; the first delivery of every id is answered
// first (200, or 500: a failure the old timer's policy would retry).
func idReuse(t *testing.T, first int) {
	const (
		n    = 20
		slow = 2 * time.Second
	)
	p := startNode(t)
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")
	slowSecond := map[string]bool{}
	tag := "reuse-" + strconv.Itoa(first) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", tag, i)
		slowSecond[ids[i]] = i%2 == 0
	}
	rr := newReuseReceiver(t, p, slow, first, func(id string, _ int) (int, bool, bool) {
		return http.StatusOK, slowSecond[id], false
	})

	// All due at about the same instant, so their deliveries (and the
	// re-creates) overlap.
	for _, id := range ids {
		p.createDue(t, rr.body("first", id, 0), time.Second, "x-timer-id", id)
	}
	rr.waitAll(t, ids, 2, 2*slow+deliverWait)
	if first == http.StatusOK {
		ev.waitEvents(t, []string{"skyring.events.success"}, ids, 2, 2*slow+eventWait)
	} else {
		// The new generation's success, and the old one's outcome,
		// whichever it is (checked below).
		ev.waitEvents(t, []string{"skyring.events.success"}, ids, 1, 2*slow+eventWait)
		ev.waitEvents(t, []string{"skyring.events.fail", "skyring.events.retry"}, ids, 1, 2*slow+eventWait)
	}
	// No third delivery: a barrier due well after every slow answer and
	// any retry (100 ms backoff) of a first generation.
	s := newSink(t)
	s.barrier(t, p, int(slow/time.Millisecond))

	for _, id := range ids {
		calls, rc := rr.get(id)
		require.NotNilf(t, rc, "%s: the first delivery did not re-create", id)
		require.NoErrorf(t, rc.Err, "%s: re-create", id)
		require.Equalf(t, http.StatusCreated, rc.Status.Status, "%s: re-create during the delivery: %s", id, rc.Status)
		require.Lenf(t, calls, 2, "%s: exactly two deliveries, the old and the new generation: %+v", id, calls)
		require.Equalf(t, "first-"+id, calls[0].Body, "%s: first delivery", id)
		require.Equalf(t, "1", calls[0].Attempt, "%s: first delivery", id)
		require.Equalf(t, "second-"+id, calls[1].Body, "%s: second delivery carries the second body", id)
		require.Equalf(t, "1", calls[1].Attempt, "%s: the new timer's first attempt", id)
		requireNotEarly(t, arrival{At: calls[1].At}, rc.Sent.Add(1000*time.Millisecond), id+" second delivery")
		if rc.GetR.Status == http.StatusOK {
			require.JSONEqf(t, `"second-`+id+`"`, string(rc.Get.Data), "%s: GET after the re-create", id)
			requireNotEarlyWall(t, arrival{At: calls[1].At}, rc.Get.Due, id+" second delivery")
		} else {
			// Only when the machine was slow enough for it to be due.
			require.Equalf(t, http.StatusNotFound, rc.GetR.Status, "%s: GET after the re-create: %s", id, rc.GetR)
		}

		succ := ev.find("skyring.events.success", id)
		fails := ev.find("skyring.events.fail", id)
		if first == http.StatusOK {
			require.Lenf(t, succ, 2, "%s: a success event for each generation:\n%s", id, ev.dump())
			require.Emptyf(t, fails, "%s: fail events", id)
		} else {
			require.Lenf(t, succ, 1, "%s: a success event for the new generation:\n%s", id, ev.dump())
			require.Lenf(t, fails, 1, "%s: the old generation failed and is not retried:\n%s", id, ev.dump())
			require.EqualValues(t, 1, fails[0].Fields["attempt"], "%s: fail event %v", id, fails[0].Fields)
		}
		for _, e := range succ {
			require.EqualValuesf(t, 1, e.Fields["attempt"], "%s: success event %v", id, e.Fields)
		}
		require.Emptyf(t, ev.find("skyring.events.retry", id), "%s: no retry of a replaced generation", id)

		// Afterwards X is the new generation, delivered: whichever delivery
		// ended last, the old one's outcome wrote nothing.
		info := p.requireState(t, id, "delivered", "after both deliveries")
		require.JSONEqf(t, `"second-`+id+`"`, string(info.Data), "%s: the stored fate is the new generation's", id)
		require.Equalf(t, 1, info.Attempts, "%s: the new generation's attempts only", id)
	}
	p.requireUp(t)
}

// TestIDReuseKill9DuringNewDelivery: X is created again during its first
// delivery (as in TestIDReuseDuringDelivery); the new generation comes due
// and its delivery is under way (the receiver does not answer it) when the
// old delivery is answered 200 and its success published. The node is then
// killed with SIGKILL: the new generation was never confirmed, so after a
// restart on the same data directory it is delivered again (at least
// once), with its own body. The old delivery's success must not have
// removed the new generation's record.
func TestIDReuseKill9DuringNewDelivery(t *testing.T) {
	t.Parallel()
	const (
		n    = 5
		slow = 2 * time.Second
	)
	p := startNode(t)
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")
	tag := "reuse-kill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", tag, i)
	}
	// The second delivery (the new generation, in the first life) hangs;
	// any later one is answered at once.
	rr := newReuseReceiver(t, p, slow, http.StatusOK, func(_ string, k int) (int, bool, bool) {
		return http.StatusOK, false, k == 2
	})
	for _, id := range ids {
		p.createDue(t, rr.body("first", id, 0), time.Second, "x-timer-id", id)
	}
	// Every new generation is being delivered, and every old one has been
	// answered and its removal written (success is published after it).
	rr.waitAll(t, ids, 2, 2*slow+deliverWait)
	ev.waitEvents(t, []string{"skyring.events.success"}, ids, 1, 2*slow+eventWait)
	p.Kill()
	for _, id := range ids {
		calls, rc := rr.get(id)
		require.NotNilf(t, rc, "%s: the first delivery did not re-create", id)
		require.NoErrorf(t, rc.Err, "%s: re-create", id)
		require.Equalf(t, http.StatusCreated, rc.Status.Status, "%s: re-create during the delivery: %s", id, rc.Status)
		require.Lenf(t, calls, 2, "%s: before the kill", id)
		require.Equalf(t, "second-"+id, calls[1].Body, "%s: the new generation was under way at the kill", id)
		require.Lenf(t, ev.find("skyring.events.success", id), 1, "%s: the new generation was not confirmed", id)
	}

	p.Restart()
	rr.waitAll(t, ids, 3, deliverWait)
	for _, id := range ids {
		calls, _ := rr.get(id)
		require.Equalf(t, "second-"+id, calls[2].Body, "%s: after the restart, the new generation again", id)
	}
}
