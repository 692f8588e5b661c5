package loadgen

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

// faults makes the fake target misbehave on every Nth timer (counted in
// create order, 1-based), so tests can check the tool sees it.
type faults struct {
	dropEvery  int           // never deliver
	dupEvery   int           // deliver twice
	earlyEvery int           // the 3rd of every earlyEvery fires early ...
	early      time.Duration // ... by this much (at once if that is past)
	reject     int           // answer creates with this status (0: accept)
}

// fakeTarget is a tiny real timer server for the tests: POST /timer (and
// optionally <prefix>.timer.create over NATS) parsed with skyring.ParseTimer,
// each timer fired at its due instant by an http POST to its callback.
type fakeTarget struct {
	t      testing.TB
	f      faults
	srv    *httptest.Server
	client *http.Client

	mu     sync.Mutex
	closed bool
	timers map[string]*time.Timer // accepted, not fired yet
	wg     sync.WaitGroup         // deliveries in flight

	creates    atomic.Int64
	handling   atomic.Int64 // creates being handled
	fired      atomic.Int64
	delivering atomic.Int64 // deliveries in flight
	// answeredEarly counts deliveries answered before their timer's due
	// instant: the sink, which records an arrival before it answers, saw
	// them early for sure.
	answeredEarly atomic.Int64
}

func newFakeTarget(t testing.TB, f faults) *fakeTarget {
	ft := &fakeTarget{
		t:      t,
		f:      f,
		timers: make(map[string]*time.Timer),
		client: &http.Client{
			Timeout:   patience,
			Transport: &http.Transport{MaxConnsPerHost: 32, MaxIdleConnsPerHost: 32},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("POST /timer", ft.handleCreate)
	ft.srv = httptest.NewServer(mux)
	t.Cleanup(ft.close)
	return ft
}

func (ft *fakeTarget) URL() string { return ft.srv.URL }

func (ft *fakeTarget) handleCreate(w http.ResponseWriter, r *http.Request) {
	ft.handling.Add(1)
	defer ft.handling.Add(-1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if ft.f.reject != 0 {
		w.Header().Set("x-skyring-reason", "rejected by the fake")
		w.WriteHeader(ft.f.reject)
		return
	}
	tm, err := skyring.ParseTimer(body, skyring.ParseParams{Now: time.Now(), ID: r.Header.Get("x-timer-id")})
	if err == nil {
		err = ft.schedule(tm)
	}
	if err != nil {
		status, reason := skyring.Status(err)
		w.Header().Set("x-skyring-reason", reason)
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Location", "/timer/"+tm.ID)
	w.WriteHeader(http.StatusCreated)
}

// serveNATS answers <prefix>.timer.create on nc like Skyring's NATS API,
// and like a node publishes a create event for every timer it stored.
func (ft *fakeTarget) serveNATS(nc *nats.Conn, prefix string) {
	sub, err := nc.Subscribe(prefix+".timer.create", func(m *nats.Msg) {
		ft.handling.Add(1)
		defer ft.handling.Add(-1)
		tm, err := skyring.ParseTimer(m.Data, skyring.ParseParams{Now: time.Now(), IDField: true})
		if err == nil {
			err = ft.schedule(tm)
		}
		if err == nil {
			ev, _ := json.Marshal(map[string]any{"type": "create", "timer": tm.ID})
			_ = nc.Publish(prefix+".events.create", ev)
		}
		if m.Reply == "" {
			return
		}
		var reply []byte
		if err != nil {
			status, reason := skyring.Status(err)
			reply, _ = json.Marshal(map[string]any{"status": status, "error": reason})
		} else {
			reply, _ = json.Marshal(map[string]any{"id": tm.ID, "status": 201})
		}
		_ = m.Respond(reply)
	})
	require.NoError(ft.t, err)
	ft.t.Cleanup(func() { _ = sub.Unsubscribe() })
}

func (ft *fakeTarget) schedule(tm *skyring.Timer) error {
	if tm.Callback.Transport != "http" {
		return skyring.UnknownTransportError(tm.Callback.Transport, []string{"http"})
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.closed {
		return skyring.ErrClosed
	}
	if _, ok := ft.timers[tm.ID]; ok {
		return skyring.ErrTimerExists
	}
	at, times := tm.Due, 1
	n := int(ft.creates.Add(1))
	switch {
	case ft.f.dropEvery > 0 && n%ft.f.dropEvery == 0:
		times = 0
	case ft.f.dupEvery > 0 && n%ft.f.dupEvery == 0:
		times = 2
	}
	if ft.f.earlyEvery > 0 && n%ft.f.earlyEvery == 3 {
		at -= int64(ft.f.early) // a broken server: fires before the due instant
	}
	ft.arm(tm, at, times)
	return nil
}

// arm fires tm (delivering it times times) at Unix ns at, never before.
// ft.mu is held.
func (ft *fakeTarget) arm(tm *skyring.Timer, at int64, times int) {
	ft.timers[tm.ID] = time.AfterFunc(time.Until(time.Unix(0, at)), func() {
		if time.Now().UnixNano() < at { // the wall clock is behind the monotonic one
			ft.mu.Lock()
			if !ft.closed {
				ft.arm(tm, at, times)
			}
			ft.mu.Unlock()
			return
		}
		ft.fire(tm, times)
	})
}

func (ft *fakeTarget) fire(tm *skyring.Timer, times int) {
	ft.mu.Lock()
	if ft.closed {
		ft.mu.Unlock()
		return
	}
	delete(ft.timers, tm.ID)
	ft.wg.Add(times)
	ft.delivering.Add(int64(times))
	ft.fired.Add(1)
	ft.mu.Unlock()
	for range times {
		go func() {
			defer ft.wg.Done()
			defer ft.delivering.Add(-1)
			ft.deliver(tm)
		}()
	}
}

func (ft *fakeTarget) deliver(tm *skyring.Timer) {
	method := strings.ToUpper(tm.Callback.Method)
	body, isJSON := tm.Body()
	req, err := http.NewRequest(method, tm.Callback.URI, bytes.NewReader(body))
	if err != nil {
		ft.t.Errorf("fake delivery: %v", err)
		return
	}
	req.Header.Set("User-Agent", "skyring/fake")
	req.Header.Set("x-skyring-timer-id", tm.ID)
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := ft.client.Do(req)
	if err != nil {
		return // the sink may be gone at the end of a test
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if time.Now().UnixNano() < tm.Due {
		ft.answeredEarly.Add(1)
	}
}

// settled reports whether the fake has nothing more to do: no create is
// being handled, every timer it accepted fired and every delivery was
// answered (the sink records an arrival before it answers). Once the
// bench's creates are over it stays true; it counts on no clock.
func (ft *fakeTarget) settled() bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.handling.Load() == 0 && len(ft.timers) == 0 && ft.delivering.Load() == 0
}

// pending is the number of timers not fired yet.
func (ft *fakeTarget) pending() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return len(ft.timers)
}

func (ft *fakeTarget) close() {
	ft.mu.Lock()
	ft.closed = true
	for id, tm := range ft.timers {
		tm.Stop()
		delete(ft.timers, id)
	}
	ft.mu.Unlock()
	ft.wg.Wait()
	ft.srv.Close()
	ft.client.CloseIdleConnections()
}
