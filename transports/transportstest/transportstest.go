// Package transportstest holds test helpers for transports: Exercise, a
// conformance suite any transports.Transport can run, with Sink to observe
// deliveries at the far end; and Recorder, a transport that records the
// timers it executes, for node tests.
//
// It is for tests only: non-test code must not import it.
package transportstest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
)

// WaitTimeout bounds every wait of the helpers in this package. It is a
// safety net against hangs, not a timing assumption: waits end as soon as
// what they wait for happens.
const WaitTimeout = 10 * time.Second

// Behaviour is how the far end of a callback answers a delivery.
type Behaviour int

const (
	// Succeed: the far end takes the delivery and reports success; it
	// records the body in the Sink.
	Succeed Behaviour = iota
	// Fail: the delivery fails (an error status, no responder, ...).
	Fail
	// Hang: the far end never answers, so only the ctx deadline ends the
	// delivery.
	Hang
)

func (b Behaviour) String() string {
	switch b {
	case Succeed:
		return "succeed"
	case Fail:
		return "fail"
	case Hang:
		return "hang"
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// Harness adapts a transport to Exercise.
type Harness struct {
	// New returns a fresh transport under test. It is called once per
	// subtest; register any cleanup with t.Cleanup. The suite calls
	// Shutdown itself only in the Shutdown subtest.
	New func(t *testing.T) transports.Transport
	// Endpoint returns a callback whose far end behaves as b, and the Sink
	// its far end records successful deliveries in (the body as received).
	// The sink may be nil for Fail and Hang. Each call returns a new,
	// independent endpoint.
	Endpoint func(t *testing.T, b Behaviour) (skyring.Callback, *Sink)
	// ClosedAfterShutdown asserts that Execute after Shutdown fails with an
	// error matching skyring.ErrClosed (an optional promise, which both
	// built-in transports make).
	ClosedAfterShutdown bool
	// Invalid are callbacks the transport must reject at create; only for a
	// transport that implements transports.Validator. See Exercise.
	Invalid []skyring.Callback
}

// Exercise runs the conformance suite against the transport h builds:
// name, success with string, object and no data (delivered exactly once,
// body as the timer's Body), failure, the ctx deadline and cancellation
// honoured, concurrent use, the timer left unmodified, and Shutdown.
//
// For a transport that implements transports.Validator it also checks that
// Validate accepts every Endpoint callback (whatever its far end does, its
// form is good), and that it rejects each of h.Invalid with a
// *skyring.ValidationError whose Field starts with "callback." and whose
// Reason is one non-empty line, while Execute fails on it with an error
// matching transports.ErrPermanent (create and delivery agree).
func Exercise(t *testing.T, h Harness) {
	t.Helper()
	require.NotNil(t, h.New, "Harness.New")
	require.NotNil(t, h.Endpoint, "Harness.Endpoint")

	t.Run("Name", func(t *testing.T) {
		tr := h.New(t)
		require.NotEmpty(t, tr.Name())
		require.Equal(t, tr.Name(), tr.Name(), "Name must be stable")
	})

	t.Run("Success", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			data string // JSON; "" for none
			want string // body the far end must see
		}{
			{"string", `"hello \u00e9 \"world\""`, "hello é \"world\""},
			{"object", `{"a":1,"b":[true,null],"c":"x"}`, `{"a":1,"b":[true,null],"c":"x"}`},
			{"none", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tr := h.New(t)
				cb, sink := h.Endpoint(t, Succeed)
				require.NotNil(t, sink, "Endpoint(Succeed) must return a Sink")
				tm := NewTimer("succ-"+tc.name, cb, tc.data)
				require.NoError(t, tr.Execute(ctxFor(t), tm))
				// A second delivery to the same endpoint is a barrier: once it
				// has arrived, a duplicate of the first would have too.
				barrier := NewTimer("barrier", cb, `"barrier"`)
				require.NoError(t, tr.Execute(ctxFor(t), barrier))
				got := sink.WaitFor(t, func(bodies [][]byte) bool { return containsBody(bodies, []byte("barrier")) })
				require.Len(t, got, 2, "each delivery must arrive exactly once")
				require.Equal(t, tc.want, string(got[0]))
			})
		}
	})

	t.Run("Failure", func(t *testing.T) {
		tr := h.New(t)
		cb, _ := h.Endpoint(t, Fail)
		err := tr.Execute(ctxFor(t), NewTimer("fail", cb, `"x"`))
		require.Error(t, err)
	})

	t.Run("DeadlineHonoured", func(t *testing.T) {
		tr := h.New(t)
		cb, _ := h.Endpoint(t, Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- tr.Execute(ctx, NewTimer("hang", cb, `"x"`)) }()
		select {
		case err := <-done:
			require.Error(t, err)
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(WaitTimeout):
			t.Fatal("Execute did not return after its ctx deadline")
		}
	})

	t.Run("CancelHonoured", func(t *testing.T) {
		tr := h.New(t)
		cb, _ := h.Endpoint(t, Hang)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tr.Execute(ctx, NewTimer("hang", cb, `"x"`)) }()
		cancel()
		select {
		case err := <-done:
			require.Error(t, err)
		case <-time.After(WaitTimeout):
			t.Fatal("Execute did not return after its ctx was cancelled")
		}
	})

	t.Run("TimerNotModified", func(t *testing.T) {
		tr := h.New(t)
		cb, _ := h.Endpoint(t, Succeed)
		tm := NewTimer("same", cb, `{"k":"v"}`)
		before := cloneTimer(tm)
		require.NoError(t, tr.Execute(ctxFor(t), tm))
		require.Equal(t, before, *tm)
	})

	t.Run("Concurrent", func(t *testing.T) {
		tr := h.New(t)
		cb, sink := h.Endpoint(t, Succeed)
		failCb, _ := h.Endpoint(t, Fail)
		const n = 64
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = tr.Execute(ctxFor(t), NewTimer(fmt.Sprintf("c-%d", i), cb, fmt.Sprintf(`"body-%d"`, i)))
			})
		}
		failErrs := make([]error, n/4)
		for i := range failErrs {
			wg.Go(func() {
				failErrs[i] = tr.Execute(ctxFor(t), NewTimer(fmt.Sprintf("f-%d", i), failCb, `"f"`))
			})
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "delivery %d", i)
		}
		for i, err := range failErrs {
			require.Error(t, err, "failing delivery %d", i)
		}
		require.NoError(t, tr.Execute(ctxFor(t), NewTimer("barrier", cb, `"barrier"`)))
		got := sink.WaitFor(t, func(bodies [][]byte) bool { return containsBody(bodies, []byte("barrier")) })
		want := make([]string, 0, n+1)
		for i := range n {
			want = append(want, fmt.Sprintf("body-%d", i))
		}
		want = append(want, "barrier")
		gotS := make([]string, len(got))
		for i, b := range got {
			gotS[i] = string(b)
		}
		require.ElementsMatch(t, want, gotS, "every delivery arrives exactly once")
	})

	t.Run("Validate", func(t *testing.T) {
		tr := h.New(t)
		v, ok := tr.(transports.Validator)
		if !ok {
			require.Empty(t, h.Invalid, "Harness.Invalid set but %T is no transports.Validator", tr)
			t.Skipf("%T does not implement transports.Validator", tr)
		}
		for _, b := range []Behaviour{Succeed, Fail, Hang} {
			cb, _ := h.Endpoint(t, b)
			require.NoError(t, v.Validate(cb), "the %s endpoint's callback %+v", b, cb)
		}
		for _, cb := range h.Invalid {
			err := v.Validate(cb)
			var ve *skyring.ValidationError
			require.ErrorAs(t, err, &ve, "Validate(%+v)", cb)
			require.True(t, strings.HasPrefix(ve.Field, "callback."), "Field %q of Validate(%+v)", ve.Field, cb)
			require.NotEmpty(t, ve.Reason, "Validate(%+v)", cb)
			require.False(t, strings.ContainsAny(ve.Reason, "\r\n"), "Validate(%+v): one line, got %q", cb, ve.Reason)
			err = tr.Execute(ctxFor(t), NewTimer("invalid", cb, `"x"`))
			require.ErrorIs(t, err, transports.ErrPermanent, "Execute(%+v) after Validate rejected it", cb)
		}
	})

	t.Run("Shutdown", func(t *testing.T) {
		tr := h.New(t)
		cb, sink := h.Endpoint(t, Succeed)
		require.NoError(t, tr.Execute(ctxFor(t), NewTimer("before", cb, `"before"`)))
		sink.Wait(t, 1)
		sd, ok := tr.(transports.Shutdowner)
		if !ok {
			require.False(t, h.ClosedAfterShutdown, "ClosedAfterShutdown set but %T has no Shutdown", tr)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		require.NoError(t, sd.Shutdown(ctx))
		require.NoError(t, ctx.Err(), "Shutdown must return well before its deadline")
		if h.ClosedAfterShutdown {
			err := tr.Execute(ctxFor(t), NewTimer("after", cb, `"after"`))
			require.ErrorIs(t, err, skyring.ErrClosed)
		}
	})
}

