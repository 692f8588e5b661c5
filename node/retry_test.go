package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

// retryTimer is a timer on the "rec" transport with callback.retry set to
// retry (a JSON object).
func retryTimer(t *testing.T, now time.Time, id string, timeout time.Duration, retry string) *skyring.Timer {
	t.Helper()
	body := fmt.Sprintf(`{"timeout":%d,"callback":{"transport":"rec","method":"post","uri":"x","retry":%s}}`, timeout.Milliseconds(), retry)
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: now, ID: id})
	require.NoError(t, err)
	return tm
}

// outcomeWatch collects the timer events of a node, by type.
type outcomeWatch struct{ msgs chan bus.TimerEvent }

func watchTimerEvents(t *testing.T, natsURL string) *outcomeWatch {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := &outcomeWatch{msgs: make(chan bus.TimerEvent, 64)}
	_, err = nc.Subscribe("skyring.events.*", func(m *nats.Msg) {
		var ev bus.TimerEvent
		if json.Unmarshal(m.Data, &ev) == nil && ev.Type != bus.EventCreate && ev.Type != bus.EventExecute {
			w.msgs <- ev
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return w
}

// next returns the next retry, success or fail event.
func (w *outcomeWatch) next(t *testing.T) bus.TimerEvent {
	t.Helper()
	select {
	case ev := <-w.msgs:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome event within 10s")
		return bus.TimerEvent{}
	}
}

// callClock records the fake clock's time of every delivery and answers
// with the errors of script in turn (nil: success; then success).
type callClock struct {
	mu     sync.Mutex
	clock  *wheel.FakeClock
	at     []time.Time
	script []error
}

func (c *callClock) execute(_ context.Context, _ *skyring.Timer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = append(c.at, c.clock.Now())
	if n := len(c.at); n <= len(c.script) {
		if err := c.script[n-1]; err != nil && err.Error() == "panic" {
			panic("receiver exploded") // recovered by the registry: a failed attempt
		}
		return c.script[n-1]
	}
	return nil
}

func (c *callClock) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.at...)
}

// awaitRetry waits for the retry event of attempt n and returns the stored
// timer, whose Next is the exact next attempt time.
func awaitRetry(t *testing.T, w *outcomeWatch, s storage.Store, id string, n int) *skyring.Timer {
	t.Helper()
	ev := w.next(t)
	require.Equal(t, bus.EventRetry, ev.Type, "event after attempt %d: %+v", n, ev)
	require.Equal(t, n, ev.Attempt)
	require.NotEmpty(t, ev.Error)
	stored, err := s.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, n, stored.Attempts, "attempts made, stored")
	require.Equal(t, stored.Next/int64(time.Millisecond), ev.Next, "the event's next attempt time is the stored one")
	return stored
}

// advanceToAttempt moves the clock to just before next and checks that no
// attempt ran early, then on until attempt n runs.
func advanceToAttempt(t *testing.T, b *bundle, next time.Time, n int) {
	t.Helper()
	b.advanceTo(t, next.Add(-time.Nanosecond))
	require.Equal(t, n-1, b.rec.Count(), "attempt %d ran before its next attempt time %v", n, next)
	b.advanceTo(t, next.Add(wheel.DefaultTick))
	b.rec.Wait(t, n)
}

// Two failed attempts, then success: the timer is delivered on attempt 3,
// with a retry event for attempts 1 and 2, each next attempt within the
// backoff bounds (min, then [min, 2·min]) and never run before its time; a
// panicking transport is one of the failed attempts.
func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	calls := &callClock{clock: b.clock, script: []error{errors.New("503 deploying"), errors.New("panic")}}
	b.rec.SetFunc(calls.execute)
	w := watchTimerEvents(t, b.node.NATSURL())
	ctx := context.Background()
	const minB, maxB = time.Second, time.Minute
	tm := retryTimer(t, b.clock.Now(), "flaky", time.Second, `{"attempts":5,"min_backoff":1000,"max_backoff":60000}`)
	require.NoError(t, b.node.Create(ctx, tm))

	b.advanceTo(t, tm.DueTime())
	b.rec.Wait(t, 1)
	for n := 1; n <= 2; n++ {
		stored := awaitRetry(t, w, b.store, "flaky", n)
		failedAt := calls.times()[n-1]
		gap := time.Unix(0, stored.Next).Sub(failedAt)
		limit := min(maxB, minB<<(n-1))
		require.GreaterOrEqual(t, gap, minB, "wait after attempt %d", n)
		// The wait counts from the attempt's end, which the clock may
		// read up to one tick after the transport did: advanceToAttempt
		// steps it to the next attempt time plus a tick while the attempt
		// runs.
		require.LessOrEqual(t, gap, limit+wheel.DefaultTick, "wait after attempt %d", n)
		advanceToAttempt(t, b, time.Unix(0, stored.Next), n+1)
		require.False(t, calls.times()[n].Before(time.Unix(0, stored.Next)), "attempt %d early", n+1)
	}
	ev := w.next(t)
	require.Equal(t, bus.EventSuccess, ev.Type)
	require.Equal(t, 3, ev.Attempt)
	got := b.rec.Timers()
	require.Equal(t, []int{1, 2, 3}, []int{got[0].Attempt(), got[1].Attempt(), got[2].Attempt()})
	info, err := b.node.Get(ctx, "flaky")
	require.NoError(t, err)
	require.Equal(t, "delivered", info.State)
	require.Equal(t, 3, info.Attempts, "every attempt counts, the successful one included")
	require.Contains(t, info.LastError, "panic", "the last failed attempt's error stays")
}