// NewTimer returns a timer with id, callback cb and data (JSON text, "" for
// none), due now.
func NewTimer(id string, cb skyring.Callback, data string) *skyring.Timer {
	now := time.Now().UnixNano()
	tm := &skyring.Timer{ID: id, Created: now, Due: now, Callback: cb}
	if data != "" {
		tm.Data = []byte(data)
	}
	return tm
}

func cloneTimer(tm *skyring.Timer) skyring.Timer {
	c := *tm
	c.Data = bytes.Clone(tm.Data)
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func containsBody(bodies [][]byte, b []byte) bool {
	return slices.ContainsFunc(bodies, func(x []byte) bool { return bytes.Equal(x, b) })
}

// Sink records what arrives at the far end of a callback, in arrival order,
// and lets a test wait for it. It is safe for concurrent use; the zero value
// is ready.
type Sink struct {
	mu      sync.Mutex
	bodies  [][]byte
	changed chan struct{} // closed and replaced on every Record
}

// NewSink returns an empty Sink.
func NewSink() *Sink { return &Sink{} }

// Record adds a copy of body.
func (s *Sink) Record(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, bytes.Clone(body))
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// Bodies returns what was recorded so far.
func (s *Sink) Bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

// Len returns how many bodies were recorded.
func (s *Sink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

// Wait waits until at least n bodies were recorded and returns them all; it
// fails t after WaitTimeout.
func (s *Sink) Wait(t testing.TB, n int) [][]byte {
	t.Helper()
	return s.WaitFor(t, func(b [][]byte) bool { return len(b) >= n })
}

// WaitFor waits until cond holds for the bodies recorded so far and returns
// them; it fails t after WaitTimeout.
func (s *Sink) WaitFor(t testing.TB, cond func([][]byte) bool) [][]byte {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if cond(s.bodies) {
			b := slices.Clone(s.bodies)
			s.mu.Unlock()
			return b
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("transportstest: sink: condition not met within %s; %d bodies recorded", WaitTimeout, s.Len())
			return nil
		}
	}
}

// RequireRejected checks that err is a create-time rejection of a callback:
// a *skyring.ValidationError on field whose reason contains reasonHas,
// matching skyring.ErrInvalid and sentinel, not a delivery failure
// (transports.ErrPermanent), and answered 400 with that reason.
func RequireRejected(t testing.TB, err error, field, reasonHas string, sentinel error) {
	t.Helper()
	var ve *skyring.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, field, ve.Field)
	require.Contains(t, ve.Reason, reasonHas)
	require.ErrorIs(t, err, skyring.ErrInvalid)
	require.ErrorIs(t, err, sentinel)
	require.NotErrorIs(t, err, transports.ErrPermanent, "a create-time rejection is not a delivery failure")
	status, reason := skyring.Status(err)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, ve.Reason, reason)
}