// A permanent failure is final: one attempt, then fail.
func TestRetryPermanentFailureIsFinal(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.rec.SetError(transports.Permanent(errors.New("410 gone")))
	w := watchTimerEvents(t, b.node.NATSURL())
	tm := retryTimer(t, b.clock.Now(), "gone", time.Second, `{"attempts":5}`)
	require.NoError(t, b.node.Create(context.Background(), tm))
	b.advanceTo(t, tm.DueTime())
	ev := w.next(t)
	require.Equal(t, bus.EventFail, ev.Type)
	require.Equal(t, 1, ev.Attempt)
	require.Contains(t, ev.Error, "410 gone")
	b.advanceTo(t, tm.DueTime().Add(2*time.Hour))
	require.Equal(t, 1, b.rec.Count(), "no retry after a permanent failure")
	require.Zero(t, b.node.Len())
}

// Attempts run out: fail after the last, saying how many were made; the
// node's defaults fill what the timer's policy leaves out.
func TestRetryAttemptsExhausted(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(o *node.Options) error {
		o.DeliveryMinBackoff, o.DeliveryMaxBackoff = 100*time.Millisecond, 300*time.Millisecond
		return nil
	})
	refused := errors.New("connection refused")
	calls := &callClock{clock: b.clock, script: []error{refused, refused, refused}}
	b.rec.SetFunc(calls.execute)
	w := watchTimerEvents(t, b.node.NATSURL())
	tm := retryTimer(t, b.clock.Now(), "down", time.Second, `{"attempts":3}`)
	require.NoError(t, b.node.Create(context.Background(), tm))
	b.advanceTo(t, tm.DueTime())
	b.rec.Wait(t, 1)
	for n := 1; n <= 2; n++ {
		stored := awaitRetry(t, w, b.store, "down", n)
		gap := time.Unix(0, stored.Next).Sub(calls.times()[n-1])
		require.GreaterOrEqual(t, gap, 100*time.Millisecond, "the node's min")
		// From the attempt's end: up to a tick after the call (see
		// TestRetryThenSuccess).
		require.LessOrEqual(t, gap, min(300*time.Millisecond, 100*time.Millisecond<<(n-1))+wheel.DefaultTick, "the node's max")
		advanceToAttempt(t, b, time.Unix(0, stored.Next), n+1)
	}
	ev := w.next(t)
	require.Equal(t, bus.EventFail, ev.Type)
	require.Equal(t, 3, ev.Attempt)
	require.Contains(t, ev.Message, "3 attempt")
	b.advanceTo(t, b.clock.Now().Add(time.Hour))
	require.Equal(t, 3, b.rec.Count())
	info, err := b.node.Get(context.Background(), "down")
	require.NoError(t, err)
	require.Equal(t, "failed", info.State, "a dead letter, kept until retried or dropped")
	require.Equal(t, 3, info.Attempts)
	require.Contains(t, info.LastError, "connection refused")
}

// A node restarted between attempts recovers the timer at its next attempt
// time, with its attempt count: the retry runs after the restart, as
// attempt 2, and not before its time.
func TestRetrySurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := wheel.NewFakeClock(t0)
	start := func(rec *transportstest.Recorder) (*bundle, *outcomeWatch) {
		s, err := leveldbstore.Open(storage.Options{Path: dir})
		require.NoError(t, err)
		n, err := node.New(node.WithOptions(node.Options{
			HTTPAddr: "127.0.0.1:0", NATSPort: -1, ChannelPort: -1, Store: s,
			Transports: []string{"http"}, Clock: clock, Logger: testLogger(t),
		}), node.WithTransport(rec))
		require.NoError(t, err)
		require.NoError(t, n.Start(context.Background()))
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		return &bundle{node: n, clock: clock, rec: rec, store: s}, watchTimerEvents(t, n.NATSURL())
	}
	b1, w1 := start(transportstest.NewRecorder("rec"))
	b1.rec.SetError(errors.New("timeout"))
	tm := retryTimer(t, clock.Now(), "persist", time.Second, `{"attempts":4,"min_backoff":5000}`)
	require.NoError(t, b1.node.Create(context.Background(), tm))
	b1.advanceTo(t, tm.DueTime())
	stored := awaitRetry(t, w1, b1.store, "persist", 1)
	next := time.Unix(0, stored.Next)
	require.Equal(t, tm.DueTime().Add(5*time.Second), next, "the first retry waits min_backoff")
	require.NoError(t, b1.node.Close())

	b2, w2 := start(transportstest.NewRecorder("rec"))
	require.Equal(t, 1, b2.node.Len(), "recovered")
	advanceToAttempt(t, b2, next, 1)
	got := b2.rec.Timers()[0]
	require.Equal(t, 2, got.Attempt(), "the retry after the restart is attempt 2")
	require.False(t, clock.Now().Before(next))
	ev := w2.next(t)
	require.Equal(t, bus.EventSuccess, ev.Type)
	require.Equal(t, 2, ev.Attempt)
}

func TestRetryOptionsValidated(t *testing.T) {
	t.Parallel()
	for _, o := range []node.Options{
		{DeliveryAttempts: 101},
		{DeliveryAttempts: -1},
		{DeliveryMinBackoff: time.Microsecond},
		{DeliveryMinBackoff: time.Minute, DeliveryMaxBackoff: time.Second},
		{DeliveryMaxBackoff: 30 * 24 * time.Hour},
	} {
		o.StorageBackend = "memory"
		_, err := o.New()
		require.Error(t, err, "%+v", o)
	}
	d := node.Options{}.WithDefaults()
	require.Equal(t, 5, d.DeliveryAttempts)
	require.Equal(t, time.Second, d.DeliveryMinBackoff)
	require.Equal(t, time.Hour, d.DeliveryMaxBackoff)
	require.Equal(t, 2*time.Hour, node.Options{DeliveryMinBackoff: 2 * time.Hour}.WithDefaults().DeliveryMaxBackoff)
}
